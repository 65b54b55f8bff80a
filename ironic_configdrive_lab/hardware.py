"""A lab-only IPA hardware manager: the agent sees the lab's loop disk and veth, nothing else.

Loaded through the ``ironic_python_agent.hardware_managers`` entry point, it is inert
(hardware support NONE, so IPA drops it) unless the lab started the agent with
``IRONIC_CONFIGDRIVE_LAB_DISK`` naming a ``/dev/loopN`` device. Then it outranks the generic
manager and, being a subclass, answers every call the generic one would: disk listing, the
install device, clean steps (which list disks through ``self``) and network interfaces all
see only the lab's devices, so no step can reach a host disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# IPA's config module registers the options its hardware module reads at import time.
from ironic_python_agent import config as _ipa_config  # noqa: F401
from ironic_python_agent import errors, hardware

from ironic_configdrive_lab.agent import DISK_ENV, IFACE_ENV

_LOOP = re.compile(r"^/dev/loop[0-9]+$")


def lab_disk() -> str | None:
    disk = os.environ.get(DISK_ENV, "")
    return disk if _LOOP.match(disk) else None


def _sectors(sys_dir: Path) -> int:
    return int((sys_dir / "size").read_text().strip()) * 512


class LabHardwareManager(hardware.GenericHardwareManager):
    HARDWARE_MANAGER_NAME = "ironic_configdrive_lab"
    HARDWARE_MANAGER_VERSION = "1.0"

    def evaluate_hardware_support(self) -> int:
        if lab_disk() is None:
            return hardware.HardwareSupport.NONE
        return hardware.HardwareSupport.SERVICE_PROVIDER

    def _disk(self) -> str:
        disk = lab_disk()
        if disk is None:
            raise errors.DeviceNotFound(f"{DISK_ENV} does not name a loop device")
        return disk

    def list_block_devices(self, include_partitions: bool = False,
                           all_serial_and_wwn: bool = False) -> list[Any]:
        disk = self._disk()
        name = disk.rsplit("/", 1)[1]
        sys_dir = Path("/sys/block") / name
        if not sys_dir.is_dir():
            raise errors.DeviceNotFound(f"lab disk {disk} is not attached")
        devices = [hardware.BlockDevice(
            name=disk, model="lab loop disk", size=_sectors(sys_dir), rotational=False,
            serial=f"lab-{name}", vendor="ironic-configdrive",
            logical_sectors=int((sys_dir / "queue" / "logical_block_size").read_text()),
            physical_sectors=int((sys_dir / "queue" / "physical_block_size").read_text()))]
        if include_partitions:
            for part in sorted(sys_dir.glob(f"{name}p*")):
                devices.append(hardware.BlockDevice(
                    name=f"/dev/{part.name}", model="", size=_sectors(part),
                    rotational=False))
        return devices

    def get_os_install_device(self, permit_refresh: bool = False) -> str:
        # Root device hints do not apply: the lab disk is the only disk there is.
        return self._disk()

    def list_network_interfaces(self) -> list[Any]:
        iface = os.environ.get(IFACE_ENV)
        if not iface or not Path("/sys/class/net", iface).exists():
            return []
        return [self.get_interface_info(iface)]
