"""The reconciler: stored config drives that no record names are deleted, recorded deletes retried.

Runs on every conductor as a periodic task of the deploy interface (also when the conductor
starts). Each run:

1. lists the objects of ours in every store in use (a host-local store lists this host's
   files only), *before* reading the records: an object is recorded before it is written,
   so anything listed is named by a record read afterwards, unless it is garbage;
2. reads every node's record;
3. deletes what is listed but named by no record and older than ``[configdrive]
   reconcile_grace`` (crashes, deleted nodes, failed teardowns, takeovers);
4. for nodes whose record still lists objects to delete that this conductor can act on
   (shared stores, or files it holds), takes the node's lock without waiting and deletes
   them (a busy node waits for the next run).

Work per run is bounded by ``[configdrive]reconcile_limit``. Only counts are logged: stored
names can be secrets (the http store's).

Each run also checks that this conductor has every key-encryption key the records' drive
keys are wrapped with (by fingerprint): a conductor whose key file differs from the others'
(a new one made up on a state_path that did not persist) says so at its start, not at the
next rebuild.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

from ironic_configdrive import keys, lifecycle, records
from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.masking import scrub
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.store.base import ConfigDriveStore, Listed

LOG = logging.getLogger(__name__)
#: The [configdrive] options are registered by the deploy interface (conf.register_opts).
CONF = cfg.CONF

PURPOSE = "config drive reconciler"


@dataclasses.dataclass
class Counts:
    """What one run did; logged, and returned for tests and operators."""

    listed: int = 0
    referenced: int = 0
    too_young: int = 0
    orphans_deleted: int = 0
    pending_deleted: int = 0
    pending_left: int = 0
    nodes_busy: int = 0
    failures: int = 0
    #: Nodes whose drive key is wrapped with a key-encryption key this conductor lacks.
    nodes_on_unknown_keys: int = 0

    def summary(self) -> str:
        return ", ".join(f"{field.name.replace('_', ' ')} {getattr(self, field.name)}"
                         for field in dataclasses.fields(self))


def _stores() -> dict[str, ConfigDriveStore]:
    names = {str(CONF.configdrive.store), lifecycle.SERVED_COPY_STORE}
    stores = {}
    for name in sorted(names):
        try:
            stores[name] = store_loader.get_store(name)
        except ConfigDriveError as exc:
            # The served-copy store is optional when nothing uses virtual media.
            LOG.debug("Reconciler: store %s not usable here: %s", name, scrub(exc.message))
    return stores


def _records(context: Any, counts: Counts) -> Iterator[tuple[str, records.DriveRecord]]:
    for node in records.iter_nodes(context):
        try:
            record = records.load(node)
        except ConfigDriveError as exc:
            counts.failures += 1
            LOG.warning("Reconciler: node %s has an unreadable config drive record (%s); its "
                        "objects are kept", node.uuid, exc.message)
            continue
        if record is not None:
            yield node.uuid, record


def run(context: Any) -> Counts:
    """One reconciliation pass for this conductor."""
    host = lifecycle.host()
    limit = int(CONF.configdrive.reconcile_limit)
    grace = float(CONF.configdrive.reconcile_grace)
    counts = Counts()
    stores = _stores()
    listed: dict[str, list[Listed]] = {}
    for name, store in stores.items():
        try:
            listed[name] = store.list_stored(limit=limit)
        except ConfigDriveError as exc:
            counts.failures += 1
            LOG.warning("Reconciler: cannot list store %s: %s", name, scrub(exc.message))
    counts.listed = sum(len(entries) for entries in listed.values())

    referenced: set[tuple[str, str]] = set()
    pending: list[str] = []
    key_users: collections.Counter[str] = collections.Counter()
    for node_uuid, record in _records(context, counts):
        referenced.update((ref.store, ref.location) for ref in record.objects())
        key_users.update({keys.fingerprint_of(ref.wrapped_key)
                          for ref in (record.stored, *record.served)
                          if ref is not None and ref.wrapped_key})
        if any(_can_delete(stores, ref, host) for ref in record.stale):
            pending.append(node_uuid)

    for name, entries in listed.items():
        for entry in entries:
            if (name, entry.location) in referenced:
                counts.referenced += 1
            elif entry.age is not None and entry.age < grace:
                counts.too_young += 1
            else:
                _delete_orphan(stores[name], entry, counts)

    for node_uuid in pending[:limit]:
        _drain(context, node_uuid, counts)

    _check_keys(key_users, counts)

    level = logging.INFO if (counts.orphans_deleted or counts.pending_deleted
                             or counts.failures) else logging.DEBUG
    LOG.log(level, "Config drive reconciler on %s: %s", host, counts.summary())
    return counts


def _check_keys(key_users: collections.Counter[str], counts: Counts) -> None:
    """Warn when nodes use key-encryption keys this conductor does not have."""
    if not key_users:
        return  # nothing encrypted yet: no key file needed
    try:
        ring = keys.load_keyring(CONF.configdrive.key_file, CONF.configdrive.old_key_files,
                                 create=False)
    except ConfigDriveError as exc:
        have, known = f"no usable key ({exc.message})", set()
    else:
        known = set(ring.by_fingerprint())
        have = ", ".join(f"{kek.fingerprint} in {kek.path}"
                         for kek in ring.by_fingerprint().values())
    unknown = {fp: users for fp, users in key_users.items() if fp not in known}
    if not unknown:
        return
    counts.nodes_on_unknown_keys = sum(unknown.values())
    LOG.warning("Config drive keys of %d node(s) are wrapped with key-encryption keys this "
                "conductor does not have (fingerprints %s; this conductor has %s): their "
                "drives cannot be rebuilt, updated or re-exposed here. Give every conductor "
                "the same [configdrive]key_file and list retired keys in "
                "[configdrive]old_key_files ('ironic-configdrive-keys status' shows the "
                "fingerprints in use)", counts.nodes_on_unknown_keys,
                ", ".join(sorted(unknown)), have)


def _can_delete(stores: dict[str, ConfigDriveStore], ref: records.StoredRef,
                host: str) -> bool:
    store = stores.get(ref.store)
    return store is not None and not ref.held_elsewhere(host, host_local=store.host_local)


def _delete_orphan(store: ConfigDriveStore, entry: Listed, counts: Counts) -> None:
    try:
        store.delete(entry.location, node_uuid=entry.node_uuid)
    except ConfigDriveError as exc:
        counts.failures += 1
        LOG.warning("Reconciler: could not delete an unreferenced config drive of node %s "
                    "from store %s: %s", entry.node_uuid, store.name, scrub(exc.message))
        return
    counts.orphans_deleted += 1


def _drain(context: Any, node_uuid: str, counts: Counts) -> None:
    from ironic.common import exception
    from ironic.conductor import task_manager

    try:
        with task_manager.acquire(context, node_uuid, shared=False, purpose=PURPOSE,
                                  retry=False) as task:
            drive = lifecycle.DriveLifecycle(task)
            record = drive.load()
            if record is None:
                return
            before = len(record.stale)
            left = drive.drain(record, "stale")
            counts.pending_deleted += before - len(record.stale)
            counts.pending_left += left
    except (exception.NodeLocked, exception.NodeNotFound):
        counts.nodes_busy += 1
