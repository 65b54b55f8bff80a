"""One bounded HTTP(S) GET of a config drive, connected only to addresses a policy checked.

Why not plain ``requests.get``: it resolves the host again when it connects (a DNS answer
can change between a check and the connection), follows redirects to any host, decodes
``Content-Encoding: gzip`` behind the caller's back (a few MB on the wire inflate to GBs),
and its timeouts bound each socket read, not the download (a one-byte trickle never ends).
Here:

* the host is resolved once (:meth:`.AddressPolicy.resolve`) and the connection is made to
  a checked address, with the name kept for the ``Host`` header, TLS SNI and certificate
  verification (urllib3's ``server_hostname``/``assert_hostname``);
* every redirect hop goes through the same check, at most :data:`MAX_REDIRECTS`, never
  from https to http;
* ``Accept-Encoding: identity`` is sent and any other ``Content-Encoding`` in the answer is
  refused before its body is read;
* bytes are counted as they come off the socket, against a cap;
* one deadline covers the whole download: each read's socket timeout is cut to the time
  left and checked between reads, and a timer shuts the socket down when it passes (which
  also ends a server trickling its status line or headers).

Proxies from the environment are not used: a proxy would resolve the name itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Final
from urllib.parse import urljoin, urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.ssl_match_hostname import CertificateError

from ironic_configdrive.masking import install_record_masking, mask_url
from ironic_configdrive.url_policy import AddressPolicy, RefusedAddress

#: Redirect hops followed: a store or CDN needs one or two.
MAX_REDIRECTS: Final = 3
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
#: Bytes asked of the socket per read; a read returns what has arrived, up to this.
READ_SIZE: Final = 64 * 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_IDENTITY: Final = ("", "identity")
# What a connection, a TLS handshake, a request or a read can raise: socket and TLS errors,
# urllib3's, http.client's (a bad status line) and urllib3's certificate name mismatch.
_NETWORK_ERRORS = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException,
                   CertificateError)



class Refused(Exception):
    """No usable answer: refused address, network, TLS, HTTP status or redirect problem, or
    a body that broke off. The text is for the conductor's log; the user sees one text."""


class DeadlineExceeded(Exception):
    """The body was still arriving when the deadline passed."""


class WireLimitExceeded(Exception):
    """More bytes came (or were announced) than the cap allows."""


