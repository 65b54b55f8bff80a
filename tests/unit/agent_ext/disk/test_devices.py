from __future__ import annotations

import os
from unittest import mock

import pytest

from agent_ext.disk import devices
from agent_ext.errors import DeviceError


@pytest.mark.parametrize(("disk", "number", "expected"), [
    ("loop0", 1, "loop0p1"),
    ("loop12", 3, "loop12p3"),
    ("nvme0n1", 1, "nvme0n1p1"),
    ("nvme10n2", 15, "nvme10n2p15"),
    ("md0", 1, "md0p1"),
    ("md127", 2, "md127p2"),
    ("mmcblk0", 1, "mmcblk0p1"),
    ("sda", 1, "sda1"),
    ("sdaa", 12, "sdaa12"),
    ("vdb", 4, "vdb4"),
    ("xvda", 2, "xvda2"),
])
def test_partition_node_name(disk, number, expected):
    assert devices.partition_node_name(disk, number) == expected


def test_partition_node_name_rejects_zero():
    with pytest.raises(ValueError):
        devices.partition_node_name("sda", 0)


def test_partition_path_resolves_symlinks(tmp_path):
    (tmp_path / "nvme0n1").touch()
    os.symlink(tmp_path / "nvme0n1", tmp_path / "by-id-link")
    assert devices.partition_path(str(tmp_path / "by-id-link"), 2) == \
        str(tmp_path / "nvme0n1p2")


def test_missing_device(tmp_path):
    with pytest.raises(DeviceError) as err:
        devices.open_disk(str(tmp_path / "sdz"))
    assert "no such device" in err.value.message and "sdz" in err.value.message


def test_regular_file_is_not_a_device(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(b"x")
    for call in (devices.open_disk, devices.logical_sector_size, devices.read_only):
        with pytest.raises(DeviceError) as err:
            call(str(path))
        assert "not a block device" in err.value.message


def test_settle_only_when_udevd_runs():
    with mock.patch.object(devices.os.path, "exists", return_value=False), \
            mock.patch.object(devices.subprocess, "run") as run:
        devices.settle()
    run.assert_not_called()
    with mock.patch.object(devices.os.path, "exists", return_value=True), \
            mock.patch.object(devices.shutil, "which", return_value="/bin/udevadm"), \
            mock.patch.object(devices.subprocess, "run") as run:
        devices.settle()
    assert run.call_args[0][0][:2] == ["/bin/udevadm", "settle"]


DISK = devices.Disk(path="/dev/loop9", name="loop9", size=1 << 30, logical_sector_size=512,
                    read_only=False)


def test_wait_for_node_is_bounded():
    with mock.patch.object(devices, "kernel_partitions", return_value={}):
        with pytest.raises(DeviceError) as err:
            devices.wait_for_node(DISK, 4, timeout=0.05)
    assert "/dev/loop9p4" in err.value.message and "did not appear" in err.value.message


def test_wait_for_node_checks_device_number(tmp_path):
    node = tmp_path / "loop9p1"
    node.touch()                     # exists, but is not the block device: keep waiting
    part = devices.KernelPartition(1, "loop9p1", str(node), 0, 512, os.makedev(259, 1))
    with mock.patch.object(devices, "kernel_partitions", return_value={1: part}):
        with pytest.raises(DeviceError):
            devices.wait_for_node(DISK, 1, timeout=0.05)


def _sync(current: dict[int, devices.KernelPartition]) -> list[tuple[int, ...]]:
    calls: list[tuple[int, ...]] = []

    def record(fd: int, op: int, number: int, start: int = 0, length: int = 0) -> None:
        calls.append((op, number, start, length))

    ready = devices.KernelPartition(1, "loop9p1", "/dev/loop9p1", 0, 0, 0)
    with mock.patch.object(devices, "kernel_partitions", return_value=current), \
            mock.patch.object(devices.os, "open", return_value=99), \
            mock.patch.object(devices.os, "close"), \
            mock.patch.object(devices.blockio, "blkpg", side_effect=record), \
            mock.patch.object(devices, "settle"), \
            mock.patch.object(devices, "wait_for_node", return_value=ready):
        devices.sync_partition(DISK, 1, 1 << 20, 4 << 20)
    return calls


def test_sync_partition_adds_a_new_one():
    assert _sync({}) == [(devices.blockio.BLKPG_ADD_PARTITION, 1, 1 << 20, 4 << 20)]


def test_sync_partition_leaves_a_matching_one():
    same = devices.KernelPartition(1, "loop9p1", "/dev/loop9p1", 1 << 20, 4 << 20, 0)
    assert _sync({1: same}) == []


def test_sync_partition_resizes_in_place():
    smaller = devices.KernelPartition(1, "loop9p1", "/dev/loop9p1", 1 << 20, 1 << 20, 0)
    assert _sync({1: smaller}) == [(devices.blockio.BLKPG_RESIZE_PARTITION, 1, 1 << 20, 4 << 20)]


def test_sync_partition_replaces_a_moved_one():
    moved = devices.KernelPartition(1, "loop9p1", "/dev/loop9p1", 8 << 20, 4 << 20, 0)
    assert _sync({1: moved}) == [(devices.blockio.BLKPG_DEL_PARTITION, 1, 0, 0),
                                 (devices.blockio.BLKPG_ADD_PARTITION, 1, 1 << 20, 4 << 20)]


def test_sync_partition_error_names_the_fix():
    with mock.patch.object(devices, "kernel_partitions", return_value={}), \
            mock.patch.object(devices.os, "open", return_value=99), \
            mock.patch.object(devices.os, "close"), \
            mock.patch.object(devices.blockio, "blkpg",
                              side_effect=OSError(16, "Device or resource busy")):
        with pytest.raises(DeviceError) as err:
            devices.sync_partition(DISK, 3, 0, 512)
    assert "partx --update --nr 3 /dev/loop9" in err.value.message
    assert "in use" in err.value.message
