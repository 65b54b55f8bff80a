"""prepare/remove/status logic on regular files, with the kernel side mocked."""

from __future__ import annotations

import hashlib
from unittest import mock

import pytest

from agent_ext.disk import devices, partition
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError, InvalidInputError
from tests.unit.agent_ext.disk import disk_images as di
from tests.unit.agent_ext.disk.test_superblock import fat_head, iso_head

SIZE = 64 * di.MIB


@pytest.fixture
def disk(tmp_path):  # type: ignore[no-untyped-def]
    """A regular file posing as /dev/fake; the kernel's view is recorded, not applied."""
    path = tmp_path / "disk"
    d = devices.Disk(path=str(path), name="fake", size=SIZE, logical_sector_size=512,
                     read_only=False)
    synced: list[tuple[int, int, int]] = []

    def sync(_disk, number, start, size):  # type: ignore[no-untyped-def]
        synced.append((number, start, size))
        return devices.KernelPartition(number, f"fakep{number}", f"/dev/fakep{number}",
                                       start, size, 0)

    with mock.patch.object(devices, "open_disk", return_value=d), \
            mock.patch.object(devices, "sync_partition", side_effect=sync), \
            mock.patch.object(devices, "kernel_partitions", return_value={}), \
            mock.patch.object(devices, "forget_partition") as forget, \
            mock.patch.object(BlockFile, "lock"):
        yield path, synced, forget


def put(path, lba: int, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with open(path, "r+b") as f:
        f.seek(lba * 512)
        f.write(data)


def test_invalid_arguments():
    with pytest.raises(InvalidInputError):
        partition.prepare_target("/dev/x", size=1, target="floppy")
    with pytest.raises(InvalidInputError):
        partition.prepare_target("/dev/x", size=0)


def test_created_then_reused(disk):
    path, synced, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    target = partition.prepare_target("/dev/fake", size=100_000)
    assert (target.action, target.partition_number, target.path) == (
        "created", 2, "/dev/fakep2")
    put(path, target.capacity and synced[0][1] // 512, iso_head("config-2", 10))
    again = partition.prepare_target("/dev/fake", size=target.capacity)
    assert (again.action, again.partition_number) == ("reused", 2)
    assert synced[0] == synced[1]


def test_grown(disk):
    path, synced, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    put(path, 2048, fat_head("CONFIG-2", 2048))
    target = partition.prepare_target("/dev/fake", size=3 * di.MIB)
    assert (target.action, target.partition_number, target.capacity) == ("grown", 1, 3 * di.MIB)
    assert synced == [(1, 2048 * 512, 3 * di.MIB)]


def test_too_small_not_last(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095), (4096, 8191)], size=SIZE)
    put(path, 2048, iso_head("config-2", 10))
    with pytest.raises(DeviceError) as err:
        partition.prepare_target("/dev/fake", size=3 * di.MIB)
    assert "cannot grow" in err.value.message and "configdrive.remove" in err.value.message


def test_two_config_drives_are_refused(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095), (4096, 8191)], size=SIZE)
    put(path, 2048, iso_head("config-2", 10))
    put(path, 4096, iso_head("CONFIG-2", 10))
    with pytest.raises(DeviceError) as err:
        partition.prepare_target("/dev/fake", size=di.MIB)
    assert "several config-2 partitions (1, 2)" in err.value.message


def test_no_table(disk):
    path, _, _ = disk
    di.make_file(path, SIZE)
    with pytest.raises(DeviceError) as err:
        partition.prepare_target("/dev/fake", size=di.MIB)
    assert "no partition table" in err.value.message and "--target device" in err.value.message


def test_fat_superfloppy_is_not_an_mbr(disk):
    path, _, _ = disk
    di.make_file(path, SIZE)
    put(path, 0, fat_head("DATA", 8192))
    with pytest.raises(DeviceError) as err:
        partition.prepare_target("/dev/fake", size=di.MIB)
    assert "no partition table" in err.value.message


def test_protective_mbr_without_gpt(disk):
    path, _, _ = disk
    di.mbr(path, [(0xEE, 1, SIZE // 512 - 1)], size=SIZE)
    with pytest.raises(DeviceError) as err:
        partition.prepare_target("/dev/fake", size=di.MIB)
    assert "protective MBR" in err.value.message


def test_remove_zeroes_and_deletes(disk):
    path, _, forget = disk
    di.gpt(path, [(2048, 4095), (4096, 8191)], size=SIZE)
    put(path, 4096, iso_head("config-2", 10) + b"\x77" * (di.MIB))
    result = partition.remove_config_drive("/dev/fake")
    assert (result.removed, result.partition_number, result.zeroed_bytes) == (
        True, 2, 4096 * 512)
    with open(path, "rb") as f:
        f.seek(4096 * 512)
        assert f.read(4096 * 512) == bytes(4096 * 512)
    forget.assert_called_once()
    assert list(di.read_gpt(path)["parts"]) == [1]  # type: ignore[call-overload]
    again = partition.remove_config_drive("/dev/fake")
    assert not again.removed and "nothing to remove" in again.message


def test_status(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 8191)], size=SIZE)
    head = iso_head("config-2", 40)
    put(path, 2048, head + bytes(40 * 2048 - len(head)))
    status = partition.config_drive_status("/dev/fake")
    assert (status.present, status.partition_number, status.size, status.format,
            status.label, status.path) == (True, 1, 40 * 2048, "iso9660", "config-2",
                                           devices.partition_path(str(path), 1))
    assert status.sha256 == hashlib.sha256(head + bytes(40 * 2048 - len(head))).hexdigest()
    assert status.partition_size == 6144 * 512
