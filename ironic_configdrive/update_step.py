"""The ``update_configdrive`` service step: a new config drive on an ACTIVE node.

Users reset passwords, rotate SSH keys and change user data on running machines. The step
takes the same forms as a deploy (``baremetal node service NODE --service-steps
'[{"interface": "deploy", "step": "update_configdrive", "args": {"configdrive": ...}}]'``)
and reuses the deploy interface's take-over and exposure: the new drive is stored (encrypted,
the old object deleted), then the old exposure undone and the new one made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ironic.common import async_steps, exception, states
from ironic.conductor import task_manager
from ironic.drivers import base

from ironic_configdrive import lifecycle, records, service_args
from ironic_configdrive.expose import loader as expose_loader
from ironic_configdrive.expose.plan import ExposurePlan
from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.lifecycle import DriveLifecycle
from ironic_configdrive.masking import scrub

LOG = logging.getLogger(__name__)

UPDATE_ARGSINFO = {
    "configdrive": {
        "description": "The new config drive, in any form a deploy accepts: a JSON object "
                       "{meta_data, user_data, network_data, vendor_data}, gzip+base64 "
                       "text or an http(s) URL. Optional: without it, the value set in "
                       "instance_info['configdrive'] is used.",
        "required": False,
    },
}


class UpdateStepMixin:
    """The service step of :class:`ironic_configdrive.deploy.ConfigDriveDeploy`."""

    # Provided by the deploy interface.
    prepare_service: Callable[[Any], Any]

    @base.service_step(priority=0, argsinfo=UPDATE_ARGSINFO, requires_ramdisk=True)
    @task_manager.require_exclusive_lock
    def update_configdrive(self, task: Any, configdrive: Any = None) -> str | None:
        """Replace the config drive of an ACTIVE node without reimaging it.

        The new drive is taken over like a deploy's (built, validated, encrypted, stored;
        the old object deleted), then the old exposure is undone and the new one made:
        the agent rewrites the config-2 partition, or the virtual media is ejected and the
        new image inserted.

        Ironic boots the service ramdisk only for steps it cannot see before the agent runs
        (it never reads ``requires_ramdisk`` of a driver's own service step), so when the
        partition has to be rewritten and no agent answers, the step boots the ramdisk
        itself and returns SERVICEWAIT; the agent's first heartbeat runs it again.
        """
        node = task.node
        value = configdrive if configdrive not in (None, "", {}) else \
            (node.instance_info or {}).get("configdrive")
        if value in (None, "", {}):
            raise exception.NodeServicingFailure(
                node=node.uuid, reason="update_configdrive needs the new config drive: pass "
                                       "it as the step argument 'configdrive' or set "
                                       "instance_info configdrive first")
        # The plaintext must not stay in the node's service step fields (API, last_error).
        service_args.replace_step_args(node, "******")
        service_args.scrub_history(task)
        previous = (node.instance_info or {}).get("configdrive")
        node.instance_info = dict(node.instance_info or {}, configdrive=value)
        taken_over = False
        drive = DriveLifecycle(task)
        try:
            plan = lifecycle.plan_for(node)
            record = drive.take_over(plan)
            assert record is not None
            taken_over = True
            service_args.replace_step_args(node, node.instance_info["configdrive"])
            node.save()
            if (_needs_agent(node, record, plan)
                    and not node.driver_internal_info.get("agent_url")
                    and self._boot_service_ramdisk(task)):
                return str(states.SERVICEWAIT)
            drive.expose(record, plan)
        except BaseException as exc:
            if not taken_over:  # the failure handler saves the node: no plaintext in it
                restored = dict(node.instance_info)
                restored.pop("configdrive", None)
                if previous is not None:
                    restored["configdrive"] = previous
                node.instance_info = restored
            if isinstance(exc, ConfigDriveError):
                raise exception.NodeServicingFailure(
                    node=node.uuid, reason=scrub(exc.message)) from None
            raise
        LOG.info("Config drive of node %s updated in service", node.uuid)
        return None

    def _boot_service_ramdisk(self, task: Any) -> bool:
        """Boot the agent; True when its heartbeat will resume servicing (not fast track)."""
        node = task.node
        LOG.info("Node %s: booting the agent ramdisk to rewrite its config drive partition",
                 node.uuid)
        # Run this step again once the agent is up, and leave the ramdisk at the end.
        async_steps.set_node_flags(node, reboot=True, skip_current_step=False,
                                   step_type="service")
        node.set_driver_internal_info("service_disable_ramdisk", False)
        result = self.prepare_service(task)
        node.save()
        return result == states.SERVICEWAIT


def _needs_agent(node: Any, record: records.DriveRecord, plan: ExposurePlan) -> bool:
    """Whether exposing (or undoing the previous exposure) talks to the agent."""
    # A virtual media fallback to the partition needs it too, but booting the ramdisk for
    # every media update in case the BMC is busy would be worse: that one fails and says so.
    return plan.needs_agent or any(
        expose_loader.capabilities_of(e.mechanism, node=node.uuid).needs_agent
        for e in record.exposures)
