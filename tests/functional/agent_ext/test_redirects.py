"""Redirects the agent follows while it fetches a drive: few, and never away from TLS."""

from __future__ import annotations

import pytest

from agent_ext import fetch
from agent_ext.errors import TransferError
from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.conftest import TLSFiles

DATA = b"config drive bytes" * 100


def _get(url: str, **options: object) -> bytes:
    return b"".join(fetch.fetch(url, fetch.FetchOptions(retries=0, **options)))  # type: ignore[arg-type]


def test_one_redirect_is_followed(server: http_fixture.ObjectServer) -> None:
    server.objects["/final"] = DATA
    server.fault("/o", ("redirect", "/final"))
    assert _get(server.url("/o")) == DATA
    assert [r.path for r in server.requests] == ["/o", "/final"]


def test_a_long_chain_is_refused(server: http_fixture.ObjectServer) -> None:
    server.objects["/hop9"] = DATA
    for n in range(9):
        server.fault(f"/hop{n}", ("redirect", f"/hop{n + 1}"))
    with pytest.raises(TransferError, match="more than 3 redirects") as info:
        _get(server.url("/hop0", "temp_url_sig=secret"))
    assert "secret" not in str(info.value)
    assert len(server.requests) <= fetch.MAX_REDIRECTS + 1


def test_https_to_http_is_refused_before_the_http_request(
        tls_server: http_fixture.ObjectServer, tls_files: TLSFiles,
        server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = DATA
    tls_server.fault("/o", ("redirect", server.url("/o")))
    with pytest.raises(TransferError, match="from https to http was refused"):
        _get(tls_server.url("/o"), verify=tls_files.ca)
    assert server.requests == []  # the plain-text request was never made


@pytest.mark.parametrize("target", ["file:///etc/shadow", "ftp://127.0.0.1/o"])
def test_other_schemes_are_refused(server: http_fixture.ObjectServer, target: str) -> None:
    server.fault("/o", ("redirect", target))
    with pytest.raises(TransferError, match="redirect to a .*: URL was refused"):
        _get(server.url("/o"))
