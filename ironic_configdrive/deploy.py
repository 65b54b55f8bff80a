"""The ``configdrive`` deploy interface: Ironic's direct deploy with the config drive made ours.

Upstream's agent deploy keeps writing the instance image. The config drive is taken over in
``write_image`` (before the agent is asked to write anything) and exposed by the
``write_configdrive`` deploy step (after ``write_image``, before ``prepare_instance_boot``).
This module is the Ironic adapter only: the work is :class:`~ironic_configdrive.lifecycle.
DriveLifecycle`'s, whose errors are mapped to Ironic's at each step's boundary, and the
reconciler's (:mod:`ironic_configdrive.reconciler`), run as a periodic task on every
conductor.

Enable with ``enabled_deploy_interfaces = direct,configdrive``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from ironic.common import exception, states
from ironic.conductor import periodics, task_manager
from ironic.conductor import steps as conductor_steps
from ironic.conductor import utils as manager_utils
from ironic.conf import CONF
from ironic.drivers import base
from ironic.drivers.modules import agent

from ironic_configdrive import (
    conf,
    drive_readers,
    lifecycle,
    log_masking,
    network_repair,
    node_options,
    reconciler,
)
from ironic_configdrive.expose import loader as expose_loader
from ironic_configdrive.image import formats
from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.lifecycle import DriveLifecycle
from ironic_configdrive.masking import scrub
from ironic_configdrive.node_options import node_option
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.update_step import UpdateStepMixin

conf.register_opts(CONF)

LOG = logging.getLogger(__name__)

#: Runs before IPA's erase_devices_metadata (99) so the partition table still names the
#: config-2 partition, and before everything else of the default automated cleaning.
ERASE_PRIORITY = 105
WRITE_PRIORITY = 70

NODE_PROPERTIES = {
    "configdrive_exposure": "How the node sees its config drive: 'partition' (the agent "
                            "writes a config-2 partition), 'virtual_media' (Redfish virtual "
                            "media) or 'auto'. driver_info, or instance_info for one deploy "
                            "if [configdrive]allow_instance_overrides allows it. Optional; "
                            "defaults to [configdrive]exposure.",
    "configdrive_device": "Disk that receives the config-2 partition and is erased by the "
                          "erase_configdrive clean step: a /dev/ path, or 'root' for the "
                          "install device chosen by the node's root device hints. "
                          "driver_info; instance_info only if [configdrive]"
                          "allow_instance_overrides allows it, and then the agent accepts "
                          "only the root device. Optional; defaults to 'root'.",
    "configdrive_format": "Filesystem of config drives built from the JSON form for this "
                          "node: 'iso9660' or 'vfat'. Optional; defaults to "
                          "[configdrive]format.",
    "configdrive_readers": "Programs that read the node's config drive: a list (or "
                           "comma-separated string) of cloud-init, glean, cloudbase-init, "
                           "ignition (Ignition/Afterburn). The drive is built in a format "
                           "all of them can read; the deploy fails when there is none. "
                           "Optional; defaults to [configdrive]readers.",
}


@contextlib.contextmanager
def _failures_as(make: Callable[[str], Exception]) -> Iterator[None]:
    """Map our errors to the Ironic exception the step's caller expects."""
    try:
        yield
    except ConfigDriveError as exc:
        raise make(scrub(exc.message)) from None


def _deploy_failure(message: str) -> Exception:
    return exception.InstanceDeployFailure(reason=message)


def _clean_failure(node: Any) -> Callable[[str], Exception]:
    return lambda message: exception.NodeCleaningFailure(node=node.uuid, reason=message)


def _reconcile_spacing() -> int:
    return int(CONF.configdrive.reconcile_interval)


