"""The ``configdrive`` deploy interface inside Ironic's own test machinery (sqlite DB).

The interface is enabled through configuration and resolved by Ironic's driver_factory from
our entry point; only the store and exposure plugins are small fakes (patched into the loader
functions) and the agent is mocked at its client's ``_command``/status calls.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import copy
import itertools
import logging
import os
from typing import Any
from unittest import mock

import fixtures
from oslo_utils import uuidutils
from ironic.common import driver_factory, exception, states
from ironic.conductor import deployments, task_manager
from ironic.drivers import fake_hardware  # noqa: F401  (import before Popen is blocked)
from ironic.drivers.modules import agent_client
from ironic.objects import node_history
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils

from ironic_configdrive import deploy, image, lifecycle, records
from ironic_configdrive.image import sealing
from ironic_configdrive.expose import loader as expose_loader
from ironic_configdrive.expose.base import (
    ConfigDriveExposer,
    ExposureError,
    SlotBusyError,
)
from ironic_configdrive.expose.partition import PartitionExposer
from ironic_configdrive.expose.virtual_media import VirtualMediaExposer
from ironic_configdrive.store import loader as store_loader
from ironic_configdrive.store.base import ConfigDriveStore, Listed, StoredImage, StoreError
from tests.fixtures.logs import enable_all_loggers

SECRET = "SECRET-userdata-5f2c9e"
SIGNATURE = "temp_url_sig=deadbeefcafe"
JSON_DRIVE = {
    "meta_data": {"public_keys": {"default": "ssh-ed25519 AAAAC3Nza test"}},
    "user_data": f"#cloud-config\npassword: {SECRET}\n",
    "network_data": {"links": [], "networks": [], "services": []},
}
INSTANCE_INFO = {
    "image_source": "http://images.example.com/image.qcow2",
    "image_url": "http://images.example.com/image.qcow2",
    "image_checksum": "0123456789abcdef",
    "image_disk_format": "qcow2",
    "image_container_format": "bare",
}
DRIVER_INTERNAL_INFO = {"agent_url": "http://127.0.0.1:9999", "is_whole_disk_image": True,
                        "agent_secret_token": "tok"}


class FakeStore(ConfigDriveStore):
    name = "fake"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.encodings: dict[str, str] = {}
        self.counter = itertools.count(1)
        self.fail_put: str | None = None
        self.invalid: str | None = None

    def validate(self) -> None:
        if self.invalid:
            raise StoreError(store=self.name, node="<any>", reason=self.invalid)

    def locate(self, node_uuid: str, image: bytes, *, deploy_id: str,
               encoding: str = "gzip", sealed: bool = False) -> str:
        return f"c/{node_uuid}-{deploy_id}-{encoding}{'-sealed' if sealed else ''}"

    def list_stored(self, *, limit: int) -> list[Listed]:
        return [Listed(location, location[2:38], location[39:71], age=3600.0)
                for location in list(self.objects)[:limit]]

    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = "gzip", key: bytes | None = None,
            location: str | None = None) -> StoredImage:
        if self.fail_put:
            raise StoreError(store=self.name, node=node_uuid, reason=self.fail_put)
        assert location == self.locate(node_uuid, image, deploy_id=deploy_id,
                                       encoding=encoding, sealed=key is not None)
        # Sealed objects are kept sealed, so tests see what a real store would hold.
        self.objects[location] = image if key is None else sealing.seal(image, key)
        self.encodings[location] = encoding
        return StoredImage(store=self.name, location=location, url=self.url_for(
            location, node_uuid=node_uuid), sha256=_sha(image), size=len(image),
            encoding=encoding, sealed=key is not None, key=key)

    def url_for(self, location: str, *, node_uuid: str) -> str:
        if location not in self.objects:
            raise StoreError(store=self.name, node=node_uuid, reason="object gone")
        return f"http://store.test/{location}?{SIGNATURE}{next(self.counter)}"

    def delete(self, location: str, *, node_uuid: str) -> None:
        self.objects.pop(location, None)


class FakeExposer(ConfigDriveExposer):
    def __init__(self, name: str) -> None:
        self.name = name
        # What the real plugin of that name declares: the plan is resolved from it.
        self.capabilities = {"partition": PartitionExposer.capabilities,  # type: ignore[misc]
                             "virtual_media": VirtualMediaExposer.capabilities}[name]
        self.attached: list[StoredImage] = []
        self.detached: list[dict[str, Any]] = []
        self.rolled_back: list[dict[str, Any]] = []
        self.error: Exception | None = None

    def validate(self, task: Any) -> None:
        pass

    def attach(self, task: Any, image: StoredImage) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.attached.append(image)
        return {"mechanism": self.name, "device": f"{self.name}-dev",
                "sha256": image.sha256}

    def detach(self, task: Any, record: dict[str, Any]) -> None:
        self.detached.append(record)

    def rollback(self, task: Any, record: dict[str, Any]) -> None:
        self.rolled_back.append(record)


class HttpServer(fixtures.Fixture):
    """A real HTTP server on 127.0.0.1 serving fixed bodies by path (with query)."""

    def __init__(self, routes: dict[str, bytes]) -> None:
        super().__init__()
        self.routes = routes
        self.requests: list[str] = []

    def _setUp(self) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                body = outer.routes.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class IronicTestCase(db_base.DbTestCase):
    """Ironic's DB test base, made to cooperate with pytest's unittest runner."""

    def setUp(self) -> None:
        super().setUp()
        # The schema migration's logging.config call disables loggers created before it
        # (ours and Ironic's): re-enable them so log captures see everything.
        enable_all_loggers()

    def _clear_attrs(self) -> None:
        # pytest sets the test method on the instance and deletes it afterwards.
        keep = self._testMethodName
        for key in [k for k in self.__dict__ if k[0] != "_" and k != keep]:
            del self.__dict__[key]


class DeployTestBase(IronicTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.config(enabled_deploy_interfaces=["direct", "configdrive"])
        self.config(http_url="http://127.0.0.1:8080", group="deploy")
        # Encryption at rest has its own tests (TestEncryptionAtRest); here the fake store
        # keeps plain images so tests can look at them.
        self.config(exposure="partition", encrypt_at_rest=False, group="configdrive")
        # Users' URLs here point at loopback test servers, which the default policy refuses.
        self.config(fetch_allowed_networks=["127.0.0.0/8"], group="configdrive")
        self.config(key_file=os.path.join(self.useFixture(fixtures.TempDir()).path, "kek"),
                    group="configdrive")
        self.store = FakeStore()
        self.exposers = {"partition": FakeExposer("partition"),
                         "virtual_media": FakeExposer("virtual_media")}
        self.useFixture(fixtures.MockPatchObject(
            store_loader, "get_store", lambda name=None: self.store))
        self.useFixture(fixtures.MockPatchObject(
            expose_loader, "get_exposer", lambda name, node="-": self.exposers[name]))
        self.command = self.useFixture(fixtures.MockPatchObject(
            agent_client.AgentClient, "_command", autospec=True,
            return_value={"command_status": "RUNNING", "command_error": None})).mock
        self.node = self._node(JSON_DRIVE)

    def _node(self, configdrive: Any, **kwargs: Any) -> Any:
        info = dict(INSTANCE_INFO)
        if configdrive is not None:
            info["configdrive"] = copy.deepcopy(configdrive)
        kwargs.setdefault("driver_internal_info", dict(DRIVER_INTERNAL_INFO))
        kwargs.setdefault("uuid", uuidutils.generate_uuid())
        return obj_utils.create_test_node(
            self.context, driver="fake-hardware", deploy_interface="configdrive",
            boot_interface="fake", network_interface="noop", instance_info=info,
            provision_state=states.DEPLOYING, target_provision_state=states.ACTIVE,
            **kwargs)

    def _write_image(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertEqual(states.DEPLOYWAIT, task.driver.deploy.write_image(task))

    def _write_configdrive(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.write_configdrive(task)

    def _deploy(self) -> None:
        self._write_image()
        self._write_configdrive()

    def _record(self) -> records.DriveRecord | None:
        self.node.refresh()
        return records.load(self.node)


class TestInterface(DeployTestBase):
    def test_resolved_by_driver_factory(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsInstance(task.driver.deploy, deploy.ConfigDriveDeploy)

    def test_deploy_steps(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            steps = {s["step"]: s["priority"]
                     for s in task.driver.deploy.get_deploy_steps(task)}
        self.assertEqual(80, steps["write_image"])
        self.assertEqual(70, steps["write_configdrive"])
        self.assertEqual(60, steps["prepare_instance_boot"])

    def test_clean_steps(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            steps = task.driver.deploy.get_clean_steps(task)
        step = next(s for s in steps if s["step"] == "erase_configdrive")
        self.assertEqual(deploy.ERASE_PRIORITY, step["priority"])
        self.assertGreater(step["priority"], 99)  # before erase_devices_metadata
        self.assertFalse(step["abortable"])
        self.assertTrue(step["requires_ramdisk"])

    def test_properties(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            props = task.driver.deploy.get_properties()
        for key in ("configdrive_exposure", "configdrive_device", "configdrive_format",
                    "deploy_forces_oob_reboot"):
            self.assertIn(key, props)


class TestWriteImage(DeployTestBase):
    def _agent_params(self) -> dict[str, Any]:
        self.assertEqual(1, self.command.call_count)
        kwargs = self.command.call_args.kwargs
        self.assertEqual("deploy.execute_deploy_step", kwargs["method"])
        return kwargs["params"]

    def test_agent_gets_no_configdrive(self) -> None:
        self._write_image()
        params = self._agent_params()
        args = params["step"]["args"]
        self.assertIsNone(args["configdrive"])
        self.assertNotIn("configdrive", args["image_info"])
        self.assertNotIn("configdrive", params["node"]["instance_info"])
        self.assertNotIn(SECRET, repr(params))

    def test_json_built_stored_recorded(self) -> None:
        self._write_image()
        record = self._record()
        assert record is not None and record.stored is not None
        raw = self.store.objects[str(record.location)]
        self.assertEqual([], image.validate(raw))
        meta = image.read_tree(raw)["openstack/latest/meta_data.json"]
        self.assertIn(self.node.uuid.encode(), meta)  # Ironic's default uuid
        self.assertIn(SECRET.encode(), image.read_tree(raw)["openstack/latest/user_data"])
        self.assertEqual(_sha(raw), record.stored.sha256)
        self.assertEqual(len(raw), record.stored.size)
        # instance_info keeps only a reference; nothing secret in either place
        self.assertTrue(record.matches(self.node.instance_info["configdrive"]))
        self.assertNotIn(SECRET, repr(self.node.instance_info))
        self.assertNotIn(SECRET, repr(self.node.driver_internal_info))
        self.assertNotIn("temp_url_sig", repr(self.node.driver_internal_info))

    def test_blob_input(self) -> None:
        raw = image.build_image(JSON_DRIVE, node_uuid="7d7dfc5d-8d62-4e51-9a4c-2a4e0a3e3d10")
        self.node = self._node(image.pack(raw))
        self._write_image()
        record = self._record()
        assert record is not None
        self.assertEqual(raw, self.store.objects[str(record.location)])

    def test_url_input_fetched_and_restored(self) -> None:
        raw = image.build_image(JSON_DRIVE, node_uuid="7d7dfc5d-8d62-4e51-9a4c-2a4e0a3e3d10")
        server = self.useFixture(HttpServer({"/drive?sig=abc": image.pack(raw).encode()}))
        self.node = self._node(f"{server.url}/drive?sig=abc")
        self._write_image()
        record = self._record()
        assert record is not None
        self.assertEqual(raw, self.store.objects[str(record.location)])
        self.assertEqual(["/drive?sig=abc"], server.requests)
        self.assertNotIn("sig=abc", repr(self.node.instance_info))
        self.assertIsNone(self.command.call_args.kwargs["params"]["step"]["args"]["configdrive"])

    def test_url_passthrough(self) -> None:
        self.config(allow_url_passthrough=True, group="configdrive")
        url = "http://127.0.0.1:9/never-fetched?sig=abc"
        self.node = self._node(url)
        self._deploy()
        record = self._record()
        assert record is not None
        self.assertTrue(record.passthrough)
        self.assertEqual({}, self.store.objects)
        [attached] = self.exposers["partition"].attached
        self.assertEqual(url, attached.url)
        # Nobody saw the content: unknown, never 0 (the agent refuses size=0).
        self.assertIsNone(attached.sha256)
        self.assertIsNone(attached.size)
        self.assertNotIn("sig=abc", repr(self.node.driver_internal_info))
        self.assertIsNone(self.command.call_args.kwargs["params"]["step"]["args"]["configdrive"])

    def test_stored_raw_when_virtual_media_may_show_it(self) -> None:
        cases = [({"exposure": "partition"}, {}, "gzip"),
                 ({"exposure": "virtual_media"}, {}, "identity"),
                 ({"exposure": "auto"}, {"redfish_address": "https://bmc"}, "identity"),
                 # auto without a BMC to show it resolves to the agent: compressed
                 ({"exposure": "auto"}, {}, "gzip"),
                 # the node's wish wins over the default
                 ({"exposure": "partition"}, {"configdrive_exposure": "auto",
                                              "redfish_address": "https://bmc"}, "identity"),
                 ({"exposure": "virtual_media"}, {"configdrive_exposure": "partition"},
                  "gzip")]
        for options, driver_info, expected in cases:
            self.config(group="configdrive", **options)
            self.node = self._node(JSON_DRIVE, driver_info=driver_info)
            self._write_image()
            record = self._record()
            assert record is not None and record.stored is not None
            self.assertEqual(expected, record.stored.encoding, (options, driver_info))
            self.assertEqual(expected, self.store.encodings[str(record.location)])
            self._write_configdrive()
            [mechanism] = [m for m, e in self.exposers.items() if e.attached]
            self.assertEqual(expected, self.exposers[mechanism].attached[-1].encoding)
            self.exposers[mechanism].attached.clear()

    def test_unknown_mechanism_stores_nothing(self) -> None:
        self.node = self._node(JSON_DRIVE, driver_info={"configdrive_exposure": "floppy"})
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_image, task)
        self.assertIn("Could not choose how to expose", str(exc))
        self.assertIn("floppy", str(exc))
        self.assertEqual({}, self.store.objects)
        self.assertEqual(0, self.command.call_count)

    def test_no_configdrive_nothing_happens(self) -> None:
        self.node = self._node(None)
        self._write_image()
        self.assertIsNone(self._record())
        self.assertEqual({}, self.store.objects)
        self.assertNotIn("configdrive", self.node.instance_info)
        self._write_configdrive()
        self.assertEqual([], self.exposers["partition"].attached)

    def test_invalid_drive_fails_deploy_with_clear_last_error(self) -> None:
        raw = image.write_tree({"openstack/latest/user_data": SECRET.encode()})
        self.node = self._node(image.pack(raw))
        logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self._run_steps(["write_image"])
        self.node.refresh()
        self.assertIn("The config drive is not usable", self.node.last_error)
        self.assertIn("meta_data.json", self.node.last_error)
        self.assertIn("deploy again", self.node.last_error)
        self.assertEqual(0, self.command.call_count)  # the agent was never asked
        self.assertEqual({}, self.store.objects)
        self.assertNotIn(SECRET, self.node.last_error)
        self.assertIn("failed deploy step", logs.output)  # the capture does see Ironic's log
        self.assertNotIn(SECRET, logs.output)

    def test_store_failure(self) -> None:
        self.store.fail_put = "503 from the proxy"
        self._run_steps(["write_image"])
        self.node.refresh()
        self.assertIn("Could not store the config drive", self.node.last_error)
        self.assertIn("503 from the proxy", self.node.last_error)
        self.assertEqual(0, self.command.call_count)

    def _run_steps(self, names: list[str]) -> None:
        prios = {"write_image": 80, "write_configdrive": 70}
        steps = [{"step": n, "priority": prios[n], "interface": "deploy", "args": {}}
                 for n in names]
        self.node.set_driver_internal_info("deploy_steps", steps)
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            deployments.do_next_deploy_step(task, 0)


class TestWriteConfigdrive(DeployTestBase):
    def test_attach_recorded_with_fresh_url(self) -> None:
        self._deploy()
        record = self._record()
        assert record is not None
        [attached] = self.exposers["partition"].attached
        assert record.stored is not None
        self.assertEqual(record.stored.sha256, attached.sha256)
        self.assertIn(SIGNATURE, attached.url)
        self.assertEqual(["partition"], [e.mechanism for e in record.exposures])
        self.assertEqual(records.Erase("partition-dev"), record.erase)
        self.assertNotIn("temp_url_sig", repr(self.node.driver_internal_info))

    def test_virtual_media_needs_no_erase(self) -> None:
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    group="configdrive")
        self._deploy()
        record = self._record()
        assert record is not None
        self.assertEqual(["virtual_media"], [e.mechanism for e in record.exposures])
        self.assertIsNone(record.erase)

    def test_virtual_media_with_fallback_configured_needs_no_erase(self) -> None:
        self.config(exposure="virtual_media", virtual_media_fallback="partition",
                    group="configdrive")
        self._deploy()
        record = self._record()
        assert record is not None
        self.assertEqual(["virtual_media"], [e.mechanism for e in record.exposures])
        self.assertIsNone(record.erase)

    def test_virtual_media_busy_falls_back_to_partition(self) -> None:
        self.config(exposure="virtual_media", virtual_media_fallback="partition",
                    group="configdrive")
        self.exposers["virtual_media"].error = SlotBusyError(
            mechanism="virtual_media", node=self.node.uuid, reason="CD slot in use")
        self._deploy()
        record = self._record()
        assert record is not None
        self.assertEqual(["partition"], [e.mechanism for e in record.exposures])
        self.assertEqual(records.Erase("partition-dev"), record.erase)

    def test_failure_rolls_back_and_deletes(self) -> None:
        self.exposers["partition"].error = ExposureError(
            mechanism="partition", node=self.node.uuid,
            reason=f"agent could not fetch http://store.test/x?{SIGNATURE}: HTTP 403")
        logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self._write_image()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_configdrive, task)
        message = str(exc)
        self.assertIn("Could not expose the config drive", message)
        self.assertIn("HTTP 403", message)
        self.assertIn("deploy again", message)
        self.assertNotIn("deadbeef", message)
        self.assertIn("taken over", logs.output)  # the capture does see our log
        self.assertNotIn("deadbeef", logs.output)
        self.assertNotIn(SECRET, logs.output)
        self.assertEqual([{"mechanism": "partition"}],
                         self.exposers["partition"].rolled_back)
        self.assertEqual({}, self.store.objects)
        record = self._record()
        assert record is not None
        self.assertIsNone(record.stored)
        self.assertEqual(records.Erase("root"), record.erase)  # a write may have begun

    def test_retry_after_failure_asks_for_the_drive(self) -> None:
        self.exposers["partition"].error = ExposureError(
            mechanism="partition", node=self.node.uuid, reason="boom")
        self._write_image()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(exception.InstanceDeployFailure,
                              task.driver.deploy.write_configdrive, task)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_image, task)
        self.assertIn("passing the config drive", str(exc))


class TestRebuild(DeployTestBase):
    def test_new_configdrive_replaces_old(self) -> None:
        self._deploy()
        old = self._record()
        assert old is not None
        info = dict(self.node.instance_info)
        info["configdrive"] = {"meta_data": {"name": "rebuilt"}}
        self.node.instance_info = info
        self.node.save()
        self._deploy()
        new = self._record()
        assert new is not None
        self.assertNotEqual(old.deploy_id, new.deploy_id)
        self.assertEqual([new.location], list(self.store.objects))
        self.assertEqual([old.exposures[0].record], self.exposers["partition"].detached)
        self.assertEqual(2, len(self.exposers["partition"].attached))
        self.assertEqual([], new.stale)

    def test_rebuild_without_configdrive_resigns(self) -> None:
        self._deploy()
        first = self.exposers["partition"].attached[0]
        old = self._record()
        self._deploy()  # instance_info still holds our reference
        second = self.exposers["partition"].attached[1]
        new = self._record()
        assert old is not None and new is not None
        self.assertEqual(old.deploy_id, new.deploy_id)
        self.assertEqual(1, len(self.store.objects))
        self.assertEqual(first.sha256, second.sha256)
        self.assertNotEqual(first.url, second.url)  # a fresh signature, never the old URL


    def test_rebuild_for_virtual_media_stores_the_drive_raw(self) -> None:
        self._deploy()  # partition: stored compressed
        old = self._record()
        assert old is not None and old.stored is not None
        self.assertEqual("gzip", old.stored.encoding)
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    group="configdrive")
        raw = self.store.objects[str(old.location)]
        fetched: list[str] = []

        def fetch(url: str, cap: int, key: bytes | None = None, policy: Any = None,
                  **_: Any) -> bytes:
            assert key is None  # a plain stored drive: nothing to open
            assert policy is lifecycle.source.TRUSTED  # our own store's URL
            fetched.append(url)
            return raw

        with mock.patch.object(lifecycle.source, "fetch", side_effect=fetch):
            self._deploy()  # rebuild without a new config drive
        new = self._record()
        assert new is not None and new.stored is not None
        self.assertEqual(old.deploy_id, new.deploy_id)
        self.assertEqual("identity", new.stored.encoding)
        self.assertEqual(old.stored.sha256, new.stored.sha256)
        self.assertEqual([str(new.location)], list(self.store.objects))  # old one deleted
        self.assertEqual("identity", self.store.encodings[str(new.location)])
        [attached] = self.exposers["virtual_media"].attached
        self.assertEqual("identity", attached.encoding)
        self.assertEqual(1, len(fetched))
        self.assertNotIn(SIGNATURE, repr(self.node.driver_internal_info))

    def test_rebuild_for_virtual_media_refuses_a_changed_object(self) -> None:
        self._deploy()
        self.config(exposure="virtual_media", group="configdrive")
        with mock.patch.object(lifecycle.source, "fetch", return_value=b"tampered"), \
                task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.InstanceDeployFailure,
                                    task.driver.deploy.write_image, task)
        self.assertIn("Could not store the config drive uncompressed", str(exc))
        self.assertIn("sha256", str(exc))
        self.assertEqual(1, len(self.store.objects))  # the recorded one is kept


class TestTeardown(DeployTestBase):
    def _restart_conductor(self) -> None:
        # Forget the loaded interface instances, as a restarted conductor would.
        factory = driver_factory._INTERFACE_LOADERS["deploy"]
        self.addCleanup(setattr, factory, "_extension_manager", factory._extension_manager)
        factory._extension_manager = None

    def test_clean_up_and_tear_down_from_the_record(self) -> None:
        self.config(exposure="virtual_media", virtual_media_fallback="fail",
                    group="configdrive")
        self._deploy()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            before = task.driver.deploy
        self._restart_conductor()
        recorded = self._record()
        assert recorded is not None
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsNot(before, task.driver.deploy)
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)
            task.driver.deploy.clean_up(task)  # idempotent
        self.assertEqual({}, self.store.objects)
        self.assertEqual([recorded.exposures[0].record],
                         self.exposers["virtual_media"].detached)
        self.assertIsNone(self._record())

    def test_partition_keeps_erase_pending(self) -> None:
        self._deploy()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)
        record = self._record()
        assert record is not None
        self.assertIsNone(record.stored)
        self.assertEqual([], record.exposures)
        assert record.erase is not None
        self.assertEqual("partition-dev", record.erase.device)
        self.assertIsNone(record.erase.warning)

    def test_automated_clean_disabled_warns(self) -> None:
        self.config(automated_clean=False, group="conductor")
        self._deploy()
        logs = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.tear_down(task)
        self.assertIn("Automated cleaning is disabled", logs.output)
        record = self._record()
        assert record is not None and record.erase is not None
        self.assertIn("erase_configdrive", record.erase.warning)
        events = [h.event for h in node_history.NodeHistory.list_by_node_id(
            self.context, self.node.id)]
        self.assertTrue(any("Automated cleaning is disabled" in e for e in events))

    def test_store_delete_failure_is_retried(self) -> None:
        self._deploy()
        record = self._record()
        assert record is not None
        with mock.patch.object(FakeStore, "delete", autospec=True,
                               side_effect=StoreError(store="fake", node="n", reason="503")):
            with task_manager.acquire(self.context, self.node.uuid) as task:
                task.driver.deploy.clean_up(task)
        kept = self._record()
        assert kept is not None
        self.assertEqual([record.stored], kept.stale)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
        self.assertEqual({}, self.store.objects)
        kept = self._record()
        assert kept is not None
        self.assertEqual([], kept.stale)


class TestEraseCleanStep(DeployTestBase):
    STEP = {"step": "erase_configdrive", "priority": deploy.ERASE_PRIORITY,
            "interface": "deploy", "args": {}}

    def _erase(self) -> Any:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            return task.driver.deploy.execute_clean_step(task, dict(self.STEP))

    def _undeployed(self) -> None:
        self._deploy()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)
        self.command.reset_mock()

    def test_removes_through_the_agent(self) -> None:
        self._undeployed()
        self.command.return_value = {"command_status": "SUCCEEDED", "command_error": None,
                                     "command_result": {}}
        self.assertIsNone(self._erase())
        self.command.assert_called_once_with(
            mock.ANY, mock.ANY, method="configdrive.remove",
            params={"device": "partition-dev"}, wait=False)
        self.assertIsNone(self._record())

    def test_agent_failure_fails_cleaning(self) -> None:
        self._undeployed()
        self.command.return_value = {
            "command_status": "FAILED",
            "command_error": {"details": "device /dev/sdz not found", "type": "DeviceError"}}
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.NodeCleaningFailure,
                                    task.driver.deploy.execute_clean_step, task,
                                    dict(self.STEP))
        self.assertIn("could not erase the config drive", str(exc))
        self.assertIn("/dev/sdz not found", str(exc))
        record = self._record()
        assert record is not None
        self.assertIsNotNone(record.erase)  # still pending

    def test_unreachable_agent_fails_cleaning(self) -> None:
        # detach tolerates a vanished agent; the erase step must not (the drive holds keys).
        self._undeployed()
        self.command.side_effect = exception.AgentConnectionFailed(reason="timed out")
        with task_manager.acquire(self.context, self.node.uuid) as task:
            exc = self.assertRaises(exception.NodeCleaningFailure,
                                    task.driver.deploy.execute_clean_step, task,
                                    dict(self.STEP))
        self.assertIn("could not erase the config drive", str(exc))
        self.assertIn("cannot reach the agent", str(exc))
        self.command.assert_called_once_with(
            mock.ANY, mock.ANY, method="configdrive.remove",
            params={"device": "partition-dev"}, wait=False)
        record = self._record()
        assert record is not None
        self.assertEqual(records.Erase("partition-dev"), record.erase)  # still pending

    def test_nothing_recorded_is_a_no_op(self) -> None:
        self.node = self._node(None)
        self.assertIsNone(self._erase())
        self.assertEqual(0, self.command.call_count)


class TestValidate(DeployTestBase):
    def _validate(self) -> Exception:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            return self.assertRaises(exception.InvalidParameterValue,
                                     task.driver.deploy.validate, task)

    def test_valid(self) -> None:
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)

    def test_bad_format(self) -> None:
        self.node.driver_info = {"configdrive_format": "ext4"}
        self.node.save()
        self.assertIn("configdrive_format 'ext4'", str(self._validate()))

    def test_bad_exposure(self) -> None:
        self.node.driver_info = {"configdrive_exposure": "floppy"}
        self.node.save()
        message = str(self._validate())
        self.assertIn("floppy", message)
        self.assertIn("unknown mechanism", message)

    def test_store_not_usable(self) -> None:
        self.store.invalid = "[deploy]http_url is not set"
        message = str(self._validate())
        self.assertIn("config drive store is not usable", message)
        self.assertIn("http_url", message)

    def test_bad_configdrive_type(self) -> None:
        self.node = self._node(42)
        self.assertIn("must be a URL", str(self._validate()))


class TestHardwareTypes(DeployTestBase):
    """Why ``configdrive`` needs hardware types of its own outside ``fake-hardware``."""

    def test_upstream_types_refuse_a_subclass(self) -> None:
        from ironic.drivers import redfish

        self.assertRaises(exception.IncompatibleInterface, driver_factory.get_interface,
                          redfish.RedfishHardware(), "deploy", "configdrive")

    def test_our_types_accept_it_and_keep_direct_default(self) -> None:
        from ironic_configdrive import hardware

        for hw_class in (hardware.RedfishConfigDriveHardware,
                         hardware.IPMIConfigDriveHardware,
                         hardware.ManualManagementConfigDriveHardware):
            hw = hw_class()
            self.assertIsInstance(driver_factory.get_interface(hw, "deploy", "configdrive"),
                                  deploy.ConfigDriveDeploy)
            self.assertIs(deploy.ConfigDriveDeploy, hw.supported_deploy_interfaces[-1])
            self.assertEqual("direct", driver_factory.default_interface(hw, "deploy"))
