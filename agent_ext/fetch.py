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
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3 import poolmanager
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from agent_ext.errors import (
    DownloadDeadlineExceeded,
    DownloadTooLarge,
    InvalidInputError,
    TransferError,
)
from ironic_configdrive.image.formats import MAX_IMAGE_SIZE
from ironic_configdrive.masking import install_record_masking, mask_query_strings, mask_url

if TYPE_CHECKING:
    from typing_extensions import Self

LOG = logging.getLogger(__name__)

CHUNK_SIZE = 256 * 1024
#: Redirects followed per request: a store or proxy needs one or two, never thirty.
MAX_REDIRECTS = 3
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: Most bytes read off the wire for one drive: base64 of the largest decoded image (4/3 of
#: the 64 MiB cap) plus room for line breaks, gzip and sealing overhead. Anything longer is
#: not a valid drive, whatever the decoder would make of it.
WIRE_CAP: Final = MAX_IMAGE_SIZE * 4 // 3 + 8 * 1024 * 1024
#: Seconds for a whole download when the conductor does not say (three quarters of the
#: conductor's default [configdrive]agent_command_timeout, so the agent gives up first).
DEFAULT_DOWNLOAD_TIMEOUT: Final = 450.0
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# Errors while reading the body that a Range request can recover from.
_BODY_ERRORS = (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError)


@dataclasses.dataclass(frozen=True)
class FetchOptions:
    """How to reach the store: timeouts, retries, TLS material and proxies."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    #: Retries of connection setup and of 5xx answers (urllib3 ``Retry``).
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 10.0
    #: How many times a body that broke mid-way is resumed with a Range request.
    max_resumes: int = 5
    chunk_size: int = CHUNK_SIZE
    #: ``True`` (system CAs), ``False`` (insecure) or the path of a CA bundle.
    verify: bool | str = True
    #: Client certificate and key files for mutual TLS.
    cert: tuple[str, str] | None = None
    #: ``{"http": ..., "https": ...}`` as in IPA's image_info; ``no_proxy`` is separate.
    proxies: Mapping[str, str] | None = None
    no_proxy: str | None = None
    #: TLS policy (minimum version, ciphers) as IPA builds it; None uses urllib3's default.
    ssl_context: ssl.SSLContext | None = None
    #: Seconds for the whole download: every retry, resume and backoff sleep included.
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    #: Most body bytes read (as sent, before any decoding); more fails the download.
    max_wire_bytes: int = WIRE_CAP

    @classmethod
    def from_ipa_config(cls, conf: Any = None, **overrides: Any) -> FetchOptions:
        """Options from IPA's own ``[DEFAULT]`` settings (insecure, cafile, certfile, ...).

        The agent reuses what the operator already configured for IPA's image downloads
        instead of growing a second set of TLS and timeout options.
        """
        use_global = conf is None
        if conf is None:
            from oslo_config import cfg

            conf = cfg.CONF
        values: dict[str, Any] = {}
        if getattr(conf, "insecure", False):
            values["verify"] = False
        elif getattr(conf, "cafile", None):
            values["verify"] = conf.cafile
        if getattr(conf, "certfile", None) and getattr(conf, "keyfile", None):
            values["cert"] = (conf.certfile, conf.keyfile)
        timeout = getattr(conf, "image_download_connection_timeout", None)
        if timeout:
            values["connect_timeout"] = float(timeout)
            values["read_timeout"] = float(timeout)
        retries = getattr(conf, "image_download_connection_retries", None)
        if retries is not None:
            values["retries"] = int(retries)
        interval = getattr(conf, "image_download_connection_retry_interval", None)
        if interval is not None:
            values["backoff_max"] = float(interval)
        if use_global:
            context = _ipa_ssl_context()
            if context is not None:
                values["ssl_context"] = context
        values.update(overrides)
        return cls(**values)


def _ipa_ssl_context() -> ssl.SSLContext | None:
    """IPA's client TLS context ([DEFAULT]tls_min_version, tls_cipher_suites), if it has one.

    IPA builds it from its global configuration; older releases have no such helper.
    """
    try:
        from ironic_python_agent import utils as ipa_utils

        create = getattr(ipa_utils, "create_ssl_context", None)
        return create("client") if create is not None else None
    except Exception as exc:  # an unusable TLS setting must not hide behind a traceback
        LOG.warning("Not using IPA's TLS settings for config drive downloads: %s", exc)
        return None


class _TLSAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections use a given SSL context (IPA's TLS policy)."""

    def __init__(self, ssl_context: ssl.SSLContext | None, **kwargs: Any) -> None:
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._ssl_context is not None:
            kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if self._ssl_context is not None:
            proxy_kwargs["ssl_context"] = self._ssl_context
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch_pools(manager)
        return manager


class Deadline:
    """The time left for one download, shared by its requests, retries and resumes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())


class _DeadlinePassed(Exception):  # noqa: N818 (internal signal, turned into our error)
    """Raised inside urllib3 once the deadline passed; deliberately not an OSError or
    HTTPError, so urllib3 does not retry it."""


class _Watchdog:
    """Shuts the socket of the request in flight down when the deadline passes.

    Socket timeouts bound each ``recv``, not their sum: a server sending one byte per
    second never trips them. Shutting the socket down wakes the blocked read at once.
    """

    def __init__(self, deadline: Deadline) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._conn: Any = None
        self._timer = threading.Timer(deadline.remaining(), self._fire)
        self._timer.daemon = True
        self._timer.name = "configdrive-fetch-deadline"
        self._timer.start()

    def watch(self, conn: Any) -> None:
        with self._lock:
            if self.fired:
                raise _DeadlinePassed
            self._conn = conn

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = getattr(self._conn, "sock", None)
        if sock is not None and not isinstance(sock, socket.socket):
            sock = getattr(sock, "socket", None)  # urllib3's TLS-in-TLS transport
        if isinstance(sock, socket.socket):
            try:
                # The plain socket's shutdown, also for TLS: it leaves the SSL object to
                # the reading thread, which then sees end of stream.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._timer.cancel()


# The watchdog of the download running in this thread; the pools below report to it each
# connection a request goes out on (requests gives no other hook before the headers).
_IN_FLIGHT = threading.local()


def _report(conn: Any) -> None:
    watchdog = getattr(_IN_FLIGHT, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(conn)


class _WatchedHTTPPool(HTTPConnectionPool):
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        _report(conn)
        return super()._make_request(conn, *args, **kwargs)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        _report(conn)
        return super()._make_request(conn, *args, **kwargs)


_WATCHED_POOLS: Final = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _watch_pools(manager: Any) -> None:
    # Only managers using urllib3's own pools (SOCKS proxies bring theirs).
    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = _WATCHED_POOLS


class _DeadlineRetry(Retry):
    """urllib3's Retry whose sleeps (backoff, Retry-After) never outlast the deadline."""

    deadline: Deadline | None = None

    def new(self, **kw: Any) -> _DeadlineRetry:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def _capped(self, seconds: float) -> float:
        if self.deadline is None:
            return seconds
        left = self.deadline.remaining()
        if left <= 0:
            raise _DeadlinePassed
        return min(seconds, left)

    def get_backoff_time(self) -> float:
        return self._capped(super().get_backoff_time())

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else self._capped(seconds)


class UnsafeRedirect(requests.exceptions.RequestException):
    """A redirect that would downgrade https to http, or leave http(s)."""


class _Session(requests.Session):
    """Every redirect hop is checked before it is followed: no TLS downgrade, http(s) only."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        here = urlsplit(resp.url).scheme.lower()
        there = urlsplit(urljoin(resp.url, target)).scheme.lower()
        if there not in ("http", "https"):
            raise UnsafeRedirect(f"a redirect to a {there or 'relative'}: URL was refused")
        if here == "https" and there != "https":
            raise UnsafeRedirect("a redirect from https to http was refused (it would send "
                                 "the drive in clear)")
        return target


class _ReportingRetry(_DeadlineRetry):
    """urllib3's Retry, saying at WARNING why each retry happens (a 503 or a refused
    connection), so a slow failure is never a silent one. No URL: it would carry secrets."""

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> Self:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if error is not None:
            cause = f"{type(error).__name__}: {mask_query_strings(str(error))}"
        elif response is not None:
            cause = f"HTTP {response.status}"
        else:
            cause = "an unknown cause"
        if cause.startswith("HTTP 3"):  # redirects are not failures
            return retry
        done = len(retry.history)
        LOG.warning("Config drive download failed (%s); retry %s of %s", cause, done,
                    done + retry.total if isinstance(retry.total, int) else "unlimited")
        return retry


def make_session(options: FetchOptions, deadline: Deadline | None = None) -> requests.Session:
    """A session whose adapter retries connects and 5xx answers with backoff.

    With ``deadline``, no retry sleep outlasts it.
    """
    retry = _ReportingRetry(

        total=options.retries,
        connect=options.retries,
        read=options.retries,
        status=options.retries,
        # TLS and other errors are not transient: fail at once with a clear message.
        other=0,
        redirect=MAX_REDIRECTS,  # requests follows redirects itself (Session below)
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=options.backoff_factor,
        backoff_max=options.backoff_max,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    retry.deadline = deadline
    session = _Session()
    session.max_redirects = MAX_REDIRECTS
    adapter = _TLSAdapter(options.ssl_context, max_retries=retry, pool_connections=1,
                          pool_maxsize=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = options.verify
    if options.cert:
        session.cert = options.cert
    if options.proxies:
        session.proxies.update(options.proxies)
    if options.no_proxy:
        # requests honours a "no_proxy" entry in the proxies mapping; unlike IPA's image
        # download we do not change the process environment.
        session.proxies["no_proxy"] = options.no_proxy
    # Byte offsets for Range resume and the wire cap count the bytes as stored, not a
    # re-encoding; an answer in another encoding is refused (HTTPSource._check_encoding).
    session.headers["Accept-Encoding"] = "identity"
    return session


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
        self._watchdog: _Watchdog | None = None

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
        _IN_FLIGHT.watchdog = self._watchdog
        try:
            # verify/cert per request: a session-level value loses to REQUESTS_CA_BUNDLE
            # from the environment (requests' merge order).
            return self._session.get(self.url, headers=headers, stream=True, timeout=timeout,
                                     verify=self.options.verify, cert=self.options.cert)
        except _DeadlinePassed:
            raise self._deadline_error() from None
        except requests.exceptions.RequestException as exc:
            if self._deadline_passed():
                raise self._deadline_error() from None
            raise self._request_error(exc) from None
        finally:
            _IN_FLIGHT.watchdog = None

    def _request_error(self, exc: requests.exceptions.RequestException) -> TransferError:
        """Our error for a failed request: the cause and what to do, no URL secrets."""
        exceptions = requests.exceptions
        retries = self.options.retries
        # Most specific first: SSLError, ConnectTimeout and ProxyError are ConnectionErrors.
        if isinstance(exc, exceptions.SSLError):
            return self._error(
                f"TLS verification failed ({_root_cause(exc)}); give the CA bundle that "
                "signed the server's certificate (IPA [DEFAULT]cafile, or --cafile) or fix "
                "the server certificate")
        if isinstance(exc, exceptions.ConnectTimeout):
            return self._error(
                f"connecting timed out after {self.options.connect_timeout:g} s ({retries} "
                "retries); check the network path to the store")
        if isinstance(exc, exceptions.ReadTimeout):
            return self._error(
                f"no answer within {self.options.read_timeout:g} s ({retries} retries); the "
                "store is overloaded or unreachable")
        if isinstance(exc, exceptions.ProxyError):
            return self._error(f"proxy failure ({_root_cause(exc)}); check the proxies "
                               "given with the command")
        if isinstance(exc, UnsafeRedirect):
            return self._error(f"{exc}; give the final https URL of the store")
        if isinstance(exc, exceptions.TooManyRedirects):
            return self._error(f"more than {MAX_REDIRECTS} redirects; give the final URL of "
                               "the store")
        if isinstance(exc, exceptions.RetryError):
            return self._error(f"gave up after {retries} retries ({_root_cause(exc)})")
        if isinstance(exc, exceptions.ConnectionError):
            return self._error(
                f"cannot connect after {retries} retries ({_root_cause(exc)}); check that "
                "the store is up and reachable")
        return self._error(f"request failed ({_root_cause(exc)})")

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
        self._watchdog = watchdog = _Watchdog(self._deadline)
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
                            f"{self.resumes} resumes ({_root_cause(exc)}); check the "
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


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, without the URL it may quote."""
    seen: set[int] = set()
    current: BaseException | None = exc
    reason: BaseException = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = current
        nxt = getattr(current, "reason", None)
        if isinstance(nxt, BaseException):
            current = nxt
            continue
        if current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
            continue
        current = current.__cause__ or current.__context__
    text = str(reason)
    # urllib3 quotes the request path (query included) in some messages.
    text = re.sub(r"(url|URL): \S+", r"\1: <masked>", text)
    text = mask_query_strings(text)
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__


def fetch(url: str, options: FetchOptions | None = None) -> Iterator[bytes]:
    """Convenience generator over :class:`HTTPSource`."""
    yield from HTTPSource(url, options)
