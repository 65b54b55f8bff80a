"""Normalising instance_info['configdrive'] values into raw images."""

from __future__ import annotations

import base64
import gzip
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ironic_configdrive import image, source
from ironic_configdrive.image import sealing
from ironic_configdrive.image.errors import (
    InvalidInputError,
    InvalidMediaError,
    SizeLimitExceeded,
)
from ironic_configdrive.url_policy import AddressPolicy
from tests.fixtures.memory import one_copy, traced_peak

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
#: The test servers listen on loopback, which the default policy refuses.
LOOPBACK = AddressPolicy.from_options(["127.0.0.0/8"], [])
DRIVE = {"meta_data": {"public_keys": {"k": "ssh-ed25519 AAAA"}}, "user_data": "#!/bin/sh\n"}


@pytest.fixture(scope="module")
def raw() -> bytes:
    return image.build_image(DRIVE, node_uuid=NODE)


class _Server:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                status, body = outer.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        thread.join()


def test_json_is_built_with_ironic_defaults() -> None:
    src = source.normalise(DRIVE, node_uuid=NODE, node_name="node-1")
    assert src.kind == "json" and src.image is not None and not src.passthrough
    meta = image.read_tree(src.image)["openstack/latest/meta_data.json"]
    assert NODE.encode() in meta and b'"name": "node-1"' in meta
    assert image.validate(src.image) == []


def test_json_vfat() -> None:
    src = source.normalise(DRIVE, node_uuid=NODE, fmt=image.VFAT)
    assert src.image is not None
    assert image.detect_format(src.image[:65536]) == image.VFAT


@pytest.mark.parametrize("encode", [
    image.pack,
    lambda r: base64.b64encode(r).decode(),
    lambda r: gzip.compress(r),
    lambda r: r,
], ids=["gzip+base64", "base64", "gzip-bytes", "raw-bytes"])
def test_encoded_forms(raw: bytes, encode: Any) -> None:
    src = source.normalise(encode(raw), node_uuid=NODE)
    assert src.kind == "encoded" and src.image == raw


def test_url_fetched_through_the_decoder(raw: bytes, server: _Server) -> None:
    server.routes["/cd?temp_url_sig=s3cr3t"] = (200, image.pack(raw).encode())
    src = source.normalise(f"  {server.url}/cd?temp_url_sig=s3cr3t\n", node_uuid=NODE,
                           policy=LOOPBACK)
    assert src.kind == "url" and src.image == raw
    assert server.requests == ["/cd?temp_url_sig=s3cr3t"]


