"""Users' URLs: the address policy holds before any connection, for every redirect hop, and
the connection goes to the address that was checked (no second lookup).

Refusals are proved by intercepting the connection attempt in-process: the recorder below
sees every connection urllib3 makes and lets only loopback ones through.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3.util.connection

from ironic_configdrive import image, pinned_http, source
from ironic_configdrive.url_policy import AddressPolicy
from tests.fixtures import http as http_fixture

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
LOOPBACK = AddressPolicy.from_options(["127.0.0.0/8"], [])
#: What the test resolver answers; any other name does not resolve.
NAMES = {"metadata.test": ["169.254.169.254"], "mixed.test": ["127.0.0.1", "10.0.0.7"],
         "drive.test": ["127.0.0.1"], "control.test": ["::ffff:10.1.1.1"]}


@pytest.fixture(scope="module")
def drive() -> bytes:
    return gzip.compress(image.build_image({"meta_data": {"name": "n"}}, node_uuid=NODE))


@pytest.fixture
def server(drive: bytes) -> Iterator[http_fixture.ObjectServer]:
    gen = http_fixture.serve()
    srv = next(gen)
    srv.objects["/cd"] = drive
    yield srv
    gen.close()


class Recorder:
    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.lookups: list[str] = []


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Record connection attempts (only loopback is let through) and answer DNS for NAMES."""
    recorder = Recorder()
    real_connect = urllib3.util.connection.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        recorder.connections.append((address[0], address[1]))
        if not address[0].startswith("127."):
            raise AssertionError(f"a connection to {address[0]} was attempted")
        return real_connect(address, *args, **kwargs)

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.lookups.append(host)
        if host in NAMES:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6,
                     "", (a, port)) for a in NAMES[host]]
        if host.endswith(".test"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return recorder


def _refused(url: str, policy: AddressPolicy | None = None) -> str:
    with pytest.raises(source.FetchError) as exc:
        source.fetch(url, policy=policy, node=NODE)
    assert type(exc.value) is source.FetchError
    return exc.value.message


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam?sig=s",
    "http://127.0.0.1:{port}/cd?sig=s",          # the default policy refuses loopback
    "http://[::1]:{port}/cd",
    "http://[::ffff:127.0.0.1]:{port}/cd",
    "https://10.0.0.5/cd",
    "http://0.0.0.0:{port}/cd",
    "http://metadata.test/latest",              # a name resolving to a refused address
    "http://mixed.test:{port}/cd",              # one address of the answer is refused
    "http://control.test/cd",                   # IPv4-mapped private address
    "http://user:pw@drive.test:{port}/cd",      # credentials in the URL
])
def test_refused_before_any_connection(url: str, net: Recorder,
                                       server: http_fixture.ObjectServer) -> None:
    _refused(url.format(port=server.port))
    assert net.connections == []
    assert server.requests == []


def test_allowed_hosts_refuse_other_names(net: Recorder,
                                          server: http_fixture.ObjectServer) -> None:
    policy = AddressPolicy.from_options(["127.0.0.0/8"], ["objects.example.com"])
    _refused(f"http://drive.test:{server.port}/cd", policy)
    assert net.lookups == [] and net.connections == []


def test_name_is_resolved_once_and_the_checked_address_is_used(
        net: Recorder, server: http_fixture.ObjectServer, drive: bytes) -> None:
    raw = source.fetch(f"http://drive.test:{server.port}/cd?sig=s", policy=LOOPBACK)
    assert raw == gzip.decompress(drive)
    assert net.lookups.count("drive.test") == 1
    assert net.connections == [("127.0.0.1", server.port)]
    [request] = server.requests
    # The server sees the name, not the address; the transfer is not encoded.
    assert request.host == f"drive.test:{server.port}"
    assert request.accept_encoding == "identity"


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.test/latest/meta-data/",
    "http://10.0.0.5:{port}/cd",
    "ftp://127.0.0.1/cd",
])
def test_redirect_to_a_refused_address_is_not_followed(
        location: str, net: Recorder, server: http_fixture.ObjectServer) -> None:
    server.fault("/start", ("redirect", location.format(port=server.port)))
    _refused(server.url("/start", "sig=s"), LOOPBACK)
    assert net.connections == [("127.0.0.1", server.port)]  # the first hop only
    assert [r.path for r in server.requests] == ["/start?sig=s"]


def test_allowed_redirects_are_followed_each_checked(
        net: Recorder, server: http_fixture.ObjectServer, drive: bytes) -> None:
    server.fault("/a", ("redirect", "/b"))
    server.fault("/b", ("redirect", f"http://drive.test:{server.port}/cd"))
    assert source.fetch(server.url("/a"), policy=LOOPBACK) == gzip.decompress(drive)
    assert [r.path for r in server.requests] == ["/a", "/b", "/cd"]
    assert net.lookups.count("drive.test") == 1


def test_redirects_are_bounded(net: Recorder, server: http_fixture.ObjectServer) -> None:
    server.fault("/loop", *[("redirect", "/loop")] * 10)
    _refused(server.url("/loop"), LOOPBACK)
    assert len(server.requests) == pinned_http.MAX_REDIRECTS + 1


def test_one_text_for_every_refusal_and_failure(
        net: Recorder, server: http_fixture.ObjectServer,
        caplog: pytest.LogCaptureFixture) -> None:
    url = server.url("/gone", "temp_url_sig=s3cr3t")
    texts = {_refused(url)}                                   # loopback not allowed
    texts.add(_refused(url, LOOPBACK))                        # HTTP 404
    server.objects["/gone"] = b"x"
    server.fault("/gone", ("status", 500), ("status", 401),
                 ("redirect", "http://169.254.169.254/"), ("redirect", "ftp://x/"))
    for _ in range(4):
        texts.add(_refused(url, LOOPBACK))
    assert len(texts) == 1, texts
    [text] = texts
    assert "s3cr3t" not in text and "/gone?***" in text
    # The conductor's log has each cause, masked.
    for cause in ("not a global unicast", "HTTP 404", "HTTP 500", "HTTP 401",
                  "169.254.169.254", "scheme 'ftp'"):
        assert cause in caplog.text
    assert "s3cr3t" not in caplog.text


def test_passthrough_url_gets_the_host_check(net: Recorder) -> None:
    with pytest.raises(source.FetchError):
        source.normalise("http://metadata.test/x", node_uuid=NODE,
                         allow_url_passthrough=True)
    src = source.normalise("http://drive.test/x", node_uuid=NODE, allow_url_passthrough=True,
                           policy=LOOPBACK)
    assert src.passthrough_url == "http://drive.test/x"
    assert net.connections == []
