"""The drive's lifecycle across conductors and failures, inside Ironic's own test machinery.

Holders of host-local files, failed ejects, takeovers and crash windows; the reconciler has
its own module (test_reconciler.py). The stores and exposers are the fakes of test_deploy.py:
one shared store (Swift-like) and one host-local store (the http store's files).
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import dataclasses
import logging
import os
from typing import Any
from unittest import mock

import fixtures
from ironic.common import exception, states
from ironic.conductor import task_manager
from ironic import objects

from ironic_configdrive import keys, lifecycle, records
from ironic_configdrive.expose.base import ExposureError
from ironic_configdrive.image import sealing
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.store.base import StoredImage, StoreError
from tests.unit.test_deploy import JSON_DRIVE, DeployTestBase, FakeStore

OTHER_DRIVE = {**JSON_DRIVE, "meta_data": {"name": "other"}}


class LifecycleTestBase(DeployTestBase):
    """Two stores: ``shared`` for the drive (any conductor reaches it) and ``local`` for
    files in this conductor's http_root (decrypted copies, or drives of the http store)."""

    drive_store = "shared"

    def setUp(self) -> None:
        super().setUp()
        self.shared = FakeStore()
        self.shared.name = "shared"
        self.local = FakeStore()
        self.local.name = "http"
        self.local.host_local = True
        self.stores = {"shared": self.shared, "http": self.local}
        self.config(store=self.drive_store, group="configdrive")
        self.useFixture(fixtures.MockPatchObject(
            store_loader, "get_store",
            lambda name=None: self.stores[name or self.drive_store]))
        self.config(host="conductor-a")
        self.vm = self.exposers["virtual_media"]
        self.useFixture(fixtures.MockPatchObject(lifecycle.source, "fetch", self._fetch))

    def _fetch(self, url: str, *, cap: int, key: bytes | None = None, **_: Any) -> bytes:
        """What source.fetch does, from the fake stores' objects (sealed or not)."""
        location = url.split("http://store.test/", 1)[1].split("?", 1)[0]
        data = {**self.shared.objects, **self.local.objects}[location]
        return sealing.open_sealed(data, key) if key is not None else data

    def _virtual_media(self) -> None:
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    encrypt_at_rest=True, group="configdrive")

    def _as(self, host: str) -> None:
        self.config(host=host)

    def _tear_down(self) -> Any:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            return task.driver.deploy.tear_down(task)

    def _take_over(self) -> None:
        self.node.refresh()
        self.node.provision_state = states.ACTIVE
        self.node.target_provision_state = None
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.take_over(task)


class TestFailedEject(LifecycleTestBase):
    def test_teardown_fails_after_deleting_every_copy(self) -> None:
        self._virtual_media()
        self._deploy()
        self.assertEqual(1, len(self.local.objects))  # the decrypted copy for the BMC
        self.vm.detach = mock.Mock(side_effect=ExposureError(  # type: ignore[method-assign]
            mechanism="virtual_media", node=self.node.uuid, reason="BMC answered 500"))
        exc = self.assertRaises(exception.InstanceDeployFailure, self._tear_down)
        self.assertIn("still attached", str(exc))
        self.assertIn("BMC answered 500", str(exc))
        self.assertIn("eject the virtual media by hand", str(exc))
        self.assertEqual({}, self.local.objects)  # no plaintext served any more
        self.assertEqual({}, self.shared.objects)
        record = self._record()
        assert record is not None
        self.assertEqual(["virtual_media"], [e.mechanism for e in record.exposures])
        self.assertEqual([], record.served)

    def test_next_deploy_refuses_until_the_media_is_gone(self) -> None:
        self._virtual_media()
        self._deploy()
        self.vm.detach = mock.Mock(side_effect=ExposureError(  # type: ignore[method-assign]
            mechanism="virtual_media", node=self.node.uuid, reason="BMC unreachable"))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)  # lenient: keeps the exposure recorded
        self.node.refresh()
        self.node.instance_info = dict(self.node.instance_info, configdrive=OTHER_DRIVE)
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_image, task)
        self.assertIn("previous config drive is still attached", str(exc))
        self.assertEqual({}, self.shared.objects)  # nothing new stored
        # The BMC is back: the same deploy goes through, detaching first.
        del self.vm.detach
        self.node.instance_info = dict(self.node.instance_info, configdrive=OTHER_DRIVE)
        self.node.save()
        self._deploy()
        record = self._record()
        assert record is not None
        self.assertEqual(1, len(record.exposures))
        self.assertEqual(1, len(self.vm.detached))


