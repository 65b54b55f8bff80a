"""The download session: TLS material, proxies, retry policy and IPA's SSL context."""

from __future__ import annotations

import ssl

from requests.adapters import HTTPAdapter

from agent_ext.http_options import FetchOptions
from agent_ext.http_session import make_session


def test_session_settings() -> None:
    options = FetchOptions(
        verify="/ca.pem",
        cert=("/c", "/k"),
        proxies={"https": "http://proxy:3128"},
        no_proxy="10.0.0.1",
    )
    session = make_session(options)
    assert session.verify == "/ca.pem" and session.cert == ("/c", "/k")
    assert session.proxies["https"] == "http://proxy:3128"
    assert session.proxies["no_proxy"] == "10.0.0.1"
    adapter = session.get_adapter("https://x")
    assert isinstance(adapter, HTTPAdapter)
    retry = adapter.max_retries
    assert 500 in retry.status_forcelist and retry.other == 0


def test_session_uses_the_given_ssl_context() -> None:
    context = ssl.create_default_context()
    session = make_session(FetchOptions(ssl_context=context))
    adapter = session.get_adapter("https://x")
    assert isinstance(adapter, HTTPAdapter)
    assert adapter.poolmanager.connection_pool_kw["ssl_context"] is context
