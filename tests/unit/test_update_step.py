"""The ``update_configdrive`` service step: a new config drive on an ACTIVE node."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import json
import logging
from typing import Any
from unittest import mock

from ironic.common import exception, states
from ironic.conductor import task_manager

from ironic_configdrive import deploy, lifecycle, log_masking, records
from ironic_configdrive.store.base import StoreError
from tests.unit.test_deploy import SECRET, DeployTestBase

NEW_SECRET = "NEW-password-8c1d"
NEW_DRIVE = {"meta_data": {"admin_pass": NEW_SECRET}, "user_data": f"#!/bin/sh\n{NEW_SECRET}\n"}


class UpdateTestBase(DeployTestBase):
    exposure = "partition"

    def setUp(self) -> None:
        super().setUp()
        self.config(exposure=self.exposure, virtual_media_fallback="fail",
                    group="configdrive")
        self._deploy()
        self.node.refresh()
        self.node.provision_state = states.SERVICING
        self.node.target_provision_state = states.ACTIVE
        self.node.save()

    def _service(self, args: dict[str, Any]) -> None:
        step = {"interface": "deploy", "step": "update_configdrive", "args": args,
                "priority": 0}
        self.node.refresh()
        self.node.service_step = step
        self.node.set_driver_internal_info("service_steps", [step])
        self.node.set_driver_internal_info("service_step_index", 0)
        self.node.save()
        try:
            with task_manager.acquire(self.context, self.node.uuid) as task:
                try:
                    task.driver.deploy.execute_service_step(task, step)
                finally:
                    task.node.save()  # as Ironic's failure handler does
        finally:
            self.node.refresh()

    def _node_fields(self) -> str:
        return json.dumps([self.node.instance_info, self.node.driver_internal_info,
                           self.node.service_step])


class TestUpdatePartition(UpdateTestBase):
    def test_listed_as_a_service_step_with_argsinfo(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            steps = task.driver.deploy.get_service_steps(task)
        [step] = [s for s in steps if s["step"] == "update_configdrive"]
        self.assertIn("configdrive", step["argsinfo"])
        self.assertTrue(step["requires_ramdisk"])

    def test_new_drive_replaces_old_and_old_object_is_deleted(self) -> None:
        old = self._record()
        assert old is not None and old.stored is not None
        self._service({"configdrive": NEW_DRIVE})
        new = self._record()
        assert new is not None and new.stored is not None
        self.assertNotEqual(old.deploy_id, new.deploy_id)
        self.assertEqual([new.stored.location], list(self.store.objects))
        partition = self.exposers["partition"]
        self.assertEqual(2, len(partition.attached))
        self.assertEqual(1, len(partition.detached))  # the old partition went first
        self.assertEqual(new.stored.sha256, partition.attached[-1].sha256)
        self.assertIn(NEW_SECRET.encode(), self.store.objects[new.stored.location])
        # The plaintext stays nowhere on the node: args and instance_info hold references.
        self.assertNotIn(NEW_SECRET, self._node_fields())
        self.assertEqual(self.node.instance_info["configdrive"],
                         self.node.service_step["args"]["configdrive"])
        self.assertTrue(new.matches(self.node.instance_info["configdrive"]))

    def test_instance_info_form_without_args(self) -> None:
        info = dict(self.node.instance_info, configdrive=NEW_DRIVE)
        self.node.instance_info = info
        self.node.save()
        self._service({})
        record = self._record()
        assert record is not None and record.stored is not None
        self.assertIn(NEW_SECRET.encode(), self.store.objects[record.stored.location])

    def test_missing_drive_is_a_clear_error(self) -> None:
        info = dict(self.node.instance_info)
        info.pop("configdrive")
        self.node.instance_info = info
        self.node.save()
        with self.assertRaisesRegex(exception.NodeServicingFailure,
                                    "needs the new config drive") as caught:
            self._service({})
        self.assertIn(self.node.uuid, str(caught.exception))

    def test_bad_drive_fails_cleanly_and_keeps_the_old_one(self) -> None:
        old = self._record()
        assert old is not None
        bad = {"meta_data": {"files": [{"path": "../../etc/shadow", "contents": "x"}]},
               "user_data": NEW_SECRET}
        with self.assertRaisesRegex(exception.NodeServicingFailure,
                                    "must be an absolute path") as caught:
            self._service({"configdrive": bad})
        self.assertIn(self.node.uuid, str(caught.exception))
        self.assertNotIn(NEW_SECRET, str(caught.exception))
        self.assertNotIn(NEW_SECRET, self._node_fields())
        self.assertEqual(old.to_dict(), records.load(self.node).to_dict())  # type: ignore
        self.assertTrue(old.matches(self.node.instance_info["configdrive"]))
        self.assertEqual(1, len(self.store.objects))
        self.assertEqual([], self.exposers["partition"].detached)  # old drive untouched


    def test_unexpected_errors_also_leave_no_plaintext(self) -> None:
        old = self._record()
        assert old is not None
        drive = {"meta_data": {"name": "new"}, "user_data": NEW_SECRET}
        with mock.patch.object(lifecycle.DriveLifecycle, "take_over",
                               side_effect=RuntimeError("a bug")), \
                self.assertRaisesRegex(RuntimeError, "a bug"):
            self._service({"configdrive": drive})
        self.assertNotIn(NEW_SECRET, self._node_fields())
        self.assertTrue(old.matches(self.node.instance_info["configdrive"]))


class TestUpdateVirtualMedia(UpdateTestBase):
    exposure = "virtual_media"

    def test_detach_then_attach_the_new_image(self) -> None:
        self._service({"configdrive": NEW_DRIVE})
        media = self.exposers["virtual_media"]
        self.assertEqual(1, len(media.detached))
        self.assertEqual(2, len(media.attached))
        record = self._record()
        assert record is not None and record.stored is not None
        self.assertEqual(record.stored.sha256, media.attached[-1].sha256)
        self.assertEqual(1, len(self.store.objects))


class TestStepArgsMasking(UpdateTestBase):
    def test_ironic_step_log_lines_are_masked(self) -> None:
        logger = logging.getLogger("ironic.conductor.servicing")
        step = {"step": "update_configdrive", "args": {"configdrive": NEW_DRIVE}}
        with self.assertLogs(logger, level="INFO") as logs:
            logger.info("Executing service on node %(node)s, remaining steps: %(steps)s",
                        {"node": "n", "steps": [step]})
            logger.info("Executing %s on node %s", step, "n")
        self.assertNotIn(NEW_SECRET, "\n".join(logs.output))
        self.assertIn("******", "\n".join(logs.output))
        self.assertEqual(NEW_SECRET, step["args"]["configdrive"]["meta_data"]["admin_pass"])

    def test_filter_installed_once_by_the_interface(self) -> None:
        for name in log_masking.STEP_LOGGERS:
            filters = [f for f in logging.getLogger(name).filters
                       if isinstance(f, log_masking.MaskStepArgsFilter)]
            self.assertEqual(1, len(filters), name)
        self.assertNotIn(SECRET, NEW_SECRET)


class TestUpdateWithoutRunningAgent(UpdateTestBase):
    """Ironic does not boot the ramdisk for a driver's own service step: the step does."""

    def test_boots_the_ramdisk_then_rewrites_the_partition_on_the_rerun(self) -> None:
        self.node.refresh()
        self.node.del_driver_internal_info("agent_url")
        self.node.save()
        with mock.patch.object(deploy.ConfigDriveDeploy, "prepare_service",
                               autospec=True, return_value=states.SERVICEWAIT) as prepare:
            step = {"interface": "deploy", "step": "update_configdrive",
                    "args": {"configdrive": NEW_DRIVE}, "priority": 0}
            self.node.service_step = step
            self.node.set_driver_internal_info("service_steps", [step])
            self.node.set_driver_internal_info("service_step_index", 0)
            self.node.save()
            with task_manager.acquire(self.context, self.node.uuid) as task:
                self.assertEqual(states.SERVICEWAIT,
                                 task.driver.deploy.execute_service_step(task, step))
        prepare.assert_called_once()
        self.node.refresh()
        info = self.node.driver_internal_info
        self.assertIs(False, info["skip_current_service_step"])
        self.assertIs(True, info["servicing_reboot"])
        self.assertIs(False, info["service_disable_ramdisk"])
        self.assertEqual(1, len(self.exposers["partition"].attached))  # not yet rewritten
        self.assertNotIn(NEW_SECRET, self._node_fields())
        stored = self._record()
        assert stored is not None

        # The agent heartbeats; Ironic runs the step again with the (replaced) arguments.
        self.node.set_driver_internal_info("agent_url", "http://127.0.0.1:9999")
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsNone(task.driver.deploy.execute_service_step(
                task, task.node.service_step))
        self.assertEqual(2, len(self.exposers["partition"].attached))
        self.assertEqual(stored.to_dict()["deploy_id"], self._record().deploy_id)  # type: ignore


