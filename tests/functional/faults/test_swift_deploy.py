"""Swift faults and conductor restarts, through the deploy interface inside Ironic.

Ironic's own DB test base resolves the ``configdrive`` deploy interface; the store is the
real ``swift`` store against a real Swift on 127.0.0.1 (tempauth, tempurl) whose proxy
injects 5xx answers or stalls; the agent is the conductor fixture's FakeAgent, which really
downloads the drive from its temp URL. Store-level retries are covered by
``tests/functional/store/test_swift.py``; here the deploy step is what must fail cleanly.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import hashlib
from typing import Any

import pytest
from ironic.common import driver_factory, exception, states
from ironic.conductor import deployments, task_manager
from oslo_utils import uuidutils
from swiftclient import client as swift_client

from ironic_configdrive import deploy, image, records
from tests.functional import test_deploy_ironic as base

pytestmark = pytest.mark.swift

JSON_DRIVE = base.JSON_DRIVE
SECRET = base.SECRET


@pytest.mark.usefixtures("bind_swift")
class SwiftDeployBase(base.DeployInsideIronicBase):
    swift: Any
    retries = 2

    def setUp(self) -> None:
        super().setUp()
        self.container = f"faults-{uuidutils.generate_uuid()[:12]}"
        # What ironic.conf says; re-applied by _restart_conductor as a restart re-reads it.
        self.settings = {"store": "swift", "swift_auth_url": self.swift.auth_url,
                         "swift_user": self.swift.user, "swift_key": self.swift.key,
                         "swift_container": self.container, "store_retries": self.retries}
        self.config(group="configdrive", **self.settings)

    def objects(self) -> list[str]:
        """The container's listing, from Swift itself."""
        try:
            _headers, listing = self.swift.connection().get_container(self.container)
        except swift_client.ClientException as exc:
            if exc.http_status == 404:
                return []
            raise
        return [o["name"] for o in listing]

    def _restart_conductor(self) -> None:
        """A new conductor: fresh driver and interface instances, configuration read again.

        Tasks are always fresh (task_manager.acquire loads the node from the database), so
        nothing but the node's record survives from before.
        """
        factories = [*driver_factory._INTERFACE_LOADERS.values(),
                     driver_factory.HardwareTypesFactory]
        for factory in factories:
            self.addCleanup(setattr, factory, "_extension_manager", factory._extension_manager)
            factory._extension_manager = None
        for key in self.settings:
            self.cfg_fixture.conf.clear_override(key, group="configdrive")
        self.config(group="configdrive", **self.settings)

    def _deploy_steps(self, node: Any, *steps: tuple[str, int]) -> Any:
        """Run deploy steps the way the conductor does (errors land in last_error)."""
        node.refresh()
        node.set_driver_internal_info("deploy_steps", [
            {"step": name, "priority": priority, "interface": "deploy", "args": {}}
            for name, priority in steps])
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            deployments.do_next_deploy_step(task, 0)
        node.refresh()
        return node


