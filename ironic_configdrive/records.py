"""What the deploy interface remembers about a node's config drive, and where.

Everything needed to undo a deploy lives in ``driver_internal_info['configdrive']``, so teardown
and cleanup work from a fresh interface instance after a conductor restart. The record is plain
JSON and carries no secrets: no URL (temporary URLs are signed afresh whenever needed), no
content, and an encrypted drive's key only wrapped with the conductor's key-encryption key
(:mod:`ironic_configdrive.keys`). ``instance_info['configdrive']`` is replaced by a small
reference to the record, so nothing upstream ever sees (or re-sends) the user's drive.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ironic_configdrive.image.errors import InternalError
from ironic_configdrive.store.base import StoredImage

#: Key in driver_internal_info.
RECORD_KEY = "configdrive"
#: Key of the reference dict left in instance_info['configdrive'].
REFERENCE_KEY = "ironic_configdrive"
#: Bumped when the record's shape changes incompatibly.
VERSION = 1
#: Store name recorded for a URL handed on untouched (nothing stored, nothing to delete).
PASSTHROUGH = "passthrough"


@dataclasses.dataclass
class Exposure:
    """One attach done by an exposure plugin, with the plugin's own record for detach."""

    mechanism: str
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "record": dict(self.record)}


@dataclasses.dataclass
class DriveRecord:
    """The node's config drive as the deploy interface handled it."""

    deploy_id: str
    #: StoredImage.record() of the stored object, or None (nothing stored or already deleted).
    stored: dict[str, Any] | None = None
    #: True when the user's URL was handed on untouched ([configdrive]allow_url_passthrough).
    passthrough: bool = False
    exposures: list[Exposure] = dataclasses.field(default_factory=list)
    #: Set at teardown when a drive was written to the disk: {"device": ...} for the
    #: erase_configdrive clean step.
    erase: dict[str, Any] | None = None
    #: StoredImage.record()s of objects still to delete (replaced by a rebuild, or a delete
    #: that failed): retried at every cleanup.
    stale: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: StoredImage.record()s of decrypted copies served to a BMC while virtual media is
    #: attached: deleted as soon as nothing is attached any more.
    served: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "deploy_id": self.deploy_id,
            "stored": dict(self.stored) if self.stored is not None else None,
            "passthrough": self.passthrough,
            "exposures": [exposure.to_dict() for exposure in self.exposures],
            "erase": dict(self.erase) if self.erase is not None else None,
            "stale": [dict(item) for item in self.stale],
            "served": [dict(item) for item in self.served],
        }

    @classmethod
    def from_dict(cls, data: Any) -> DriveRecord:
        if not isinstance(data, dict) or not isinstance(data.get("deploy_id"), str):
            raise InternalError(reason=f"malformed driver_internal_info['{RECORD_KEY}']")
        if data.get("version", VERSION) != VERSION:
            raise InternalError(
                reason=f"driver_internal_info['{RECORD_KEY}'] has version "
                       f"{data.get('version')!r}; this conductor understands {VERSION}")
        exposures = []
        for item in data.get("exposures") or []:
            if not isinstance(item, dict) or not isinstance(item.get("mechanism"), str):
                raise InternalError(reason=f"malformed exposure in driver_internal_info"
                                           f"['{RECORD_KEY}']")
            exposures.append(Exposure(item["mechanism"], dict(item.get("record") or {})))
        return cls(deploy_id=data["deploy_id"], stored=data.get("stored"),
                   passthrough=bool(data.get("passthrough")), exposures=exposures,
                   erase=data.get("erase"),
                   stale=[dict(item) for item in data.get("stale") or []
                          if isinstance(item, dict)],
                   served=[dict(item) for item in data.get("served") or []
                           if isinstance(item, dict)])

    def successor(self, deploy_id: str, *, passthrough: bool) -> DriveRecord:
        """The record of a new drive replacing this one: nothing stored yet, everything
        still pending (exposures to undo, an erase, objects to delete) carried over.

        Through the persisted form, so a field added to the record is never left behind.
        """
        return DriveRecord.from_dict({**self.to_dict(), "deploy_id": deploy_id,
                                      "stored": None, "passthrough": passthrough})

    # -- the stored object --------------------------------------------------------------------

    @property
    def location(self) -> str | None:
        return None if self.stored is None else self.stored.get("location")

    def stored_image(self, url: str) -> StoredImage:
        """The recorded object with a freshly obtained ``url``."""
        if self.stored is None:
            raise InternalError(reason="no stored config drive in the record")
        fields = {f.name for f in dataclasses.fields(StoredImage)} - {"url"}
        return StoredImage(url=url, **{k: v for k, v in self.stored.items() if k in fields})

    def reference(self, passthrough_url: str | None = None) -> dict[str, Any]:
        """What replaces instance_info['configdrive']: enough to recognise the record.

        The location is left out: for the http store it is the unguessable file name.
        A passed-through URL has to stay in instance_info (the API masks that field) because
        the record must not hold it.
        """
        ref: dict[str, Any] = {"deploy_id": self.deploy_id}
        if self.stored is not None:
            ref["store"] = self.stored.get("store")
            ref["sha256"] = self.stored.get("sha256")
            ref["size"] = self.stored.get("size")
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
    data = node.driver_internal_info.get(RECORD_KEY)
    return None if data is None else DriveRecord.from_dict(data)


def save(node: Any, record: DriveRecord | None) -> None:
    """Put ``record`` (None: remove it) into driver_internal_info; the caller saves the node."""
    if record is None:
        node.del_driver_internal_info(RECORD_KEY)
    else:
        node.set_driver_internal_info(RECORD_KEY, record.to_dict())
