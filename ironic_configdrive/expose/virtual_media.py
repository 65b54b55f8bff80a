"""Exposure through Redfish virtual media: the BMC fetches the store URL and presents it.

No agent is needed, so this also serves ramdisk deploys and nodes without a free disk.

Slot choice (decided here; the lead may copy this into the README):

* ISO9660 images go to a slot that accepts ``CD`` (or ``DVD``, which many BMCs advertise
  instead); if there is none free, to a ``USBStick`` slot: guests find ISO9660 on any block
  device by its ``config-2`` label, and most BMCs present any image file as a USB disk.
* VFAT images go to ``USBStick`` slots only: a FAT filesystem on a virtual CD is not read by
  every guest, and floppies are too small.
* Nodes booting through a virtual media boot interface (``redfish-virtual-media`` and
  vendor variants) never get the drive in a CD/DVD slot: Ironic ejects every CD when it
  prepares the instance or cleans up the ramdisk. With ``driver_info`` ``config_via_removable``
  (or ``config_via_floppy``) it ejects USB slots as well, so no slot is usable then.

The BMC needs the raw image (it cannot decompress), so the stored object must have encoding
``identity``. A slot already holding someone else's media is never ejected: if no suitable
slot is free, :class:`SlotBusyError` lets the caller fall back to the partition mechanism.
Records and log lines carry the URL without its query string (temp URL signatures).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import sushy
from oslo_config import cfg
from sushy import exceptions as sushy_exc

from ironic_configdrive import conf
from ironic_configdrive.expose.base import (
    Capabilities,
    ConfigDriveExposer,
    ExposureError,
    SlotBusyError,
)
from ironic_configdrive.image import formats
from ironic_configdrive.masking import mask_url, scrub
from ironic_configdrive.store.base import StoredImage

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
conf.register_opts(CONF)

#: Encodings a BMC can serve as they are.
RAW_ENCODINGS = frozenset({"identity", "raw", "none", ""})

CD = sushy.VIRTUAL_MEDIA_CD
DVD = sushy.VIRTUAL_MEDIA_DVD
USB = sushy.VIRTUAL_MEDIA_USBSTICK

#: Media types to try, best first, per image format.
PREFERENCES: dict[str, tuple[Any, ...]] = {
    formats.ISO9660: (CD, DVD, USB),
    formats.VFAT: (USB,),
}

_POLL_SECONDS = 2.0
_SNIFF_TIMEOUT = 30.0


class VirtualMediaExposer(ConfigDriveExposer):
    """Insert the stored image into a virtual CD or USB slot of the node's BMC."""

    name = "virtual_media"
    capabilities = Capabilities(takes_sealed=False, takes_compressed=False, needs_agent=False,
                                writes_disk=False, reads_url_while_attached=True)

    #: Seams for tests.
    _clock: Callable[[], float] = staticmethod(time.monotonic)
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def validate(self, task: Any) -> None:
        from ironic.common import exception as ironic_exc
        from ironic.drivers.modules.redfish import utils as redfish_utils

        try:
            redfish_utils.parse_driver_info(task.node)
        except cfg.NoSuchOptError:
            raise _no_verify_ca_group(task) from None
        except ironic_exc.IronicException as exc:
            raise ExposureError(
                mechanism=self.name, node=task.node.uuid,
                reason=f"{scrub(str(exc))}; set driver_info redfish_address (and "
                       "redfish_system_id, redfish_username, redfish_password as the BMC "
                       "needs) or use the partition mechanism") from None

    # -- attach ---------------------------------------------------------------------------

    def attach(self, task: Any, image: StoredImage) -> dict[str, Any]:
        node = task.node
        self.validate(task)
        if (image.encoding or "").lower() not in RAW_ENCODINGS:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"the stored image has encoding {image.encoding!r} but a BMC can only "
                       "present raw images; store it uncompressed (encoding 'identity') for "
                       "virtual media")
        fmt = self._image_format(task, image)
        masked = mask_url(image.url)
        system = self._system(task)
        candidates = list(self._slots(task, system))
        wanted, why_not = _wanted_types(node, fmt)
        usable = [s for s in candidates if _accepts(s[2], wanted)]
        if not usable:
            offered = ", ".join(f"{s[2].identity} ({_types(s[2])})" for s in candidates)
            needs = "/".join(t.value for t in wanted) or "none usable"
            raise SlotBusyError(
                mechanism=self.name, node=node.uuid,
                reason=f"the BMC has no virtual media slot for a {fmt} image (needs "
                       f"{needs}{why_not}; offers {offered or 'none'})")
        usable.sort(key=lambda s: _rank(s[2], wanted))

        busy: list[str] = []
        for kind, owner, vmedia in usable:
            current = vmedia.image or ""
            if vmedia.inserted or current:
                if current and mask_url(current) == masked:
                    # Our own earlier insert (a retried deploy): refresh it with the new URL.
                    LOG.info("Node %s: slot %s already holds this config drive; re-inserting",
                             node.uuid, vmedia.identity)
                    self._eject(task, vmedia)
                else:
                    busy.append(f"{vmedia.identity} holds {mask_url(current) or 'media'}")
                    continue
            self._insert(task, vmedia, image.url, masked)
            record = {
                "mechanism": self.name,
                "system": system.identity,
                "resource": kind,
                "manager": owner if kind == "manager" else None,
                "device": vmedia.identity,
                "media_type": _chosen_type(vmedia, wanted),
                "format": fmt,
                "url_inserted": masked,
            }
            LOG.info("Config drive of node %s inserted into virtual media %s (%s) from %s",
                     node.uuid, vmedia.identity, record["media_type"], masked)
            return record
        raise SlotBusyError(
            mechanism=self.name, node=node.uuid,
            reason=f"every virtual media slot that takes a {fmt} image is in use "
                   f"({'; '.join(busy)}); eject it or use the partition mechanism")

    # -- detach ---------------------------------------------------------------------------

    def detach(self, task: Any, record: dict[str, Any]) -> None:
        node = task.node
        device = (record or {}).get("device")
        if not device:
            LOG.debug("Node %s: no virtual media recorded, nothing to eject", node.uuid)
            return
        system = self._system(task)
        vmedia = None
        for kind, owner, candidate in self._slots(task, system):
            if candidate.identity != device or kind != record.get("resource", kind):
                continue
            if kind == "manager" and record.get("manager") not in (None, owner):
                continue
            vmedia = candidate
            break
        if vmedia is None:
            LOG.warning("Node %s: virtual media %s is gone from the BMC; nothing to eject",
                        node.uuid, device)
            return
        current = vmedia.image or ""
        if not vmedia.inserted and not current:
            LOG.info("Node %s: virtual media %s is already empty", node.uuid, device)
            return
        if current and mask_url(current) != record.get("url_inserted"):
            LOG.warning("Node %s: virtual media %s now holds %s, not our config drive; "
                        "leaving it inserted", node.uuid, device, mask_url(current))
            return
        self._eject(task, vmedia)
        LOG.info("Config drive of node %s ejected from virtual media %s", node.uuid, device)

    # -- helpers --------------------------------------------------------------------------

    def _fail(self, task: Any, what: str, exc: Exception) -> ExposureError:
        return ExposureError(
            mechanism=self.name, node=task.node.uuid,
            reason=f"{what}: {scrub(str(exc))}; check the BMC (driver_info redfish_*) and "
                   "that it can reach the store URL")

    def _system(self, task: Any) -> Any:
        from ironic.common import exception as ironic_exc
        from ironic.drivers.modules.redfish import utils as redfish_utils

        try:
            return redfish_utils.get_system(task.node)
        except cfg.NoSuchOptError:
            raise _no_verify_ca_group(task) from None
        except (ironic_exc.IronicException, sushy_exc.SushyError) as exc:
            raise self._fail(task, "cannot reach the Redfish system", exc) from None

    def _slots(self, task: Any, system: Any) -> Iterator[tuple[str, str | None, Any]]:
        """(resource kind, manager id, VirtualMedia) for the system's or managers' slots."""
        try:
            try:
                collection = system.virtual_media
            except (sushy_exc.MissingAttributeError, AttributeError):
                collection = None
            if collection is not None:
                for vmedia in collection.get_members():
                    yield "system", None, vmedia
                return
            for manager in system.managers:
                try:
                    members = manager.virtual_media.get_members()
                except sushy_exc.MissingAttributeError:
                    continue
                for vmedia in members:
                    yield "manager", manager.identity, vmedia
        except sushy_exc.SushyError as exc:
            raise self._fail(task, "cannot list virtual media", exc) from None

    def _insert(self, task: Any, vmedia: Any, url: str, masked: str) -> None:
        # How long a BMC may take to report an accepted insert as Inserted (it downloads).
        timeout = CONF.configdrive.virtual_media_insert_timeout
        try:
            vmedia.insert_media(url, inserted=True, write_protected=True)
            deadline = self._clock() + timeout
            while True:
                vmedia.refresh(force=True)
                if vmedia.inserted is not False:  # None: the BMC does not report it
                    return
                if self._clock() >= deadline:
                    break
                self._sleep(_POLL_SECONDS)
        except sushy_exc.SushyError as exc:
            raise self._fail(task, f"inserting {masked} into virtual media "
                                   f"{vmedia.identity} failed", exc) from None
        try:
            vmedia.eject_media()
        except sushy_exc.SushyError as exc:
            LOG.warning("Node %s: eject after a failed insert into %s failed: %s",
                        task.node.uuid, vmedia.identity, scrub(str(exc)))
        raise ExposureError(
            mechanism=self.name, node=task.node.uuid,
            reason=f"the BMC accepted {masked} for virtual media {vmedia.identity} but did "
                   f"not report it inserted within {timeout} s "
                   "([configdrive]virtual_media_insert_timeout); check that the BMC can "
                   "download the store URL, or raise the timeout for slow BMCs")

    def _eject(self, task: Any, vmedia: Any) -> None:
        try:
            vmedia.eject_media()
        except sushy_exc.SushyError as exc:
            try:
                vmedia.refresh(force=True)
                if not vmedia.inserted and not vmedia.image:
                    return  # already empty: eject is idempotent
            except sushy_exc.SushyError:
                pass
            raise self._fail(task, f"ejecting virtual media {vmedia.identity} failed",
                             exc) from None

    def _image_format(self, task: Any, image: StoredImage) -> str:
        """Read the image's first bytes from its URL: the bytes the BMC will get decide."""
        node = task.node
        try:
            with requests.get(image.url, stream=True, timeout=_SNIFF_TIMEOUT,
                              headers={"Range": f"bytes=0-{formats.SNIFF_SIZE - 1}"}) as resp:
                resp.raise_for_status()
                head = b""
                for chunk in resp.iter_content(chunk_size=8192):
                    head += chunk
                    if len(head) >= formats.SNIFF_SIZE:
                        break
        except requests.RequestException as exc:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"cannot read the stored image at {mask_url(image.url)} "
                       f"({scrub(str(exc))}); the BMC must download the same URL, check the "
                       "store") from None
        if head[: len(formats.GZIP_MAGIC)] == formats.GZIP_MAGIC:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"the image at {mask_url(image.url)} is gzip-compressed; a BMC needs "
                       "the raw image, store it with encoding 'identity'")
        fmt = formats.detect_format(head[: formats.SNIFF_SIZE])
        if fmt is None:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"the image at {mask_url(image.url)} is neither ISO9660 nor FAT; "
                       "rebuild the config drive")
        return fmt