def test_url_http_error_gives_the_one_text(server: _Server,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(source.FetchError) as exc:
        source.normalise(f"{server.url}/missing?temp_url_sig=s3cr3t", node_uuid=NODE,
                         policy=LOOPBACK)
    assert exc.value.message == source.FetchError(url=f"{server.url}/missing?***").message
    assert "404" not in exc.value.message and "s3cr3t" not in exc.value.message
    # The cause is for the operator: in the conductor's log, masked, naming the node.
    assert "answered HTTP 404" in caplog.text and NODE in caplog.text
    assert "s3cr3t" not in caplog.text


def test_url_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(source.FetchError) as exc:
        source.fetch("http://127.0.0.1:9/cd?sig=s3cr3t", timeout=(2.0, 2.0), policy=LOOPBACK)
    assert exc.value.message == source.FetchError(url="http://127.0.0.1:9/cd?***").message
    assert "Connection refused" in caplog.text and "s3cr3t" not in caplog.text


def test_url_not_a_drive(server: _Server) -> None:
    server.routes["/cd"] = (200, b"<html>login page</html>")
    with pytest.raises(InvalidMediaError) as exc:
        source.normalise(f"{server.url}/cd", node_uuid=NODE, policy=LOOPBACK)
    assert f"downloaded from {server.url}/cd" in exc.value.message


def test_url_over_the_cap(server: _Server) -> None:
    big = image.write_tree({"openstack/latest/meta_data.json": b"{}",
                            "openstack/content/0000": bytes(2 * 1024 * 1024)})
    server.routes["/big"] = (200, gzip.compress(big))
    with pytest.raises(SizeLimitExceeded):
        source.normalise(f"{server.url}/big", node_uuid=NODE, cap=1024 * 1024,
                         policy=LOOPBACK)


def test_passthrough_is_not_fetched_but_checked() -> None:
    src = source.normalise("http://127.0.0.1:9/cd?sig=x", node_uuid=NODE,
                           allow_url_passthrough=True, policy=LOOPBACK)
    assert src.passthrough and src.image is None
    assert src.passthrough_url == "http://127.0.0.1:9/cd?sig=x"
    with pytest.raises(source.FetchError) as exc:
        source.normalise("http://169.254.169.254/latest/meta-data?sig=x", node_uuid=NODE,
                         allow_url_passthrough=True)
    assert "sig=x" not in exc.value.message


def test_wire_cap_covers_base64_with_line_breaks() -> None:
    cap = image.MAX_IMAGE_SIZE
    # base64 -w 76 with CRLF of a cap-sized image fits, and not much more does.
    lines = -(-cap // 57)
    assert lines * 78 <= source.wire_cap(cap) < cap * 4 // 3 + cap // 16


def test_unsupported_scheme() -> None:
    with pytest.raises(InvalidInputError) as exc:
        source.normalise("ftp://host/cd?sig=s3cr3t", node_uuid=NODE)
    assert "unsupported scheme" in exc.value.message and "s3cr3t" not in exc.value.message


@pytest.mark.parametrize("value", [42, ["a"], None])
def test_wrong_type(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="must be a URL"):
        source.normalise(value, node_uuid=NODE)


def test_empty_and_garbage() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        source.normalise("   ", node_uuid=NODE)
    with pytest.raises(InvalidMediaError):
        source.normalise("this is not base64!", node_uuid=NODE)


def test_json_over_the_cap() -> None:
    drive = {"meta_data": {}, "user_data": "x" * (2 * 1024 * 1024)}
    with pytest.raises(SizeLimitExceeded):
        source.normalise(drive, node_uuid=NODE, cap=1024 * 1024)


@pytest.mark.parametrize("value", [
    '{"meta_data": {"name": "x"}}',
    b'  {"meta_data": {}}',
    "[" * 100_000 + "]" * 100_000,
], ids=["json-text", "json-bytes", "deep-json-text"])
def test_json_text_is_refused_with_a_hint(value: Any) -> None:
    with pytest.raises(image.UnknownFormatError) as exc:
        source.normalise(value, node_uuid=NODE)
    assert "looks like JSON; give the JSON form as an object" in exc.value.message


@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_deep_json_objects_are_refused(depth: int) -> None:
    deep: Any = {}
    for _ in range(depth - 1):
        deep = {"k": deep}
    with pytest.raises(InvalidInputError) as exc:
        source.normalise({"vendor_data": deep}, node_uuid=NODE)
    assert exc.value.message.startswith("invalid config drive input: vendor_data.k.k")
    assert exc.value.message.endswith("nests arrays and objects deeper than 64 levels; "
                                      "flatten it")


def test_lone_surrogate_in_user_data_names_the_field_not_the_data() -> None:
    with pytest.raises(InvalidInputError) as exc:
        source.normalise({"user_data": "s3cr3t-\ud800"}, node_uuid=NODE)
    assert "user_data is not valid Unicode text" in exc.value.message
    assert "s3cr3t" not in exc.value.message


def test_raw_image_starting_like_json_is_still_an_image(raw: bytes) -> None:
    hybrid = b"[" + raw[1:]  # e.g. a hybrid ISO whose boot code starts with 0x5b
    src = source.normalise(hybrid, node_uuid=NODE)
    assert src.image == hybrid


def test_url_download_is_decoded_into_one_copy(server: _Server) -> None:
    """The download is decoded into one buffer handed out as it is, not pieces joined."""
    user_data = "".join(f"#{n:07d}\n" for n in range(8 * 1024 * 1024 // 9))
    big = image.build_image({"meta_data": {}, "user_data": user_data}, node_uuid=NODE)
    server.routes["/big"] = (200, image.pack(big).encode())
    got, peak = traced_peak(lambda: source.fetch(server.url + "/big", policy=LOOPBACK))
    assert got == big
    assert peak < one_copy(len(big)), (peak, len(big))


def test_sealed_download_cut_short_is_named_by_the_seal(raw: bytes, server: _Server) -> None:
    """The seal's end is checked before the decoder's: a cut stream is called truncated, not
    a corrupt gzip."""
    key = sealing.new_key()
    sealed = sealing.seal(image.pack(raw).encode(), key, chunk_size=1024)
    server.routes["/sealed"] = (200, sealed[: len(sealed) // 2])
    with pytest.raises(sealing.SealedMediaError, match="ends before its last chunk"):
        source.fetch(server.url + "/sealed", key=key, policy=LOOPBACK)
    server.routes["/sealed"] = (200, sealed)
    assert source.fetch(server.url + "/sealed", key=key, policy=LOOPBACK) == raw
