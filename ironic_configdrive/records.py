"""What the deploy interface remembers about a node's config drive, and where.

Everything needed to undo a deploy lives in ``driver_internal_info['configdrive']``, so teardown,
cleanup and the reconciler work from the record alone, on whichever conductor holds the node.
The record is plain JSON and carries no secrets: no URL (temporary URLs are signed afresh
whenever needed), no content, and an encrypted drive's key only wrapped with the conductors'
key-encryption key (:mod:`ironic_configdrive.keys`). ``instance_info['configdrive']`` is
replaced by a small reference to the record, so nothing upstream ever sees (or re-sends) the
user's drive.

The typed records here are converted to and from JSON at one boundary (:func:`load`,
:func:`save`); nothing else reads ``driver_internal_info['configdrive']``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Final

from ironic_configdrive.image.errors import InternalError
from ironic_configdrive.store.base import GZIP, StoredImage

#: Key in driver_internal_info.
RECORD_KEY: Final = "configdrive"
#: Key of the reference dict left in instance_info['configdrive'].
REFERENCE_KEY: Final = "ironic_configdrive"
#: Bumped when the record's shape changes; older versions are still read.
VERSION: Final = 2
#: Store name recorded for a URL handed on untouched (nothing stored, nothing to delete).
PASSTHROUGH: Final = "passthrough"


def _malformed(what: str) -> InternalError:
    return InternalError(reason=f"malformed {what} in driver_internal_info['{RECORD_KEY}']")


@dataclasses.dataclass(frozen=True)
class StoredRef:
    """One object in a store: what it holds and where, never its URL or its key in clear.

    ``holder`` is the conductor whose disk holds the object when the store is host-local
    (the http store); only that conductor can serve or delete it. None: every conductor
    reaches it (Swift).
    """

    store: str
    location: str
    sha256: str | None = None
    size: int | None = None
    encoding: str = GZIP
    sealed: bool = False
    expires_at: float | None = None
    #: The drive key wrapped with the key-encryption key (sealed objects only).
    wrapped_key: str | None = dataclasses.field(default=None, repr=False)
    holder: str | None = None

    @classmethod
    def of(cls, image: StoredImage, *, wrapped_key: str | None = None,
           holder: str | None = None) -> StoredRef:
        return cls(store=image.store, location=image.location, sha256=image.sha256,
                   size=image.size, encoding=image.encoding, sealed=image.sealed,
                   expires_at=image.expires_at, wrapped_key=wrapped_key, holder=holder)

    def image(self, url: str, key: bytes | None = None) -> StoredImage:
        """The object as a :class:`StoredImage` with a freshly obtained ``url``."""
        return StoredImage(store=self.store, location=self.location, url=url,
                           sha256=self.sha256, size=self.size, encoding=self.encoding,
                           expires_at=self.expires_at, sealed=self.sealed, key=key)

    def held_elsewhere(self, host: str, *, host_local: bool) -> bool:
        """Whether only another conductor can act on this object."""
        return host_local and self.holder is not None and self.holder != host

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> StoredRef:
        if (not isinstance(data, dict) or not isinstance(data.get("store"), str)
                or not isinstance(data.get("location"), str)):
            raise _malformed("stored object")
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class Exposure:
    """One attach done by an exposure plugin, with the plugin's own record for detach."""

    mechanism: str
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "record": dict(self.record)}

    @classmethod
    def from_dict(cls, data: Any) -> Exposure:
        if not isinstance(data, dict) or not isinstance(data.get("mechanism"), str):
            raise _malformed("exposure")
        return cls(data["mechanism"], dict(data.get("record") or {}))


@dataclasses.dataclass
class Erase:
    """Bytes of the drive reached the node's disk: the erase_configdrive clean step's job."""

    device: str
    #: Set when automated cleaning is off: what the operator was told.
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Erase:
        if not isinstance(data, dict):
            raise _malformed("erase")
        return cls(device=str(data.get("device") or "root"), warning=data.get("warning"))


