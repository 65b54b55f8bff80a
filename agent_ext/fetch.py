"""Stream a config drive over HTTP(S): retries, Range resume, TLS, proxies, masked URLs.

The body is handed on in chunks as it arrives: never held whole, never written to a temp
file. Connection setup and 5xx answers are retried by urllib3's :class:`Retry` (with
backoff); a body that breaks mid-way is resumed with ``Range: bytes=N-`` guarded by
``If-Range``, so a flaky link costs one more request, not the whole transfer.

Hostile or broken servers are bounded three ways: at most :data:`WIRE_CAP` bytes are read
(counted as they come off the connection, before any decoding), a ``Content-Encoding`` other
than ``identity`` is refused before the body is read, and the whole download (retries and
resumes included) has a deadline: connect and read timeouts shrink to the time left, retry
sleeps too, and a watchdog shuts the socket of the request in flight when it passes, so a
server trickling a byte at a time cannot outlive it.

Temp URLs carry their signature in the query string, so only :func:`mask_url` output ever
reaches a log line or an error message.

The parts live beside this module: :mod:`agent_ext.http_options` (:class:`FetchOptions`,
the caps), :mod:`agent_ext.deadline` (the deadline and its watchdog),
:mod:`agent_ext.http_session` (retries, redirect checks, TLS) and
:mod:`agent_ext.http_errors` (failures in words); this module streams and resumes, and
re-exports the names callers import from it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Final
from urllib.parse import urlsplit

import requests
import urllib3

from agent_ext.deadline import Deadline, DeadlinePassed, Watchdog, watched_by
from agent_ext.errors import (
    DownloadDeadlineExceeded,
    DownloadTooLarge,
    InvalidInputError,
    TransferError,
)
from agent_ext.http_errors import request_error, root_cause
from agent_ext.http_options import CHUNK_SIZE, DEFAULT_DOWNLOAD_TIMEOUT, WIRE_CAP, FetchOptions
from agent_ext.http_session import MAX_REDIRECTS, UnsafeRedirect, make_session
from ironic_configdrive.masking import install_record_masking, mask_url

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "MAX_REDIRECTS",
    "WIRE_CAP",
    "Deadline",
    "FetchOptions",
    "HTTPSource",
    "UnsafeRedirect",
    "fetch",
    "make_session",
    "mask_url",
]

LOG = logging.getLogger(__name__)

_CONTENT_RANGE: Final = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# Errors while reading the body that a Range request can recover from.
_BODY_ERRORS: Final = (urllib3.exceptions.HTTPError, requests.exceptions.RequestException,
                       OSError)


class HTTPSource:
    """Iterate over the body of ``url`` in chunks, resuming a broken transfer.

    Attributes after (or during) iteration: ``total`` (Content-Length or ``None``),
    ``received`` (body bytes read off the wire, all requests together) and ``resumes``
    (Range requests made).
    """

    def __init__(self, url: str, options: FetchOptions | None = None,
                 session: requests.Session | None = None) -> None:
        scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
        if scheme not in ("http", "https"):
            raise InvalidInputError(
                reason=f"config drive URL {mask_url(str(url))} is not http(s); "
                       "give an http:// or https:// URL")
        self.url = url
        self.safe_url = mask_url(url)
        self.options = options or FetchOptions()
        self._session = session
        self.total: int | None = None
        self.received = 0
        self.resumes = 0
        self._validator: str | None = None
        self._deadline: Deadline | None = None
        self._watchdog: Watchdog | None = None

    def _error(self, reason: str) -> TransferError:
        return TransferError(url=self.safe_url, reason=reason)

    def _deadline_passed(self) -> bool:
        return ((self._watchdog is not None and self._watchdog.fired)
                or (self._deadline is not None and self._deadline.remaining() <= 0))

    def _deadline_error(self) -> DownloadDeadlineExceeded:
        return DownloadDeadlineExceeded(
            url=self.safe_url,
            reason=f"it did not finish within {self.options.download_timeout:g} s "
                   f"({self.received} bytes read, {self.resumes} resumes); the store or the "
                   "network is stalled or too slow: check them, or give the download more "
                   "time ([configdrive]agent_download_timeout on the conductor)")

    def _timeouts(self) -> tuple[float, float]:
        """Connect and read timeouts, never longer than what is left of the deadline."""
        connect, read = self.options.connect_timeout, self.options.read_timeout
        if self._deadline is None:
            return connect, read
        left = self._deadline.remaining()
        if left <= 0:
            raise self._deadline_error()
        return min(connect, left), min(read, left)

    def _request(self, headers: dict[str, str]) -> requests.Response:
        assert self._session is not None
        timeout = self._timeouts()
        try:
            with watched_by(self._watchdog):
                # verify/cert per request: a session-level value loses to REQUESTS_CA_BUNDLE
                # from the environment (requests' merge order).
                return self._session.get(self.url, headers=headers, stream=True,
                                         timeout=timeout, verify=self.options.verify,
                                         cert=self.options.cert)
        except DeadlinePassed:
            raise self._deadline_error() from None
        except requests.exceptions.RequestException as exc:
            if self._deadline_passed():
                raise self._deadline_error() from None
            raise request_error(exc, self.safe_url, self.options) from None

    def _check_status(self, resp: requests.Response) -> None:
        code = resp.status_code
        if code in (200, 206):
            return
        resp.close()
        if code == 404:
            raise self._error(
                "HTTP 404 Not Found: the stored config drive is gone (deleted or expired "
                "on the store); redeploy or rebuild the node so the conductor stores it "
                "again")
        if code in (401, 403):
            raise self._error(
                f"HTTP {code} {resp.reason}: the temp URL has likely expired or its "
                "signature is invalid; re-run the deploy step (or rebuild the node) so the "
                "conductor signs a fresh temp URL")
        if code >= 500:
            raise self._error(
                f"HTTP {code} {resp.reason} after {self.options.retries} retries; check "
                "the store (Swift proxy / HTTP server) and retry")
        raise self._error(f"unexpected HTTP {code} {resp.reason}")

    def _check_encoding(self, resp: requests.Response) -> None:
        """Refuse a body the server re-encoded: offsets and the cap count stored bytes."""
        encoding = resp.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            resp.close()
            raise self._error(
                f"the server answered with Content-Encoding {encoding[:40]!r} although the "
                "agent asked for identity; configure the store (or proxy) not to compress "
                "it, the drive is compressed already")

    def _check_length(self, resp: requests.Response, length: int) -> None:
        cap = self.options.max_wire_bytes
        if length > cap:
            resp.close()
            raise DownloadTooLarge(
                url=self.safe_url,
                reason=f"the server announces {length} bytes, more than the {cap} bytes of "
                       "the largest encoded config drive; the URL does not serve a config "
                       "drive")

    def _open(self) -> requests.Response:
        resp = self._request({})
        self._check_status(resp)
        if resp.status_code != 200:
            resp.close()
            raise self._error(f"unexpected HTTP {resp.status_code} to a plain GET")
        self._check_encoding(resp)
        length = resp.headers.get("Content-Length")
        self.total = int(length) if length and length.isdigit() else None
        if self.total is not None:
            self._check_length(resp, self.total)
        etag = resp.headers.get("ETag")
        if etag and not etag.startswith("W/"):
            self._validator = etag
        else:
            self._validator = resp.headers.get("Last-Modified")
        return resp

    def _resume(self) -> requests.Response:
        headers = {"Range": f"bytes={self.received}-"}
        if self._validator:
            headers["If-Range"] = self._validator
        resp = self._request(headers)
        self._check_status(resp)
        if resp.status_code == 200:
            resp.close()
            raise self._error(
                f"the connection broke after {self.received} bytes and the server answered "
                "the resume request with the whole body (HTTP 200): it does not support "
                "Range requests or the object changed; retry the deploy step")
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if (match is None or int(match.group(1)) != self.received
                or (self.total is not None and match.group(3) != "*"
                    and int(match.group(3)) != self.total)):
            resp.close()
            raise self._error(
                f"resume at byte {self.received} got a mismatching Content-Range "
                f"{resp.headers.get('Content-Range')!r}; the object changed on the store")
        self._check_encoding(resp)
        if match.group(3) != "*":
            self._check_length(resp, int(match.group(3)))
        return resp

    def __iter__(self) -> Iterator[bytes]:
        # urllib3 quotes request paths (temp URL signatures, store names) at DEBUG; the
        # extension installs this when it loads, the CLI and other callers get it here.
        install_record_masking()
        own_session = self._session is None
        self._deadline = Deadline(self.options.download_timeout)
        self._watchdog = watchdog = Watchdog(self._deadline)
        if own_session:
            self._session = make_session(self.options, self._deadline)
        try:
            resp = self._open()
            while True:
                try:
                    yield from self._read_body(resp)
                except _BODY_ERRORS as exc:
                    resp.close()
                    if self._deadline_passed():
                        raise self._deadline_error() from None
                    if self.resumes >= self.options.max_resumes:
                        raise self._error(
                            f"connection lost after {self.received} bytes and "
                            f"{self.resumes} resumes ({root_cause(exc)}); check the "
                            "network and retry") from None
                    self.resumes += 1
                    LOG.warning("Download of %s broke after %d bytes (%s); resuming (%d/%d)",
                                self.safe_url, self.received, type(exc).__name__,
                                self.resumes, self.options.max_resumes)
                    resp = self._resume()
                    continue
                resp.close()
                if self.total is not None and self.received < self.total:
                    # A clean close before Content-Length: treat like a broken body.
                    if self.resumes >= self.options.max_resumes:
                        raise self._error(
                            f"body ended after {self.received} of {self.total} bytes")
                    self.resumes += 1
                    resp = self._resume()
                    continue
                return
        finally:
            watchdog.stop()
            if own_session and self._session is not None:
                self._session.close()
                self._session = None

    def _read_body(self, resp: requests.Response) -> Iterator[bytes]:
        raw = resp.raw
        size = self.options.chunk_size
        cap = self.options.max_wire_bytes
        while True:
            # One byte beyond the cap is enough to know it was exceeded.
            chunk = raw.read(min(size, cap + 1 - self.received), decode_content=False)
            if self._deadline_passed():
                resp.close()
                raise self._deadline_error()
            if not chunk:
                return
            self.received += len(chunk)
            if self.received > cap:
                resp.close()
                raise DownloadTooLarge(
                    url=self.safe_url,
                    reason=f"the server sent more than {cap} bytes, the most any encoded "
                           "config drive takes; the URL does not serve a config drive or the "
                           "server is broken")
            yield chunk


def fetch(url: str, options: FetchOptions | None = None) -> Iterator[bytes]:
    """Convenience generator over :class:`HTTPSource`."""
    yield from HTTPSource(url, options)
