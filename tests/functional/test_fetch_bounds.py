"""The conductor's download of a user's config drive URL, against real loopback servers:
every bound holds (wire bytes, padding, whitespace, Content-Encoding, deadline), and the
connection goes to the checked address while TLS still verifies the name.

Bounds are asserted by bytes read or sent, never by elapsed time.
"""

from __future__ import annotations

import gzip
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ironic_configdrive import image, pinned_http, source
from ironic_configdrive.image import errors
from ironic_configdrive.image.stream import MAX_GZIP_PADDING
from ironic_configdrive.url_policy import AddressPolicy
from tests.conftest import require_tool
from tests.fixtures import http as http_fixture

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
LOOPBACK = AddressPolicy.from_options(["127.0.0.0/8"], [])
MIB = 1024 * 1024
#: What loopback socket buffers may hold beyond what the client read.
SOCKET_BUFFERS = 16 * MIB


@pytest.fixture(scope="module")
def iso() -> bytes:
    return image.build_image({"meta_data": {"name": "n"}, "user_data": "#!/bin/sh\n"},
                             node_uuid=NODE)


@pytest.fixture
def server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()


def _fetch(server: http_fixture.ObjectServer, **kwargs: Any) -> bytes:
    return source.fetch(server.url("/cd", "temp_url_sig=s3cr3t"), policy=LOOPBACK,
                        node=NODE, **kwargs)


def test_endless_gzip_padding_stops_near_the_bound(server: http_fixture.ObjectServer,
                                                    iso: bytes) -> None:
    server.objects["/cd"] = gzip.compress(iso)
    server.fault("/cd", ("endless", b"\0"))
    with pytest.raises(errors.InvalidMediaError, match="zero bytes follow the end"):
        _fetch(server)
    # It used to read on without end (1 GiB and counting).
    assert server.sent["/cd"] < len(server.objects["/cd"]) + MAX_GZIP_PADDING + SOCKET_BUFFERS


def test_endless_base64_whitespace_stops(server: http_fixture.ObjectServer,
                                         iso: bytes) -> None:
    server.objects["/cd"] = image.pack(iso).encode()
    server.fault("/cd", ("endless", b"\r\n"))
    with pytest.raises(errors.InvalidMediaError, match="more than line breaks need"):
        _fetch(server)
    assert server.sent["/cd"] < len(server.objects["/cd"]) * 2 + SOCKET_BUFFERS


def test_content_encoding_is_refused_not_decoded(server: http_fixture.ObjectServer,
                                                 iso: bytes) -> None:
    # A compression bomb behind Content-Encoding: requests inflated 4 GiB from 4.2 MB.
    server.objects["/cd"] = gzip.compress(gzip.compress(iso) + bytes(64 * MIB))
    server.fault("/cd", ("content_encoding", "gzip"))
    with pytest.raises(source.EncodedTransferError) as exc:
        _fetch(server)
    assert "Content-Encoding: gzip" in exc.value.message
    assert "s3cr3t" not in exc.value.message
    assert server.requests[0].accept_encoding == "identity"


def test_announced_length_over_the_wire_cap_is_refused_unread(
        server: http_fixture.ObjectServer) -> None:
    cap = MIB
    server.objects["/cd"] = bytes(source.wire_cap(cap) + 1)
    with pytest.raises(source.DownloadTooLargeError) as exc:
        _fetch(server, cap=cap)
    assert f"passed {source.wire_cap(cap)} bytes" in exc.value.message


def test_wire_bytes_are_counted_off_the_socket(server: http_fixture.ObjectServer) -> None:
    # No Content-Length, no decoder: only the count of bytes read stops it.
    server.objects["/cd"] = b"x"
    server.fault("/cd", ("endless", b"y"))
    limits = pinned_http.Limits(wire_cap=3 * MIB, deadline=60)
    read = 0
    with pytest.raises(pinned_http.WireLimitExceeded):
        with pinned_http.open_url(server.url("/cd"), policy=LOOPBACK, limits=limits) as body:
            for chunk in body:
                read += len(chunk)
    assert read <= limits.wire_cap < body.received <= limits.wire_cap + pinned_http.READ_SIZE


def test_trickled_body_ends_at_the_deadline(server: http_fixture.ObjectServer,
                                            iso: bytes) -> None:
    server.objects["/cd"] = gzip.compress(iso)
    server.fault("/cd", ("trickle", 0.01))  # each byte well within the read timeout
    with pytest.raises(source.DownloadTooSlowError) as exc:
        _fetch(server, deadline=0.5, timeout=(2.0, 2.0))
    assert "took longer than 0.5 s ([configdrive]fetch_deadline)" in exc.value.message
    assert 0 < server.sent["/cd"] < len(server.objects["/cd"])


def test_trickled_headers_end_at_the_deadline(server: http_fixture.ObjectServer, iso: bytes,
                                              caplog: pytest.LogCaptureFixture) -> None:
    server.objects["/cd"] = gzip.compress(iso)
    server.fault("/cd", ("trickle_headers", 0.01))
    with pytest.raises(source.FetchError) as exc:
        _fetch(server, deadline=0.3, timeout=(2.0, 2.0))
    assert type(exc.value) is source.FetchError  # before a 200: the one text
    assert "within the 0.3 s deadline" in caplog.text
    assert server.sent["/cd"] < 120  # the status line and headers were not all sent


@pytest.fixture(scope="module")
def named_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    require_tool("openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=drive.test",
                    "-addext", "subjectAltName=DNS:drive.test"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(named_cert: tuple[str, str], monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[http_fixture.ObjectServer]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", named_cert[0])
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        if host in ("drive.test", "other.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    gen = http_fixture.serve(tls=named_cert)
    srv = next(gen)
    srv.lookups = lookups  # type: ignore[attr-defined]
    yield srv
    gen.close()


def test_tls_verifies_the_name_while_connecting_to_the_checked_address(
        tls_server: http_fixture.ObjectServer, iso: bytes) -> None:
    tls_server.objects["/cd"] = gzip.compress(iso)
    url = f"https://drive.test:{tls_server.port}/cd?temp_url_sig=s3cr3t"
    assert source.fetch(url, policy=LOOPBACK) == iso
    assert tls_server.lookups.count("drive.test") == 1  # type: ignore[attr-defined]
    assert tls_server.requests[0].host == f"drive.test:{tls_server.port}"
    # The same address under a name the certificate does not hold is refused.
    with pytest.raises(source.FetchError):
        source.fetch(f"https://other.test:{tls_server.port}/cd", policy=LOOPBACK)
    assert len(tls_server.requests) == 1


def test_no_redirect_from_https_to_http(tls_server: http_fixture.ObjectServer,
                                        server: http_fixture.ObjectServer,
                                        iso: bytes, caplog: pytest.LogCaptureFixture) -> None:
    server.objects["/cd"] = gzip.compress(iso)
    tls_server.fault("/start", ("redirect", server.url("/cd")))
    with pytest.raises(source.FetchError):
        source.fetch(f"https://drive.test:{tls_server.port}/start", policy=LOOPBACK)
    assert server.requests == []
    assert "redirect from https to" in caplog.text


def test_env_proxy_is_not_used(server: http_fixture.ObjectServer, iso: bytes,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would resolve the name itself, after our check.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    server.objects["/cd"] = gzip.compress(iso)
    assert _fetch(server) == iso
