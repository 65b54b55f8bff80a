"""One deadline for a whole download: retries, resumes and backoff sleeps included.

Socket timeouts bound each ``recv``, not their sum, so a :class:`Watchdog` thread shuts the
socket of the request in flight down when the deadline passes; urllib3's pools report each
connection to it before the request is sent (:func:`watch_pools`), which also covers a
server trickling its headers. :class:`DeadlineRetry` keeps urllib3's retry sleeps inside it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

from urllib3 import poolmanager
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry


class Deadline:
    """The time left for one download, shared by its requests, retries and resumes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())


class DeadlinePassed(Exception):  # noqa: N818 (internal signal, turned into our error)
    """Raised inside urllib3 once the deadline passed; deliberately not an OSError or
    HTTPError, so urllib3 does not retry it."""


class Watchdog:
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
                raise DeadlinePassed
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


@contextlib.contextmanager
def watched_by(watchdog: Watchdog | None) -> Iterator[None]:
    """Report the connections of the requests made inside to ``watchdog``."""
    _IN_FLIGHT.watchdog = watchdog
    try:
        yield
    finally:
        _IN_FLIGHT.watchdog = None


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


def watch_pools(manager: Any) -> None:
    """Make ``manager``'s pools report their connections to the watchdog in flight."""
    # Only managers using urllib3's own pools (SOCKS proxies bring theirs).
    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = _WATCHED_POOLS


class DeadlineRetry(Retry):
    """urllib3's Retry whose sleeps (backoff, Retry-After) never outlast the deadline."""

    deadline: Deadline | None = None

    def new(self, **kw: Any) -> DeadlineRetry:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def _capped(self, seconds: float) -> float:
        if self.deadline is None:
            return seconds
        left = self.deadline.remaining()
        if left <= 0:
            raise DeadlinePassed
        return min(seconds, left)

    def get_backoff_time(self) -> float:
        return self._capped(super().get_backoff_time())

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else self._capped(seconds)
