"""The temp URL key of the ``swift`` store's containers, and their privacy.

Readers get a GET temp URL signed with the account key (``X-Account-Meta-Temp-Url-Key``,
what Ironic itself uses), else the container key; if neither exists a random container key
is set once (radosgw only honours *account* keys: set one there). A container is created
private if missing and refused if it has a read ACL. The key checked is kept per process
(:class:`.shared.ContainerState`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.swift.errors import TRANSPORT_ERRORS, ContainerMissing, is_not_found
from ironic_configdrive.store.swift.shared import Shared

LOG = logging.getLogger(__package__)

ACCOUNT_KEYS: Final = ("x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2")
CONTAINER_KEYS: Final = ("x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2")
#: Seconds between setting a container key and reading back which one Swift kept (see
#: :meth:`ContainerKeys._set_container_key`), and how often to read it back.
KEY_SETTLE: Final = 0.5
KEY_READBACKS: Final = 3

#: The store's error for a failed request: (node, action, cause, advice).
Fail = Callable[[str, str, BaseException, str], StoreError]


class ContainerKeys:
    """Reads, caches and, where there is none, sets the keys one store signs with."""

    def __init__(self, store: str, shared: Shared, fail: Fail) -> None:
        self._store = store
        self._shared = shared
        self._fail = fail

    def key(self, conn: Any, node: str, container: str, *, create: bool) -> str:
        """The key to sign with: cached, else read (or set) by one thread for all.

        ``create`` makes the container if it is missing; else :class:`.ContainerMissing` is
        raised then, unless the account has a key. An existing container without a key gets
        one (:meth:`_set_container_key`).
        """
        state = self._shared.container(container)
        key, fresh = state.current()
        if key is not None and fresh:
            return key
        if key is not None and not state.lock.acquire(blocking=False):
            return key  # another thread is checking it again; the known key is still good
        if key is None:
            state.lock.acquire()  # wait for whoever is reading or setting it now
        try:
            key, fresh = state.current()
            if key is not None and fresh:
                return key
            key = self._read_key(conn, node, container, create=create)
            state.remember(key)
            return key
        finally:
            state.lock.release()

    def refresh(self, conn: Any, node: str, container: str) -> None:
        """Look at the account and container afresh, also for the cached key; set none."""
        state = self._shared.container(container)
        with state.lock:
            headers = self._container_headers(conn, node, container, create=False)
            try:
                key = self._stored_key(conn, node, headers)
            except ContainerMissing:
                key = None  # put() creates it
            if key is None:
                state.forget()  # put() sets one
            else:
                state.remember(key)

    def _read_key(self, conn: Any, node: str, container: str, *, create: bool) -> str:
        headers = self._container_headers(conn, node, container, create=create)
        key = self._stored_key(conn, node, headers)
        if key is None:
            key = self._set_container_key(conn, node, container)
        return key

    def _container_headers(self, conn: Any, node: str, container: str, *,
                           create: bool) -> dict[str, str] | None:
        """Headers of the container (created private if ``create``); refuses public ones.

        None when it is missing and not created.
        """
        try:
            headers: dict[str, str] = conn.head_container(container)
        except TRANSPORT_ERRORS as exc:
            if not is_not_found(exc):
                raise self._fail(node, f"HEAD of container {container}", exc,
                                 "check that Swift is reachable and the [swift] credentials "
                                 "can use it") from exc
            if not create:
                return None
            try:
                conn.put_container(container)
                LOG.info("Created private Swift container %s for config drives", container)
                # Another conductor may have made it first, with a key: read what is there.
                headers = conn.head_container(container)
            except TRANSPORT_ERRORS as exc2:
                raise self._fail(node, f"creating container {container}", exc2,
                                 "check the account's quota and permissions, or create the "
                                 "container by hand") from exc2
        if headers.get("x-container-read"):
            raise StoreError(store=self._store, node=node,
                             reason=f"container {container} has a read ACL, which would "
                                    "expose config drives (they hold secrets); remove it "
                                    f"(swift post -r '' {container}) or set "
                                    "[configdrive]swift_container to a private container")
        return headers

    def _stored_key(self, conn: Any, node: str,
                    container_headers: dict[str, str] | None) -> str | None:
        """The account key, else the container's; raises ContainerMissing if neither and
        there is no container."""
        try:
            account = conn.head_account()
        except TRANSPORT_ERRORS as exc:
            raise self._fail(node, "reading the temp URL key (HEAD of the Swift account)", exc,
                             "check the [swift] credentials and endpoint") from exc
        for name in ACCOUNT_KEYS:
            if account.get(name):
                return str(account[name])
        if container_headers is None:
            raise ContainerMissing()
        for name in CONTAINER_KEYS:
            if container_headers.get(name):
                return str(container_headers[name])
        return None

    def _set_container_key(self, conn: Any, node: str, container: str) -> str:
        """Set a random container key and return the one Swift keeps.

        Swift has no conditional POST, so "set if absent" cannot be atomic. Within this
        process the container's lock makes one thread do it while the others wait for the
        result. Between processes (several conductors) two may both see no key and both
        POST: container metadata is last-writer-wins (by the proxy's timestamp) on every
        replica, so after a settle time we read the key back and use whatever Swift holds,
        never our own value blindly; a racer that wrote later reads back its own, one that
        wrote earlier reads the later one. What remains is a racer whose POST lands more than
        KEY_SETTLE after ours although it saw no key before ours landed (a stalled request):
        URLs we signed meanwhile would then answer 401. url_for() notices that (it checks
        the URL it hands out) and reads the key again; put() rereads it after KEY_TTL.
        """
        key = secrets.token_hex(32)
        try:
            conn.post_container(container, {"X-Container-Meta-Temp-Url-Key": key})
            for _ in range(KEY_READBACKS):
                time.sleep(KEY_SETTLE)
                headers = conn.head_container(container)
                stored = next((str(headers[n]) for n in CONTAINER_KEYS if headers.get(n)),
                              None)
                if stored is not None:
                    break
        except TRANSPORT_ERRORS as exc:
            raise self._fail(node, "reading or setting the temp URL key", exc,
                             "set X-Account-Meta-Temp-Url-Key on the account used by the "
                             "[swift] credentials (swift post -m Temp-URL-Key:<secret>)") from exc
        if stored is None:
            raise StoreError(store=self._store, node=node,
                             reason=f"container {container} shows no temp URL key although "
                                    "one was just set; check the Swift cluster's health, or set "
                                    "X-Account-Meta-Temp-Url-Key on the account")
        LOG.warning("Neither account %s nor container %s had a temp URL key, so a random "
                    "container key was set%s (radosgw ignores container keys: set an account "
                    "key there)",
                    urlsplit(conn.url or "").path.rsplit("/", 1)[-1], container,
                    "" if stored == key else " (another conductor's won)")
        return stored
