"""The ``configdrive`` deploy interface end to end inside Ironic, on real components.

Ironic's own DB test machinery resolves the interface from configuration; the real ``http``
store keeps files under a temporary ``[deploy]http_root`` served by a real HTTP server on
127.0.0.1; the real ``partition`` exposure plugin talks through Ironic's real agent client to
an agent endpoint on 127.0.0.1 that downloads the drive with the agent extension's own fetch
code, decodes it with the image core and verifies sha256 and size, as the ramdisk does before
writing. Only the block device is replaced by memory (disk writes are covered by the
agent_ext functional tests on loop devices).
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib import parse

import fixtures
import pytest
from ironic.common import driver_factory, states
from ironic.conductor import deployments, task_manager
from ironic.drivers import fake_hardware  # noqa: F401  (import before Popen is blocked)
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils
from oslo_utils import uuidutils

from ironic_configdrive import deploy, image, records
from ironic_configdrive.image import formats, iso9660, sealing
from tests.fixtures import redfish
from tests.fixtures.conductor import FakeAgent, HttpRoot
from tests.fixtures.logs import enable_all_loggers

SECRET = "SECRET-userdata-81b7d0"
JSON_DRIVE = {
    "meta_data": {"public_keys": {"default": "ssh-ed25519 AAAAC3Nza functional"}},
    "user_data": f"#cloud-config\nchpasswd: {{list: 'root:{SECRET}'}}\n",
}
INSTANCE_INFO = {
    "image_source": "http://images.example.com/image.qcow2",
    "image_url": "http://images.example.com/image.qcow2",
    "image_checksum": "0123456789abcdef",
}


class DeployInsideIronicBase(db_base.DbTestCase):
    def _clear_attrs(self) -> None:
        # pytest's unittest runner sets the test method on the instance; keep it.
        keep = self._testMethodName
        for key in [k for k in self.__dict__ if k[0] != "_" and k != keep]:
            del self.__dict__[key]

    def setUp(self) -> None:
        super().setUp()
        enable_all_loggers()  # after the schema migration's logging.config call
        self.logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.http_root = self.useFixture(HttpRoot())
        self.agent = self.useFixture(FakeAgent())
        self.config(enabled_deploy_interfaces=["direct", "configdrive"])
        self.config(http_root=self.http_root.path, http_url=self.http_root.url, group="deploy")
        self.config(store="http", exposure="partition", group="configdrive")
        # Users' URLs here point at loopback test servers, which the default policy refuses.
        self.config(fetch_allowed_networks=["127.0.0.0/8"], group="configdrive")
        key_dir = self.useFixture(fixtures.TempDir()).path
        self.config(key_file=f"{key_dir}/configdrive.key", group="configdrive")
        self.config(automated_clean=True, group="conductor")

    def _node(self, configdrive: Any, **kwargs: Any) -> Any:
        return obj_utils.create_test_node(
            self.context, uuid=uuidutils.generate_uuid(), driver="fake-hardware",
            deploy_interface="configdrive", boot_interface="fake", network_interface="noop",
            instance_info={**INSTANCE_INFO, "configdrive": configdrive}, **kwargs,
            driver_internal_info={"agent_url": self.agent.url, "is_whole_disk_image": True,
                                  "agent_secret_token": "agent-token-1"},
            provision_state=states.DEPLOYING, target_provision_state=states.ACTIVE)

    def _step(self, node: Any, name: str, priority: int) -> Any:
        with task_manager.acquire(self.context, node.uuid) as task:
            return task.driver.deploy.execute_deploy_step(
                task, {"step": name, "priority": priority, "interface": "deploy", "args": {}})

    def _restart_conductor(self) -> None:
        factory = driver_factory._INTERFACE_LOADERS["deploy"]
        self.addCleanup(setattr, factory, "_extension_manager", factory._extension_manager)
        factory._extension_manager = None


    def _undeploy_after_restart(self, node: Any) -> None:
        """Tear ``node`` down as a restarted conductor would, with the agent powered off:
        from the record alone."""
        node.del_driver_internal_info("agent_url")
        node.save()
        self._restart_conductor()
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)


def _url(command: dict[str, Any]) -> str:
    """The URL of a configdrive.write command (``{"url", "key"}`` for encrypted drives)."""
    source = command["params"]["configdrive"]
    return str(source["url"] if isinstance(source, dict) else source)


class TestDeployInsideIronic(DeployInsideIronicBase):
    def test_deploy_undeploy_erase(self) -> None:
        node = self._node(JSON_DRIVE)
        self.assertEqual(states.DEPLOYWAIT, self._step(node, "write_image", 80))
        [write_image] = self.agent.named("deploy.execute_deploy_step")
        self.assertEqual("write_image", write_image["params"]["step"]["step"])
        self.assertIsNone(write_image["params"]["step"]["args"]["configdrive"])
        self.assertNotIn("configdrive", write_image["params"]["step"]["args"]["image_info"])
        self.assertNotIn(SECRET, json.dumps(write_image))

        [stored_file] = self.http_root.stored_files()
        self.assertIn(stat.S_IMODE(os.stat(stored_file).st_mode), (0o600, 0o640))

        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        [write] = self.agent.named("configdrive.write")
        self.assertEqual("root", write["params"]["device"])
        self.assertEqual("agent-token-1", write["token"])
        self.assertEqual([parse.urlsplit(_url(write)).path], self.http_root.fetched)
        # Encrypted at rest: the stored file is ciphertext, the key travels only in the
        # command, and nothing the API shows or the logs hold contains it.
        with open(stored_file, "rb") as handle:
            stored = handle.read()
        self.assertTrue(sealing.is_sealed(stored))
        self.assertNotIn(SECRET.encode(), stored)
        key_hex = write["params"]["configdrive"]["key"]
        node.refresh()
        self.assertNotIn(key_hex, json.dumps([node.driver_internal_info, node.instance_info]))
        self.assertNotIn(key_hex, self.logs.output)
        raw = self.agent.disk
        assert raw is not None
        self.assertEqual([], image.validate(raw))
        tree = image.read_tree(raw)
        node.refresh()
        self.assertIn(node.uuid.encode(), tree["openstack/latest/meta_data.json"])
        self.assertIn(SECRET.encode(), tree["openstack/latest/user_data"])
        record = records.load(node)
        assert record is not None and record.stored is not None
        self.assertEqual(hashlib.sha256(raw).hexdigest(), record.stored.sha256)
        self.assertEqual("/dev/fake2", record.exposures[0].record["partition"])

        # The deploy ends (tear_down_agent powers the node off, which forgets the agent URL);
        # undeploy after a conductor restart: everything comes from the record.
        self._undeploy_after_restart(node)
        self.assertEqual([], self.http_root.stored_files())
        node.refresh()
        record = records.load(node)
        assert record is not None and record.erase is not None

        # Automated cleaning boots the agent again (its heartbeat records the URL), then
        # runs our step through it.
        node.set_driver_internal_info("agent_url", self.agent.url)
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            steps = {s["step"]: s for s in task.driver.deploy.get_clean_steps(task)}
            self.assertIsNone(task.driver.deploy.execute_clean_step(
                task, steps["erase_configdrive"]))
        [remove] = self.agent.named("configdrive.remove")
        self.assertEqual({"device": "root"}, remove["params"])
        self.assertIsNone(self.agent.disk)
        node.refresh()
        self.assertIsNone(records.load(node))
        self.assertNotIn(SECRET, self.logs.output)
        self.assertIn("taken over", self.logs.output)

    def test_user_url_is_restored_in_our_store(self) -> None:
        raw = image.build_image(JSON_DRIVE, node_uuid="0c8bb8b1-cf1b-4a8e-9f3f-7e4b4b7b6a11")
        with open(os.path.join(self.http_root.path, "user-drive.b64"), "w") as f:
            f.write(image.pack(raw))
        node = self._node(f"{self.http_root.url}/user-drive.b64?sig=user-secret")
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [write] = self.agent.named("configdrive.write")
        self.assertTrue(parse.urlsplit(_url(write)).path.startswith("/configdrive/"))
        self.assertEqual(raw, self.agent.disk)
        self.assertEqual(["/user-drive.b64?sig=user-secret"], self.http_root.fetched[:1])
        self.assertNotIn("user-secret", self.logs.output)

    def test_foreign_drive_is_validated_without_reading_its_user_data(self) -> None:
        """A user's drive with 8 MiB of user_data: the conductor reads its JSON documents
        only (one at a time), and the agent gets the drive whole."""
        user_data = "#cloud-config\n" + "".join(f"# {n:07d}\n" for n in range(800_000))
        raw = image.build_image({**JSON_DRIVE, "user_data": user_data},
                                node_uuid="0c8bb8b1-cf1b-4a8e-9f3f-7e4b4b7b6a12")
        with open(os.path.join(self.http_root.path, "big-drive.b64"), "w") as f:
            f.write(image.pack(raw))
        node = self._node(f"{self.http_root.url}/big-drive.b64")
        read: list[str] = []
        real = iso9660.IsoFiles.__getitem__

        def spy(files: iso9660.IsoFiles, path: str) -> bytes:
            read.append(path)
            return real(files, path)

        with mock.patch.object(iso9660.IsoFiles, "__getitem__", spy):
            self._step(node, "write_image", 80)
        self.assertTrue(read)
        self.assertEqual([], [path for path in read if not path.endswith(".json")])
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        self.assertEqual(raw, self.agent.disk)

    def test_agent_failure_fails_the_deploy_cleanly(self) -> None:
        self.agent.fail_write = "no space left on /dev/fake"
        node = self._node(JSON_DRIVE)
        self._step(node, "write_image", 80)
        node.refresh()
        node.set_driver_internal_info("deploy_steps", [
            {"step": "write_configdrive", "priority": deploy.WRITE_PRIORITY,
             "interface": "deploy", "args": {}}])
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            deployments.do_next_deploy_step(task, 0)
        node.refresh()
        self.assertIn("Could not expose the config drive", node.last_error)
        self.assertIn("configdrive.write failed", node.last_error)
        self.assertIn("no space left on /dev/fake", node.last_error)
        self.assertIn("deploy again", node.last_error)
        self.assertNotIn(SECRET, node.last_error)
        self.assertNotIn(SECRET, self.logs.output)
        self.assertEqual([], self.http_root.stored_files())  # nothing left behind
        # rollback asked the agent to remove whatever a partial write left
        self.assertEqual(1, len(self.agent.named("configdrive.remove")))

    def test_validate_with_the_real_store(self) -> None:
        from ironic.common import exception

        node = self._node(JSON_DRIVE)
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.validate(task)
        self.config(http_url=None, group="deploy")
        with task_manager.acquire(self.context, node.uuid) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn("config drive store is not usable", str(exc))
        self.assertIn("[deploy]http_url is not set", str(exc))

    def test_rebuild_replaces_and_reuses(self) -> None:
        node = self._node(JSON_DRIVE)
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [first_file] = self.http_root.stored_files()
        # Rebuild without a new config drive: the stored one is exposed again.
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        self.assertEqual([first_file], self.http_root.stored_files())
        first_disk = self.agent.disk
        # Rebuild with a new one: it replaces the old file.
        node.refresh()
        node.instance_info = {**node.instance_info,
                              "configdrive": {"meta_data": {"name": "rebuilt"}}}
        node.save()
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [second_file] = self.http_root.stored_files()
        self.assertNotEqual(first_file, second_file)
        assert self.agent.disk is not None
        self.assertNotEqual(first_disk, self.agent.disk)
        self.assertIn(b'"name": "rebuilt"',
                      image.read_tree(self.agent.disk)["openstack/latest/meta_data.json"])
        self.assertEqual(3, len(self.agent.named("configdrive.write")))

    def test_passed_through_url_is_verified_by_what_the_agent_decodes(self) -> None:
        # Nobody saw the content, so no sha256/size can be sent: sending size 0 or an
        # empty sha256 would make the agent refuse a perfectly good drive.
        self.config(allow_url_passthrough=True, group="configdrive")
        raw = image.build_image(JSON_DRIVE, node_uuid="0c8bb8b1-cf1b-4a8e-9f3f-7e4b4b7b6a11")
        with open(os.path.join(self.http_root.path, "user-drive.b64"), "w") as f:
            f.write(image.pack(raw))
        node = self._node(f"{self.http_root.url}/user-drive.b64?sig=user-secret")
        self._step(node, "write_image", 80)
        self.assertEqual([], self.http_root.stored_files())  # nothing stored
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        [write] = self.agent.named("configdrive.write")
        self.assertNotIn("sha256", write["params"])
        self.assertNotIn("size", write["params"])
        self.assertEqual(raw, self.agent.disk)
        self.assertNotIn("user-secret", self.logs.output)


@pytest.fixture(scope="module")
def redfish_emulator(tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[redfish.RedfishEmulator]:
    yield from redfish.running(tmp_path_factory.mktemp("redfish-deploy"))


@pytest.fixture(scope="class")
def redfish_bmc(request: pytest.FixtureRequest,
                redfish_emulator: redfish.RedfishEmulator) -> None:
    """Binds the emulator to the (unittest-style) test class."""
    request.cls.emulator = redfish_emulator


@pytest.mark.redfish
@pytest.mark.usefixtures("redfish_bmc")
class TestVirtualMediaDeployInsideIronic(DeployInsideIronicBase):
    """Virtual media through the deploy interface: a real BMC (sushy-emulator) downloads the
    raw image from the real http store, with Ironic's own Redfish utilities in between."""

    emulator: redfish.RedfishEmulator

    def setUp(self) -> None:
        super().setUp()
        self.config(connection_attempts=1, connection_retry_interval=1, group="redfish")
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    group="configdrive")
        self.emulator.eject_all()
        self.addCleanup(self.emulator.eject_all)

    def _occupy_slots(self) -> str:
        """Someone else's media in the slots an ISO may use: the BMC is busy for us."""
        foreign = f"{self.http_root.url}/operator.iso"
        with open(os.path.join(self.http_root.path, "operator.iso"), "wb") as f:
            f.write(b"not ours" * 512)
        self.emulator.insert("Cd", foreign)
        self.emulator.insert("Floppy", foreign)
        return foreign

    def _vm_node(self, configdrive: Any = JSON_DRIVE, **kwargs: Any) -> Any:
        return self._node(configdrive, driver_info=self.emulator.driver_info(), **kwargs)

    def test_deploy_inserts_our_raw_iso_and_undeploy_ejects_and_deletes(self) -> None:
        self.config(encrypt_at_rest=False, group="configdrive")  # the plain path
        node = self._vm_node()
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.validate(task)
        self.assertEqual(states.DEPLOYWAIT, self._step(node, "write_image", 80))
        [write_image] = self.agent.named("deploy.execute_deploy_step")
        self.assertIsNone(write_image["params"]["step"]["args"]["configdrive"])

        # Stored raw (a BMC cannot decompress), as an .iso file.
        [stored_file] = self.http_root.stored_files()
        self.assertTrue(stored_file.endswith(".iso"))
        with open(stored_file, "rb") as f:
            raw = f.read()
        self.assertEqual(formats.ISO9660, formats.detect_format(raw[: formats.SNIFF_SIZE]))
        self.assertEqual([], image.validate(raw))
        self.assertIn(SECRET.encode(), image.read_tree(raw)["openstack/latest/user_data"])
        node.refresh()
        record = records.load(node)
        assert record is not None and record.stored is not None
        self.assertEqual("identity", record.stored.encoding)
        self.assertEqual(hashlib.sha256(raw).hexdigest(), record.stored.sha256)
        self.assertEqual(len(raw), record.stored.size)

        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        state = self.emulator.vmedia("Cd")
        self.assertTrue(state["Inserted"])
        name = os.path.basename(stored_file)
        self.assertEqual(f"{self.http_root.url}/configdrive/{name}", state["Image"])
        # The BMC downloaded exactly our raw ISO.
        self.assertEqual([raw], self.emulator.downloaded(name))
        self.assertEqual([], self.agent.named("configdrive.write"))  # no agent involved
        node.refresh()
        record = records.load(node)
        assert record is not None
        [exposure] = record.exposures
        self.assertEqual(("virtual_media", "Cd", "CD"),
                         (exposure.mechanism, exposure.record["device"],
                          exposure.record["media_type"]))
        self.assertIsNone(record.erase)  # nothing was written to the disk

        # Undeploy after a conductor restart: ejected and deleted from the record alone.
        self._undeploy_after_restart(node)
        state = self.emulator.vmedia("Cd")
        self.assertFalse(state["Inserted"])
        self.assertFalse(state.get("Image"))
        self.assertFalse(os.path.exists(stored_file))
        self.assertEqual([], self.http_root.stored_files())
        node.refresh()
        self.assertIsNone(records.load(node))  # no erase pending either
        self.assertEqual([], self.agent.named("configdrive.remove"))
        self.assertNotIn(SECRET, self.logs.output)
        # The file name's random part is what protects it: none of our log lines shows it
        # (sushy's own DEBUG lines quote the URL it was given, as for any virtual media).
        ours = [line for line in self.logs.output.splitlines()
                if not line.startswith(("HTTP request", "Received representation"))]
        self.assertIn("inserted into virtual media Cd", "\n".join(ours))
        self.assertNotIn(name.split(".")[2], "\n".join(ours))
        self.assertNotIn(name.split(".")[2], json.dumps(exposure.record))

    def test_auto_with_busy_bmc_falls_back_to_the_agent_with_the_raw_image(self) -> None:
        self.config(encrypt_at_rest=False, group="configdrive")  # the plain path
        # auto stores raw; the agent decodes raw images as well, so the fallback works.
        self.config(exposure="auto", group="configdrive")
        foreign = self._occupy_slots()
        node = self._vm_node()
        self._step(node, "write_image", 80)
        [stored_file] = self.http_root.stored_files()
        self.assertTrue(stored_file.endswith(".iso"))
        with open(stored_file, "rb") as f:
            raw = f.read()
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        [write] = self.agent.named("configdrive.write")
        self.assertEqual(hashlib.sha256(raw).hexdigest(), write["params"]["sha256"])
        self.assertEqual(len(raw), write["params"]["size"])
        self.assertEqual(raw, self.agent.disk)
        self.assertEqual(foreign, self.emulator.vmedia("Cd")["Image"])  # left alone
        node.refresh()
        record = records.load(node)
        assert record is not None
        self.assertEqual(["partition"], [e.mechanism for e in record.exposures])
        self.assertEqual("virtual_media", record.exposures[0].record["fallback_from"])
        self.assertEqual(records.Erase("root"), record.erase)

    def test_rebuild_after_switching_to_virtual_media_stores_the_drive_raw(self) -> None:
        self.config(encrypt_at_rest=False, group="configdrive")  # the plain path
        self.config(exposure="partition", group="configdrive")
        node = self._vm_node()
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [gz_file] = self.http_root.stored_files()
        self.assertTrue(gz_file.endswith(".gz"))
        written = self.agent.disk
        assert written is not None

        # The operator moves the node to virtual media; a rebuild keeps the same drive.
        self.config(exposure="virtual_media", group="configdrive")
        self._step(node, "write_image", 80)
        [iso_file] = self.http_root.stored_files()
        self.assertTrue(iso_file.endswith(".iso"))  # the compressed copy is gone
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        self.assertEqual([written], self.emulator.downloaded(os.path.basename(iso_file)))
        self.assertTrue(self.emulator.vmedia("Cd")["Inserted"])
        self.assertIsNone(self.agent.disk)  # the old partition was removed first
        node.refresh()
        record = records.load(node)
        assert record is not None and record.stored is not None
        self.assertEqual("identity", record.stored.encoding)
        self.assertEqual(["virtual_media"], [e.mechanism for e in record.exposures])

    def test_encrypted_drive_is_served_plain_only_while_attached(self) -> None:
        node = self._vm_node()
        self._step(node, "write_image", 80)
        [sealed_file] = self.http_root.stored_files()
        self.assertTrue(sealed_file.endswith(".sealed"))
        with open(sealed_file, "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read())

        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        [copy_file] = [f for f in self.http_root.stored_files() if f != sealed_file]
        self.assertTrue(copy_file.endswith(".iso"))
        self.assertEqual(0o640, stat.S_IMODE(os.stat(copy_file).st_mode))
        [downloaded] = self.emulator.downloaded(os.path.basename(copy_file))
        self.assertIn(SECRET.encode(), image.read_tree(downloaded)["openstack/latest/user_data"])
        node.refresh()
        record = records.load(node)
        assert record is not None
        self.assertEqual(1, len(record.served))

        self._restart_conductor()
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.tear_down(task)
        self.assertFalse(self.emulator.vmedia("Cd")["Inserted"])
        self.assertEqual([], self.http_root.stored_files())
        node.refresh()
        self.assertIsNone(records.load(node))

    def test_encrypted_fallback_gives_the_agent_the_sealed_original(self) -> None:
        self.config(exposure="auto", group="configdrive")
        self._occupy_slots()
        node = self._vm_node()
        self._step(node, "write_image", 80)
        [sealed_file] = self.http_root.stored_files()
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        [write] = self.agent.named("configdrive.write")
        self.assertEqual(os.path.basename(sealed_file),
                         os.path.basename(parse.urlsplit(_url(write)).path))
        self.assertIn("key", write["params"]["configdrive"])
        self.assertEqual([sealed_file], self.http_root.stored_files())  # copy deleted
        node.refresh()
        record = records.load(node)
        assert record is not None and not record.served
        self.assertEqual(["partition"], [e.mechanism for e in record.exposures])