class ContentEncodingRefused(Exception):
    """The answer was encoded (``Content-Encoding``) for transfer; never decoded here."""

    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds of one download; ``deadline`` covers every hop and read, in seconds."""

    wire_cap: int
    deadline: float
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()


class _Watchdog:
    """Shuts the watched socket down when the deadline passes, waking any blocked read."""

    def __init__(self, deadline: _Deadline) -> None:
        self._conn: HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self.fired = False
        self._timer = threading.Timer(max(deadline.remaining(), 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, conn: HTTPConnection, sock: socket.socket | None = None) -> None:
        # While connecting, conn.sock is the socket (TLS handshake included); once it is
        # made the socket is held here, as http.client drops conn.sock on "Connection: close".
        self._conn, self._sock = conn, sock

    def _fire(self) -> None:
        self.fired = True
        sock = self._sock or (self._conn.sock if self._conn is not None else None)
        if sock is not None:
            with contextlib.suppress(OSError):
                # socket.socket's own shutdown: an SSLSocket's would try a TLS close first.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


@dataclasses.dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise Refused(f"unparseable URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise Refused(f"scheme {scheme or 'none'!r} is not http or https")
        if parts.username is not None or parts.password is not None:
            raise Refused("the URL carries user credentials")
        host = parts.hostname or ""
        if not host:
            raise Refused("the URL names no host")
        if ":" not in host:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise Refused("the host name is not a valid IDNA name") from None
        shown = f"[{host}]" if ":" in host else host
        port = port if port is not None else _DEFAULT_PORTS[scheme]
        header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(scheme=scheme, host=host, port=port, path=path, host_header=header)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _trust() -> tuple[str | None, str | None]:
    """(CA file, CA directory) as requests verifies: moving off requests changes no trust."""
    path = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or DEFAULT_CA_BUNDLE_PATH)
    return (None, path) if os.path.isdir(path) else (path, None)


def parse_target(url: str) -> Target:
    """Where ``url`` points; :class:`Refused` if it is no http(s) URL this module fetches."""
    return Target.parse(url)


class Body:
    """The body of a 200 answer, read in chunks as they arrive, within the limits."""

    def __init__(self, response: urllib3.BaseHTTPResponse, sock: socket.socket,
                 limits: Limits, deadline: _Deadline, watchdog: _Watchdog) -> None:
        self._response = response
        self._sock = sock
        self._limits = limits
        self._deadline = deadline
        self._watchdog = watchdog
        #: Bytes read off the socket so far (after chunked framing, before any decoding).
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            remaining = self._deadline.remaining()
            if remaining <= 0 or self._watchdog.fired:
                raise DeadlineExceeded()
            try:
                if self._sock.fileno() != -1:  # http.client closes it at the body's end
                    self._sock.settimeout(min(self._limits.read_timeout, remaining))
                data = self._response.read1(READ_SIZE, decode_content=False)
            except _NETWORK_ERRORS as exc:
                if self._watchdog.fired or self._deadline.remaining() <= 0:
                    raise DeadlineExceeded() from None
                raise Refused(f"the body broke off after {self.received} bytes "
                              f"({type(exc).__name__}: {exc})") from None
            if not data:
                if self._watchdog.fired:
                    raise DeadlineExceeded()  # the shut-down socket reads as end of data
                return
            self.received += len(data)
            if self.received > self._limits.wire_cap:
                raise WireLimitExceeded()
            yield data


def _connect(target: Target, address: str, limits: Limits, deadline: _Deadline,
             watchdog: _Watchdog) -> tuple[HTTPConnection, socket.socket]:
    timeout = min(limits.connect_timeout, max(deadline.remaining(), 0.001))
    conn: HTTPConnection
    if target.scheme == "https":
        # Connect to the checked address, but greet (SNI) and verify the certificate as the
        # name in the URL; an address literal is verified as itself.
        name = None if _is_literal(target.host) else target.host
        ca_file, ca_dir = _trust()
        conn = HTTPSConnection(address, target.port, timeout=timeout, ca_certs=ca_file,
                               ca_cert_dir=ca_dir, cert_reqs="CERT_REQUIRED",
                               server_hostname=name, assert_hostname=name)
    else:
        conn = HTTPConnection(address, target.port, timeout=timeout)
    watchdog.watch(conn)
    try:
        conn.connect()
    except BaseException:
        conn.close()
        raise
    sock = conn.sock
    assert sock is not None
    watchdog.watch(conn, sock)
    return conn, sock


def _request(target: Target, policy: AddressPolicy, limits: Limits, deadline: _Deadline,
             watchdog: _Watchdog) -> tuple[HTTPConnection, socket.socket,
                                           urllib3.BaseHTTPResponse]:
    try:
        addresses = policy.resolve(target.host, target.port)
    except RefusedAddress as exc:
        raise Refused(str(exc)) from None
    failures = []
    for address in addresses:
        if deadline.remaining() <= 0 or watchdog.fired:
            break
        try:
            conn, sock = _connect(target, address, limits, deadline, watchdog)
        except _NETWORK_ERRORS as exc:
            failures.append(f"{address}: {type(exc).__name__}: {exc}")
            continue
        try:
            conn.timeout = min(limits.read_timeout, max(deadline.remaining(), 0.001))
            conn.request("GET", target.path, headers={
                "Host": target.host_header, "Accept-Encoding": "identity", "Accept": "*/*",
                "User-Agent": "ironic-configdrive"}, preload_content=False,
                decode_content=False)
            response = conn.getresponse()
            if watchdog.fired:
                # The shut-down socket read as the end of the headers: not a whole answer.
                response.close()
                conn.close()
                break
            return conn, sock, response
        except _NETWORK_ERRORS as exc:
            conn.close()
            failures.append(f"{address}: {type(exc).__name__}: {exc}")
            break  # the server took the connection: trying another address resends the GET
    if deadline.remaining() <= 0 or watchdog.fired:
        raise Refused(f"no answer within the {deadline.seconds:g} s deadline "
                      f"({'; '.join(failures) or 'connecting'})")
    raise Refused("no answer: " + "; ".join(failures))


def _answer(url: str, policy: AddressPolicy, limits: Limits, deadline: _Deadline,
            watchdog: _Watchdog) -> tuple[HTTPConnection, socket.socket,
                                          urllib3.BaseHTTPResponse]:
    """The 200 answer for ``url``, each redirect hop checked as the first request was."""
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = Target.parse(current)
        conn, sock, response = _request(target, policy, limits, deadline, watchdog)
        if response.status == 200:
            return conn, sock, response
        location = response.headers.get("Location")
        response.close()
        conn.close()
        if response.status not in REDIRECT_STATUSES:
            raise Refused(f"{mask_url(current)} answered HTTP {response.status}")
        if not location:
            raise Refused(f"HTTP {response.status} without a Location")
        following = urljoin(current, location)
        if target.scheme == "https" and urlsplit(following).scheme.lower() != "https":
            raise Refused(f"redirect from https to {mask_url(following)} refused")
        if hop == MAX_REDIRECTS:
            raise Refused(f"more than {MAX_REDIRECTS} redirects")
        current = following
    raise AssertionError("unreachable: the loop returns or raises")


@contextlib.contextmanager
def open_url(url: str, *, policy: AddressPolicy, limits: Limits) -> Iterator[Body]:
    """GET ``url`` (following checked redirects) and yield its body once it answered 200.

    :raises Refused: before a 200 answer (the text names the cause, for the log only).
    :raises ContentEncodingRefused, WireLimitExceeded: the 200 answer is not acceptable.
    :raises DeadlineExceeded: while reading the body.
    """
    # urllib3 quotes request paths (temp URL signatures) in warnings about odd headers.
    install_record_masking()
    deadline = _Deadline(limits.deadline)
    watchdog = _Watchdog(deadline)
    try:
        conn, sock, response = _answer(url, policy, limits, deadline, watchdog)
        try:
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            if encoding not in _IDENTITY:
                raise ContentEncodingRefused(encoding)
            length = response.headers.get("Content-Length", "")
            if length.strip().isdigit() and int(length) > limits.wire_cap:
                raise WireLimitExceeded()
            yield Body(response, sock, limits, deadline, watchdog)
        finally:
            response.close()
            conn.close()
    finally:
        watchdog.cancel()
