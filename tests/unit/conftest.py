"""Unit tests never reach a network: the http store's directory listing probe is answered
here as by a server that does not list (a 404), whatever ``[deploy]http_url`` a test sets
(often an address like 10.0.0.1 that must not be contacted). Only unit tests get this
stand-in; functional tests probe real loopback servers and assert the probe reached them.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _listing_probe_offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from ironic_configdrive.store import http

    asked: list[str] = []

    def not_listed(url: str) -> None:
        asked.append(url)
        return None

    monkeypatch.setattr(http, "_fetch_page", not_listed)
    return asked
