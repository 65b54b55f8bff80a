"""VirtualMediaExposer against a real Redfish BMC (sushy-emulator) fetching a real image.

The node, its task and the Redfish connection are Ironic's own (DbTestCase, task_manager,
redfish utils); the emulator really downloads the inserted URL from a local HTTP server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from ironic.conductor import task_manager
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils

from ironic_configdrive.expose import loader
from ironic_configdrive.expose.base import ExposureError, SlotBusyError
from ironic_configdrive.expose.virtual_media import VirtualMediaExposer
from ironic_configdrive.image import build_image, formats
from ironic_configdrive.store.base import StoredImage
from tests.fixtures.http import ObjectServer
from tests.fixtures.logs import enable_all_loggers
from tests.fixtures.redfish import RedfishEmulator

SECRET = "temp_url_sig=0123456789abcdef0123456789abcdef01234567&temp_url_expires=1999999999"
FOREIGN = "/other/operator.iso"


class RedfishNodeTestCase(db_base.DbTestCase):
    """A fake-hardware node whose driver_info points at the emulator."""

    emulator: RedfishEmulator
    server: ObjectServer

    def setUp(self) -> None:
        super().setUp()
        enable_all_loggers()  # after the schema migration's logging.config call
        self.config(enabled_hardware_types=["fake-hardware"])
        self.config(connection_attempts=1, connection_retry_interval=1, group="redfish")
        self.emulator.eject_all()
        self.node = obj_utils.create_test_node(
            self.context, driver="fake-hardware", driver_info=self.emulator.driver_info())
        self.exposer = VirtualMediaExposer()
        self.exposer._sleep = lambda seconds: None
        self.iso = build_image({"meta_data": {"uuid": self.node.uuid}}, fmt=formats.ISO9660)
        self.server.objects[f"/cd/{self.node.uuid}.iso"] = self.iso
        self.server.objects[FOREIGN] = b"not ours" * 100
        self.server.requests.clear()
        self.server.faults.clear()
        self.addCleanup(self.server.faults.clear)

    def _clear_attrs(self) -> None:
        # Ironic's base deletes every public attribute after a test; pytest's unittest runner
        # still needs the test method it bound to the instance.
        for key in [k for k in self.__dict__ if k[0] != "_" and not k.startswith("test")]:
            del self.__dict__[key]

    def stored(self, path: str | None = None, data: bytes | None = None,
               encoding: str = "identity") -> StoredImage:
        path = path or f"/cd/{self.node.uuid}.iso"
        data = self.iso if data is None else data
        return StoredImage(store="http", location=path.lstrip("/"),
                           url=self.server.url(path, SECRET),
                           sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           encoding=encoding)

    def acquire(self) -> Any:
        return task_manager.acquire(self.context, self.node.uuid)

    def downloaded(self, name: str) -> list[bytes]:
        """Files the emulator downloaded for virtual media (it keeps them under TMPDIR)."""
        return self.emulator.downloaded(name)


@pytest.mark.redfish
@pytest.mark.usefixtures("redfish_env")
class TestVirtualMedia(RedfishNodeTestCase):

    def test_insert_fetches_our_image_into_the_cd(self) -> None:
        with self.acquire() as task:
            record = self.exposer.attach(task, self.stored())
        self.assertEqual("virtual_media", record["mechanism"])
        self.assertEqual("Cd", record["device"])
        self.assertEqual("CD", record["media_type"])
        self.assertEqual("iso9660", record["format"])
        self.assertEqual("system", record["resource"])
        self.assertEqual(self.emulator.system_id, record["system"])
        # The BMC holds the signed URL; the record only the path.
        state = self.emulator.vmedia("Cd")
        self.assertTrue(state["Inserted"])
        self.assertEqual(self.stored().url, state["Image"])
        self.assertNotIn("temp_url_sig", json.dumps(record))
        self.assertNotIn("0123456789abcdef", json.dumps(record))
        self.assertTrue(record["url_inserted"].endswith(f"/cd/{self.node.uuid}.iso?***"))
        # The emulator really downloaded it (a GET without Range, unlike our format sniff)
        # and holds exactly our bytes.
        full_gets = [r for r in self.server.requests
                     if r.path.startswith(f"/cd/{self.node.uuid}.iso?") and r.range is None]
        self.assertEqual(1, len(full_gets))
        self.assertIn(self.iso, self.downloaded(f"{self.node.uuid}.iso"))
        self.assertFalse(self.emulator.vmedia("Floppy")["Inserted"])

    def test_detach_ejects_and_is_idempotent(self) -> None:
        with self.acquire() as task:
            record = self.exposer.attach(task, self.stored())
            self.exposer.detach(task, record)
            state = self.emulator.vmedia("Cd")
            self.assertFalse(state["Inserted"])
            self.assertFalse(state.get("Image"))
            self.exposer.detach(task, record)  # already ejected: success
            self.exposer.rollback(task, record)
        self.assertFalse(self.emulator.vmedia("Cd")["Inserted"])

    def test_vfat_image_goes_to_the_usb_slot(self) -> None:
        fat = build_image({"meta_data": {"uuid": self.node.uuid}}, fmt=formats.VFAT)
        self.server.objects["/cd/fat.img"] = fat
        with self.acquire() as task:
            record = self.exposer.attach(task, self.stored("/cd/fat.img", fat))
        self.assertEqual(("Floppy", "USBStick", "vfat"),
                         (record["device"], record["media_type"], record["format"]))
        self.assertTrue(self.emulator.vmedia("Floppy")["Inserted"])
        self.assertFalse(self.emulator.vmedia("Cd")["Inserted"])
        self.assertIn(fat, self.downloaded("fat.img"))

    def test_iso_uses_usb_when_the_cd_is_busy_and_leaves_the_cd_alone(self) -> None:
        foreign = self.server.url(FOREIGN)
        self.emulator.insert("Cd", foreign)
        with self.acquire() as task:
            record = self.exposer.attach(task, self.stored())
            self.assertEqual(("Floppy", "USBStick"), (record["device"], record["media_type"]))
            self.assertEqual(foreign, self.emulator.vmedia("Cd")["Image"])
            self.exposer.detach(task, record)
        self.assertEqual(foreign, self.emulator.vmedia("Cd")["Image"])
        self.assertFalse(self.emulator.vmedia("Floppy")["Inserted"])

    def test_all_slots_busy_raises_slot_busy(self) -> None:
        self.emulator.insert("Cd", self.server.url(FOREIGN))
        self.emulator.insert("Floppy", self.server.url(FOREIGN))
        with self.acquire() as task, self.assertRaises(SlotBusyError) as ctx:
            self.exposer.attach(task, self.stored())
        self.assertIn(self.node.uuid, ctx.exception.message)
        self.assertIn("Cd holds", ctx.exception.message)
        self.assertIn("partition", ctx.exception.message)

    def test_reattach_replaces_our_own_earlier_insert(self) -> None:
        with self.acquire() as task:
            self.exposer.attach(task, self.stored())
            fresh_url = self.server.url(f"/cd/{self.node.uuid}.iso", "temp_url_sig=new")
            resigned = dataclasses.replace(self.stored(), url=fresh_url)
            record = self.exposer.attach(task, resigned)
        self.assertEqual("Cd", record["device"])
        self.assertEqual(resigned.url, self.emulator.vmedia("Cd")["Image"])
        self.assertFalse(self.emulator.vmedia("Floppy")["Inserted"])

    def test_detach_leaves_media_someone_else_inserted(self) -> None:
        with self.acquire() as task:
            record = self.exposer.attach(task, self.stored())
            self.emulator.eject("Cd")
            self.emulator.insert("Cd", self.server.url(FOREIGN))
            self.exposer.detach(task, record)
        self.assertEqual(self.server.url(FOREIGN), self.emulator.vmedia("Cd")["Image"])

    def test_bmc_download_failure_is_an_exposure_error_without_secrets(self) -> None:
        # Our format sniff succeeds; every download by the BMC (sushy retries) gets a 404.
        self.server.fault(f"/cd/{self.node.uuid}.iso", ("ok",), *[("status", 404)] * 8)
        with self.acquire() as task, self.assertRaises(ExposureError) as ctx:
            self.exposer.attach(task, self.stored())
        message = ctx.exception.message
        self.assertIn(self.node.uuid, message)
        self.assertIn("Cd", message)
        self.assertNotIn("temp_url_sig", message)
        self.assertNotIn("0123456789abcdef", message)
        self.assertFalse(self.emulator.vmedia("Cd")["Inserted"])

    def test_compressed_image_is_refused(self) -> None:
        with self.acquire() as task, self.assertRaises(ExposureError) as ctx:
            self.exposer.attach(task, self.stored(encoding="gzip"))
        self.assertIn("identity", ctx.exception.message)
        self.assertEqual([], self.server.requests)

    def test_gzip_bytes_behind_the_url_are_refused(self) -> None:
        import gzip
        self.server.objects["/cd/packed"] = gzip.compress(self.iso)
        with self.acquire() as task, self.assertRaises(ExposureError) as ctx:
            self.exposer.attach(task, self.stored("/cd/packed"))
        self.assertIn("gzip", ctx.exception.message)
        self.assertFalse(self.emulator.vmedia("Cd")["Inserted"])

    def test_unknown_system_on_the_bmc(self) -> None:
        self.node.driver_info = {**self.node.driver_info,
                                 "redfish_system_id": "/redfish/v1/Systems/no-such-system"}
        self.node.save()
        with self.acquire() as task, self.assertRaises(ExposureError) as ctx:
            self.exposer.attach(task, self.stored())
        self.assertIn("cannot reach the Redfish system", ctx.exception.message)
        self.assertIn(self.node.uuid, ctx.exception.message)
        self.assertNotIn("temp_url_sig", ctx.exception.message)

    def test_validate_needs_redfish_driver_info(self) -> None:
        self.node.driver_info = {}
        self.node.save()
        with self.acquire() as task, self.assertRaises(ExposureError) as ctx:
            self.exposer.validate(task)
        self.assertIn("redfish_address", ctx.exception.message)

    def test_loader_detach_dispatches_on_the_record(self) -> None:
        with self.acquire() as task:
            self.assertEqual("partition", loader.resolve(task.node).primary.name)  # default
            self.node.driver_info = {**self.node.driver_info,
                                     "configdrive_exposure": "virtual_media"}
            self.node.save()
        with self.acquire() as task:
            used, record = loader.attach(task, loader.resolve(task.node), self.stored())
            self.assertEqual(("virtual_media", "virtual_media"), (used, record["mechanism"]))
            loader.detach(task, used, record)
        self.assertFalse(self.emulator.vmedia("Cd")["Inserted"])


@pytest.mark.redfish
@pytest.mark.usefixtures("single_slot_env")
class TestSingleSlot(RedfishNodeTestCase):

    def test_busy_single_slot_raises_and_keeps_the_other_media(self) -> None:
        foreign = self.server.url(FOREIGN)
        self.emulator.insert("Cd", foreign)
        with self.acquire() as task, self.assertRaises(SlotBusyError) as ctx:
            self.exposer.attach(task, self.stored())
        self.assertIn("in use", ctx.exception.message)
        self.assertNotIn("temp_url_sig", ctx.exception.message)
        self.assertEqual(foreign, self.emulator.vmedia("Cd")["Image"])
        self.assertTrue(self.emulator.vmedia("Cd")["Inserted"])

    def test_vfat_has_no_usable_slot(self) -> None:
        fat = build_image({"meta_data": {"uuid": self.node.uuid}}, fmt=formats.VFAT)
        self.server.objects["/cd/fat.img"] = fat
        with self.acquire() as task, self.assertRaises(SlotBusyError) as ctx:
            self.exposer.attach(task, self.stored("/cd/fat.img", fat))
        self.assertIn("no virtual media slot for a vfat image", ctx.exception.message)

    def test_busy_slot_falls_back_to_partition_when_configured(self) -> None:
        from unittest import mock

        self.emulator.insert("Cd", self.server.url(FOREIGN))
        self.node.driver_info = {**self.node.driver_info,
                                 "configdrive_exposure": "virtual_media"}
        self.node.driver_internal_info = {"agent_url": "http://127.0.0.1:9"}
        self.node.save()
        done = {"command_name": "write", "command_status": "SUCCEEDED", "command_error": None,
                "command_result": {"device": "/dev/sda", "path": "/dev/sda5",
                                   "partition_number": 5, "format": "iso9660",
                                   "source_sha256": self.stored().sha256}}
        with mock.patch("ironic.drivers.modules.agent_client.AgentClient._command",
                        autospec=True, return_value=done) as command:
            self.config(virtual_media_fallback="partition", group="configdrive")
            with self.acquire() as task:
                used, record = loader.attach(task, loader.resolve(task.node), self.stored())
            self.assertEqual(("partition", "partition"), (used, record["mechanism"]))
            self.assertEqual("virtual_media", record["fallback_from"])
            self.assertEqual("configdrive.write", command.call_args.kwargs["method"])
            self.config(virtual_media_fallback="fail", group="configdrive")
            with self.acquire() as task, self.assertRaises(SlotBusyError):
                loader.attach(task, loader.resolve(task.node), self.stored())
            self.assertEqual(1, command.call_count)
