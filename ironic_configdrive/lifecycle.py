"""A node's config drive through its life on a conductor: take over, store, expose, release,
erase, and adopt (when another conductor inherits the node).

Raises only :class:`LifecycleError` (our hierarchy, never Ironic's); the deploy interface maps
it to Ironic's exceptions at the step boundary. Every change is recorded before it is made
(intent first, then effect): an object is named in the record before it is written, so a
crash never leaves one that no record names, and the reconciler
(:mod:`ironic_configdrive.reconciler`) finishes what a crash interrupted.

Objects in a host-local store (the http store's files in ``[deploy]http_root``) are recorded
with their holder, the conductor whose disk has them. Only the holder deletes them; another
conductor keeps them recorded as stale, for the holder's reconciler.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from typing import Any

from oslo_config import cfg

from ironic_configdrive import (
    drive_readers,
    image,
    keys,
    network_repair,
    node_options,
    records,
    source,
)
from ironic_configdrive.expose import loader as expose_loader
from ironic_configdrive.expose import partition
from ironic_configdrive.expose.plan import ExposurePlan
from ironic_configdrive.image import sealing
from ironic_configdrive.image.errors import ConfigDriveError, InvalidMediaError
from ironic_configdrive.masking import scrub
from ironic_configdrive.records import DriveRecord, StoredRef
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.store.base import IDENTITY, ConfigDriveStore, StoredImage
from ironic_configdrive.url_policy import AddressPolicy

LOG = logging.getLogger(__name__)
#: The [configdrive] options are registered by the deploy interface (conf.register_opts).
CONF = cfg.CONF

#: Where decrypted copies for virtual media go: the conductor's own [deploy]http_root.
SERVED_COPY_STORE = "http"

DEPLOY_AGAIN = "Deploy again, passing the config drive"
KEY_ADVICE = ("'ironic-configdrive-keys status' shows the key fingerprints the nodes use; "
              "without the key, deploy again passing the config drive")


class LifecycleError(ConfigDriveError):
    """A step of the drive's lifecycle failed; the text says what, why and what to do."""

    category = "lifecycle"
    message_template = "{what} for node {node}: {reason}. {advice}"


def _error(node: Any, what: str, cause: ConfigDriveError | str, advice: str) -> LifecycleError:
    reason = cause.message if isinstance(cause, ConfigDriveError) else cause
    return LifecycleError(what=what, node=node.uuid, reason=scrub(reason), advice=advice)


def host() -> str:
    """This conductor's name, as recorded for the objects it holds."""
    return str(CONF.host)


def keyring() -> keys.Keyring:
    """The current key-encryption key (wraps) and the retired ones (unwrap only)."""
    return keys.load_keyring(CONF.configdrive.key_file, CONF.configdrive.old_key_files,
                             create=CONF.configdrive.key_file_create)


def fetch_policy() -> AddressPolicy:
    """Where users' config drive URLs may point ([configdrive]fetch_allowed_*)."""
    return AddressPolicy.from_options(CONF.configdrive.fetch_allowed_networks,
                                      CONF.configdrive.fetch_allowed_hosts)


def _fetch_verified(url: str, sha256: str | None, *, key: bytes | None = None) -> bytes:
    """The raw drive stored at ``url`` (opened with ``key`` if sealed), checked by sha256."""
    # Our own store's URL: no address policy, but the same byte cap and deadline.
    raw = source.fetch(url, cap=CONF.configdrive.max_size, key=key, policy=source.TRUSTED,
                       deadline=CONF.configdrive.fetch_deadline)
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise InvalidMediaError(reason="the stored config drive does not match its recorded "
                                       "sha256")
    return raw


def plan_for(node: Any) -> ExposurePlan:
    """The node's exposure plan, or a LifecycleError saying how to fix the request."""
    # Every operation starts here: a disk or exposure the deploy may not choose is refused
    # before anything is stored (the error names the node, the key and the option).
    node_options.check_instance_overrides(node)
    try:
        return expose_loader.resolve(node)
    except ConfigDriveError as exc:
        raise _error(node, "Could not choose how to expose the config drive", exc,
                     "Fix configdrive_exposure or [configdrive]exposure") from None


