"""Undoing prepare_target after a failed write, and recognising emptied config-2 partitions."""

from __future__ import annotations

import dataclasses
from unittest import mock

import pytest

from agent_ext.disk import DriveWriter, Target, devices, gpt, mbr, partition
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError, VerificationError
from tests.unit.agent_ext.disk import disk_images as di
from tests.unit.agent_ext.disk.test_partition import SIZE, put
from tests.unit.agent_ext.disk.test_partition import disk as disk  # noqa: F401  (fixture)
from tests.unit.agent_ext.disk.test_superblock import fat_head, iso_head


def raw(path) -> bytes:  # type: ignore[no-untyped-def]
    return path.read_bytes()


@pytest.mark.parametrize("scheme", ["gpt", "mbr"])
def test_created_is_deleted_again_byte_for_byte(disk, scheme):  # noqa: F811
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


def test_grown_is_shrunk_back(disk):  # noqa: F811
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


def test_reused_and_whole_device_are_left_alone(disk):  # noqa: F811
    path, _, forget = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    put(path, 2048, iso_head("config-2", 10))
    target = partition.prepare_target("/dev/fake", size=4096)
    assert target.action == "reused"
    before = raw(path)
    assert partition.rollback(target, di.MIB) == ""
    assert partition.rollback(dataclasses.replace(target, action="whole-device"), 1) == ""
    assert raw(path) == before and not forget.called


def test_changed_partition_is_not_rolled_back(disk):  # noqa: F811
    path, _, forget = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    target = partition.prepare_target("/dev/fake", size=di.MIB)
    moved = dataclasses.replace(target, start_sector=target.start_sector + 2048)
    with pytest.raises(DeviceError, match="partition 2 changed"):
        partition.rollback(moved, di.MIB)
    assert not forget.called
    assert list(di.read_gpt(path)["parts"]) == [1, 2]  # type: ignore[call-overload]


def test_emptied_named_partition_is_reused_not_doubled(disk):  # noqa: F811
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


def test_marked_partition_with_garbage_is_ours(disk):  # noqa: F811
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


def test_named_partition_with_data_but_not_marked_is_not_taken(disk):  # noqa: F811
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    with BlockFile(str(path), write=True) as bf:  # someone else's partition named config-2
        table = gpt.read(bf, "/dev/fake")
        assert table is not None
        off = 56
        table.entries[off : off + 72] = "config-2".encode("utf-16-le").ljust(72, b"\0")
        table._write()
    put(path, 2048 + 100, b"data")  # no superblock, not empty, no mark of ours
    target = partition.prepare_target("/dev/fake", size=di.MIB)
    assert (target.action, target.partition_number) == ("created", 2)
    assert [p.number for p in partition.config_drive_status("/dev/fake").partitions] == [2]


def test_a_real_drive_wins_over_an_emptied_one(disk):  # noqa: F811
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


def test_mbr_partition_of_ours_is_found_by_its_tail_marker(disk):  # noqa: F811
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


def test_mbr_marker_must_match_its_partition():
    part = mbr.tbl.Partition(number=1, start=2048, end=4095, kind="primary")
    tail = mbr.marker(part, 512)
    assert mbr.is_marked(tail, part)
    moved = mbr.tbl.Partition(number=1, start=4096, end=6143, kind="primary")
    assert not mbr.is_marked(tail, moved)
    damaged = tail[:40] + bytes([tail[40] ^ 1]) + tail[41:]
    assert not mbr.is_marked(damaged, part)


def test_rollback_of_a_created_mbr_partition_leaves_no_marker(disk):  # noqa: F811
    path, _, _ = disk
    di.mbr(path, [(0x83, 2048, 2048)], size=SIZE)
    before = raw(path)
    target = partition.prepare_target("/dev/fake", size=3 * di.MIB)
    assert partition.rollback(target, 3 * di.MIB).endswith("was deleted again")
    assert raw(path) == before


