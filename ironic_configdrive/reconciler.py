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
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

from ironic_configdrive import lifecycle, records
from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.masking import scrub
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.store.base import ConfigDriveStore, Listed

LOG = logging.getLogger(__name__)
#: The [configdrive] options are registered by the deploy interface (conf.register_opts).
CONF = cfg.CONF

PURPOSE = "config drive reconciler"
_PAGE = 500


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


def _nodes(context: Any) -> Iterator[Any]:
    from ironic import objects

    marker = None
    while True:
        page = objects.Node.list(context, limit=_PAGE, marker=marker, sort_key="id",
                                 fields=["id", "uuid", "driver_internal_info"])
        yield from page
        if len(page) < _PAGE:
            return
        marker = page[-1].uuid


def _records(context: Any, counts: Counts) -> Iterator[tuple[str, records.DriveRecord]]:
    for node in _nodes(context):
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
    for node_uuid, record in _records(context, counts):
        referenced.update((ref.store, ref.location) for ref in record.objects())
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

    level = logging.INFO if (counts.orphans_deleted or counts.pending_deleted
                             or counts.failures) else logging.DEBUG
    LOG.log(level, "Config drive reconciler on %s: %s", host, counts.summary())
    return counts


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
