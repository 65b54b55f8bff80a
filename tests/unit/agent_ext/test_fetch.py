"""HTTP streaming: retries, Range resume, clear errors, masked URLs (local server, no disks)."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator

import pytest

from agent_ext import fetch
from agent_ext.errors import (
    DownloadDeadlineExceeded,
    DownloadTooLarge,
    InvalidInputError,
    TransferError,
)
from tests.fixtures import http as http_fixture

SIG = "d3adb33fd3adb33fd3adb33fd3adb33fd3adb33f"
QUERY = f"temp_url_sig={SIG}&temp_url_expires=1999999999"
FAST = fetch.FetchOptions(
    retries=2, backoff_factor=0.0, connect_timeout=5, read_timeout=5, chunk_size=64 * 1024
)


@pytest.fixture
def server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()


@pytest.fixture
def body() -> bytes:
    return os.urandom(3 * 1024 * 1024 + 123)


def _get(url: str, options: fetch.FetchOptions = FAST) -> tuple[bytes, fetch.HTTPSource]:
    source = fetch.HTTPSource(url, options)
    return b"".join(source), source


def test_mask_url_hides_query_values_and_credentials() -> None:
    masked = fetch.mask_url(f"https://user:pw@swift.example:8080/v1/AUTH_x/c/o?{QUERY}")
    assert masked == "https://swift.example:8080/v1/AUTH_x/c/o?***"
    assert fetch.mask_url("http://[::1]:80/x?token") == "http://[::1]:80/x?***"
    assert fetch.mask_url("http://h/p") == "http://h/p"


def test_plain_download(server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    data, source = _get(server.url("/o"))
    assert data == body
    assert source.total == len(body) and source.resumes == 0


def test_chunks_are_bounded(server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    sizes = [len(c) for c in fetch.HTTPSource(server.url("/o"), FAST)]
    assert max(sizes) <= FAST.chunk_size and sum(sizes) == len(body)


def test_resume_after_drop_uses_range_and_if_range(
    server: http_fixture.ObjectServer, body: bytes
) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("drop", 1_000_000), ("drop", 500_000))
    data, source = _get(server.url("/o"))
    assert data == body
    assert source.resumes == 2
    ranges = [r.range or "" for r in server.requests]
    assert ranges[0] == "" and ranges[1].startswith("bytes=") and ranges[2].startswith("bytes=")
    offsets = [int(r.split("=")[1].rstrip("-")) for r in ranges[1:]]
    assert offsets[0] <= 1_000_000 and offsets[1] > offsets[0]
    assert all(r.if_range for r in server.requests[1:])


def test_resumes_are_bounded(server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    server.fault("/o", *[("drop", 100_000)] * 10)
    options = fetch.FetchOptions(retries=0, max_resumes=3, chunk_size=64 * 1024)
    with pytest.raises(TransferError, match="connection lost after .* 3 resumes"):
        _get(server.url("/o"), options)
    assert len(server.requests) == 4


def test_server_ignoring_range_fails_rather_than_duplicating(
    server: http_fixture.ObjectServer, body: bytes
) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("drop", 200_000), ("ignore_range",))
    with pytest.raises(TransferError, match="does not support Range requests"):
        _get(server.url("/o"))


def test_mismatching_content_range_fails(server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("drop", 200_000), ("bad_range",))
    with pytest.raises(TransferError, match="mismatching Content-Range"):
        _get(server.url("/o"))


def test_500_then_200_is_retried(server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("status", 500), ("status", 503))
    data, _ = _get(server.url("/o"))
    assert data == body
    assert len(server.requests) == 3


def test_5xx_after_retries(server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = b"x"
    server.fault("/o", *[("status", 502)] * 5)
    with pytest.raises(TransferError, match=r"HTTP 502 .* after 2 retries"):
        _get(server.url("/o"))
    assert len(server.requests) == 3


def test_404_says_the_object_is_gone(server: http_fixture.ObjectServer) -> None:
    with pytest.raises(TransferError) as info:
        _get(server.url("/missing", QUERY))
    message = info.value.message
    assert "404" in message and "gone" in message and "redeploy" in message
    assert SIG not in message and "/missing?***" in message
    assert len(server.requests) == 1  # 4xx is not retried


def test_403_says_the_temp_url_expired(server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = b"x"
    server.fault("/o", ("status", 403))
    with pytest.raises(TransferError) as info:
        _get(server.url("/o", QUERY))
    message = info.value.message
    assert "403" in message and "temp URL has likely expired" in message
    assert "fresh temp URL" in message and SIG not in message


def test_connection_refused_is_clear() -> None:
    options = fetch.FetchOptions(retries=1, backoff_factor=0.0)
    with pytest.raises(TransferError, match="cannot connect after 1 retries") as info:
        _get(f"http://127.0.0.1:1/o?{QUERY}", options)
    assert SIG not in info.value.message


def test_non_http_url_rejected() -> None:
    with pytest.raises(InvalidInputError, match="not http"):
        fetch.HTTPSource(f"file:///etc/passwd?{QUERY}")


def test_logs_never_carry_the_signature(
    server: http_fixture.ObjectServer, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("drop", 100_000))
    caplog.set_level(logging.DEBUG)
    data, _ = _get(server.url("/o", QUERY))
    assert data == body
    assert "resuming" in caplog.text
    assert SIG not in caplog.text


# -- bounds: wire bytes, encodings, the deadline ------------------------------------------------

CAP = 1024 * 1024
BOUNDED = fetch.FetchOptions(retries=2, backoff_factor=0.0, connect_timeout=5, read_timeout=5,
                             chunk_size=64 * 1024, max_wire_bytes=CAP)
# Socket timeouts far beyond the deadline: only the deadline can end these downloads.
DEADLINE = fetch.FetchOptions(retries=5, backoff_factor=0.0, connect_timeout=30,
                              read_timeout=30, download_timeout=0.5)


def test_endless_chunked_body_stops_one_byte_past_the_cap(
        server: http_fixture.ObjectServer) -> None:
    server.fault("/o", ("chunked", lambda: itertools.repeat(b"A" * 65536)))
    source = fetch.HTTPSource(server.url("/o", QUERY), BOUNDED)
    with pytest.raises(DownloadTooLarge, match=f"more than {CAP} bytes") as caught:
        for _ in source:
            pass
    assert source.received == CAP + 1
    assert SIG not in caught.value.message


def test_announced_length_over_the_cap_is_refused_before_the_body(
        server: http_fixture.ObjectServer) -> None:
    server.fault("/o", ("length", CAP + 1))
    source = fetch.HTTPSource(server.url("/o"), BOUNDED)
    with pytest.raises(DownloadTooLarge, match=f"announces {CAP + 1} bytes"):
        list(source)
    assert source.received == 0


def test_identity_is_asked_and_a_compressed_answer_refused_unread(
        server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("encoding", "gzip"))
    source = fetch.HTTPSource(server.url("/o", QUERY), FAST)
    with pytest.raises(TransferError, match="Content-Encoding 'gzip'.*not to compress"):
        list(source)
    assert source.received == 0
    assert [r.accept_encoding for r in server.requests] == ["identity"]


def test_a_resumed_answer_in_another_encoding_is_refused(
        server: http_fixture.ObjectServer, body: bytes) -> None:
    server.objects["/o"] = body
    server.fault("/o", ("drop", 100_000), ("encoding", "br"))
    source = fetch.HTTPSource(server.url("/o"), FAST)
    with pytest.raises(TransferError, match="Content-Encoding 'br'"):
        list(source)
    assert source.received == 100_000
    assert [(r.range is not None, r.accept_encoding) for r in server.requests] == [
        (False, "identity"), (True, "identity")]


def test_deadline_ends_a_body_trickling_byte_by_byte(
        server: http_fixture.ObjectServer) -> None:
    # 400 bytes at one per 10 ms take 4 s and every read gets a byte long before its 30 s
    # socket timeout; only the 0.5 s deadline ends the download early.
    server.objects["/o"] = os.urandom(400)
    server.fault("/o", ("trickle", 0.01))
    source = fetch.HTTPSource(server.url("/o", QUERY), DEADLINE)
    with pytest.raises(DownloadDeadlineExceeded, match="within 0.5 s") as caught:
        list(source)
    assert source.received < 400 and SIG not in caught.value.message
    # The watchdog cut the read that was waiting for its chunk: the rest was never sent.
    assert server.sent["/o"] < 400
    assert isinstance(caught.value, TransferError)


def test_deadline_ends_headers_that_never_end(server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = b"x"
    server.fault("/o", ("trickle_headers", 0.01))
    source = fetch.HTTPSource(server.url("/o"), DEADLINE)
    with pytest.raises(DownloadDeadlineExceeded):
        list(source)
    # urllib3 would retry the broken request: the deadline stops it before it is sent.
    assert len(server.requests) == 1


def test_retry_after_never_outlasts_the_deadline(server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = b"x"
    server.fault("/o", *[("status", 503, {"Retry-After": "3600"})] * 6)
    source = fetch.HTTPSource(server.url("/o"), DEADLINE)
    with pytest.raises(DownloadDeadlineExceeded):
        list(source)
    assert len(server.requests) <= 2
