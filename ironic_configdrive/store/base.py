"""The store plugin interface: where config drive images live while a node uses them.

A store keeps one object per node and deploy and hands out URLs the agent or the BMC can
fetch. Every operation is idempotent and retried on transient failures; every failure raises
:class:`StoreError` naming the node, the cause and what to do.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

from ironic_configdrive.image.errors import ConfigDriveError

#: Stored bytes are the raw image gzip-compressed (smaller; the agent decodes it).
GZIP = "gzip"
#: Stored bytes are the raw image itself (what a BMC's virtual media needs).
IDENTITY = "identity"
ENCODINGS = (GZIP, IDENTITY)


class StoreError(ConfigDriveError):
    """The store could not keep, sign or delete a config drive."""

    category = "store"
    message_template = "config drive store '{store}' failed for node {node}: {reason}"


@dataclasses.dataclass(frozen=True)
class StoredImage:
    """What :meth:`ConfigDriveStore.put` returns; ``record()`` goes to driver_internal_info.

    ``sha256`` and ``size`` are those of the decoded raw image (what lands on the disk); the
    stored bytes themselves may be compressed (``encoding``: :data:`GZIP` or
    :data:`IDENTITY`) and then ``sealed`` (encrypted, see :mod:`..image.sealing`). ``key``
    is the sealing key while the conductor holds it in memory; it never goes into
    ``record()``. Both are None when unknown: a user's URL handed on untouched
    (``[configdrive]allow_url_passthrough``), whose content nobody has seen.
    """

    store: str
    location: str
    url: str
    sha256: str | None
    size: int | None
    encoding: str = GZIP
    expires_at: float | None = None
    sealed: bool = False
    key: bytes | None = dataclasses.field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """JSON-able form without the URL (temp URLs are secrets and expire: re-sign) or key."""
        data = dataclasses.asdict(self)
        del data["url"], data["key"]
        return data


@dataclasses.dataclass(frozen=True)
class Listed:
    """An object of ours found in a store by :meth:`ConfigDriveStore.list_stored`.

    Names carry the node and the deploy, so the reconciler judges an object without reading
    it. ``age`` is seconds since it was written (None: the store cannot tell).
    """

    location: str
    node_uuid: str
    deploy_id: str
    age: float | None = None


class ConfigDriveStore(abc.ABC):
    """Base class of store plugins (stevedore namespace ``ironic_configdrive.stores``)."""

    #: The entry point name, e.g. "swift".
    name: str = ""
    #: True when objects live on the disk of the conductor that wrote them (the http store):
    #: only that conductor can serve or delete them, so records name their holder.
    host_local: bool = False

    @abc.abstractmethod
    def validate(self) -> None:
        """Check configuration and reachability cheaply; raise StoreError with what to fix."""

    @abc.abstractmethod
    def locate(self, node_uuid: str, image: bytes, *, deploy_id: str,
               encoding: str = GZIP, sealed: bool = False) -> str:
        """The location :meth:`put` will write ``image`` to; no I/O.

        Callers record it before the put (intent first), so a crash between the write and
        the record never leaves an object that no record names.
        """

    @abc.abstractmethod
    def list_stored(self, *, limit: int) -> list[Listed]:
        """Up to ``limit`` objects of ours in this store (host-local stores: on this host).

        Temporary and foreign entries are not listed. For the reconciler, which deletes what
        no node's record references.
        """

    @abc.abstractmethod
    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = GZIP, key: bytes | None = None,
            location: str | None = None) -> StoredImage:
        """Store a raw image for a node; return where and how.

        :param location: from :meth:`locate` with the same arguments; None: locate now.

        :param key: seal (encrypt) the encoded bytes with this key before storing them.

        :param encoding: :data:`GZIP` stores it compressed (for the agent, which decodes
            it), :data:`IDENTITY` stores the raw bytes (for virtual media: a BMC cannot
            decompress; the agent accepts raw images too). The returned
            :class:`StoredImage` carries the encoding used. Anything else raises
            :class:`StoreError`.
        """

    @abc.abstractmethod
    def url_for(self, location: str, *, node_uuid: str) -> str:
        """A fresh URL for a stored object (temp URLs are re-signed, never reused)."""

    @abc.abstractmethod
    def delete(self, location: str, *, node_uuid: str) -> None:
        """Delete a stored object; success if it is already gone."""
