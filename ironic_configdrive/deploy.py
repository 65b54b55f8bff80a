"""The ``configdrive`` deploy interface: Ironic's direct deploy with the config drive made ours.

Upstream's agent deploy keeps writing the instance image. The config drive is taken over in
``write_image`` (before the agent is asked to write anything): normalised, built from JSON,
validated and stored, and ``instance_info['configdrive']`` is replaced by a reference to our
record, so upstream never builds, sends or writes it. The ``write_configdrive`` deploy step
(after ``write_image``, before ``prepare_instance_boot``) then exposes the stored image through
an exposure plugin. Everything done is recorded in ``driver_internal_info['configdrive']``;
cleanup, teardown and the ``erase_configdrive`` clean step work from that record alone.

Enable with ``enabled_deploy_interfaces = direct,configdrive``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from typing import Any

from ironic.common import exception, states
from ironic.conductor import steps as conductor_steps
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.conf import CONF
from ironic.drivers import base
from ironic.drivers.modules import agent

from ironic_configdrive import conf, image, keys, log_masking, records, source
from ironic_configdrive.expose import loader as expose_loader
from ironic_configdrive.expose import partition
from ironic_configdrive.image import formats, sealing
from ironic_configdrive.image.errors import ConfigDriveError, InvalidMediaError
from ironic_configdrive.masking import scrub
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.store.base import GZIP, IDENTITY, ConfigDriveStore, StoredImage
from ironic_configdrive.update_step import UpdateStepMixin

conf.register_opts(CONF)

LOG = logging.getLogger(__name__)

#: Runs before IPA's erase_devices_metadata (99) so the partition table still names the
#: config-2 partition, and before everything else of the default automated cleaning.
ERASE_PRIORITY = 105
WRITE_PRIORITY = 70

NODE_PROPERTIES = {
    "configdrive_exposure": "How the node sees its config drive: 'partition' (the agent "
                            "writes a config-2 partition), 'virtual_media' (Redfish virtual "
                            "media) or 'auto'. driver_info, or instance_info for one deploy. "
                            "Optional; defaults to [configdrive]exposure.",
    "configdrive_device": "Disk that receives the config-2 partition and is erased by the "
                          "erase_configdrive clean step: a /dev/ path, or 'root' for the "
                          "install device chosen by the node's root device hints. Optional; "
                          "defaults to 'root'.",
    "configdrive_format": "Filesystem of config drives built from the JSON form for this "
                          "node: 'iso9660' or 'vfat'. Optional; defaults to "
                          "[configdrive]format.",
}


def _node_option(node: Any, key: str) -> Any:
    """instance_info wins over driver_info (one deploy's wish over the operator's default)."""
    value = (node.instance_info or {}).get(key)
    if value in (None, ""):
        value = (node.driver_info or {}).get(key)
    return None if value == "" else value


def _fail(node: Any, what: str, exc: ConfigDriveError | str, advice: str) -> Exception:
    """An InstanceDeployFailure whose text says what failed, why and what to do."""
    reason = exc.message if isinstance(exc, ConfigDriveError) else exc
    return exception.InstanceDeployFailure(
        reason=f"{what} for node {node.uuid}: {scrub(reason)}. {advice}")


class ConfigDriveDeploy(UpdateStepMixin, agent.AgentDeploy):
    """Direct deploy whose config drive is built, stored and exposed by ironic-configdrive."""

    def __init__(self) -> None:
        super().__init__()
        # Ironic logs service steps with their arguments; ours may carry a config drive.
        log_masking.install()

    # -- interface metadata ---------------------------------------------------------------

    def get_properties(self) -> dict[str, str]:
        properties = dict(super().get_properties())
        properties.update(NODE_PROPERTIES)
        return properties

    def validate(self, task: Any) -> None:
        super().validate(task)
        node = task.node
        fmt = _node_option(node, "configdrive_format")
        if fmt is not None and fmt not in formats.FORMATS:
            raise exception.InvalidParameterValue(
                f"configdrive_format {fmt!r} of node {node.uuid} is not one of "
                f"{', '.join(formats.FORMATS)}; fix it in instance_info or driver_info")
        value = (node.instance_info or {}).get("configdrive")
        if value not in (None, "") and not isinstance(value, (str, dict)):
            raise exception.InvalidParameterValue(
                f"instance_info configdrive of node {node.uuid} must be a URL, gzip+base64 "
                f"text or a JSON object, not {type(value).__name__}")
        try:
            store_loader.get_store().validate()
        except ConfigDriveError as exc:
            raise exception.InvalidParameterValue(
                f"the config drive store is not usable: {scrub(exc.message)}") from None
        try:
            expose_loader.validate(task)
        except ConfigDriveError as exc:
            raise exception.InvalidParameterValue(scrub(exc.message)) from None
        if _serves_copies(node):
            try:
                store_loader.get_store(SERVED_COPY_STORE).validate()
            except ConfigDriveError as exc:
                raise exception.InvalidParameterValue(
                    f"node {node.uuid} may use virtual media with encrypted config drives, "
                    f"so the conductor must serve decrypted copies from [deploy]http_root: "
                    f"{scrub(exc.message)}; fix [deploy]http_root/http_url or set "
                    "[configdrive]encrypt_at_rest = False") from None

    # -- steps ----------------------------------------------------------------------------

    def get_clean_steps(self, task: Any) -> list[dict[str, Any]]:
        # The agent mixin lists only the agent's in-band steps; add our out-of-band one.
        return list(super().get_clean_steps(task)) + list(self.clean_steps)

    def execute_clean_step(self, task: Any, step: dict[str, Any]) -> Any:
        if conductor_steps.find_step(self.clean_steps, step):
            return self._execute_step(task, step)
        return super().execute_clean_step(task, step)

    def get_service_steps(self, task: Any) -> list[dict[str, Any]]:
        return list(super().get_service_steps(task)) + list(self.service_steps)

    def execute_service_step(self, task: Any, step: dict[str, Any]) -> Any:
        if conductor_steps.find_step(self.service_steps, step):
            return self._execute_step(task, step)
        return super().execute_service_step(task, step)

    @base.deploy_step(priority=80)
    @task_manager.require_exclusive_lock
    def write_image(self, task: Any) -> Any:
        """Take the config drive over, then let upstream write the image without it."""
        node = task.node
        self._take_over(task)
        instance_info = dict(node.instance_info)
        hidden = instance_info.pop("configdrive", None)
        node.instance_info = instance_info
        try:
            return super().write_image(task)
        finally:
            if hidden is not None:
                instance_info = dict(node.instance_info)
                instance_info["configdrive"] = hidden
                node.instance_info = instance_info
                node.save()

    @base.deploy_step(priority=WRITE_PRIORITY)
    @task_manager.require_exclusive_lock
    def write_configdrive(self, task: Any) -> None:
        """Expose the stored config drive to the node with a freshly signed URL."""
        record = self._take_over(task)
        if record is not None:
            self._expose(task, record)

    def _expose(self, task: Any, record: records.DriveRecord) -> None:
        """Undo earlier exposures, then expose the stored drive with a fresh URL."""
        node = task.node
        # A rebuild or an update: what was attached before goes first.
        self._detach_all(task, record, strict=True)
        try:
            stored_image = self._fresh_image(task, record)
        except ConfigDriveError as exc:
            raise _fail(node, "Could not get a URL for the stored config drive", exc,
                        "Check the config drive store and deploy again, passing the "
                        "config drive") from None
        mechanism = self._mechanism(task)
        sealed_image = stored_image
        if mechanism == expose_loader.VIRTUAL_MEDIA and stored_image.sealed:
            stored_image = self._serve_copy(task, record, stored_image)
        erase_before = record.erase
        if mechanism == expose_loader.PARTITION or _may_fall_back(node):
            # Bytes may reach the disk from here on, even if the write fails half-way.
            self._mark_for_erase(node, record, partition.target_device(node))
        try:
            exposure = expose_loader.attach_with_fallback(task, stored_image, sealed_image)
        except ConfigDriveError as exc:
            self._rollback(task, mechanism)
            self._delete_stored(task, record, "served")
            self._release_store(task, record)
            raise _fail(node, "Could not expose the config drive", exc,
                        "The stored config drive was deleted; fix the cause above and "
                        "deploy again, passing the config drive") from None
        name = str(exposure.get("mechanism") or mechanism)
        record.exposures.append(records.Exposure(name, exposure))
        if name != expose_loader.VIRTUAL_MEDIA:
            self._delete_stored(task, record, "served")  # fell back: no BMC needs it
        if name == expose_loader.PARTITION:
            record.erase = {"device": str(exposure.get("device")
                                          or partition.target_device(node))}
        else:
            record.erase = erase_before  # nothing reached the disk this time
        records.save(node, record)
        node.save()
        LOG.info("Config drive of node %s exposed through %s", node.uuid, name)

    @base.clean_step(priority=ERASE_PRIORITY, abortable=False, requires_ramdisk=True)
    def erase_configdrive(self, task: Any) -> None:
        """Have the agent zero and remove the config-2 partition a deploy left on the disk."""
        node = task.node
        record = records.load(node)
        if record is None or record.erase is None:
            LOG.debug("Node %s: no config drive recorded on its disk, nothing to erase",
                      node.uuid)
            return
        device = str(record.erase.get("device") or partition.ROOT_DEVICE)
        try:
            # Strict, unlike detach: an unreachable agent must fail the step, not skip it.
            partition.PartitionExposer().remove(task, device)
        except ConfigDriveError as exc:
            raise exception.NodeCleaningFailure(
                node=node.uuid,
                reason=f"could not erase the config drive (it holds passwords and keys) from "
                       f"{device}: {scrub(exc.message)}. Fix the cause and clean the node "
                       "again") from None
        record.erase = None
        records.save(node, None if _empty(record) else record)
        node.save()
        LOG.info("Config drive of node %s erased from %s", node.uuid, device)

    # -- cleanup --------------------------------------------------------------------------

    @task_manager.require_exclusive_lock
    def clean_up(self, task: Any) -> None:
        """Also detach and delete the config drive (deploy failure, undeploy)."""
        self._release(task)
        super().clean_up(task)

    @task_manager.require_exclusive_lock
    def tear_down(self, task: Any) -> Any:
        result = super().tear_down(task)
        self._release(task)
        self._warn_if_not_erased(task)
        return result

    # -- taking over ----------------------------------------------------------------------

    def _take_over(self, task: Any) -> records.DriveRecord | None:
        """Make instance_info['configdrive'] ours; return the record (None: no drive).

        Idempotent: a value that is already our reference is left alone, which is also how a
        rebuild without a new config drive reuses the stored one.
        """
        node = task.node
        value = (node.instance_info or {}).get("configdrive")
        old = records.load(node)
        if old is not None and old.matches(value):
            if old.stored is None and not old.passthrough:
                raise _fail(node, "The config drive is no longer stored",
                            "it was deleted after a failed deploy",
                            "Deploy again, passing the config drive")
            if (old.stored is not None and not old.stored.get("sealed")
                    and old.stored.get("encoding") != IDENTITY
                    and _store_encoding(task) == IDENTITY):
                # A rebuild after the node switched to virtual media: a BMC needs it raw.
                self._restore_raw(task, old)
            return old
        if value in (None, "", {}):
            if old is not None:
                # The new deploy has no config drive: the previous one's must not linger.
                self._release(task)
            return None
        if records.reference_of(value) is not None:
            raise _fail(node, "The config drive is not available",
                        "instance_info refers to a config drive this conductor has no record "
                        "of", "Deploy again, passing the config drive")
        fmt = _node_option(node, "configdrive_format") or CONF.configdrive.format
        try:
            src = source.normalise(
                value, node_uuid=node.uuid, node_name=node.name, fmt=fmt,
                cap=CONF.configdrive.max_size, cloudstack=CONF.configdrive.cloudstack_layout,
                allow_url_passthrough=CONF.configdrive.allow_url_passthrough)
            if src.image is not None:
                problems = image.validate(src.image)
                if problems:
                    raise InvalidMediaError(
                        reason="cloud-init would not use it: " + "; ".join(problems))
        except ConfigDriveError as exc:
            raise _fail(node, "The config drive is not usable", exc,
                        "Fix the config drive given to the deploy (ironic-configdrive "
                        "validate shows what is wrong) and deploy again") from None
        deploy_id = uuid.uuid4().hex
        new = (old.successor(deploy_id, passthrough=src.passthrough) if old is not None
               else records.DriveRecord(deploy_id=deploy_id, passthrough=src.passthrough))
        if src.image is not None:
            new.stored = self._store(task, src.image, new.deploy_id)
        # Record the new drive before touching the old one, so nothing is ever unrecorded.
        if old is not None and old.stored is not None:
            new.stale.append(old.stored)
        records.save(node, new)
        instance_info = dict(node.instance_info)
        instance_info["configdrive"] = new.reference(passthrough_url=src.passthrough_url)
        node.instance_info = instance_info
        node.save()
        self._delete_stale(task, new)
        LOG.info("Config drive of node %s taken over (%s input, deploy %s)", node.uuid,
                 src.kind, new.deploy_id)
        return new

    @staticmethod
    def _store(task: Any, raw: bytes, deploy_id: str) -> dict[str, Any]:
        """Store ``raw`` (sealed with a fresh key unless disabled); return its record."""
        node = task.node
        # First, as it refuses a bad mechanism before anything is stored.
        encoding = _store_encoding(task)
        key = sealing.new_key() if CONF.configdrive.encrypt_at_rest else None
        try:
            wrapped = None if key is None else keys.wrap(_kek(), key)
            stored = store_loader.get_store().put(
                node.uuid, raw, deploy_id=deploy_id,
                # Sealed drives are never shown to a BMC as stored: compress them.
                encoding=GZIP if key is not None else encoding, key=key)
        except ConfigDriveError as exc:
            raise _fail(node, "Could not store the config drive", exc,
                        "Check the [configdrive] store and key_file settings and deploy "
                        "again") from None
        data = stored.record()
        if wrapped is not None:
            data[WRAPPED_KEY] = wrapped
        return data

    def _serve_copy(self, task: Any, record: records.DriveRecord,
                    sealed_image: StoredImage) -> StoredImage:
        """Decrypt the stored drive into [deploy]http_root for a BMC; record the copy first.

        A BMC can neither decrypt nor be given a key, so it gets a plain copy, kept on the
        conductor's own disk (never in the shared store) and deleted at detach.
        """
        node = task.node
        assert sealed_image.key is not None
        try:
            raw = _fetch_verified(sealed_image.url, sealed_image.sha256, key=sealed_image.key)
            copy = store_loader.get_store(SERVED_COPY_STORE).put(
                node.uuid, raw, deploy_id=record.deploy_id, encoding=IDENTITY)
        except ConfigDriveError as exc:
            raise _fail(node, "Could not prepare the decrypted copy of the config drive for "
                              "virtual media", exc,
                        "Check [deploy]http_root/http_url and the store, then retry") \
                from None
        record.served.append(copy.record())
        records.save(node, record)
        node.save()
        LOG.info("Config drive of node %s decrypted for virtual media into %s", node.uuid,
                 SERVED_COPY_STORE)
        return copy

    def _restore_raw(self, task: Any, record: records.DriveRecord) -> None:
        """Replace the compressed stored drive by a raw copy (same deploy, same content)."""
        node = task.node
        assert record.stored is not None and record.location is not None
        try:
            store = _store_of(record.stored)
            raw = _fetch_verified(store.url_for(record.location, node_uuid=node.uuid),
                                  record.stored.get("sha256"))
            stored = store.put(node.uuid, raw, deploy_id=record.deploy_id,
                               encoding=IDENTITY)
        except ConfigDriveError as exc:
            raise _fail(node, "Could not store the config drive uncompressed for virtual "
                              "media", exc,
                        "Deploy again, passing the config drive") from None
        if stored.location != record.location:  # a store may reuse the name: keep it then
            record.stale.append(record.stored)
        record.stored = stored.record()
        records.save(node, record)
        node.save()
        self._delete_stale(task, record)
        LOG.info("Config drive of node %s stored again uncompressed for virtual media",
                 node.uuid)

    def _fresh_image(self, task: Any, record: records.DriveRecord) -> StoredImage:
        node = task.node
        if record.passthrough:
            ref = records.reference_of(node.instance_info.get("configdrive")) or {}
            # Nobody has seen its content: sha256 and size stay unknown (never 0 or "").
            return StoredImage(store=records.PASSTHROUGH, location="", url=str(ref["url"]),
                               sha256=None, size=None, encoding="")
        assert record.stored is not None and record.location is not None
        store = _store_of(record.stored)
        stored_image = record.stored_image(store.url_for(record.location, node_uuid=node.uuid))
        wrapped = record.stored.get(WRAPPED_KEY)
        if stored_image.sealed or wrapped:
            if not wrapped:
                raise InvalidMediaError(reason="the stored config drive is encrypted but its "
                                               "key is not recorded")
            kek_path = CONF.configdrive.key_file
            stored_image = dataclasses.replace(
                stored_image, sealed=True, key=keys.unwrap(_kek(), str(wrapped), path=kek_path))
        return stored_image

    # -- exposure -------------------------------------------------------------------------

    @staticmethod
    def _mechanism(task: Any) -> str:
        try:
            return expose_loader.choose_mechanism(task)
        except ConfigDriveError as exc:
            raise _fail(task.node, "Could not choose how to expose the config drive", exc,
                        "Fix configdrive_exposure or [configdrive]exposure") from None

    @staticmethod
    def _mark_for_erase(node: Any, record: records.DriveRecord, device: str) -> None:
        record.erase = {"device": device}
        records.save(node, record)
        node.save()

    @staticmethod
    def _rollback(task: Any, mechanism: str) -> None:
        names = [mechanism]
        if mechanism != expose_loader.PARTITION and _may_fall_back(task.node):
            names.append(expose_loader.PARTITION)
        for name in names:
            try:
                expose_loader.get_exposer(name, node=task.node.uuid).rollback(
                    task, {"mechanism": name})
            except ConfigDriveError as exc:
                LOG.warning("Node %s: rollback of the %s exposure failed: %s",
                            task.node.uuid, name, scrub(exc.message))

    def _detach_all(self, task: Any, record: records.DriveRecord, *, strict: bool) -> None:
        node = task.node
        while record.exposures:
            exposure = record.exposures[0]
            try:
                expose_loader.detach(task, exposure.record or {"mechanism":
                                                               exposure.mechanism})
            except ConfigDriveError as exc:
                if strict:
                    raise _fail(node, f"Could not detach the previous {exposure.mechanism} "
                                      "config drive", exc,
                                "Fix the cause and retry") from None
                LOG.warning("Node %s: could not detach the %s config drive: %s; it is kept "
                            "in the record to retry", node.uuid, exposure.mechanism,
                            scrub(exc.message))
                return
            record.exposures.pop(0)
            records.save(node, record)
            node.save()
        # Nothing attached any more: no BMC needs the decrypted copies.
        self._delete_stored(task, record, "served")

    # -- release --------------------------------------------------------------------------

    def _release(self, task: Any) -> None:
        """Detach and delete everything recorded; keep only a pending erase. Idempotent."""
        node = task.node
        record = records.load(node)
        if record is None:
            return
        self._detach_all(task, record, strict=False)
        self._release_store(task, record)
        records.save(node, None if _empty(record) else record)
        node.save()

    def _release_store(self, task: Any, record: records.DriveRecord) -> None:
        node = task.node
        if record.stored is not None:
            record.stale.append(record.stored)
            record.stored = None
            records.save(node, record)
            node.save()
        self._delete_stale(task, record)

    def _delete_stale(self, task: Any, record: records.DriveRecord) -> None:
        self._delete_stored(task, record, "stale")

    @staticmethod
    def _delete_stored(task: Any, record: records.DriveRecord, which: str) -> None:
        """Delete the objects listed in ``record.<which>``, each unrecorded once gone."""
        node = task.node
        pending: list[dict[str, Any]] = getattr(record, which)
        while pending:
            stored = pending[0]
            try:
                _store_of(stored).delete(str(stored.get("location")), node_uuid=node.uuid)
            except ConfigDriveError as exc:
                LOG.warning("Node %s: could not delete a stored config drive: %s; it stays "
                            "recorded and is retried at the next cleanup", node.uuid,
                            scrub(exc.message))
                return
            pending.pop(0)
            records.save(node, record)
            node.save()

    def _warn_if_not_erased(self, task: Any) -> None:
        node = task.node
        record = records.load(node)
        if record is None or record.erase is None:
            return
        if not manager_utils.skip_automated_cleaning(node):
            return
        message = (f"Automated cleaning is disabled for node {node.uuid}: its config drive "
                   f"(passwords, keys) stays readable on {record.erase.get('device')} until "
                   "you run the clean step deploy.erase_configdrive (manual cleaning) or "
                   "enable automated cleaning")
        LOG.warning(message)
        record.erase["warning"] = message
        records.save(node, record)
        manager_utils.node_history_record(node, event=message,
                                          event_type=states.UNPROVISION)
        node.save()


#: Where decrypted copies for virtual media go: the conductor's own [deploy]http_root.
SERVED_COPY_STORE = "http"
#: Key of the wrapped drive key in a stored record.
WRAPPED_KEY = "wrapped_key"


def _fetch_verified(url: str, sha256: str | None, *, key: bytes | None = None) -> bytes:
    """The raw drive stored at ``url`` (opened with ``key`` if sealed), checked by sha256."""
    raw = source.fetch(url, cap=CONF.configdrive.max_size, key=key)
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise InvalidMediaError(reason="the stored config drive does not match its recorded "
                                       "sha256")
    return raw


def _kek() -> bytes:
    return keys.load_kek(CONF.configdrive.key_file)


def _serves_copies(node: Any) -> bool:
    """Whether encrypted drives of ``node`` may need a decrypted copy for virtual media."""
    if not CONF.configdrive.encrypt_at_rest:
        return False
    try:
        requested = expose_loader.requested_mechanism(node)
    except ConfigDriveError:
        return False
    return requested in (expose_loader.VIRTUAL_MEDIA, expose_loader.AUTO)


def _store_encoding(task: Any) -> str:
    """How to store the drive: raw whenever virtual media may show it, else compressed.

    A BMC cannot decompress, so ``virtual_media`` and ``auto`` (which may pick it) get the
    raw image; the agent decodes either, so a fallback to the partition mechanism still
    works. Everything else gets gzip (smaller to store and to send to the agent).
    """
    try:
        requested = expose_loader.requested_mechanism(task.node)
    except ConfigDriveError as exc:
        # Before anything is stored: a bad mechanism must not leave an object behind.
        raise _fail(task.node, "Could not choose how to expose the config drive", exc,
                    "Fix configdrive_exposure or [configdrive]exposure") from None
    if requested in (expose_loader.VIRTUAL_MEDIA, expose_loader.AUTO):
        return IDENTITY
    return GZIP


def _may_fall_back(node: Any) -> bool:
    """Whether a virtual media attach for ``node`` may end up writing a partition."""
    try:
        requested = expose_loader.requested_mechanism(node)
    except ConfigDriveError:
        return False
    return (requested == expose_loader.AUTO
            or CONF.configdrive.virtual_media_fallback == expose_loader.PARTITION)


def _store_of(stored: dict[str, Any]) -> ConfigDriveStore:
    return store_loader.get_store(str(stored.get("store")))


def _empty(record: records.DriveRecord) -> bool:
    return (record.stored is None and not record.exposures and not record.stale
            and not record.served and record.erase is None)
