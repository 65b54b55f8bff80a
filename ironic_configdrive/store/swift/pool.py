"""A pool of authenticated swiftclient connections of one identity, sharing one token."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from ironic_configdrive.store.swift.errors import reusable_after

#: Idle connections kept per pool; more are closed when they come back.
MAX_IDLE: Final = 256


@dataclasses.dataclass
class Lease:
    """A pooled connection and the (storage URL, token) it was last given by the pool."""

    conn: Any
    auth: tuple[str, str] | None = None


class ConnectionPool:
    """Idle swiftclient Connections of one identity and the token they all use.

    A connection serves one operation at a time (swiftclient's are not thread-safe). The
    first one authenticates (once, however many threads ask at the same time); the others
    are handed its storage URL and token. When Swift answers 401 swiftclient authenticates
    again on that connection: the new token then replaces the shared one on its return.
    """

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._lock = threading.Lock()  # idle list and shared token; never held for I/O
        self._auth_lock = threading.Lock()  # one authentication at a time; held for I/O
        self._idle: list[Lease] = []
        self._auth: tuple[str, str] | None = None
        #: Tokens obtained (first ones and renewals after a 401), for tests and benchmarks.
        self.authentications = 0

    def take(self) -> Lease | None:
        """The most recently returned idle connection (its socket is likeliest alive)."""
        with self._lock:
            return self._idle.pop() if self._idle else None

    @contextlib.contextmanager
    def lease(self, connect: Callable[[], Any], configure: Callable[[Any], None],
              authenticate: Callable[[Any], None]) -> Iterator[Any]:
        """An idle connection given ``configure``, else a new one from ``connect``, with the
        shared token; back to the pool after, unless it failed mid-request."""
        lease = self.take()
        if lease is None:
            lease = Lease(connect())
        else:
            configure(lease.conn)
        reusable = False
        try:
            self.authorize(lease, authenticate)
            yield lease.conn
            reusable = True
        except BaseException as exc:
            reusable = reusable_after(exc)
            raise
        finally:
            self.release(lease, reusable=reusable)

    def authorize(self, lease: Lease, authenticate: Callable[[Any], None]) -> None:
        """Give ``lease`` the shared token; obtain it first if there is none."""
        shared = self._auth
        if shared is not None:
            self._adopt(lease, shared)
            return
        conn = lease.conn
        if conn.url and conn.token:  # the factory pre-authenticated it
            self._publish(lease, renewed=False)
            return
        with self._auth_lock:
            shared = self._auth
            if shared is None:
                authenticate(conn)
                self._publish(lease, renewed=True)
            else:
                self._adopt(lease, shared)

    def release(self, lease: Lease, *, reusable: bool) -> None:
        conn = lease.conn
        with self._lock:
            if conn.url and conn.token:
                if (conn.url, conn.token) != lease.auth:
                    # swiftclient authenticated again after a 401 (the token had expired):
                    # every connection should use the new token from now on.
                    self._auth = lease.auth = (conn.url, conn.token)
                    self.authentications += 1
            elif lease.auth is not None and lease.auth == self._auth:
                # swiftclient dropped the token we gave it (401 even after re-auth): it is
                # bad for everyone; the next operation authenticates afresh.
                self._auth = None
            if reusable and len(self._idle) < self.max_idle:
                self._idle.append(lease)
                return
        with contextlib.suppress(Exception):
            conn.close()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle, self._auth = self._idle, [], None
        for lease in idle:
            with contextlib.suppress(Exception):
                lease.conn.close()

    @staticmethod
    def _adopt(lease: Lease, shared: tuple[str, str]) -> None:
        if lease.auth != shared:
            lease.conn.url, lease.conn.token = shared
            lease.auth = shared

    def _publish(self, lease: Lease, *, renewed: bool) -> None:
        with self._lock:
            self._auth = lease.auth = (lease.conn.url, lease.conn.token)
            if renewed:
                self.authentications += 1
