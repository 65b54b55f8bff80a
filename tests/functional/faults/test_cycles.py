"""50 deploy / rebuild / undeploy / failed-deploy cycles leave nothing behind.

Inside Ironic's DB test base, with the real ``swift`` store against a real Swift and a real
agent (:class:`tests.fixtures.real_agent.RealAgent`: IPA's extension manager running our
extension) writing to one loop device. The order of operations is a seeded random walk over
the node's states, so every kind follows every other one; after each cycle the container and
the disk must hold exactly what the node's state implies, and after all of them nothing.
Run with ``-s`` to see the figures.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import collections
import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from ironic.common import states
from ironic.conductor import task_manager

from ironic_configdrive import deploy, records
from tests.fixtures.real_agent import RealAgent
from tests.functional.agent_ext.conftest import disk_nodes, read_node, run
from tests.functional.agent_ext.disk.conftest import LoopDisk, blkid_config_drives, sgdisk
from tests.functional.faults.test_swift_deploy import SECRET, SwiftDeployBase
from tests.functional.test_deploy_ironic import INSTANCE_INFO

pytestmark = [pytest.mark.swift, pytest.mark.loopdev]

CYCLES = 50
SEED = 6
KINDS = ("deploy", "rebuild", "undeploy", "failed_agent", "failed_rebuild", "bad_drive")
LAYOUT = ("-o", "-n", "1:2048:+16M", "-c", "1:instance-root")


def drive(n: int) -> dict[str, Any]:
    return {"meta_data": {"name": f"cycle-{n}",
                          "public_keys": {"k": f"ssh-ed25519 AAAAC3Nza cycle-{n}"}},
            "user_data": f"#cloud-config\nchpasswd: {{list: 'root:{SECRET}'}}\n"}


class TestCycles(SwiftDeployBase):
    disk: LoopDisk
    # The real agent runs udevadm; the checks run blkid and sfdisk.
    block_execute = False

    @pytest.fixture(autouse=True)
    def _loop_disk(self, loopdisk: Callable[..., LoopDisk]) -> None:
        self.disk = loopdisk(128, layout=sgdisk(*LAYOUT))

    def setUp(self) -> None:
        super().setUp()
        self.agent = self.useFixture(RealAgent(self.disk.device))  # replaces the fake
        self.table = self._table()

    def _table(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(run("sfdisk", "-J", self.disk.device).stdout)
        return out["partitiontable"]

    def _drives_on_disk(self) -> list[str]:
        return blkid_config_drives(*disk_nodes(self.disk.device))

    # -- the operations -------------------------------------------------------------------

    def _start_deploy(self, node: Any, configdrive: Any) -> None:
        node.refresh()
        node.provision_state = states.DEPLOYING
        node.target_provision_state = states.ACTIVE
        node.instance_info = {**INSTANCE_INFO, "configdrive": configdrive}
        node.set_driver_internal_info("agent_url", self.agent.url)  # the agent heartbeats
        node.save()

    def deploy(self, node: Any, n: int) -> None:
        self._start_deploy(node, drive(n))
        self.assertEqual(states.DEPLOYWAIT, self._step(node, "write_image", 80))
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        node.refresh()
        node.provision_state = states.ACTIVE
        node.target_provision_state = None
        node.save()

    rebuild = deploy  # on an active node: the new drive replaces the old one

    def undeploy(self, node: Any, n: int) -> None:
        node.refresh()
        node.del_driver_internal_info("agent_url")  # tear_down_agent powered it off
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)
        node.refresh()
        node.set_driver_internal_info("agent_url", self.agent.url)  # cleaning boots it
        node.instance_info = {}
        node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            steps = {s["step"]: s for s in task.driver.deploy.get_clean_steps(task)}
            self.assertIsNone(task.driver.deploy.execute_clean_step(
                task, steps["erase_configdrive"]))
        node.refresh()
        self.assertIsNone(records.load(node), f"cycle {n}: record left after cleaning")
        node.provision_state = states.AVAILABLE
        node.target_provision_state = None
        node.save()

    def failed_agent(self, node: Any, n: int) -> None:
        """The agent writes, then fails verification (and rolls back) for real."""
        self._start_deploy(node, drive(n))
        self._step(node, "write_image", 80)
        self.agent.corrupt_next_write = True
        node = self._deploy_steps(node, ("write_configdrive", deploy.WRITE_PRIORITY))
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        for part in (node.uuid, "Could not expose the config drive", "sha256"):
            self.assertIn(part, node.last_error)
        self.assertNotIn(SECRET, node.last_error)
        self.undeploy(node, n)

    # On an active node: the old partition is removed first, then the new write fails.
    failed_rebuild = failed_agent

    def bad_drive(self, node: Any, n: int) -> None:
        """A config drive that is no config drive: refused before anything is stored."""
        self._start_deploy(node, "H4sI-this-is-not-a-config-drive")
        node = self._deploy_steps(node, ("write_image", 80))
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn(node.uuid, node.last_error)
        self.assertIn("The config drive is not usable", node.last_error)
        self.undeploy(node, n)

    # -- the walk -------------------------------------------------------------------------

    def _check(self, node: Any, n: int, kind: str, active: bool) -> None:
        where = f"cycle {n} ({kind})"
        objects, drives = self.objects(), self._drives_on_disk()
        if not active:
            self.assertEqual([], objects, where)
            self.assertEqual([], drives, where)
            self.assertEqual(self.table, self._table(), where)
            return
        node.refresh()
        record = records.load(node)
        assert record is not None and record.stored is not None, where
        self.assertEqual([record.stored.location.split("/", 1)[1]], objects, where)
        [exposure] = record.exposures
        self.assertEqual([exposure.record["partition"]], drives, where)
        on_disk = read_node(drives[0], int(record.stored.size))
        self.assertEqual(record.stored.sha256, hashlib.sha256(on_disk).hexdigest(), where)
        self.assertIn(f"cycle-{n}".encode(), on_disk, where)

    def test_cycles_leave_nothing_behind(self) -> None:
        node = self._node(None, driver_info={"configdrive_device": self.disk.device})
        walk = random.Random(SEED)
        counts: collections.Counter[str] = collections.Counter()
        seconds: collections.Counter[str] = collections.Counter()
        active = False
        started = time.monotonic()
        for n in range(CYCLES):
            last = n == CYCLES - 1  # the last cycle must end with the node undeployed
            if active:
                kind = "undeploy" if last else walk.choice(["rebuild", "undeploy",
                                                            "failed_rebuild"])
            else:
                kind = walk.choice(["failed_agent", "bad_drive"] if last else
                                   ["deploy", "deploy", "failed_agent", "bad_drive"])
            t0 = time.monotonic()
            getattr(self, kind)(node, n)
            seconds[kind] += time.monotonic() - t0
            counts[kind] += 1
            active = kind in ("deploy", "rebuild")
            self._check(node, n, kind, active)
        total = time.monotonic() - started

        objects, drives = self.objects(), self._drives_on_disk()
        print(f"\ncycles run: {sum(counts.values())} (seed {SEED}, real agent on "
              f"{self.disk.device}, real Swift)")
        for kind in KINDS:
            mean = seconds[kind] / counts[kind] if counts[kind] else 0.0
            print(f"  {kind:<15} {counts[kind]:>3} cycles, {seconds[kind]:6.2f} s "
                  f"(mean {mean:.3f} s)")
        print(f"total {total:.2f} s, mean {total / CYCLES:.3f} s per cycle; objects left "
              f"{len(objects)}, config-2 partitions left {len(drives)}")
        self.assertEqual(CYCLES, sum(counts.values()))
        for kind in KINDS:
            self.assertGreater(counts[kind], 0, f"the walk never ran {kind}")
        self.assertEqual([], objects)
        self.assertEqual([], drives)
        self.assertEqual(self.table, self._table())
        writes = sum(counts[k] for k in ("deploy", "rebuild", "failed_agent", "failed_rebuild"))
        self.assertEqual(writes, len(self.agent.named("configdrive.write")))
        self.assertNotIn(SECRET, self.logs.output)
