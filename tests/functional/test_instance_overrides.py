"""Which disk and exposure a deploy may choose, inside Ironic (its DB test base, the real
deploy interface, the http store on a loopback HTTP root, the agent API on loopback)."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

from typing import Any

from ironic.common import exception
from ironic.conductor import task_manager

from ironic_configdrive import deploy
from tests.functional.test_deploy_ironic import JSON_DRIVE, DeployInsideIronicBase


class TestInstanceOverrides(DeployInsideIronicBase):
    def _validate(self, node: Any) -> None:
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.validate(task)

    def test_validate_refuses_what_the_operator_did_not_allow(self) -> None:
        for key, value in (("configdrive_device", "/dev/sdb"),
                           ("configdrive_exposure", "virtual_media")):
            node = self._node(JSON_DRIVE)
            node.instance_info = {**node.instance_info, key: value}
            node.save()
            exc = self.assertRaises(exception.InvalidParameterValue, self._validate, node)
            text = str(exc)
            self.assertIn(f"node {node.uuid}", text)
            self.assertIn(f"instance_info/{key}", text)
            self.assertIn(f"[configdrive]allow_instance_overrides = {key}", text)
            # Nor does a deploy step use it behind validate's back.
            self.assertRaises(exception.InstanceDeployFailure, self._step, node,
                              "write_image", 80)
        self.assertEqual([], self.agent.named("configdrive.write"))
        self.assertEqual([], self.http_root.stored_files())

    def test_operator_device_is_sent_as_the_operators(self) -> None:
        node = self._node(JSON_DRIVE, driver_info={"configdrive_device": "/dev/sdb"})
        self._validate(node)
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [write] = self.agent.named("configdrive.write")
        self.assertEqual("/dev/sdb", write["params"]["device"])
        self.assertIs(True, write["params"]["device_from_operator"])

    def test_allowed_instance_device_is_not_the_operators(self) -> None:
        self.config(allow_instance_overrides=["configdrive_device"], group="configdrive")
        node = self._node(JSON_DRIVE, driver_info={"configdrive_device": "/dev/sdb"})
        node.instance_info = {**node.instance_info, "configdrive_device": "/dev/sdc"}
        node.save()
        self._validate(node)
        self._step(node, "write_image", 80)
        self._step(node, "write_configdrive", deploy.WRITE_PRIORITY)
        [write] = self.agent.named("configdrive.write")
        self.assertEqual("/dev/sdc", write["params"]["device"])
        # The agent then accepts it only if it is the disk the root device hints choose.
        self.assertNotIn("device_from_operator", write["params"])
