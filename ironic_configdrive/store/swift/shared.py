"""What the ``swift`` stores of one process share: per connection identity a pool and, per
container, the checked temp URL key.

Stores are made per call (``loader.get_store``), so what is worth keeping lives here, keyed
by what the stores connect as (:mod:`.connections`).

Locks: ``threading`` locks work for native threads and, once eventlet has monkey-patched
``threading``, for green threads. The locks held across requests are made when the first
store is (after any monkey-patching); the module's registry lock is only ever held for
dictionary operations, so even a native lock there cannot block an eventlet hub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Final

from ironic_configdrive.store.swift.pool import ConnectionPool

#: Seconds a checked temp URL key (and the container's privacy) is trusted before it is read
#: again: bounds how long a key an operator rotated or removed goes unnoticed by put().
KEY_TTL: Final = 300.0


class ContainerState:
    """The checked temp URL key of one container: from Swift at most every KEY_TTL seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one reader/setter of the key at a time; held for I/O
        # One tuple, so readers without the lock see key and time from the same check.
        self._entry: tuple[str | None, float] = (None, 0.0)

    def current(self) -> tuple[str | None, bool]:
        """(key or None, whether it is still fresh)."""
        key, checked = self._entry
        return key, key is not None and time.monotonic() - checked < KEY_TTL

    def remember(self, key: str | None) -> None:
        self._entry = (key, time.monotonic())

    def expire(self) -> None:
        """Check again on next use; meanwhile signing with the known key goes on."""
        self._entry = (self._entry[0], float("-inf"))

    def forget(self) -> None:
        """The key is known to be wrong (or the container gone): nobody may sign with it."""
        self._entry = (None, 0.0)


class Shared:
    """What the stores of one process with the same connection settings share."""

    def __init__(self) -> None:
        self.pool = ConnectionPool()
        self._lock = threading.Lock()
        self._containers: dict[str, ContainerState] = {}

    def container(self, name: str) -> ContainerState:
        state = self._containers.get(name)
        if state is None:
            with self._lock:
                state = self._containers.setdefault(name, ContainerState())
        return state


_REGISTRY_LOCK: Final = threading.Lock()
_REGISTRY: Final[dict[Hashable, Shared]] = {}


def shared_for(key: Hashable) -> Shared:
    shared = _REGISTRY.get(key)
    if shared is None:
        with _REGISTRY_LOCK:
            shared = _REGISTRY.setdefault(key, Shared())
    return shared


def reset_shared_state() -> None:
    """Forget every pool, token and cached key of this process (tests; a config reload)."""
    with _REGISTRY_LOCK:
        shared = list(_REGISTRY.values())
        _REGISTRY.clear()
    for entry in shared:
        entry.pool.clear()