class TestSwiftFaultsWhileStoring(SwiftDeployBase):
    def test_transient_503_is_retried_and_the_deploy_succeeds(self) -> None:
        node = self._node(JSON_DRIVE)
        with self.swift.inject_fault(method="PUT", path_contains=f"/{self.container}/"
                                     f"{node.uuid}/", status=503, remaining=1) as counter:
            self.assertEqual(states.DEPLOYWAIT, self._step(node, "write_image", 80))
            self.assertEqual(1, len(counter.read_text().splitlines()))
        node.refresh()
        record = records.load(node)
        assert record is not None and record.stored is not None
        self.assertEqual([record.stored.location.split("/", 1)[1]], self.objects())

        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        assert self.agent.disk is not None
        self.assertEqual(record.stored.sha256, hashlib.sha256(self.agent.disk).hexdigest())
        self.assertIn(SECRET.encode(),
                      image.read_tree(self.agent.disk)["openstack/latest/user_data"])

        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.clean_up(task)
        self.assertEqual([], self.objects())

    def _assert_failed_cleanly(self, node: Any, message: str) -> None:
        self.assertIn(node.uuid, message)
        self.assertIn("Could not store the config drive", message)
        self.assertNotIn(SECRET, message)
        self.assertNotIn("temp_url_sig", message)
        self.assertNotIn(self.swift.key, message)
        self.assertEqual([], self.objects())
        node.refresh()
        self.assertIsNone(records.load(node))
        self.assertEqual([], self.agent.commands)  # the agent was never asked to write
        self.assertNotIn(SECRET, self.logs.output)

    def test_persistent_5xx_fails_the_step_without_orphan(self) -> None:
        node = self._node(JSON_DRIVE)
        # Swift stores every attempt, then answers 500: each try leaves an object behind
        # unless the store deletes it.
        with self.swift.inject_fault(method="PUT", path_contains=f"/{self.container}/"
                                     f"{node.uuid}/", status=500, after_app=True) as counter:
            node = self._deploy_steps(node, ("write_image", 80))
            attempts = counter.read_text().splitlines()
        self.assertEqual(self.retries + 1, len(attempts))
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn("HTTP 500", node.last_error)
        self.assertIn(f"{self.retries + 1} attempt", node.last_error)
        self._assert_failed_cleanly(node, node.last_error)

    def test_stalled_swift_times_out_and_fails_the_step_without_orphan(self) -> None:
        # The operator's bound on Swift calls: [swift]timeout (keystoneauth's session
        # option, the one Ironic's own Swift use honours).
        self.config(timeout=2, group="swift")
        self.config(store_retries=1, group="configdrive")
        node = self._node(JSON_DRIVE)
        # The proxy takes the object PUT and never answers within the client's timeout
        # (after 10 s it gives up with a 503, so a client without a timeout cannot hang).
        with self.swift.stall(method="PUT", path_contains=f"/{self.container}/{node.uuid}/",
                              seconds=10) as counter:
            with task_manager.acquire(self.context, node.uuid) as task:
                exc = self.assertRaises(exception.InstanceDeployFailure,
                                        task.driver.deploy.execute_deploy_step, task,
                                        {"step": "write_image", "priority": 80,
                                         "interface": "deploy", "args": {}})
            attempts = counter.read_text().splitlines()
        message = str(exc)
        self.assertEqual(2, len(attempts))  # one try + store_retries
        self.assertRegex(message, r"(?i)time(d)? ?out",
                         "the step failed only on the proxy's 503 after its 10 s stall: "
                         "[swift]timeout=2 did not bound the Swift calls")
        self._assert_failed_cleanly(node, message)


class TestConductorRestart(SwiftDeployBase):
    def test_restart_between_store_and_tear_down(self) -> None:
        node = self._node(JSON_DRIVE)
        self.assertEqual(states.DEPLOYWAIT, self._step(node, "write_image", 80))
        [stored] = self.objects()
        self.assertTrue(stored.startswith(f"{node.uuid}/"))

        # The deploy is aborted with the conductor gone: the agent is off, a new conductor
        # tears the node down from the record alone.
        node.refresh()
        self._undeploy_after_restart(node)
        self.assertEqual([], self.objects())
        node.refresh()
        self.assertIsNone(records.load(node))  # nothing reached the disk: nothing to erase
        self.assertEqual([], self.agent.named("configdrive.write"))

    def test_restart_between_write_and_tear_down_then_clean(self) -> None:
        node = self._node(JSON_DRIVE)
        self._step(node, "write_image", 80)
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        self.assertEqual(1, len(self.objects()))
        self.assertIsNotNone(self.agent.disk)

        node.refresh()
        self._undeploy_after_restart(node)
        self.assertEqual([], self.objects())
        node.refresh()
        record = records.load(node)
        assert record is not None
        self.assertEqual(records.Erase("root"), record.erase)

        # Cleaning runs on yet another conductor once the agent heartbeats again.
        self._restart_conductor()
        node.set_driver_internal_info("agent_url", self.agent.url)
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            steps = {s["step"]: s for s in task.driver.deploy.get_clean_steps(task)}
            self.assertIsNone(task.driver.deploy.execute_clean_step(
                task, steps["erase_configdrive"]))
        self.assertIsNone(self.agent.disk)
        self.assertEqual(1, len(self.agent.named("configdrive.remove")))
        node.refresh()
        self.assertIsNone(records.load(node))
        self.assertEqual([], self.objects())
        self.assertNotIn(SECRET, self.logs.output)
