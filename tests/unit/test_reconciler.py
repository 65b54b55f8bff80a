"""The reconciler inside Ironic's test machinery: orphans, pending deletes, holders, bounds."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import logging
import os

import fixtures
from ironic.conductor import task_manager
from ironic.drivers.modules import agent_client  # noqa: F401

from ironic_configdrive import keys, reconciler, records
from ironic_configdrive.store.base import Listed
from tests.unit.test_deploy import FakeStore
from tests.unit.test_lifecycle import LifecycleTestBase

STRAY = "c/00000000-0000-0000-0000-000000000000-00000000000000000000000000000000-gzip"


class TestReconciler(LifecycleTestBase):
    def _run(self) -> reconciler.Counts:
        return reconciler.run(self.context)

    def test_unreferenced_objects_go_referenced_stay(self) -> None:
        self._deploy()
        self.shared.objects[STRAY] = b"left by a crash"
        counts = self._run()
        self.assertEqual(1, counts.orphans_deleted)
        self.assertEqual(1, counts.referenced)
        self.assertNotIn(STRAY, self.shared.objects)
        record = self._record()
        assert record is not None and record.stored is not None
        self.assertIn(record.stored.location, self.shared.objects)

    def test_young_objects_are_spared(self) -> None:
        self.config(reconcile_grace=7200, group="configdrive")  # FakeStore says 1 h old
        self.shared.objects[STRAY] = b"being written"
        counts = self._run()
        self.assertEqual((1, 0), (counts.too_young, counts.orphans_deleted))
        self.assertIn(STRAY, self.shared.objects)

    def test_a_deleted_nodes_objects_go(self) -> None:
        self._deploy()
        self.node.destroy()
        counts = self._run()
        self.assertEqual(1, counts.orphans_deleted)
        self.assertEqual({}, self.shared.objects)

    def test_recorded_deletes_are_retried_and_the_record_dropped(self) -> None:
        self._deploy()
        record = self._record()
        assert record is not None and record.stored is not None
        # A teardown whose delete failed: the object stays recorded as stale.
        record.stale.append(record.stored)
        record.stored = None
        record.exposures = []
        record.erase = None
        records.save(self.node, record)
        self.node.save()
        counts = self._run()
        self.assertEqual(1, counts.pending_deleted)
        self.assertEqual({}, self.shared.objects)
        self.assertIsNone(self._record())

    def test_a_busy_node_waits_for_the_next_run(self) -> None:
        self._deploy()
        record = self._record()
        assert record is not None and record.stored is not None
        record.stale.append(records.StoredRef(store="shared", location=STRAY))
        records.save(self.node, record)
        self.node.save()
        self.shared.objects[STRAY] = b"x"
        with task_manager.acquire(self.context, self.node.uuid, shared=False):
            counts = self._run()
        self.assertEqual((1, 0), (counts.nodes_busy, counts.pending_deleted))
        self.assertIn(STRAY, self.shared.objects)
        self.assertEqual(1, self._run().pending_deleted)

    def test_other_holders_files_are_left_to_them(self) -> None:
        self._deploy()
        record = self._record()
        assert record is not None
        theirs = records.StoredRef(store="http", location="cd/theirs.iso", holder="conductor-z")
        record.stale.append(theirs)
        records.save(self.node, record)
        self.node.save()
        self.local.objects["cd/theirs.iso"] = b"plain"
        counts = self._run()
        self.assertEqual(0, counts.pending_deleted)
        self.assertIn("cd/theirs.iso", self.local.objects)

    def test_work_per_run_is_bounded(self) -> None:
        self.config(reconcile_limit=3, group="configdrive")
        for n in range(5):
            self.shared.objects[STRAY[:-1] + str(n)] = b"x"
        self.assertEqual(3, self._run().orphans_deleted)
        self.assertEqual(2, self._run().orphans_deleted)

    def test_a_failing_store_is_counted_and_logged_without_names(self) -> None:
        self.shared.objects[STRAY] = b"x"
        logs = self.useFixture(fixtures.FakeLogger(level=logging.INFO))

        def broken(self: FakeStore, *, limit: int) -> list[Listed]:
            from ironic_configdrive.store.base import StoreError

            raise StoreError(store="shared", node="<any>", reason="proxy down")

        self.useFixture(fixtures.MockPatchObject(FakeStore, "list_stored", broken))
        counts = self._run()
        self.assertEqual(2, counts.failures)  # both stores are FakeStores here
        self.assertIn("proxy down", logs.output)
        self.assertIn("failures 2", logs.output)
        self.assertNotIn(STRAY, logs.output)

    def test_runs_as_a_periodic_task_on_every_conductor_also_at_start(self) -> None:
        from ironic.conductor import periodics

        with task_manager.acquire(self.context, self.node.uuid) as task:
            method = task.driver.deploy.reconcile_configdrives
        periodics.refresh_periodic_attributes(method)
        self.assertTrue(method._is_periodic)
        self.assertEqual(600, method._periodic_spacing)
        self.assertTrue(method._periodic_run_immediately)
        self.config(reconcile_interval=0, group="configdrive")
        periodics.refresh_periodic_attributes(method)
        self.assertFalse(method._is_periodic)


class TestKeyCheck(LifecycleTestBase):
    """A conductor whose key file differs from the others' says so when it starts."""

    def setUp(self) -> None:
        super().setUp()
        self.config(encrypt_at_rest=True, group="configdrive")
        self.logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.first = str(reconciler.CONF.configdrive.key_file)

    def test_a_conductor_with_another_key_warns(self) -> None:
        self._deploy()
        theirs = keys.read_kek(self.first, create=False)
        self.assertEqual(0, reconciler.run(self.context).nodes_on_unknown_keys)
        mine = keys.read_kek(self.first + ".mine", create=True)  # a state_path that got lost
        self.config(key_file=mine.path, group="configdrive")
        counts = reconciler.run(self.context)
        self.assertEqual(1, counts.nodes_on_unknown_keys)
        self.assertIn(f"fingerprints {theirs.fingerprint}; this conductor has "
                      f"{mine.fingerprint} in {mine.path}", self.logs.output)
        self.assertIn("same [configdrive]key_file", self.logs.output)
        self.assertNotIn(theirs.material.hex(), self.logs.output)
        # Listed as a retired key, it is known again.
        self.config(old_key_files=[self.first], group="configdrive")
        self.assertEqual(0, reconciler.run(self.context).nodes_on_unknown_keys)

    def test_a_missing_key_file_is_reported_not_created(self) -> None:
        self._deploy()
        self.config(key_file=self.first + ".gone", group="configdrive")
        self.assertEqual(1, reconciler.run(self.context).nodes_on_unknown_keys)
        self.assertIn(f"no usable key (config drive encryption key problem: the key file "
                      f"{self.first}.gone does not exist", self.logs.output)
        self.assertFalse(os.path.exists(self.first + ".gone"))

    def test_no_encrypted_drive_needs_no_key_file(self) -> None:
        self.config(encrypt_at_rest=False, key_file=self.first + ".never",
                    group="configdrive")
        self._deploy()
        self.assertEqual(0, reconciler.run(self.context).nodes_on_unknown_keys)
        self.assertFalse(os.path.exists(self.first + ".never"))
