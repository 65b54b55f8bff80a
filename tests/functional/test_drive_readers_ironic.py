"""A node's config drive readers choose its format, inside Ironic on real components.

The disk's sector size comes from the node's inspection data as Ironic stores it (the
database backend), the drive goes through the real http store and Ironic's real agent client
to the agent endpoint of :mod:`tests.fixtures.conductor`.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

from typing import Any

from ironic.common import exception
from ironic.conductor import task_manager
from ironic.drivers.modules import inspect_utils

from ironic_configdrive import deploy, drive_readers, image, lifecycle
from ironic_configdrive.image import formats
from tests.functional.test_deploy_ironic import JSON_DRIVE, DeployInsideIronicBase


def _inventory(sector_size: int) -> dict[str, Any]:
    return {"disks": [{"name": "/dev/sda", "size": 500 * 2**30, "logical_sectors": sector_size,
                       "physical_sectors": sector_size}]}


class TestReadersInsideIronic(DeployInsideIronicBase):
    def _deploy_node(self, readers: Any, *, sector_size: int | None = None,
                     **instance_info: Any) -> Any:
        node = self._node(JSON_DRIVE)
        node.instance_info = {**node.instance_info, "configdrive_readers": readers,
                              **instance_info}
        node.save()
        if sector_size is not None:
            inspect_utils.store_inspection_data(node, _inventory(sector_size), {},
                                                self.context)
        return node

    def test_ignition_on_a_4k_disk_fails_the_deploy_saying_what_to_do(self) -> None:
        node = self._deploy_node(["ignition", "cloud-init"], sector_size=4096)
        exc = self.assertRaises(exception.InstanceDeployFailure, self._step, node,
                                "write_image", 80)
        message = str(exc)
        self.assertIn(f"Could not choose the config drive's format for node {node.uuid}: no "
                      "config drive format suits its readers ignition, cloud-init: ", message)
        self.assertIn("as iso9660 on its 4096-byte-sector disk, ignition: it mounts iso9660 "
                      "only, and the drive is vfat", message)
        self.assertIn("Expose the drive as virtual media (configdrive_exposure)", message)
        self.assertEqual([], self.http_root.stored_files())  # nothing half-written
        self.assertEqual([], self.agent.named("configdrive.write"))

    def test_cloud_init_on_a_4k_disk_gets_the_iso_the_agent_rebuilds(self) -> None:
        node = self._deploy_node("cloud-init,glean", sector_size=4096)
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [write] = self.agent.named("configdrive.write")
        self.assertNotIn("format", write["params"])  # free to rebuild as vfat
        raw = self.agent.disk
        assert raw is not None
        self.assertEqual(formats.ISO9660, image.detect_format(raw[: formats.SNIFF_SIZE]))

    def test_ignition_on_a_512_byte_disk_keeps_iso9660(self) -> None:
        node = self._deploy_node(["ignition"], sector_size=512)
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [write] = self.agent.named("configdrive.write")
        # Were the disk 4Kn after all, the agent fails instead of writing vfat.
        self.assertEqual(formats.ISO9660, write["params"]["format"])
        raw = self.agent.disk
        assert raw is not None
        self.assertEqual([], image.inspect(raw).readers["ignition"])

    def test_ignition_with_virtual_media_does_not_care_about_the_disk(self) -> None:
        node = self._deploy_node(["ignition"], sector_size=4096)
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    group="configdrive")
        with task_manager.acquire(self.context, node.uuid) as task:
            plan = lifecycle.plan_for(task.node)
            self.assertIsNone(drive_readers.sector_size(task, plan))
        self.config(exposure="partition", group="configdrive")
        with task_manager.acquire(self.context, node.uuid) as task:
            self.assertEqual(4096, drive_readers.sector_size(task, lifecycle.plan_for(
                task.node)))

    def test_a_foreign_vfat_drive_is_refused_for_ignition(self) -> None:
        raw = image.build_image(JSON_DRIVE, fmt=formats.VFAT,
                                node_uuid="0c8bb8b1-cf1b-4a8e-9f3f-7e4b4b7b6a11")
        node = self._deploy_node(["ignition"])
        node.instance_info = {**node.instance_info, "configdrive": image.pack(raw)}
        node.save()
        exc = self.assertRaises(exception.InstanceDeployFailure, self._step, node,
                                "write_image", 80)
        self.assertIn("does not suit its readers: ignition: it mounts iso9660 only",
                      str(exc))
        self.assertIn("validate --reader", str(exc))
        self.assertEqual([], self.http_root.stored_files())

    def test_validate_names_an_unknown_reader_and_an_impossible_format(self) -> None:
        node = self._deploy_node(["cloud-init", "afterburn"])
        with task_manager.acquire(self.context, node.uuid) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn(f"configdrive_readers of node {node.uuid} names unknown readers "
                      "'afterburn'", str(exc))
        self.assertIn("Use some of cloud-init, glean, cloudbase-init, ignition", str(exc))
        node.instance_info = {**node.instance_info, "configdrive_readers": ["ignition"],
                              "configdrive_format": "vfat"}
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn(f"node {node.uuid}: no config drive format suits its readers ignition",
                      str(exc))
        self.assertIn("Unset configdrive_format", str(exc))
        node.instance_info = {**node.instance_info, "configdrive_format": ""}
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.validate(task)
