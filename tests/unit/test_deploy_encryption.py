"""Encryption at rest in the deploy interface: sealed objects, wrapped keys, served copies."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import hashlib
import json
import os
from typing import Any

import fixtures
from ironic.common import exception
from ironic.conductor import task_manager

from ironic_configdrive import deploy, keys, lifecycle
from ironic_configdrive.expose.base import ExposureError
from ironic_configdrive.image import sealing
from ironic_configdrive.store import loader as store_loader
from tests.unit.test_deploy import SECRET, SIGNATURE, DeployTestBase, FakeStore


class FakeHttpStore(FakeStore):
    name = "http"


class EncryptionTestBase(DeployTestBase):
    def setUp(self) -> None:
        super().setUp()
        self.config(encrypt_at_rest=True, group="configdrive")
        self.fetched: list[str] = []
        self.useFixture(fixtures.MockPatchObject(lifecycle.source, "fetch", self._fetch))

    def _fetch(self, url: str, *, cap: int, key: bytes | None = None, **_: Any) -> bytes:
        """What source.fetch does, from the fake store's objects (sealed or not)."""
        self.fetched.append(url)
        location = url.split("http://store.test/", 1)[1].split("?", 1)[0]
        data = self.store.objects[location]
        return sealing.open_sealed(data, key) if key is not None else data

    def _sealed_objects(self) -> list[bytes]:
        return [data for data in self.store.objects.values() if sealing.is_sealed(data)]


class TestPartitionMechanism(EncryptionTestBase):
    def test_store_holds_only_ciphertext_and_the_agent_gets_the_key(self) -> None:
        self._deploy()
        [stored] = self.store.objects.values()
        self.assertTrue(sealing.is_sealed(stored))
        self.assertNotIn(SECRET.encode(), stored)
        [attached] = self.exposers["partition"].attached
        self.assertTrue(attached.sealed)
        assert attached.key is not None
        opened = sealing.open_sealed(stored, attached.key)
        self.assertEqual(attached.sha256, hashlib.sha256(opened).hexdigest())

    def test_key_is_only_kept_wrapped(self) -> None:
        self._deploy()
        [attached] = self.exposers["partition"].attached
        assert attached.key is not None
        record = self._record()
        assert record is not None and record.stored is not None
        dumped = json.dumps(self.node.driver_internal_info) + json.dumps(
            self.node.instance_info)
        self.assertNotIn(attached.key.hex(), dumped)
        self.assertNotIn(SECRET, dumped)
        kek = keys.load_kek(self._kek_path())
        self.assertEqual(attached.key, keys.unwrap(kek, record.stored.wrapped_key,
                                                   path=self._kek_path()))
        self.assertIn("ironic_configdrive", self.node.instance_info["configdrive"])

    def test_every_deploy_gets_a_fresh_key(self) -> None:
        self._deploy()
        first = self.exposers["partition"].attached[0].key
        self.node.refresh()
        info = dict(self.node.instance_info)
        info["configdrive"] = {"user_data": "#cloud-config\n"}
        self.node.instance_info = info
        self.node.save()
        self._deploy()
        second = self.exposers["partition"].attached[-1].key
        self.assertNotEqual(first, second)
        self.assertEqual(1, len(self.store.objects))  # the old object was deleted

    def test_rebuild_without_a_new_drive_reuses_the_key(self) -> None:
        self._deploy()
        first = self.exposers["partition"].attached[0]
        self._deploy()
        again = self.exposers["partition"].attached[-1]
        self.assertEqual(first.key, again.key)
        self.assertNotEqual(first.url, again.url)  # re-signed

    def test_another_conductors_kek_gives_a_clear_error(self) -> None:
        self._write_image()
        os.unlink(self._kek_path())  # a conductor whose key file differs
        with task_manager.acquire(self.context, self.node.uuid) as task:
            with self.assertRaisesRegex(exception.InstanceDeployFailure,
                                        "another key-encryption key") as caught:
                task.driver.deploy.write_configdrive(task)
        self.assertIn(self.node.uuid, str(caught.exception))
        self.assertIn("same [configdrive]key_file", str(caught.exception))

    def test_unknown_mechanism_stores_nothing(self) -> None:
        self.node.driver_info = dict(self.node.driver_info, configdrive_exposure="carrier-pigeon")
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaisesRegex(exception.InstanceDeployFailure, "carrier-pigeon",
                                   task.driver.deploy.write_image, task)
        self.assertEqual({}, self.store.objects)

    def test_disabled_stores_plain_gzip(self) -> None:
        self.config(encrypt_at_rest=False, group="configdrive")
        self._deploy()
        [stored] = self.store.objects.values()
        self.assertFalse(sealing.is_sealed(stored))
        self.assertIsNone(self.exposers["partition"].attached[0].key)

    def _kek_path(self) -> str:
        return str(deploy.CONF.configdrive.key_file)


class TestVirtualMedia(EncryptionTestBase):
    def setUp(self) -> None:
        super().setUp()
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    group="configdrive")
        # Decrypted copies go to the conductor's http root, whatever the main store is.
        self.copies = FakeHttpStore()
        self.useFixture(fixtures.MockPatchObject(
            store_loader, "get_store",
            lambda name=None: self.copies if name == "http" else self.store))

    def test_bmc_gets_a_plain_copy_recorded_for_deletion(self) -> None:
        self._deploy()
        [attached] = self.exposers["virtual_media"].attached
        self.assertFalse(attached.sealed)
        self.assertIsNone(attached.key)
        self.assertEqual("identity", attached.encoding)
        self.assertEqual(1, len(self._sealed_objects()))
        self.assertEqual(1, len(self.store.objects))
        self.assertEqual([attached.location], list(self.copies.objects))
        record = self._record()
        assert record is not None
        self.assertEqual([attached.location], [s.location for s in record.served])
        self.assertNotIn(SIGNATURE, json.dumps(self.node.driver_internal_info))

    def test_teardown_deletes_copy_and_original(self) -> None:
        self._deploy()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.tear_down(task)
        self.assertEqual({}, self.store.objects)
        self.assertEqual({}, self.copies.objects)
        self.assertIsNone(self._record())

    def test_rebuild_replaces_the_copy(self) -> None:
        self._deploy()
        self.assertEqual(1, len(self.copies.objects))
        self._deploy()
        second = self.exposers["virtual_media"].attached[-1].location
        self.assertEqual([second], list(self.copies.objects))
        self.assertEqual(1, len(self.store.objects))

    def test_failed_attach_deletes_the_copy(self) -> None:
        self.exposers["virtual_media"].error = ExposureError(
            mechanism="virtual_media", node=self.node.uuid, reason="BMC said no")
        self._write_image()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(exception.InstanceDeployFailure,
                              task.driver.deploy.write_configdrive, task)
        self.assertEqual({}, self.store.objects)
        self.assertEqual({}, self.copies.objects)
        record = self._record()
        self.assertTrue(record is None or not record.served)

    def test_validate_needs_the_http_store_for_copies(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)
            self.copies.invalid = "http_url is not set"
            with self.assertRaisesRegex(exception.InvalidParameterValue,
                                        "serve decrypted copies.*http_url is not set"):
                task.driver.deploy.validate(task)
            self.config(encrypt_at_rest=False, group="configdrive")
            task.driver.deploy.validate(task)