class TestHolders(LifecycleTestBase):
    drive_store = "http"

    def test_files_of_another_conductor_stay_recorded_for_it(self) -> None:
        self._virtual_media()
        self._deploy()
        self.assertEqual(2, len(self.local.objects))  # sealed drive and decrypted copy
        record = self._record()
        assert record is not None and record.stored is not None
        self.assertEqual({"conductor-a"}, {ref.holder for ref in record.objects()})
        self._as("conductor-b")
        self._tear_down()
        # conductor-b cannot reach conductor-a's disk: nothing deleted, nothing forgotten.
        self.assertEqual(2, len(self.local.objects))
        kept = self._record()
        assert kept is not None
        self.assertEqual(set(self.local.objects), {ref.location for ref in kept.stale})
        self.assertEqual([], kept.exposures)
        # Back on conductor-a, its reconciler deletes them and the record goes.
        from ironic_configdrive import reconciler

        self._as("conductor-a")
        counts = reconciler.run(self.context)
        self.assertEqual(2, counts.pending_deleted)
        self.assertEqual({}, self.local.objects)
        self.assertIsNone(self._record())

    def test_rebuild_elsewhere_without_a_drive_says_who_holds_it(self) -> None:
        self._deploy()
        self._as("conductor-b")
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_configdrive, task)
        self.assertIn("held by conductor conductor-a", str(exc))
        self.assertIn("passing the config drive", str(exc))

    def test_rebuild_elsewhere_with_a_new_drive_leaves_the_old_file_to_its_holder(
            self) -> None:
        self._deploy()
        old = self._record()
        assert old is not None and old.stored is not None
        self._as("conductor-b")
        self.node.instance_info = dict(self.node.instance_info, configdrive=OTHER_DRIVE)
        self.node.save()
        self._deploy()
        new = self._record()
        assert new is not None and new.stored is not None
        self.assertEqual("conductor-b", new.stored.holder)
        self.assertEqual([old.stored], new.stale)
        self.assertIn(old.stored.location, self.local.objects)


class TestTakeover(LifecycleTestBase):
    def test_virtual_media_is_served_again_by_the_new_conductor(self) -> None:
        self._virtual_media()
        self._deploy()
        before = self._record()
        assert before is not None
        [old_copy] = before.served
        self._as("conductor-b")
        self._take_over()
        after = self._record()
        assert after is not None
        [new_copy] = after.served
        self.assertEqual("conductor-b", new_copy.holder)
        self.assertEqual([old_copy], after.stale)  # for conductor-a's reconciler
        self.assertIn(old_copy.location, self.local.objects)  # not ours to delete
        self.assertEqual([before.exposures[0].record], self.vm.detached)
        self.assertEqual(new_copy.location, self.vm.attached[-1].location)
        self.assertEqual(2, len(self.vm.attached))

    def test_media_from_a_shared_store_is_left_alone(self) -> None:
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    encrypt_at_rest=False, group="configdrive")
        self._deploy()
        self._as("conductor-b")
        self._take_over()
        self.assertEqual([], self.vm.detached)
        self.assertEqual(1, len(self.vm.attached))

    def test_partition_needs_nothing(self) -> None:
        self._deploy()
        self._as("conductor-b")
        self._take_over()
        self.assertEqual([], self.exposers["partition"].detached)


class TestTakeoverOfHostLocalDrives(LifecycleTestBase):
    drive_store = "http"

    def test_out_of_reach_is_reported_not_raised(self) -> None:
        self._virtual_media()
        self._deploy()
        self._as("conductor-b")
        self._take_over()  # must not raise: Ironic would retry the takeover forever
        self.node.refresh()
        self.assertIn("not re-exposed after a takeover", self.node.last_error)
        self.assertIn("held by conductor conductor-a", self.node.last_error)
        self.assertEqual([], self.vm.detached)  # the media was not ejected for nothing
        record = self._record()
        assert record is not None and len(record.exposures) == 1


