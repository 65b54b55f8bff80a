"""The node's BMC for virtual media: sushy-tools' emulator with one fake system.

``up`` starts it under ``DIR/redfish`` (pid file ``DIR/pids/redfish.pid``) and gives the node
its ``redfish_*`` driver_info; ``down`` stops it by pid. Power stays with the lab (fake power):
the emulator only serves the virtual media the configdrive exposure inserts.
"""

from __future__ import annotations

import shutil
import uuid
from typing import Any

from ironic_configdrive_lab import redfish
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME = "redfish"


def system_uuid(workdir: Workdir) -> str:
    """Stable per workdir: a restarted emulator serves the same system."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ironic-configdrive-lab:{workdir.root}"))


def _emulator(workdir: Workdir, mac: str, port: int | None = None) -> redfish.RedfishEmulator:
    systems = [{"uuid": system_uuid(workdir), "name": "lab-node", "power_state": "Off",
                "external_notifier": False, "nics": [{"mac": mac, "ip": "127.0.0.1"}]}]
    return redfish.RedfishEmulator(workdir.root / NAME, systems=systems, port=port,
                                   pid_file=workdir.pid_file(NAME))


def start(workdir: Workdir, mac: str) -> dict[str, Any]:
    """Start the emulator; the node's driver_info for it."""
    if redfish.find_executable() is None:
        raise LabError("sushy-emulator is missing: pip install sushy-tools")
    emulator = _emulator(workdir, mac)
    try:
        emulator.start()
    except redfish.RedfishEmulatorError as exc:
        raise LabError(f"the Redfish emulator did not start under {workdir.root / NAME}: "
                       f"{exc}") from None
    emulator.release()
    return emulator.driver_info()


def stop(workdir: Workdir) -> bool:
    return redfish.stop_recorded(workdir.pid_file(NAME))


def forget_state(workdir: Workdir) -> None:
    """Drop the stopped emulator's state: its sqlite remembers every URL ever inserted."""
    shutil.rmtree(workdir.root / NAME / "state", ignore_errors=True)


def media(workdir: Workdir, url: str) -> dict[str, dict[str, Any]]:
    """Every virtual media slot of the lab's system, by device name, as the BMC reports it."""
    import requests

    result = {}
    base = f"{url}/redfish/v1/Systems/{system_uuid(workdir)}/VirtualMedia"
    for device in redfish.DEFAULT_VMEDIA_DEVICES:
        try:
            response = requests.get(f"{base}/{device}", timeout=10)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise LabError(f"the Redfish emulator at {url} did not report {device}: "
                           f"{type(exc).__name__}") from None
        result[device] = dict(response.json())
    return result


def downloaded(workdir: Workdir) -> list[bytes]:
    """The files the emulator downloaded for virtual media (kept in its TMPDIR)."""
    root = workdir.root / NAME / "tmp"
    return [path.read_bytes() for path in root.rglob("*") if path.is_file()]
