"""prepare/remove/status/rollback on image files: real sfdisk, the kernel side mocked.

No root and no loop device: sfdisk edits a regular file as it edits a disk, and the
kernel's view (BLKPG, partition nodes) is recorded instead of applied. The tables are built
and checked with :mod:`tests.unit.agent_ext.disk.disk_images`, written from the
specifications, not with the code under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
from unittest import mock

import pytest

from agent_ext.disk import devices, gpt, mbr, partition
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError, InvalidInputError
from tests.conftest import require_tool
from tests.unit.agent_ext.disk import disk_images as di
from tests.unit.agent_ext.disk.test_superblock import fat_head, iso_head

SIZE = 64 * di.MIB


@pytest.fixture
def disk(tmp_path):  # type: ignore[no-untyped-def]
    """A regular file posing as /dev/fake; the kernel's view is recorded, not applied."""
    require_tool("sfdisk")
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


def raw(path) -> bytes:  # type: ignore[no-untyped-def]
    return path.read_bytes()


@pytest.mark.parametrize("scheme", ["gpt", "mbr"])
def test_created_is_deleted_again_byte_for_byte(disk, scheme):
    path, _synced, forget = disk
    if scheme == "gpt":
        di.gpt(path, [(2048, 4095)], size=SIZE)
    else:
        di.mbr(path, [(0x83, 2048, 2048)], size=SIZE)
    before = raw(path)
    target = partition.prepare_target("/dev/fake", size=3 * di.MIB)
    assert (target.action, target.partition_number) == ("created", 2)
    put(path, target.start_sector, b"\x5a" * (3 * di.MIB))  # what a broken write left
    note = partition.rollback(target, 3 * di.MIB)
    assert note == "partition 2, created for this write, was deleted again"
    assert raw(path) == before
    assert forget.call_args.args[1] == 2
    assert target.action == "rolled-back"
    assert partition.rollback(target, 0) == ""  # once only


def test_grown_is_shrunk_back(disk):
    path, synced, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    put(path, 2048, fat_head("CONFIG-2", 2048))
    target = partition.prepare_target("/dev/fake", size=3 * di.MIB)
    assert (target.action, target.previous_capacity) == ("grown", di.MIB)
    note = partition.rollback(target, 3 * di.MIB)
    assert note == "partition 1, grown for this write, was shrunk back to 1.0 MiB"
    # Back to its bounds; it keeps the mark it got when the write began (it is ours now).
    first, end, tguid, uniq, name = di.read_gpt(path)["parts"][1]  # type: ignore[index]
    assert (first, end, tguid, name) == (2048, 4095, di.LINUX, "config-2")
    assert gpt.is_owned(uniq)
    assert synced[-1] == (1, 2048 * 512, di.MIB)


def test_reused_and_whole_device_are_left_alone(disk):
    path, _, forget = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    put(path, 2048, iso_head("config-2", 10))
    target = partition.prepare_target("/dev/fake", size=4096)
    assert target.action == "reused"
    before = raw(path)
    assert partition.rollback(target, di.MIB) == ""
    assert partition.rollback(dataclasses.replace(target, action="whole-device"), 1) == ""
    assert raw(path) == before and not forget.called


def test_changed_partition_is_not_rolled_back(disk):
    path, _, forget = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    target = partition.prepare_target("/dev/fake", size=di.MIB)
    moved = dataclasses.replace(target, start_sector=target.start_sector + 2048)
    with pytest.raises(DeviceError, match="partition 2 changed"):
        partition.rollback(moved, di.MIB)
    assert not forget.called
    assert list(di.read_gpt(path)["parts"]) == [1, 2]  # type: ignore[call-overload]