class TestIntentFirst(LifecycleTestBase):
    def test_every_object_is_recorded_before_it_is_written(self) -> None:
        self._virtual_media()
        seen: list[tuple[str, bool]] = []

        def put(store: FakeStore, node_uuid: str, image: bytes, **kwargs: Any) -> StoredImage:
            node = objects.Node.get_by_uuid(self.context, node_uuid)  # what the DB holds
            record = records.load(node)
            recorded = record is not None and kwargs["location"] in {
                ref.location for ref in record.objects()}
            seen.append((kwargs["location"], recorded))
            return original(store, node_uuid, image, **kwargs)

        original = FakeStore.put
        with mock.patch.object(FakeStore, "put", autospec=True, side_effect=put):
            self._deploy()
        self.assertEqual(2, len(seen))  # the sealed drive, then the copy for the BMC
        self.assertEqual([True, True], [recorded for _, recorded in seen])

    def test_a_crash_after_the_write_leaves_a_recorded_object(self) -> None:
        def crash(store: FakeStore, node_uuid: str, image: bytes, **kwargs: Any) -> Any:
            original(store, node_uuid, image, **kwargs)
            raise RuntimeError("conductor died")

        original = FakeStore.put
        with mock.patch.object(FakeStore, "put", autospec=True, side_effect=crash), \
                task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(RuntimeError, lifecycle.DriveLifecycle(task).take_over)
        self.assertEqual(1, len(self.shared.objects))
        self.node.refresh()
        record = records.load(self.node)
        assert record is not None
        self.assertEqual(set(self.shared.objects), {ref.location for ref in record.stale})
        self.assertNotIn("SECRET", repr(self.node.instance_info))  # never saved in clear

    def test_a_failed_store_leaves_nothing(self) -> None:
        self.shared.fail_put = "503 from the proxy"
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_image, task)
        self.assertIn("503 from the proxy", str(exc))
        self.assertEqual({}, self.shared.objects)
        record = self._record()
        self.assertTrue(record is None or record.stale == [])

    def test_store_errors_keep_the_object_for_the_reconciler(self) -> None:
        self._deploy()
        with mock.patch.object(FakeStore, "delete", autospec=True,
                               side_effect=StoreError(store="shared", node="n", reason="503")):
            self._tear_down()
        record = self._record()
        assert record is not None
        self.assertEqual(set(self.shared.objects), {ref.location for ref in record.stale})

    def test_a_failed_store_on_rebuild_keeps_the_previous_drive(self) -> None:
        self._deploy()
        before = self._record()
        assert before is not None and before.stored is not None
        self.node.instance_info = dict(self.node.instance_info, configdrive=OTHER_DRIVE)
        self.node.save()
        self.shared.fail_put = "507 insufficient storage"
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(exception.InstanceDeployFailure,
                              task.driver.deploy.write_image, task)
        after = self._record()
        assert after is not None
        self.assertEqual(before.stored, after.stored)
        self.assertEqual([], after.stale)
        self.assertEqual([before.stored.location], list(self.shared.objects))
        self.assertTrue(before.matches(self.node.instance_info["configdrive"]))
        # Nothing changed: a rebuild without a new drive still finds the previous one.
        self.shared.fail_put = None
        self._write_configdrive()
        self.assertEqual(before.stored.sha256, self.exposers["partition"].attached[-1].sha256)


class TestValidation(LifecycleTestBase):
    """A drive built here is not parsed again (the rules it was built by are validate's);
    a drive from elsewhere is."""

    def _validated(self) -> list[bytes]:
        calls: list[bytes] = []
        real = lifecycle.image.inspect

        def spy(raw: bytes) -> Any:
            calls.append(raw)
            return real(raw)

        self.useFixture(fixtures.MockPatchObject(lifecycle.image, "inspect", spy))
        return calls

    def test_a_drive_built_from_json_is_not_parsed_again(self) -> None:
        calls = self._validated()
        self._deploy()
        self.assertEqual([], calls)
        self.assertIsNotNone(self._record())

    def test_a_foreign_drive_is_validated(self) -> None:
        from ironic_configdrive import image

        raw = image.build_image(JSON_DRIVE, node_uuid=self.node.uuid)
        self.node = self._node(image.pack(raw))
        calls = self._validated()
        self._deploy()
        self.assertEqual([raw], calls)


