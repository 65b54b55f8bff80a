"""Block devices as the kernel sees them: checks, sizes, partition nodes, BLKPG updates.

Everything comes from sysfs (through pyudev, which reads it directly and needs no udevd) and
from ioctls, never from udev's database: ramdisks without udevd have no labels there.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import stat
import subprocess
import time
from typing import Final

import pyudev

from agent_ext.disk import blockio
from agent_ext.errors import DeviceError

#: Bound on waiting for a partition node after telling the kernel about it.
NODE_TIMEOUT: Final = 10.0
_UDEV_CONTROL: Final = "/run/udev/control"


@dataclasses.dataclass(frozen=True)
class Disk:
    """A whole disk, checked to exist, be a block device, not a partition, and writable."""

    path: str              # the node as given (symlinks resolved)
    name: str              # kernel name, e.g. loop3, nvme0n1, sda
    size: int              # bytes
    logical_sector_size: int
    read_only: bool


@dataclasses.dataclass(frozen=True)
class KernelPartition:
    number: int
    name: str              # e.g. loop3p4
    node: str              # e.g. /dev/loop3p4
    start: int             # bytes
    size: int              # bytes
    devnum: int


def partition_node_name(disk_name: str, number: int) -> str:
    """The kernel's partition naming: a ``p`` separator when the disk name ends in a digit.

    loop0 → loop0p1, nvme0n1 → nvme0n1p1, md0 → md0p1, mmcblk0 → mmcblk0p1, sda → sda1.
    """
    if number < 1:
        raise ValueError(f"partition numbers start at 1, not {number}")
    sep = "p" if disk_name[-1:].isdigit() else ""
    return f"{disk_name}{sep}{number}"


def partition_path(disk_path: str, number: int) -> str:
    """Node of partition ``number`` of the disk at ``disk_path`` (in the same directory)."""
    real = os.path.realpath(disk_path)
    return os.path.join(os.path.dirname(real),
                        partition_node_name(os.path.basename(real), number))


def _udev_device(path: str, st: os.stat_result) -> pyudev.Device:
    return pyudev.Devices.from_device_number(pyudev.Context(), "block", st.st_rdev)


def _stat_block(device: str) -> os.stat_result:
    try:
        st = os.stat(device)
    except FileNotFoundError:
        raise DeviceError(device=device, reason=(
            "no such device; check the disk's name (e.g. /dev/sda, /dev/nvme0n1; the "
            "node's driver_info/configdrive_device when the conductor named it)")) from None
    except OSError as exc:
        raise DeviceError(device=device, reason=f"cannot access it ({exc.strerror})") from None
    if not stat.S_ISBLK(st.st_mode):
        raise DeviceError(device=device, reason=(
            "not a block device; give the disk's node, e.g. /dev/sda or /dev/nvme0n1"))
    return st


def read_only(device: str) -> bool:
    """Read-only per sysfs ``ro`` or the BLKROGET ioctl (either one is enough to refuse)."""
    st = _stat_block(device)
    udev = _udev_device(device, st)
    if str(udev.attributes.get("ro") or b"0", "ascii").strip() == "1":
        return True
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return blockio.ioctl_int(fd, blockio.BLKROGET) != 0
    finally:
        os.close(fd)


def open_disk(device: str, *, writable: bool = True) -> Disk:
    """Check ``device`` is an existing, whole, (writable) disk and describe it."""
    st = _stat_block(device)
    real = os.path.realpath(device)
    try:
        udev = _udev_device(device, st)
    except (pyudev.DeviceNotFoundError, OSError) as exc:
        raise DeviceError(device=device, reason=f"not known to the kernel ({exc})") from None
    if udev.device_type == "partition":
        parent = udev.find_parent("block")
        hint = f" ({parent.device_node})" if parent is not None else ""
        raise DeviceError(device=device, reason=(
            f"is a partition; give the whole disk{hint}"))
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise DeviceError(device=device, reason=f"cannot open it ({exc.strerror})") from None
    try:
        size = blockio.ioctl_u64(fd, blockio.BLKGETSIZE64)
        lss = blockio.ioctl_int(fd, blockio.BLKSSZGET)
        ro = blockio.ioctl_int(fd, blockio.BLKROGET) != 0
    finally:
        os.close(fd)
    ro = ro or str(udev.attributes.get("ro") or b"0", "ascii").strip() == "1"
    if size == 0:
        raise DeviceError(device=device, reason=(
            "has no medium (size 0); attach the disk or the virtual media first"))
    if writable and ro:
        raise DeviceError(device=device, reason=(
            "is read-only (sysfs ro / BLKROGET); clear write protection "
            "(e.g. blockdev --setrw) or choose another device"))
    return Disk(path=real, name=udev.sys_name, size=size, logical_sector_size=lss,
                read_only=ro)


def logical_sector_size(device: str) -> int:
    """Logical sector size in bytes (4096 on 4Kn disks, where ISO9660 cannot be mounted)."""
    _stat_block(device)
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return blockio.ioctl_int(fd, blockio.BLKSSZGET)
    finally:
        os.close(fd)


def kernel_partitions(disk: Disk) -> dict[int, KernelPartition]:
    """Partitions the kernel currently has for ``disk`` (sysfs, fresh on every call)."""
    context = pyudev.Context()
    parent = pyudev.Devices.from_name(context, "block", disk.name)
    found: dict[int, KernelPartition] = {}
    for child in context.list_devices(subsystem="block", DEVTYPE="partition", parent=parent):
        attrs = child.attributes
        try:
            number = int(attrs.asint("partition"))
            start = int(attrs.asint("start")) * 512   # sysfs counts 512-byte units
            size = int(attrs.asint("size")) * 512
        except (KeyError, ValueError):
            continue  # vanished while we looked
        node = child.device_node or os.path.join("/dev", child.sys_name)
        found[number] = KernelPartition(number=number, name=child.sys_name, node=node,
                                        start=start, size=size, devnum=child.device_number)
    return found


def settle() -> None:
    """Let udevd finish its queue when one runs (a real ramdisk); a no-op otherwise."""
    udevadm = shutil.which("udevadm")
    if udevadm and os.path.exists(_UDEV_CONTROL):
        subprocess.run([udevadm, "settle", "--timeout=10"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_node(disk: Disk, number: int, timeout: float = NODE_TIMEOUT) -> KernelPartition:
    """Poll (bounded) until the partition's node exists with the kernel's device number."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        part = kernel_partitions(disk).get(number)
        if part is not None:
            try:
                st = os.stat(part.node)
                if stat.S_ISBLK(st.st_mode) and st.st_rdev == part.devnum:
                    return part
            except FileNotFoundError:
                pass
        if time.monotonic() >= deadline:
            raise DeviceError(device=disk.path, reason=(
                f"partition {number} was written to the table but its node "
                f"{partition_path(disk.path, number)} did not appear within {timeout:.0f} s; "
                "check that devtmpfs is mounted on /dev (or udevd is working)"))
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def sync_partition(disk: Disk, number: int, start: int, size: int) -> KernelPartition:
    """Make the kernel's partition ``number`` span ``[start, start+size)`` bytes, then wait.

    Only this one partition is touched (BLKPG), so partitions in use elsewhere on the disk
    do not block us the way a whole-table re-read would.
    """
    current = kernel_partitions(disk).get(number)
    if current is None or (current.start, current.size) != (start, size):
        fd = os.open(disk.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if current is not None and current.start == start:
                blockio.blkpg(fd, blockio.BLKPG_RESIZE_PARTITION, number, start, size)
            else:
                if current is not None:
                    blockio.blkpg(fd, blockio.BLKPG_DEL_PARTITION, number)
                blockio.blkpg(fd, blockio.BLKPG_ADD_PARTITION, number, start, size)
        except OSError as exc:
            hint = (" (is it mounted or in use?)" if exc.errno == errno.EBUSY else "")
            raise DeviceError(device=disk.path, reason=(
                f"the table was updated but the kernel refused partition {number} "
                f"({exc.strerror}){hint}; run `partx --update --nr {number} {disk.path}`"
            )) from None
        finally:
            os.close(fd)
    settle()
    return wait_for_node(disk, number)


def forget_partition(disk: Disk, number: int) -> None:
    """Remove partition ``number`` from the kernel's view (no-op if it has none)."""
    if number not in kernel_partitions(disk):
        return
    fd = os.open(disk.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        blockio.blkpg(fd, blockio.BLKPG_DEL_PARTITION, number)
    except OSError as exc:
        raise DeviceError(device=disk.path, reason=(
            f"partition {number} was removed from the table but the kernel still uses it "
            f"({exc.strerror}); unmount it and run `partx --delete --nr {number} {disk.path}`"
        )) from None
    finally:
        os.close(fd)
    settle()


def require_install_disk(device: str, install_device: str) -> None:
    """Refuse ``device`` unless it is ``install_device`` (the disk the root device hints chose).

    For a device the operator did not name: whoever deploys may not steer the config drive
    onto another disk. Compared by device number, so ``/dev/disk/by-*`` links and the
    kernel name of the same disk are one disk.
    """
    if os.path.realpath(device) == os.path.realpath(install_device):
        return
    if _stat_block(device).st_rdev != _stat_block(install_device).st_rdev:
        raise DeviceError(device=device, reason=(
            f"is not the disk the node's root device hints choose ({install_device}), and "
            "the operator did not name it; write to 'root', or have the operator set "
            "driver_info/configdrive_device (or properties/root_device)"))
