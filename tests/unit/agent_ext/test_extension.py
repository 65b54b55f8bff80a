"""The ``configdrive`` extension through IPA's own loader, with command execution blocked."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import ssl
import types
from typing import Any

import pytest
from ironic_python_agent import encoding
from ironic_python_agent import errors as ipa_errors
from ironic_python_agent.extensions import base
from ironic_python_agent.tests.unit import base as ipa_test_base

import agent_ext
from agent_ext import extension
from ironic_configdrive.image import build_image
from tests.unit.agent_ext.fakes import FakeDisk

DEV = "/dev/fake0"
SIG = "0123456789abcdef0123456789abcdef01234567"


class FakeAgent(base.ExecuteCommandMixin):
    """The part of IronicPythonAgent that runs commands."""

    def __init__(self) -> None:
        super().__init__()
        self.heartbeats = 0

    def force_heartbeat(self) -> None:
        self.heartbeats += 1


def _json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, cls=encoding.RESTJSONEncoder))


class TestConfigDriveExtension(ipa_test_base.IronicAgentTest):
    """IPA's test base blocks utils.execute/processutils/subprocess for every test."""

    def setUp(self) -> None:
        super().setUp()
        self.disk = FakeDisk()
        self.patch(agent_ext, "disk", self.disk)
        self.agent = FakeAgent()
        self.agent.ext_mgr = base.init_ext_manager(self.agent)
        self.image = build_image({"meta_data": {"uuid": "u-1"}})
        self.blob = base64.b64encode(gzip.compress(self.image)).decode()
        self.sha = hashlib.sha256(self.image).hexdigest()
        # The node's root device hints choose DEV unless a test says otherwise.
        self.install_device = DEV
        self.patch(extension.hardware, "dispatch_to_managers",
                   lambda method, **kwargs: self.install_device)

    def _run(self, command: str, **params: Any) -> dict[str, Any]:
        result = self.agent.execute_command(command, **params)
        result.join()
        return _json(result)

    def test_loaded_by_ipa_entry_point(self) -> None:
        ext = base.get_extension("configdrive")
        self.assertIsInstance(ext, extension.ConfigDriveExtension)
        self.assertEqual({"write", "remove", "status"}, set(ext.command_map))
        self.assertIs(self.agent, ext.agent)

    def test_write_status_remove(self) -> None:
        out = self._run("configdrive.status", device=DEV)
        self.assertEqual("SUCCEEDED", out["command_status"])
        self.assertFalse(out["command_result"]["present"])

        out = self._run(
            "configdrive.write",
            device=DEV,
            configdrive=self.blob,
            sha256=self.sha,
            size=len(self.image),
        )
        self.assertEqual("SUCCEEDED", out["command_status"], out)
        self.assertEqual(self.sha, out["command_result"]["sha256"])
        self.assertEqual(self.image, self.disk.content)
        self.assertGreaterEqual(self.agent.heartbeats, 1)

        out = self._run("configdrive.status", device=DEV)
        self.assertTrue(out["command_result"]["present"])
        self.assertEqual(self.sha, out["command_result"]["sha256"])

        out = self._run("configdrive.remove", device=DEV)
        self.assertEqual("SUCCEEDED", out["command_status"])
        self.assertTrue(out["command_result"]["removed"])
        out = self._run("configdrive.remove", device=DEV)
        self.assertEqual("SUCCEEDED", out["command_status"])
        self.assertFalse(out["command_result"]["removed"])

    def test_write_with_data_and_whole_device(self) -> None:
        out = self._run("configdrive.write", device=DEV, data=self.blob, target="device")
        self.assertEqual("SUCCEEDED", out["command_status"], out)
        self.assertEqual("device", self.disk.prepared[0]["target"])

    def test_missing_device_is_rejected_synchronously(self) -> None:
        for params in ({"configdrive": self.blob}, {"device": "", "data": self.blob}):
            with pytest.raises(ipa_errors.InvalidCommandParamsError) as info:
                self.agent.execute_command("configdrive.write", **params)
            self.assertIn("never guesses a disk", info.value.details)
            self.assertEqual(400, info.value.code)
        with pytest.raises(ipa_errors.InvalidCommandParamsError):
            self.agent.execute_command("configdrive.status")
        with pytest.raises(ipa_errors.InvalidCommandParamsError):
            self.agent.execute_command("configdrive.remove", device=None)
        self.assertEqual([], self.disk.prepared)

    def test_root_device_follows_the_root_device_hints(self) -> None:
        calls: list[tuple[str, dict[str, Any]]] = []

        def dispatch(method: str, **kwargs: Any) -> str:
            calls.append((method, kwargs))
            return "/dev/hinted"

        self.patch(extension.hardware, "dispatch_to_managers", dispatch)
        out = self._run("configdrive.write", device="root", data=self.blob)
        self.assertEqual("SUCCEEDED", out["command_status"], out)
        self.assertEqual("/dev/hinted", self.disk.prepared[0]["device"])
        self.assertEqual([("get_os_install_device", {"permit_refresh": True})], calls)
        self._run("configdrive.remove", device="root")
        self.assertEqual("SUCCEEDED", self._run("configdrive.status", device="root")[
            "command_status"])
        self.assertEqual(3, len(calls))

    def test_root_device_without_a_match_is_a_clear_error(self) -> None:
        def dispatch(method: str, **kwargs: Any) -> str:
            raise ipa_errors.DeviceNotFound("No suitable device was found for deployment")

        self.patch(extension.hardware, "dispatch_to_managers", dispatch)
        out = self._run("configdrive.write", device="root", data=self.blob)
        self.assertEqual("FAILED", out["command_status"])
        self.assertIn("root device hints", out["command_error"]["details"])
        self.assertEqual([], self.disk.prepared)

    def test_device_the_operator_did_not_name_must_be_the_root_disk(self) -> None:
        self.install_device = "/dev/fake-root"
        # Two distinct disks, as their device numbers say.
        self.patch(extension.devices, "_stat_block",
                   lambda device: types.SimpleNamespace(st_rdev=len(device)))
        out = self._run("configdrive.write", device=DEV, data=self.blob)
        self.assertEqual("FAILED", out["command_status"])
        details = out["command_error"]["details"]
        self.assertIn(f"device {DEV}: is not the disk the node's root device hints choose "
                      "(/dev/fake-root)", details)
        self.assertIn("driver_info/configdrive_device", details)
        self.assertEqual("device", out["command_error"]["category"])
        self.assertEqual([], self.disk.prepared)

        out = self._run("configdrive.write", device=DEV, data=self.blob,
                        device_from_operator=True)
        self.assertEqual("SUCCEEDED", out["command_status"], out)
        self.assertEqual(DEV, self.disk.prepared[0]["device"])

    def test_device_choice_without_root_device_hints_match_is_refused(self) -> None:
        def dispatch(method: str, **kwargs: Any) -> str:
            raise ipa_errors.DeviceNotFound("No suitable device was found for deployment")

        self.patch(extension.hardware, "dispatch_to_managers", dispatch)
        out = self._run("configdrive.write", device=DEV, data=self.blob)
        self.assertEqual("FAILED", out["command_status"])
        self.assertIn("cannot tell which disk the node's root device hints choose",
                      out["command_error"]["details"])
        self.assertEqual([], self.disk.prepared)

    def test_device_from_operator_must_be_a_boolean(self) -> None:
        with pytest.raises(ipa_errors.InvalidCommandParamsError, match="true or false"):
            self.agent.execute_command("configdrive.write", device=DEV, data=self.blob,
                                       device_from_operator="yes")

    def test_bad_params_are_rejected_synchronously(self) -> None:
        with pytest.raises(ipa_errors.InvalidCommandParamsError, match="exactly one"):
            self.agent.execute_command("configdrive.write", device=DEV)
        with pytest.raises(ipa_errors.InvalidCommandParamsError, match="source once"):
            self.agent.execute_command(
                "configdrive.write", device=DEV, configdrive=self.blob, data=self.blob
            )
        with pytest.raises(ipa_errors.InvalidCommandParamsError, match="target"):
            self.agent.execute_command(
                "configdrive.write", device=DEV, data=self.blob, target="usb"
            )

    def test_unknown_params_are_rejected(self) -> None:
        with pytest.raises(ipa_errors.InvalidCommandParamsError,
                           match="unknown parameter.*node_uuid"):
            self.agent.execute_command("configdrive.write", device=DEV, data=self.blob,
                                       node_uuid="x")
        with pytest.raises(ipa_errors.InvalidCommandParamsError, match="unknown.*force"):
            self.agent.execute_command("configdrive.remove", device=DEV, force=True)

    def test_failure_serialises_as_command_error(self) -> None:
        out = self._run("configdrive.write", device=DEV, data=self.blob, sha256="f" * 64)
        self.assertEqual("FAILED", out["command_status"])
        error = out["command_error"]
        self.assertEqual("ConfigDriveCommandError", error["type"])
        self.assertEqual("verification", error["category"])
        self.assertEqual("VerificationError", error["error_type"])
        self.assertIn("sha256 of the received image", error["details"])
        self.assertIn(DEV, error["details"])
        self.assertEqual(500, error["code"])
        self.assertIsNone(self.disk.content)

    def test_transfer_error_never_leaks_the_signature(self) -> None:
        url = f"http://127.0.0.1:1/v1/AUTH_a/c/o?temp_url_sig={SIG}&temp_url_expires=1"
        self.config(image_download_connection_retries=0)
        with self.assertLogs(level=logging.DEBUG) as logs:
            out = self._run("configdrive.write", device=DEV, configdrive=url)
        self.assertEqual("FAILED", out["command_status"])
        self.assertEqual("transfer", out["command_error"]["category"])
        self.assertIn("/v1/AUTH_a/c/o?***", out["command_error"]["details"])
        self.assertNotIn(SIG, json.dumps(out))
        self.assertNotIn(SIG, "\n".join(logs.output))

    def test_sync_status_error(self) -> None:
        def broken(device: str) -> Any:
            raise agent_ext.errors.DeviceError(device=device, reason="does not exist")

        self.disk.config_drive_status = broken  # type: ignore[method-assign]
        out = self._run("configdrive.status", device="/dev/nope")
        self.assertEqual("FAILED", out["command_status"])
        self.assertEqual("device /dev/nope: does not exist", out["command_error"]["details"])
        self.assertEqual("device", out["command_error"]["category"])

    def test_unexpected_error_is_wrapped(self) -> None:
        def broken(device: str) -> Any:
            raise RuntimeError("boom")

        self.disk.remove_config_drive = broken  # type: ignore[method-assign]
        out = self._run("configdrive.remove", device=DEV)
        self.assertEqual("FAILED", out["command_status"])
        self.assertIn("unexpected RuntimeError", out["command_error"]["details"])
        self.assertIn("report this as a bug", out["command_error"]["details"])

    def test_ipa_tls_options_are_used(self) -> None:
        self.config(insecure=False, cafile="/etc/ca.pem", certfile="/c.pem", keyfile="/k.pem")
        seen: dict[str, Any] = {}

        def capture(device: str, **kwargs: Any) -> dict[str, Any]:
            seen.update(kwargs)
            return {}

        self.patch(extension.pipeline, "write_config_drive", capture)
        out = self._run(
            "configdrive.write",
            device=DEV,
            url="https://store/x",
            proxies={"https": "http://proxy:3128"},
            no_proxy="10.0.0.1",
        )
        self.assertEqual("SUCCEEDED", out["command_status"], out)
        options = seen["fetch_options"]
        self.assertEqual("/etc/ca.pem", options.verify)
        self.assertEqual(("/c.pem", "/k.pem"), options.cert)
        self.assertEqual({"https": "http://proxy:3128"}, options.proxies)
        self.assertEqual("10.0.0.1", options.no_proxy)
        self.assertEqual("https://store/x", seen["url"])

    def test_ipa_tls_policy_is_used(self) -> None:
        self.config(tls_min_version="1.3")
        seen: dict[str, Any] = {}

        def capture(device: str, **kwargs: Any) -> dict[str, Any]:
            seen.update(kwargs)
            return {}

        self.patch(extension.pipeline, "write_config_drive", capture)
        out = self._run("configdrive.write", device=DEV, url="https://store/x")
        self.assertEqual("SUCCEEDED", out["command_status"], out)
        context = seen["fetch_options"].ssl_context
        self.assertEqual(ssl.TLSVersion.TLSv1_3, context.minimum_version)

    def test_download_timeout_reaches_the_fetch_options(self) -> None:
        seen: list[float] = []

        def capture(device: str, **kwargs: Any) -> dict[str, Any]:
            seen.append(kwargs["fetch_options"].download_timeout)
            return {}

        self.patch(extension.pipeline, "write_config_drive", capture)
        for given in (30, 2.5, None):
            params = {} if given is None else {"download_timeout": given}
            out = self._run("configdrive.write", device=DEV, url="https://store/x", **params)
            self.assertEqual("SUCCEEDED", out["command_status"], out)
        # Absent (an older conductor): the agent's own default, not "no deadline".
        self.assertEqual([30.0, 2.5, extension.DEFAULT_DOWNLOAD_TIMEOUT], seen)

    def test_bad_download_timeout_is_rejected_synchronously(self) -> None:
        outside, not_numbers = (0, -5, 86401, float("nan"), float("inf")), (True, "60", [60])
        for bad in (*outside, *not_numbers):
            reason = "is outside 1..86400 seconds" if bad in outside else "must be a number"
            with pytest.raises(ipa_errors.InvalidCommandParamsError,
                               match=f"download_timeout .*{reason}") as caught:
                self.agent.execute_command("configdrive.write", device=DEV,
                                           url="https://store/x", download_timeout=bad)
            self.assertEqual("InvalidInputError", caught.value.error_type)

    def test_loading_the_extension_installs_url_masking(self) -> None:
        from ironic_configdrive import masking

        self.patch(masking, "_factory_installed", False)
        self.patch(logging, "_logRecordFactory", logging.LogRecord)
        base.init_ext_manager(FakeAgent())
        record = logging.getLogger("urllib3.connectionpool").makeRecord(
            "urllib3.connectionpool", logging.DEBUG, __file__, 1, '%s "GET %s HTTP/1.1" 200',
            ("http://h:80", f"/c/3690fd63-d536-44f1-be72-bf9462a93a83.d1.{'S' * 43}.gz"
                            f"?temp_url_sig={SIG}"), None)
        self.assertNotIn(SIG, record.getMessage())
        self.assertNotIn("S" * 43, record.getMessage())