class TestKeyRotation(LifecycleTestBase):
    """``key_file`` replaced, the retired one in ``old_key_files``: records wrapped with it
    keep working and are re-wrapped with the current key whenever they are touched."""

    def setUp(self) -> None:
        super().setUp()
        self.config(encrypt_at_rest=True, group="configdrive")
        self.old_path = str(lifecycle.CONF.configdrive.key_file)
        self.new_path = self.old_path + ".new"
        self.logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def _rotate(self, *, keep_old: bool = True) -> tuple[str, str]:
        """(old fingerprint, new fingerprint)."""
        old = keys.read_kek(self.old_path, create=False).fingerprint
        new = keys.read_kek(self.new_path, create=True).fingerprint
        self.config(key_file=self.new_path, old_key_files=[self.old_path] if keep_old else [],
                    group="configdrive")
        return old, new

    def _fingerprints(self) -> set[str]:
        record = self._record()
        assert record is not None
        return {keys.fingerprint_of(wrapped) for wrapped in record.wrapped_keys()}

    def _drive_key(self) -> bytes:
        key = self.exposers["partition"].attached[-1].key
        assert key is not None
        return key

    def test_rebuild_unwraps_the_old_key_and_rewraps_with_the_new(self) -> None:
        self._deploy()
        drive_key = self._drive_key()
        old, new = self._rotate()
        self.assertEqual({old}, self._fingerprints())
        self._deploy()  # rebuild without a new drive: the stored one, its key
        self.assertEqual(drive_key, self._drive_key())
        self.assertEqual({new}, self._fingerprints())  # persisted: read back from the DB
        record = self._record()
        assert record is not None and record.stored is not None
        current_only = keys.Keyring(keys.read_kek(self.new_path, create=False))
        self.assertEqual(drive_key, current_only.unwrap(str(record.stored.wrapped_key)))
        self.assertIn(new, self.logs.output)
        self.assertNotIn(drive_key.hex(), self.logs.output)

    def test_a_new_drive_after_rotation_uses_the_new_key_only(self) -> None:
        self._deploy()
        _, new = self._rotate()
        self.node.refresh()
        self.node.instance_info = dict(self.node.instance_info, configdrive=OTHER_DRIVE)
        self.node.save()
        self._deploy()
        self.assertEqual({new}, self._fingerprints())
        self.assertEqual(1, len(self.shared.objects))

    def test_objects_waiting_for_deletion_lose_their_wrapped_key(self) -> None:
        self._deploy()
        record = self._record()
        assert record is not None and record.stored is not None
        record.stale.append(dataclasses.replace(record.stored, location="c/left-over"))
        records.persist(self.node, record)
        _, new = self._rotate(keep_old=False)  # their key is gone: that must not matter
        record = self._record()
        assert record is not None
        with task_manager.acquire(self.context, self.node.uuid) as task:
            drive = lifecycle.DriveLifecycle(task)
            record.stored = None
            self.assertEqual(1, drive.rewrap_keys(record))
        record = self._record()
        assert record is not None
        self.assertEqual([None], [ref.wrapped_key for ref in record.stale])

    def test_takeover_rewraps(self) -> None:
        self._deploy()
        _, new = self._rotate()
        self._as("conductor-b")
        self._take_over()
        self.assertEqual({new}, self._fingerprints())
        self.node.refresh()
        self.assertIsNone(self.node.last_error)

    def test_virtual_media_reexposure_rewraps(self) -> None:
        self._virtual_media()
        self._deploy()
        plain = self.vm.attached[-1]
        _, new = self._rotate()
        self._as("conductor-b")
        self._take_over()  # re-serves a decrypted copy from conductor-b's http root
        self.assertEqual(2, len(self.vm.attached))
        self.assertEqual(plain.sha256, self.vm.attached[-1].sha256)
        self.assertEqual({new}, self._fingerprints())

    def test_unknown_key_is_a_clear_error_naming_node_and_fingerprints(self) -> None:
        self._deploy()
        drive_key = self._drive_key()
        old, new = self._rotate(keep_old=False)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_configdrive, task)
        message = str(exc)
        self.assertIn(self.node.uuid, message)
        self.assertIn(f"fingerprint {old}", message)
        self.assertIn(f"{new} in {self.new_path}", message)
        self.assertIn("[configdrive]old_key_files", message)
        self.assertIn("ironic-configdrive-keys status", message)
        self.assertNotIn(drive_key.hex(), message + self.logs.output)
        self.assertEqual({old}, self._fingerprints())  # left as it was

    def test_takeover_of_an_unencrypted_drive_needs_no_key_file(self) -> None:
        self.config(encrypt_at_rest=False, group="configdrive")
        self._deploy()
        self.config(key_file=self.old_path + ".absent", key_file_create=False,
                    group="configdrive")
        self._as("conductor-b")
        self._take_over()
        self.node.refresh()
        self.assertIsNone(self.node.last_error)
        self.assertFalse(os.path.exists(self.old_path + ".absent"))

    def test_takeover_with_an_unknown_key_is_reported_not_raised(self) -> None:
        self._deploy()
        old, _ = self._rotate(keep_old=False)
        self._as("conductor-b")
        self._take_over()
        self.node.refresh()
        self.assertIn("another key-encryption key", self.node.last_error)
        self.assertIn(old, self.node.last_error)

    def test_an_unsafe_key_file_fails_the_deploy_clearly(self) -> None:
        self._deploy()
        os.chmod(self.old_path, 0o644)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_configdrive, task)
        self.assertIn(self.node.uuid, str(exc))
        self.assertIn(f"chmod 600 {self.old_path}", str(exc))