class ConfigDriveDeploy(UpdateStepMixin, agent.AgentDeploy):
    """Direct deploy whose config drive is built, stored and exposed by ironic-configdrive."""

    def __init__(self) -> None:
        super().__init__()
        # Ironic logs service steps with their arguments; ours may carry a config drive.
        log_masking.install()

    # -- interface metadata ---------------------------------------------------------------

    def get_properties(self) -> dict[str, str]:
        properties = dict(super().get_properties())
        properties.update(NODE_PROPERTIES)
        return properties

    def switch_interface(self, task: Any) -> None:
        """Called by Ironic at the start of a deployment, before ``do_node_deploy``: keep its
        network data check, which repacks the drive with mkisofs, away from our drive (we
        repair it ourselves when we take it over, see :mod:`.network_repair`)."""
        super().switch_interface(task)
        network_repair.hide_metadata_capability(task)

    def validate(self, task: Any) -> None:
        super().validate(task)
        node = task.node
        try:
            node_options.check_instance_overrides(node)
        except ConfigDriveError as exc:
            raise exception.InvalidParameterValue(exc.message) from None
        fmt = node_option(node, "configdrive_format")
        if fmt is not None and fmt not in formats.FORMATS:
            raise exception.InvalidParameterValue(
                f"configdrive_format {fmt!r} of node {node.uuid} is not one of "
                f"{', '.join(formats.FORMATS)}; fix it in instance_info or driver_info")
        try:
            drive_readers.validate(node)
        except drive_readers.ReadersError as exc:
            raise exception.InvalidParameterValue(exc.message) from None
        value = (node.instance_info or {}).get("configdrive")
        if value not in (None, "") and not isinstance(value, (str, dict)):
            raise exception.InvalidParameterValue(
                f"instance_info configdrive of node {node.uuid} must be a URL, gzip+base64 "
                f"text or a JSON object, not {type(value).__name__}")
        try:
            store_loader.get_store().validate()
        except ConfigDriveError as exc:
            raise exception.InvalidParameterValue(
                f"the config drive store is not usable: {scrub(exc.message)}") from None
        try:
            expose_loader.validate(task)
            plan = expose_loader.resolve(node)
        except ConfigDriveError as exc:
            raise exception.InvalidParameterValue(scrub(exc.message)) from None
        if CONF.configdrive.encrypt_at_rest and plan.needs_plain_copy(sealed=True):
            try:
                store_loader.get_store(lifecycle.SERVED_COPY_STORE).validate()
            except ConfigDriveError as exc:
                raise exception.InvalidParameterValue(
                    f"node {node.uuid} may use virtual media with encrypted config drives, "
                    f"so the conductor must serve decrypted copies from [deploy]http_root: "
                    f"{scrub(exc.message)}; fix [deploy]http_root/http_url or set "
                    "[configdrive]encrypt_at_rest = False") from None

    # -- steps ----------------------------------------------------------------------------

    def get_clean_steps(self, task: Any) -> list[dict[str, Any]]:
        # The agent mixin lists only the agent's in-band steps; add our out-of-band one.
        return list(super().get_clean_steps(task)) + list(self.clean_steps)

    def execute_clean_step(self, task: Any, step: dict[str, Any]) -> Any:
        if conductor_steps.find_step(self.clean_steps, step):
            return self._execute_step(task, step)
        return super().execute_clean_step(task, step)

    def get_service_steps(self, task: Any) -> list[dict[str, Any]]:
        return list(super().get_service_steps(task)) + list(self.service_steps)

    def execute_service_step(self, task: Any, step: dict[str, Any]) -> Any:
        if conductor_steps.find_step(self.service_steps, step):
            return self._execute_step(task, step)
        return super().execute_service_step(task, step)

    @base.deploy_step(priority=80)
    @task_manager.require_exclusive_lock
    def write_image(self, task: Any) -> Any:
        """Take the config drive over, then let upstream write the image without it."""
        node = task.node
        with _failures_as(_deploy_failure):
            DriveLifecycle(task).take_over()
        instance_info = dict(node.instance_info)
        hidden = instance_info.pop("configdrive", None)
        node.instance_info = instance_info
        try:
            return super().write_image(task)
        finally:
            if hidden is not None:
                instance_info = dict(node.instance_info)
                instance_info["configdrive"] = hidden
                node.instance_info = instance_info
                node.save()

    @base.deploy_step(priority=WRITE_PRIORITY)
    @task_manager.require_exclusive_lock
    def write_configdrive(self, task: Any) -> None:
        """Expose the stored config drive to the node with a freshly signed URL."""
        with _failures_as(_deploy_failure):
            drive = DriveLifecycle(task)
            plan = lifecycle.plan_for(task.node)
            record = drive.take_over(plan)
            if record is not None:
                drive.expose(record, plan)

    @base.clean_step(priority=ERASE_PRIORITY, abortable=False, requires_ramdisk=True)
    def erase_configdrive(self, task: Any) -> None:
        """Have the agent zero and remove the config-2 partition a deploy left on the disk."""
        with _failures_as(_clean_failure(task.node)):
            DriveLifecycle(task).erase()

    # -- cleanup --------------------------------------------------------------------------

    @task_manager.require_exclusive_lock
    def clean_up(self, task: Any) -> None:
        """Also detach and delete the config drive (deploy failure, undeploy).

        Lenient: an exposure that cannot be undone stays recorded, and the next deploy
        refuses until it is (tear_down is the strict one).
        """
        with _failures_as(_deploy_failure):
            DriveLifecycle(task).release(strict=False)
        super().clean_up(task)

    @task_manager.require_exclusive_lock
    def tear_down(self, task: Any) -> Any:
        """Undeploy; fails when the media cannot be ejected, after deleting every copy, so
        the node is not handed to the next tenant with the old drive attached."""
        result = super().tear_down(task)
        with _failures_as(_deploy_failure):
            DriveLifecycle(task).release(strict=True)
        self._warn_if_not_erased(task)
        return result

    def take_over(self, task: Any) -> None:
        """Another conductor died or left: re-serve what it served for this ACTIVE node.

        Never raises (Ironic would retry the takeover forever): a drive that cannot be
        re-exposed is reported in last_error and the node history with what to do.
        """
        super().take_over(task)
        problem = DriveLifecycle(task).adopt()
        if problem is not None:
            message = f"Config drive of node {task.node.uuid} not re-exposed after a " \
                      f"takeover: {problem}"
            LOG.error(message)
            manager_utils.node_history_record(task.node, event=message,
                                              event_type=states.TAKEOVER, error=True)
            task.node.save()

    def _warn_if_not_erased(self, task: Any) -> None:
        node = task.node
        drive = DriveLifecycle(task)
        erase = drive.pending_erase()
        if erase is None or not manager_utils.skip_automated_cleaning(node):
            return
        message = (f"Automated cleaning is disabled for node {node.uuid}: its config drive "
                   f"(passwords, keys) stays readable on {erase.device} until you run the "
                   "clean step deploy.erase_configdrive (manual cleaning) or enable "
                   "automated cleaning")
        LOG.warning(message)
        drive.note_not_erased(message)
        manager_utils.node_history_record(node, event=message,
                                          event_type=states.UNPROVISION)
        node.save()

    # -- the reconciler -------------------------------------------------------------------

    @periodics.periodic(spacing=_reconcile_spacing, enabled=lambda: _reconcile_spacing() > 0,
                        run_immediately=True)
    def reconcile_configdrives(self, manager: Any, context: Any) -> None:
        """Delete stored drives no record names and retry recorded deletes (every conductor,
        also at its start)."""
        reconciler.run(context)