def test_emptied_named_partition_is_reused_not_doubled(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    first = partition.prepare_target("/dev/fake", size=di.MIB)
    # Left zeroed (a failed write whose rollback could not run): ours by its name.
    again = partition.prepare_target("/dev/fake", size=di.MIB)
    assert (again.action, again.partition_number) == ("reused", first.partition_number)
    assert not partition.config_drive_status("/dev/fake").present
    removed = partition.remove_config_drive("/dev/fake")
    assert (removed.removed, removed.partition_number) == (True, 2)
    assert list(di.read_gpt(path)["parts"]) == [1]  # type: ignore[call-overload]


def test_marked_partition_with_garbage_is_ours(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)  # named "part1", zeroed: not ours
    first = partition.prepare_target("/dev/fake", size=di.MIB)
    put(path, first.start_sector, b"garbage an older version committed" * 100)
    status = partition.config_drive_status("/dev/fake")
    assert not status.present and "hold no config drive" in status.note
    assert [(p.number, p.marked, p.label) for p in status.partitions] == [(2, True, None)]
    second = partition.prepare_target("/dev/fake", size=di.MIB)
    assert (second.action, second.partition_number) == ("reused", 2)
    removed = partition.remove_config_drive("/dev/fake")
    assert (removed.removed, removed.partitions) == (True, [2])
    assert list(di.read_gpt(path)["parts"]) == [1]  # type: ignore[call-overload]
    assert not any(raw(path)[first.start_sector * 512 : (first.start_sector + 2048) * 512])


def test_named_partition_with_data_but_not_marked_is_not_taken(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE, names=["config-2"])  # someone else's
    put(path, 2048 + 100, b"data")  # no superblock, not empty, no mark of ours
    target = partition.prepare_target("/dev/fake", size=di.MIB)
    assert (target.action, target.partition_number) == ("created", 2)
    assert [p.number for p in partition.config_drive_status("/dev/fake").partitions] == [2]


def test_a_real_drive_wins_over_an_emptied_one(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    # An orphan from an older version (empty, named config-2), and a drive another tool
    # wrote into partition 1.
    orphan = partition.prepare_target("/dev/fake", size=di.MIB)
    put(path, 2048, iso_head("config-2", 10))
    target = partition.prepare_target("/dev/fake", size=4096)
    assert (target.action, target.partition_number) == ("reused", 1)
    assert partition.config_drive_status("/dev/fake").partition_number == 1
    assert [p.number for p in partition.config_drive_status("/dev/fake").partitions] == [
        1, orphan.partition_number]
    # One remove erases both: what the conductor's single call must achieve.
    assert partition.remove_config_drive("/dev/fake").partitions == [1, orphan.partition_number]
    assert not partition.remove_config_drive("/dev/fake").removed


def test_mbr_partition_of_ours_is_found_by_its_tail_marker(disk):
    path, _, _ = disk
    di.mbr(path, [(0x83, 2048, 2048)], size=SIZE)
    target = partition.prepare_target("/dev/fake", size=di.MIB)
    assert (target.action, target.partition_number) == ("created", 2)
    # One sector more than the image, for the marker, rounded up to whole MiB.
    assert target.capacity + target.reserved_tail == 2 * di.MIB and target.reserved_tail == 512
    tail = (target.start_sector + 4096 - 1) * 512
    assert raw(path)[tail : tail + 32] == mbr.MARKER_MAGIC
    # Left empty (a failed write whose rollback could not run): found, not doubled.
    again = partition.prepare_target("/dev/fake", size=di.MIB)
    assert (again.action, again.partition_number) == ("reused", 2)
    listed = partition.config_drive_status("/dev/fake").partitions
    assert [(p.number, p.marked, p.label) for p in listed] == [(2, True, None)]
    sector = raw(path)[tail : tail + 512]
    assert partition.remove_config_drive("/dev/fake").partitions == [2]
    assert not any(raw(path)[target.start_sector * 512 : tail + 512])
    # The marker copied into partition 1 (whose start and length differ) marks nothing.
    put(path, 2048 + 2047, sector)
    assert partition.config_drive_status("/dev/fake").partitions == []


def test_rollback_of_a_created_mbr_partition_leaves_no_marker(disk):
    path, _, _ = disk
    di.mbr(path, [(0x83, 2048, 2048)], size=SIZE)
    before = raw(path)
    target = partition.prepare_target("/dev/fake", size=3 * di.MIB)
    assert partition.rollback(target, 3 * di.MIB).endswith("was deleted again")
    assert raw(path) == before


def test_kernel_refusing_a_new_partition_takes_the_entry_back(disk):
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    before = raw(path)
    refused = DeviceError(device="/dev/fake", reason="the kernel refused partition 2")
    with mock.patch.object(devices, "sync_partition", side_effect=refused), \
            pytest.raises(DeviceError, match="refused"):
        partition.prepare_target("/dev/fake", size=di.MIB)
    assert raw(path) == before