def _wanted_types(node: Any, fmt: str) -> tuple[tuple[Any, ...], str]:
    """Media types to try for ``fmt`` on ``node``, and why some were left out."""
    wanted = PREFERENCES[fmt]
    boot = str(getattr(node, "boot_interface", None) or "")
    if "virtual-media" not in boot and "virtual_media" not in boot:
        return wanted, ""
    info = node.driver_info or {}
    if info.get("config_via_removable") or info.get("config_via_floppy"):
        return (), (f"; boot interface {boot} ejects CD and USB media "
                    "(driver_info config_via_removable)")
    return (tuple(t for t in wanted if t not in (CD, DVD)),
            f"; boot interface {boot} ejects CD media")


def _no_verify_ca_group(task: Any) -> ExposureError:
    # Ironic looks up [<hardware type>]verify_ca when driver_info has no redfish_verify_ca;
    # hardware types without such a group (e.g. fake-hardware) then fail inside Ironic.
    return ExposureError(
        mechanism=VirtualMediaExposer.name, node=task.node.uuid,
        reason=f"hardware type {task.node.driver!r} has no verify_ca option; set "
               "driver_info redfish_verify_ca (true, false or a CA bundle path)")


def _types(vmedia: Any) -> str:
    return "/".join(getattr(t, "value", str(t)) for t in vmedia.media_types) or "no types"


def _accepts(vmedia: Any, wanted: tuple[Any, ...]) -> bool:
    return any(t in vmedia.media_types for t in wanted)


def _rank(vmedia: Any, wanted: tuple[Any, ...]) -> int:
    return min(wanted.index(t) for t in vmedia.media_types if t in wanted)


def _chosen_type(vmedia: Any, wanted: tuple[Any, ...]) -> str:
    best = wanted[_rank(vmedia, wanted)]
    return str(best.value)
