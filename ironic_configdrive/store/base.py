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


class ConfigDriveStore(abc.ABC):
    """Base class of store plugins (stevedore namespace ``ironic_configdrive.stores``)."""

    #: The entry point name, e.g. "swift".
    name: str = ""

    @abc.abstractmethod
    def validate(self) -> None:
        """Check configuration and reachability cheaply; raise StoreError with what to fix."""

    @abc.abstractmethod
    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = GZIP, key: bytes | None = None) -> StoredImage:
        """Store a raw image for a node; return where and how.

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
