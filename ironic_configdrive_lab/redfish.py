"""A real Redfish BMC: sushy-tools' ``sushy-emulator`` with its fake systems driver.

Plain class so the lab, pytest fixtures and unittest cases can all use it::

    emulator = RedfishEmulator(workdir)
    emulator.start()
    try:
        emulator.driver_info()  # redfish_* keys for a node
    finally:
        emulator.stop()

It listens on 127.0.0.1 at a free port, keeps its state (sqlite) under ``workdir`` and logs
to ``workdir/sushy-emulator.log``. Its virtual media insert really downloads the image URL.
With ``pid_file`` the process is also recorded there (pid and start time), so another
process can stop it with :func:`stop_recorded` (``ironic-configdrive-lab down`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import requests

from ironic_configdrive_lab import process as lab_process
from ironic_configdrive_lab.ports import free_port  # tests/fixtures import it from here

#: Virtual media slots of sushy-tools' default configuration.
DEFAULT_VMEDIA_DEVICES: dict[str, dict[str, Any]] = {
    "Cd": {"Name": "Virtual CD", "MediaTypes": ["CD", "DVD"]},
    "Floppy": {"Name": "Virtual Removable Media", "MediaTypes": ["Floppy", "USBStick"]},
}


class RedfishEmulatorError(RuntimeError):
    """The emulator could not be started or queried."""


def find_executable() -> str | None:
    """``sushy-emulator`` next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("sushy-emulator")
    if beside.exists():
        return str(beside)
    return shutil.which("sushy-emulator")


class RedfishEmulator:
    """One ``sushy-emulator --fake`` process serving fake systems on 127.0.0.1."""

    def __init__(self, workdir: str | os.PathLike[str], *,
                 systems: list[dict[str, Any]] | None = None,
                 vmedia_devices: dict[str, dict[str, Any]] | None = None,
                 executable: str | None = None, start_timeout: float = 60.0,
                 port: int | None = None,
                 pid_file: str | os.PathLike[str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.pid_file = Path(pid_file) if pid_file is not None else None
        self._wanted_port = port
        self.systems = systems or [{
            "uuid": str(uuidlib.uuid4()), "name": "node-0", "power_state": "Off",
            "external_notifier": False,
            "nics": [{"mac": "52:54:00:12:34:56", "ip": "127.0.0.1"}],
        }]
        self.vmedia_devices = vmedia_devices or DEFAULT_VMEDIA_DEVICES
        self.executable = executable or find_executable()
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "sushy-emulator.log"
        self._log: Any = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedfishEmulatorError("the emulator is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RedfishEmulator:
        if self.process is not None:
            return self
        if self.executable is None:
            raise RedfishEmulatorError("sushy-emulator not found (pip install sushy-tools)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self._wanted_port or free_port()
        config = self.workdir / "sushy-emulator.conf"
        config.write_text(
            "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}\n"
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.workdir / 'state')!r}\n"
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {self.systems!r}\n"
            f"SUSHY_EMULATOR_VMEDIA_DEVICES = {self.vmedia_devices!r}\n"
            "SUSHY_EMULATOR_VMEDIA_VERIFY_SSL = False\n")
        env = dict(os.environ)
        # The emulator downloads virtual media: never through a proxy, always to loopback.
        for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(key, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        # Its temporary downloads land in TMPDIR: keep them in the workdir.
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [self.executable, "--config", str(config)], stdout=self._log,
            stderr=subprocess.STDOUT, env=env, cwd=str(self.workdir),
            start_new_session=True)
        if self.pid_file is not None:
            lab_process.record_pid(self.pid_file, self.process.pid)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RedfishEmulatorError(
                    f"sushy-emulator exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.url}/redfish/v1/Systems", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RedfishEmulatorError(f"sushy-emulator did not answer in {self.start_timeout} s: "
                                   f"{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def release(self) -> None:
        """Leave the emulator running (tracked by its pid file) and let this object go.

        For a caller that exits while the emulator runs on (``ironic-configdrive-lab up``);
        :func:`stop_recorded` stops it later.
        """
        if self.pid_file is None:
            raise RedfishEmulatorError("release() needs pid_file: nothing could stop the "
                                       "emulator later")
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RedfishEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- what tests need ----------------------------------------------------------------------

    @property
    def system_id(self) -> str:
        return str(self.systems[0]["uuid"])

    def system_path(self, system_id: str | None = None) -> str:
        return f"/redfish/v1/Systems/{system_id or self.system_id}"

    def driver_info(self, system_id: str | None = None) -> dict[str, Any]:
        """Node driver_info for Ironic's redfish utilities (the emulator needs no auth).

        ``redfish_verify_ca`` must be explicit for hardware types other than ``redfish``
        (e.g. ``fake-hardware``): without it Ironic looks up ``[<hardware type>]verify_ca``.
        """
        return {
            "redfish_address": self.url,
            "redfish_system_id": self.system_path(system_id),
            "redfish_username": "admin",
            "redfish_password": "password",
            "redfish_verify_ca": False,
        }

    def vmedia_path(self, device: str, system_id: str | None = None) -> str:
        return f"{self.system_path(system_id)}/VirtualMedia/{device}"

    def vmedia(self, device: str, system_id: str | None = None) -> dict[str, Any]:
        """The emulator's VirtualMedia resource as JSON (Image, Inserted, ...)."""
        resp = requests.get(self.url + self.vmedia_path(device, system_id), timeout=10)
        resp.raise_for_status()
        return dict(resp.json())

    def insert(self, device: str, image_url: str, system_id: str | None = None) -> None:
        """Insert media directly (as another tool or an operator would)."""
        resp = requests.post(
            self.url + self.vmedia_path(device, system_id)
            + "/Actions/VirtualMedia.InsertMedia",
            json={"Image": image_url, "Inserted": True, "WriteProtected": True}, timeout=60)
        if not resp.ok:
            raise RedfishEmulatorError(f"insert into {device} failed: {resp.status_code} "
                                       f"{resp.text}")

    def eject(self, device: str, system_id: str | None = None) -> None:
        resp = requests.post(
            self.url + self.vmedia_path(device, system_id) + "/Actions/VirtualMedia.EjectMedia",
            json={}, timeout=30)
        if not resp.ok:
            raise RedfishEmulatorError(f"eject of {device} failed: {resp.status_code} "
                                       f"{resp.text}")

    def eject_all(self, system_id: str | None = None) -> None:
        for device in self.vmedia_devices:
            self.eject(device, system_id)

    def downloaded(self, name: str) -> list[bytes]:
        """Contents of the files named ``name`` the emulator downloaded for virtual media."""
        return [p.read_bytes() for p in (self.workdir / "tmp").rglob(name)]


def stop_recorded(pid_file: str | os.PathLike[str]) -> bool:
    """Stop, from any process, an emulator started with ``pid_file``; True if it ran."""
    return lab_process.stop_pid_file(Path(pid_file))