def test_kernel_refusing_a_new_partition_takes_the_entry_back(disk):  # noqa: F811
    path, _, _ = disk
    di.gpt(path, [(2048, 4095)], size=SIZE)
    before = raw(path)
    refused = DeviceError(device="/dev/fake", reason="the kernel refused partition 2")
    with mock.patch.object(devices, "sync_partition", side_effect=refused), \
            pytest.raises(DeviceError, match="refused"):
        partition.prepare_target("/dev/fake", size=di.MIB)
    assert raw(path) == before


# --- the writer calls the rollback --------------------------------------------------------

def part_target(tmp_path, action: str) -> Target:  # type: ignore[no-untyped-def]
    node = tmp_path / "part"
    node.write_bytes(bytes(4 * di.MIB))
    return Target(device="/dev/fake", path=str(node), partition_number=2,
                  capacity=4 * di.MIB, logical_sector_size=512, action=action,
                  start_sector=2048, previous_capacity=di.MIB if action == "grown" else None)


def test_failed_commit_rolls_back_and_says_so(tmp_path):
    target = part_target(tmp_path, "created")
    with mock.patch.object(partition, "rollback",
                           return_value="partition 2, created for this write, was deleted "
                                        "again") as rollback:
        writer = DriveWriter(target)
        writer.write(b"x" * (2 * di.MIB))
        with pytest.raises(VerificationError) as err:
            writer.commit(expected_sha256="0" * 64)
    rollback.assert_called_once_with(target, 2 * di.MIB)
    assert err.value.message.endswith("; partition 2, created for this write, was deleted "
                                      "again")
    assert str(err.value) == err.value.message


def test_caller_error_gets_the_note_too(tmp_path):
    target = part_target(tmp_path, "grown")
    with mock.patch.object(partition, "rollback", return_value="shrunk back") as rollback, \
            pytest.raises(DeviceError) as err, DriveWriter(target) as writer:
        writer.write(b"x")
        raise DeviceError(device="/dev/fake", reason="download failed")
    rollback.assert_called_once_with(target, di.MIB)
    assert err.value.message.endswith("download failed; shrunk back")


def test_rollback_failure_is_reported(tmp_path):
    target = part_target(tmp_path, "created")
    busy = DeviceError(device="/dev/fake", reason="busy")
    with mock.patch.object(partition, "rollback", side_effect=busy), \
            pytest.raises(VerificationError) as err:
        DriveWriter(target).commit()
    assert "could not be deleted again (device /dev/fake: busy)" in err.value.message
    assert "parted /dev/fake rm 2" in err.value.message
    grown = part_target(tmp_path, "grown")
    with mock.patch.object(partition, "rollback", side_effect=busy), \
            pytest.raises(VerificationError) as err:
        DriveWriter(grown).commit()
    assert "stays grown to 4194304 bytes, wiped" in err.value.message


def test_reused_or_committed_target_is_never_rolled_back(tmp_path):
    target = part_target(tmp_path, "created")
    with mock.patch.object(partition, "rollback") as rollback:
        with DriveWriter(target, check=None) as writer:
            writer.write(b"x" * 4096)
            writer.commit()
        assert target.action == "reused"  # the partition now holds a drive
        with pytest.raises(VerificationError), DriveWriter(target) as writer:
            writer.commit(expected_sha256="0" * 64)
    assert not rollback.called


def test_rolled_back_target_is_refused(tmp_path):
    target = part_target(tmp_path, "rolled-back")
    with pytest.raises(DeviceError, match="prepare_target again"):
        DriveWriter(target).write(b"x")


def test_kernel_not_following_the_rollback_is_reported(tmp_path):
    target = part_target(tmp_path, "created")

    def table_done_kernel_busy(t: Target, _written: int) -> str:
        t.action = "rolled-back"
        raise DeviceError(device="/dev/fake", reason="the kernel still uses partition 2")

    with mock.patch.object(partition, "rollback", side_effect=table_done_kernel_busy), \
            pytest.raises(VerificationError) as err:
        DriveWriter(target).commit()
    assert "change to partition 2 was undone but the kernel did not follow" in err.value.message
    assert "could not be deleted" not in err.value.message