class DriveLifecycle:
    """The config drive of ``task.node``; one instance per operation, under the node's lock."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.node = task.node
        self.host = host()

    # -- records ------------------------------------------------------------------------------

    def load(self) -> DriveRecord | None:
        return records.load(self.node)

    def _persist(self, record: DriveRecord | None, *, keep: bool = False) -> None:
        records.persist(self.node, record, keep=keep)

    # -- taking over --------------------------------------------------------------------------

    def take_over(self, plan: ExposurePlan | None = None) -> DriveRecord | None:
        """Make instance_info['configdrive'] ours; return the record (None: no drive).

        Idempotent: a value that is already our reference is left alone, which is also how a
        rebuild without a new config drive reuses the stored one.
        """
        node = self.node
        value = (node.instance_info or {}).get("configdrive")
        old = self.load()
        if old is not None and old.matches(value):
            if old.stored is None and not old.passthrough:
                raise _error(node, "The config drive is no longer stored",
                             "it was deleted after a failed deploy", DEPLOY_AGAIN)
            plan = plan or plan_for(node)
            if (old.stored is not None and not old.stored.sealed
                    and old.stored.encoding != IDENTITY
                    and plan.store_encoding(sealed=False) == IDENTITY):
                # A rebuild after the node switched to virtual media: a BMC needs it raw.
                self._restore_raw(old)
            return old
        if value in (None, "", {}):
            if old is not None:
                # The new deploy has no config drive: the previous one's must not linger.
                self.release(strict=True)
            return None
        if records.reference_of(value) is not None:
            raise _error(node, "The config drive is not available",
                         "instance_info refers to a config drive this conductor has no "
                         "record of", DEPLOY_AGAIN)
        plan = plan or plan_for(node)  # before storing: a bad mechanism stores nothing
        src = self._normalise(value, plan)
        if old is not None:
            # The previous drive's media must be gone before a new one is made.
            self._detach_all(old, strict=True)
        deploy_id = uuid.uuid4().hex
        stored = None
        if src.image is not None:
            # While the new drive is written the previous record stays as it was (a failed
            # write changes nothing) and names the write's intent; instance_info refers to it
            # so that nothing persisted from here on carries the plaintext.
            current = old if old is not None else DriveRecord(deploy_id=deploy_id)
            self._refer(current, None)
            stored = self._store(current, src.image, plan, deploy_id=deploy_id)
        new = (old.successor(deploy_id, passthrough=src.passthrough) if old is not None
               else DriveRecord(deploy_id=deploy_id, passthrough=src.passthrough))
        if old is not None and old.stored is not None:
            new.stale.append(old.stored)
        new.stored = stored
        self._refer(new, src.passthrough_url)
        self._persist(new, keep=True)
        self.drain(new, "stale")
        LOG.info("Config drive of node %s taken over (%s input, deploy %s)", node.uuid,
                 src.kind, new.deploy_id)
        return new

    def _refer(self, record: DriveRecord, passthrough_url: str | None) -> None:
        instance_info = dict(self.node.instance_info)
        instance_info["configdrive"] = record.reference(passthrough_url=passthrough_url)
        self.node.instance_info = instance_info

    def _normalise(self, value: Any, plan: ExposurePlan | None = None) -> source.Source:
        node = self.node
        # The node's readers choose the format (see drive_readers); only the sector size of
        # the disk the plan may write needs the task (inspection data).
        sector_size = drive_readers.sector_size(self.task, plan) if plan is not None else None
        try:
            fmt = drive_readers.choose_format(node, sector_size=sector_size)
        except drive_readers.ReadersError as exc:
            raise _error(node, "Could not choose the config drive's format", exc.reason,
                         exc.advice) from None
        try:
            value = network_repair.repaired_json(self.task, value)
            src = source.normalise(
                value, node_uuid=node.uuid, node_name=node.name, fmt=fmt,
                cap=CONF.configdrive.max_size, cloudstack=CONF.configdrive.cloudstack_layout,
                allow_url_passthrough=CONF.configdrive.allow_url_passthrough,
                policy=fetch_policy(), deadline=CONF.configdrive.fetch_deadline)
            # A drive built here follows the rules validate checks (image/rules.py, one set
            # for both), so only foreign drives are parsed again.
            if src.image is not None and src.kind != source.BUILT:
                raw = network_repair.repaired_image(self.task, src.image,
                                                    cap=CONF.configdrive.max_size)
                src = dataclasses.replace(src, image=raw)
                report = image.inspect(raw)
                if report.problems:
                    raise InvalidMediaError(
                        reason="cloud-init would not use it: " + "; ".join(report.problems))
                drive_readers.check_image(node, report, sector_size=sector_size)
        except source.FetchError as exc:
            # Its text already says what to do with the URL.
            raise _error(node, "The config drive URL is not usable", exc,
                         "Then deploy again") from None
        except ConfigDriveError as exc:
            raise _error(node, "The config drive is not usable", exc,
                         "Fix the config drive given to the deploy (ironic-configdrive "
                         "validate shows what is wrong) and deploy again") from None
        return src

    # -- storing ------------------------------------------------------------------------------

    def _put(self, record: DriveRecord, store: ConfigDriveStore, raw: bytes, *,
             deploy_id: str, encoding: str, key: bytes | None = None,
             wrapped_key: str | None = None) -> StoredRef:
        """Write ``raw`` into ``store``; the object is recorded in ``record.stale`` (and
        persisted) before it is written, and unrecorded again in memory once written: the
        caller records it where it belongs. A failed write leaves it recorded as stale."""
        location = store.locate(self.node.uuid, raw, deploy_id=deploy_id,
                                encoding=encoding, sealed=key is not None)
        holder = self.host if store.host_local else None
        intent = StoredRef(store=store.name, location=location, holder=holder)
        record.stale.append(intent)
        self._persist(record, keep=True)
        stored = store.put(self.node.uuid, raw, deploy_id=deploy_id, encoding=encoding,
                           key=key, location=location)
        record.stale.remove(intent)
        return StoredRef.of(stored, wrapped_key=wrapped_key, holder=holder)

    def _store(self, record: DriveRecord, raw: bytes, plan: ExposurePlan, *,
               deploy_id: str) -> StoredRef:
        """Store ``raw`` (sealed with a fresh key unless disabled) for deploy ``deploy_id``;
        the write is recorded in ``record`` while it happens."""
        key = sealing.new_key() if CONF.configdrive.encrypt_at_rest else None
        try:
            wrapped = None if key is None else keyring().wrap(key)
            return self._put(record, store_loader.get_store(), raw, deploy_id=deploy_id,
                             encoding=plan.store_encoding(sealed=key is not None),
                             key=key, wrapped_key=wrapped)
        except ConfigDriveError as exc:
            self._persist(record)
            self.drain(record, "stale")
            raise _error(self.node, "Could not store the config drive", exc,
                         "Check the [configdrive] store and key_file settings and deploy "
                         "again") from None

    def _restore_raw(self, record: DriveRecord) -> None:
        """Replace the compressed stored drive by a raw copy (same deploy, same content)."""
        assert record.stored is not None
        old = record.stored
        try:
            store = self._store_of(old)
            raw = _fetch_verified(self._url_of(store, old), old.sha256)
            record.stored = self._put(record, store, raw, deploy_id=record.deploy_id,
                                      encoding=IDENTITY)
        except ConfigDriveError as exc:
            self._persist(record)
            raise _error(self.node, "Could not store the config drive uncompressed for "
                                    "virtual media", exc, DEPLOY_AGAIN) from None
        if record.stored.location != old.location:  # a store may reuse the name: keep it then
            record.stale.append(old)
        self._persist(record)
        self.drain(record, "stale")
        LOG.info("Config drive of node %s stored again uncompressed for virtual media",
                 self.node.uuid)

    def _store_of(self, ref: StoredRef) -> ConfigDriveStore:
        return store_loader.get_store(ref.store)

    def _url_of(self, store: ConfigDriveStore, ref: StoredRef) -> str:
        if ref.held_elsewhere(self.host, host_local=store.host_local):
            raise _error(self.node, "The stored config drive is out of reach",
                         f"it is held by conductor {ref.holder} in its own "
                         f"[deploy]http_root, and this is conductor {self.host}",
                         "Deploy or rebuild again passing the config drive (or run the "
                         "update_configdrive service step), or use a store every conductor "
                         "reaches (swift, or [configdrive]http_root_shared)")
        return store.url_for(ref.location, node_uuid=self.node.uuid)

    def _image(self, record: DriveRecord) -> StoredImage:
        """The recorded drive with a fresh URL (and its key, if sealed)."""
        node = self.node
        if record.passthrough:
            ref = records.reference_of(node.instance_info.get("configdrive")) or {}
            # Nobody has seen its content: sha256 and size stay unknown (never 0 or "").
            return StoredImage(store=records.PASSTHROUGH, location="", url=str(ref["url"]),
                               sha256=None, size=None, encoding="")
        assert record.stored is not None
        stored = record.stored
        url = self._url_of(self._store_of(stored), stored)
        key = None
        if stored.sealed or stored.wrapped_key:
            if not stored.wrapped_key:
                raise InvalidMediaError(reason="the stored config drive is encrypted but its "
                                               "key is not recorded")
            ring = self._keyring()
            self.rewrap_keys(record, ring)
            assert record.stored is not None  # re-wrapping keeps every object
            stored = record.stored
            key = self._unwrap(ring, str(stored.wrapped_key))
        image_ = stored.image(url, key)
        return dataclasses.replace(image_, sealed=True) if key is not None else image_

    # -- keys ---------------------------------------------------------------------------------

    def _keyring(self) -> keys.Keyring:
        try:
            return keyring()
        except ConfigDriveError as exc:
            raise _error(self.node, "The config drive key files are not usable", exc,
                         "Fix [configdrive]key_file and old_key_files, then retry") from None

    def _unwrap(self, ring: keys.Keyring, wrapped: str) -> bytes:
        try:
            return ring.unwrap(wrapped)
        except ConfigDriveError as exc:
            raise _error(self.node, "Could not unwrap the config drive's key", exc,
                         KEY_ADVICE) from None

    def rewrap_keys(self, record: DriveRecord, ring: keys.Keyring | None = None) -> int:
        """Re-wrap with the current key-encryption key every drive key of ``record`` wrapped
        with a retired one, and persist the record if any was; return how many were.

        Done whenever the lifecycle touches a record (rebuild, update, takeover), and by
        ``ironic-configdrive-keys rewrap``, so a retired key can be dropped at last.
        """
        # Objects waiting to be deleted need no key: an unknown one must not block anything.
        forgotten = record.forget_stale_keys()
        rewrapped = 0
        if record.wrapped_keys():  # nothing encrypted: the key files are not needed
            ring = ring or self._keyring()
            try:
                rewrapped = record.map_wrapped_keys(ring.rewrap)
            except ConfigDriveError as exc:
                raise _error(self.node, "Could not re-wrap the config drive's key", exc,
                             KEY_ADVICE) from None
        if forgotten or rewrapped:
            self._persist(record)
        if ring is not None and rewrapped:
            LOG.info("Node %s: config drive key re-wrapped with the current key-encryption "
                     "key %s", self.node.uuid, ring.current.fingerprint)
        return forgotten + rewrapped

    # -- exposing -----------------------------------------------------------------------------

    def expose(self, record: DriveRecord, plan: ExposurePlan) -> None:
        """Undo earlier exposures, then expose the stored drive with a fresh URL."""
        node = self.node
        try:
            stored_image = self._image(record)
        except LifecycleError:
            raise
        except ConfigDriveError as exc:
            raise _error(node, "Could not get a URL for the stored config drive", exc,
                         "Check the config drive store and deploy again, passing the "
                         "config drive") from None
        # A rebuild, an update, a takeover: what was attached before goes first.
        self._detach_all(record, strict=True)
        sealed_image = stored_image
        if plan.needs_plain_copy(sealed=stored_image.sealed):
            stored_image = self._serve_copy(record, stored_image)
        erase_before = record.erase
        if plan.may_write_disk:
            # Bytes may reach the disk from here on, even if the write fails half-way.
            record.erase = records.Erase(partition.target_device(node))
            self._persist(record)
        try:
            mechanism, exposure = expose_loader.attach(self.task, plan, stored_image,
                                                       sealed_image)
        except ConfigDriveError as exc:
            expose_loader.rollback(self.task, plan)
            self.drain(record, "served")
            self._drop_stored(record)
            raise _error(node, "Could not expose the config drive", exc,
                         "The stored config drive was deleted; fix the cause above and "
                         "deploy again, passing the config drive") from None
        record.exposures.append(records.Exposure(mechanism, exposure))
        capabilities = expose_loader.capabilities_of(mechanism, node=node.uuid)
        if capabilities.takes_sealed:
            self.drain(record, "served")  # fell back to the agent: no BMC needs a copy
        if capabilities.writes_disk:
            record.erase = records.Erase(str(exposure.get("device")
                                             or partition.target_device(node)))
        else:
            record.erase = erase_before  # nothing reached the disk this time
        self._persist(record)
        LOG.info("Config drive of node %s exposed through %s", node.uuid, mechanism)

    def _serve_copy(self, record: DriveRecord, sealed_image: StoredImage) -> StoredImage:
        """Decrypt the stored drive into this conductor's http_root for a BMC.

        A BMC can neither decrypt nor be given a key, so it gets a plain copy, kept on the
        conductor's own disk (never in the shared store), recorded with this conductor as
        its holder before it is written, and deleted at detach.
        """
        assert sealed_image.key is not None
        try:
            raw = _fetch_verified(sealed_image.url, sealed_image.sha256, key=sealed_image.key)
            store = store_loader.get_store(SERVED_COPY_STORE)
            ref = self._put(record, store, raw, deploy_id=record.deploy_id,
                            encoding=IDENTITY)
            copy = ref.image(store.url_for(ref.location, node_uuid=self.node.uuid))
        except ConfigDriveError as exc:
            self._persist(record)
            self.drain(record, "stale")
            raise _error(self.node, "Could not prepare the decrypted copy of the config "
                                    "drive for virtual media", exc,
                         "Check [deploy]http_root/http_url and the store, then retry") \
                from None
        record.served.append(ref)
        self._persist(record)
        LOG.info("Config drive of node %s decrypted for virtual media into %s", self.node.uuid,
                 SERVED_COPY_STORE)
        return copy

    def _detach_all(self, record: DriveRecord, *, strict: bool) -> None:
        """Undo every recorded exposure; the served copies go whatever the BMC says.

        An exposure that cannot be undone stays recorded (so the next deploy refuses and
        teardown retries it); with ``strict`` the failure is raised after the copies went.
        """
        failures: list[str] = []
        for exposure in list(record.exposures):
            try:
                expose_loader.detach(self.task, exposure.mechanism, exposure.record)
            except ConfigDriveError as exc:
                failures.append(f"{exposure.mechanism}: {scrub(exc.message)}")
                continue
            record.exposures.remove(exposure)
            self._persist(record)
        # A BMC still showing the media reads a dead URL from now on: better than plaintext.
        self.drain(record, "served")
        if not failures:
            return
        LOG.warning("Node %s: could not undo the config drive exposure (%s); it stays "
                    "recorded and is retried", self.node.uuid, "; ".join(failures))
        if strict:
            raise _error(self.node, "The previous config drive is still attached",
                         "; ".join(failures),
                         "Its decrypted copy was deleted. Fix the BMC connection (or eject "
                         "the virtual media by hand), then retry: the detach is retried by "
                         "every deploy, rebuild and undeploy")

    # -- releasing ----------------------------------------------------------------------------

    def release(self, *, strict: bool) -> None:
        """Detach and delete everything recorded; keep only a pending erase. Idempotent.

        ``strict`` (teardown): an exposure that could not be undone fails the release after
        everything else was deleted, so the node is not handed on with the old media.
        """
        record = self.load()
        if record is None:
            return
        try:
            self._detach_all(record, strict=strict)
        finally:
            self._drop_stored(record)

    def _drop_stored(self, record: DriveRecord) -> None:
        if record.stored is not None:
            record.stale.append(record.stored)
            record.stored = None
            self._persist(record)
        self.drain(record, "stale")

    def drain(self, record: DriveRecord, which: str) -> int:
        """Delete the objects of ``record.<which>`` this conductor can act on; each goes from
        the record once gone. Objects held by another conductor move to ``stale`` for it.
        Returns how many are still recorded (failed, or held elsewhere)."""
        pending: list[StoredRef] = getattr(record, which)
        left = 0
        for ref in list(pending):
            try:
                store = self._store_of(ref)
                if ref.held_elsewhere(self.host, host_local=store.host_local):
                    if which != "stale":
                        pending.remove(ref)
                        record.stale.append(ref)
                        self._persist(record)
                    left += 1
                    continue
                store.delete(ref.location, node_uuid=self.node.uuid)
            except ConfigDriveError as exc:
                LOG.warning("Node %s: could not delete a stored config drive: %s; it stays "
                            "recorded and is retried by the reconciler", self.node.uuid,
                            scrub(exc.message))
                left += 1
                continue
            pending.remove(ref)
            self._persist(record)
        return left

    # -- erasing ------------------------------------------------------------------------------

    def erase(self) -> None:
        """Have the agent zero and remove the config-2 partition a deploy left on the disk."""
        node = self.node
        record = self.load()
        if record is None or record.erase is None:
            LOG.debug("Node %s: no config drive recorded on its disk, nothing to erase",
                      node.uuid)
            return
        device = record.erase.device
        try:
            # Strict, unlike detach: an unreachable agent must fail the step, not skip it.
            partition.PartitionExposer().remove(self.task, device)
        except ConfigDriveError as exc:
            raise _error(node, "Cleaning failed",
                         f"could not erase the config drive (it holds passwords and keys) "
                         f"from {device}: {exc.message}",
                         "Fix the cause and clean the node again") from None
        record.erase = None
        self._persist(record)
        LOG.info("Config drive of node %s erased from %s", node.uuid, device)

    def pending_erase(self) -> records.Erase | None:
        record = self.load()
        return None if record is None else record.erase

    def note_not_erased(self, message: str) -> None:
        record = self.load()
        if record is not None and record.erase is not None:
            record.erase.warning = message
            self._persist(record)

    # -- adopting (another conductor took the node over) --------------------------------------

    def adopt(self) -> str | None:
        """Re-serve what the previous conductor served; return a problem, or None.

        A BMC reading a copy from the old conductor's http_root would find a dead server at
        the instance's next boot: this conductor makes its own copy and re-inserts the media.
        Media served from a store every conductor reaches is left alone. The old holder's
        copy stays recorded as stale for its reconciler.
        """
        record = self.load()
        if record is None or record.passthrough:
            return None
        try:
            self.rewrap_keys(record)
        except ConfigDriveError as exc:
            return scrub(exc.message)
        reading = [e for e in record.exposures
                   if expose_loader.capabilities_of(e.mechanism, node=self.node.uuid)
                   .reads_url_while_attached]
        if not reading or not self._served_elsewhere(record):
            return None
        try:
            if record.stored is not None:
                # Out of reach: refuse before the media is ejected.
                self._url_of(self._store_of(record.stored), record.stored)
            self.expose(record, plan_for(self.node))
        except ConfigDriveError as exc:
            return scrub(exc.message)
        LOG.info("Config drive of node %s re-exposed by conductor %s after a takeover",
                 self.node.uuid, self.host)
        return None

    def _served_elsewhere(self, record: DriveRecord) -> bool:
        refs = record.served or ([record.stored] if record.stored is not None else [])
        for ref in refs:
            try:
                host_local = self._store_of(ref).host_local
            except ConfigDriveError:
                continue
            if ref.held_elsewhere(self.host, host_local=host_local):
                return True
        return False