@dataclasses.dataclass
class DriveRecord:
    """The node's config drive as the deploy interface handled it."""

    deploy_id: str
    #: The stored drive, or None (nothing stored, or already deleted).
    stored: StoredRef | None = None
    #: True when the user's URL was handed on untouched ([configdrive]allow_url_passthrough).
    passthrough: bool = False
    exposures: list[Exposure] = dataclasses.field(default_factory=list)
    erase: Erase | None = None
    #: Objects to delete: replaced by a rebuild, a delete that failed, one held by another
    #: conductor, or an intent recorded before a write that never got confirmed. Retried at
    #: every release and by the reconciler.
    stale: list[StoredRef] = dataclasses.field(default_factory=list)
    #: Decrypted copies served to a BMC while virtual media is attached: deleted as soon as
    #: nothing is attached any more.
    served: list[StoredRef] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "deploy_id": self.deploy_id,
            "stored": None if self.stored is None else self.stored.to_dict(),
            "passthrough": self.passthrough,
            "exposures": [exposure.to_dict() for exposure in self.exposures],
            "erase": None if self.erase is None else self.erase.to_dict(),
            "stale": [ref.to_dict() for ref in self.stale],
            "served": [ref.to_dict() for ref in self.served],
        }

    @classmethod
    def from_dict(cls, data: Any) -> DriveRecord:
        if not isinstance(data, dict) or not isinstance(data.get("deploy_id"), str):
            raise InternalError(reason=f"malformed driver_internal_info['{RECORD_KEY}']")
        version = data.get("version", 1)
        if version not in (1, VERSION):
            raise InternalError(
                reason=f"driver_internal_info['{RECORD_KEY}'] has version {version!r}; this "
                       f"conductor understands 1 to {VERSION}: upgrade it")
        stored = data.get("stored")
        erase = data.get("erase")
        return cls(
            deploy_id=data["deploy_id"],
            stored=None if stored is None else StoredRef.from_dict(stored),
            passthrough=bool(data.get("passthrough")),
            exposures=[Exposure.from_dict(item) for item in data.get("exposures") or []],
            erase=None if erase is None else Erase.from_dict(erase),
            stale=[StoredRef.from_dict(item) for item in data.get("stale") or []],
            served=[StoredRef.from_dict(item) for item in data.get("served") or []])

    def successor(self, deploy_id: str, *, passthrough: bool) -> DriveRecord:
        """The record of a new drive replacing this one: nothing stored yet, everything
        still pending (exposures to undo, an erase, objects to delete) carried over.

        Through the persisted form, so a field added to the record is never left behind.
        """
        return DriveRecord.from_dict({**self.to_dict(), "deploy_id": deploy_id,
                                      "stored": None, "passthrough": passthrough})

    # -- queries ------------------------------------------------------------------------------

    @property
    def location(self) -> str | None:
        return None if self.stored is None else self.stored.location

    def objects(self) -> list[StoredRef]:
        """Every object this record names (the reconciler keeps these)."""
        return [*([self.stored] if self.stored is not None else []), *self.stale, *self.served]

    def wrapped_keys(self) -> list[str]:
        """The wrapped drive keys of every object this record names."""
        return [ref.wrapped_key for ref in self.objects() if ref.wrapped_key]

    def forget_stale_keys(self) -> int:
        """Drop the wrapped keys of objects that are only waiting to be deleted (nothing
        opens them again); return how many were dropped."""
        dropped = sum(1 for ref in self.stale if ref.wrapped_key)
        self.stale = [dataclasses.replace(ref, wrapped_key=None) if ref.wrapped_key else ref
                      for ref in self.stale]
        return dropped

    def map_wrapped_keys(self, change: Callable[[str], str]) -> int:
        """Replace every wrapped key by ``change(wrapped_key)``; return how many changed."""
        changed = 0

        def one(ref: StoredRef) -> StoredRef:
            nonlocal changed
            if not ref.wrapped_key:
                return ref
            new = change(ref.wrapped_key)
            if new == ref.wrapped_key:
                return ref
            changed += 1
            return dataclasses.replace(ref, wrapped_key=new)

        self.stored = None if self.stored is None else one(self.stored)
        self.stale = [one(ref) for ref in self.stale]
        self.served = [one(ref) for ref in self.served]
        return changed

    def is_empty(self) -> bool:
        """Nothing left to undo: the record can go."""
        return (self.stored is None and not self.exposures and not self.stale
                and not self.served and self.erase is None)

    def reference(self, passthrough_url: str | None = None) -> dict[str, Any]:
        """What replaces instance_info['configdrive']: enough to recognise the record.

        The location is left out: for the http store it is the unguessable file name.
        A passed-through URL has to stay in instance_info (the API masks that field) because
        the record must not hold it.
        """
        ref: dict[str, Any] = {"deploy_id": self.deploy_id}
        if self.stored is not None:
            ref["store"] = self.stored.store
            ref["sha256"] = self.stored.sha256
            ref["size"] = self.stored.size
        if passthrough_url is not None:
            ref["url"] = passthrough_url
        return {REFERENCE_KEY: ref}

    def matches(self, value: Any) -> bool:
        """Whether instance_info's ``value`` is this record's reference."""
        ref = reference_of(value)
        return ref is not None and ref.get("deploy_id") == self.deploy_id


def reference_of(value: Any) -> dict[str, Any] | None:
    """The inner reference if ``value`` is one of ours, else None."""
    if isinstance(value, dict) and set(value) == {REFERENCE_KEY}:
        inner = value[REFERENCE_KEY]
        if isinstance(inner, dict):
            return inner
    return None


def load(node: Any) -> DriveRecord | None:
    data = (node.driver_internal_info or {}).get(RECORD_KEY)
    return None if data is None else DriveRecord.from_dict(data)


def save(node: Any, record: DriveRecord | None) -> None:
    """Put ``record`` (None: remove it) into driver_internal_info; the caller saves the node."""
    if record is None:
        node.del_driver_internal_info(RECORD_KEY)
    else:
        node.set_driver_internal_info(RECORD_KEY, record.to_dict())


def persist(node: Any, record: DriveRecord | None, *, keep: bool = False) -> None:
    """Save ``record`` into the node and the node into the database; an empty record goes
    unless ``keep`` (a fresh record with nothing to undo yet).

    Every change of the record is persisted at once: what the conductor is about to do is
    recorded before it does it, so a crash never leaves anything that no record names.
    """
    save(node, None if record is None or (record.is_empty() and not keep) else record)
    node.save()


#: Nodes read from the database per query when every node's record is visited.
NODE_PAGE: Final = 500


def iter_nodes(context: Any) -> Iterator[Any]:
    """Every node with its ``driver_internal_info`` (where records live), page by page."""
    from ironic import objects

    marker = None
    while True:
        page = objects.Node.list(context, limit=NODE_PAGE, marker=marker, sort_key="id",
                                 fields=["id", "uuid", "driver_internal_info"])
        yield from page
        if len(page) < NODE_PAGE:
            return
        marker = page[-1].uuid