class TestServicingHistory(UpdateTestBase):
    def test_start_event_showing_the_drive_is_masked(self) -> None:
        from ironic import objects
        from ironic.conductor import utils as conductor_utils

        self.node.refresh()
        step = {"interface": "deploy", "step": "update_configdrive",
                "args": {"configdrive": NEW_DRIVE}, "priority": 0}
        conductor_utils.log_step_flow_history(
            node=self.node, flow=conductor_utils.StepFlow.SERVICING, steps=[step],
            status="start")
        self.node.save()
        events = [h.event for h in objects.NodeHistory.list_by_node_id(self.context,
                                                                        self.node.id)]
        self.assertTrue(any(NEW_SECRET in e for e in events))  # Ironic's own masking
        self._service({"configdrive": NEW_DRIVE})
        events = [h.event for h in objects.NodeHistory.list_by_node_id(self.context,
                                                                        self.node.id)]
        self.assertFalse(any(NEW_SECRET in e for e in events), events)
        self.assertTrue(any(e.startswith("Starting servicing with steps=") for e in events))


class TestUpdateAfterKeyRotation(UpdateTestBase):
    def test_update_wraps_with_the_new_key_even_without_the_old_one(self) -> None:
        from ironic_configdrive import keys

        self.config(encrypt_at_rest=True, group="configdrive")
        self._service({"configdrive": NEW_DRIVE})  # sealed, wrapped with the first key
        first = self._record()
        assert first is not None and first.stored is not None
        new_path = str(lifecycle.CONF.configdrive.key_file) + ".new"
        new = keys.read_kek(new_path, create=True)
        self.config(key_file=new_path, old_key_files=[], group="configdrive")  # old key lost
        self.node.provision_state = states.SERVICING
        self.node.save()
        # The old object cannot be deleted now: it stays recorded, its key no longer.
        with mock.patch.object(self.store, "delete", side_effect=StoreError(
                store="fake", node=self.node.uuid, reason="store down")):
            self._service({"configdrive": {"meta_data": {"name": "again"}}})
        record = self._record()
        assert record is not None and record.stored is not None
        self.assertEqual([first.stored.location], [ref.location for ref in record.stale])
        self.assertEqual([new.fingerprint],
                         [keys.fingerprint_of(w) for w in record.wrapped_keys()])
