"""GPT planning and marks on sfdisk's listing; the sfdisk calls themselves are recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from unittest import mock

import pytest

from agent_ext.disk import gpt, sfdisk
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError
from tests.unit.agent_ext.disk import disk_images as di

SIZE = 64 * di.MIB
LAST = SIZE // 512 - 1
LINUX = str(di.LINUX).upper()


def listing(parts: list[tuple[int, int]], *, last_lba: int = LAST - 33, names: list[str] = (),
            uuids: list[str] = (), warnings: tuple[str, ...] = ()) -> sfdisk.Layout:  # type: ignore[assignment]
    """What ``sfdisk --json`` reports for a GPT with ``parts`` = [(first, last)]."""
    return sfdisk.Layout(label="gpt", sector_size=512, first_lba=34, last_lba=last_lba,
                         warnings=warnings, entries=tuple(
        sfdisk.Entry(number=i + 1, start=s, size=e - s + 1, type=LINUX,
                     name=names[i] if i < len(names) else "",
                     uuid=uuids[i] if i < len(uuids) else str(uuid.uuid4()).upper())
        for i, (s, e) in enumerate(parts)))


@pytest.fixture
def calls() -> Iterator[mock.MagicMock]:
    with mock.patch.object(sfdisk, "set_partition") as set_partition, \
            mock.patch.object(sfdisk, "delete") as delete, \
            mock.patch.object(sfdisk, "relocate_backup") as relocate:
        recorder = mock.MagicMock()
        recorder.set_partition, recorder.delete, recorder.relocate = \
            set_partition, delete, relocate
        yield recorder


def open_table(tmp_path, parts, **kwargs):  # type: ignore[no-untyped-def]
    path = tmp_path / "d"
    di.gpt(path, parts, size=SIZE, backup_at=kwargs.pop("backup_at", None))
    bf = BlockFile(str(path), write=True)
    return bf, gpt.read(bf, str(path), listing(parts, **kwargs))


def test_owned_guids_are_unique_and_tools_guids_are_not_ours():
    guids = {gpt.owned_guid() for _ in range(1000)}
    assert len(guids) == 1000 and all(gpt.is_owned(g) for g in guids)
    assert all(g.variant == uuid.RFC_4122 for g in guids)
    assert not any(gpt.is_owned(uuid.uuid4()) for _ in range(1000))
    forged = uuid.UUID(bytes=gpt.OWNER_TAG + bytes(10))  # our prefix but version 0
    assert not gpt.is_owned(forged)


def test_header_fields_sfdisk_does_not_list(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE, backup_at=16 * 2048 - 1)
    with BlockFile(str(path)) as bf:
        assert gpt.read_header(bf) == gpt.Header(alternate_lba=16 * 2048 - 1, entries=128,
                                                 entry_size=128)
    with BlockFile(str(di.make_file(tmp_path / "z", SIZE))) as bf:
        assert gpt.read_header(bf) is None


def test_partitions_and_marks(tmp_path):
    ours = str(gpt.owned_guid()).upper()
    bf, table = open_table(tmp_path, [(2048, 4095), (4096, 6143), (6144, 8191)],
                           names=["config-2", "config-2", "root"],
                           uuids=[str(uuid.uuid4()), ours, ours])
    with bf:
        assert [(p.number, p.start, p.end, p.marked) for p in table.data_partitions()] == [
            (1, 2048, 4095, False), (2, 4096, 6143, True), (3, 6144, 8191, False)]
        assert not table.needs_repair()
        assert "GPT with 3 partition(s)" in table.describe()


def test_plan_new_at_the_end_and_add_marks_it(tmp_path, calls):
    bf, table = open_table(tmp_path, [(2048, 4095)])
    with bf:
        planned = table.plan_new(2048)
        assert (planned.number, planned.end) == (2, LAST - 33)
        assert planned.start % 2048 == 0 and planned.sectors >= 2048
        added = table.add(planned)
    assert added.marked and [p.number for p in table.partitions] == [1, 2]
    (device, number, _doing), fields = calls.set_partition.call_args
    assert (number, fields["start"], fields["size"], fields["type"], fields["name"]) == (
        2, planned.start, planned.sectors, LINUX, "config-2")
    assert gpt.is_owned(uuid.UUID(fields["uuid"]))


def test_mark_sets_only_name_and_guid(tmp_path, calls):
    bf, table = open_table(tmp_path, [(2048, 4095)])
    with bf:
        marked = table.mark(table.data_partitions()[0])
    assert marked.marked and (marked.start, marked.end, marked.name) == (2048, 4095, "config-2")
    _args, fields = calls.set_partition.call_args
    assert set(fields) == {"uuid", "name"} and gpt.is_owned(uuid.UUID(fields["uuid"]))


def test_grow_marks_in_the_same_run_and_shrinking_back_keeps_the_mark(tmp_path, calls):
    bf, table = open_table(tmp_path, [(2048, 4095), (6144, 8191)])
    with bf:
        first, last = table.data_partitions()
        assert table.grow_limit(first) == first.end          # something follows it
        assert table.grow_limit(last) == LAST - 33
        grown = table.grow(last, 20479)
        assert (grown.end, grown.marked) == (20479, True)
        assert set(calls.set_partition.call_args.kwargs) == {"size", "uuid", "name"}
        shrunk = table.grow(grown, 8191)
    assert shrunk.marked and calls.set_partition.call_args.kwargs == {"size": 2048}


def test_remove_deletes_in_one_run(tmp_path, calls):
    bf, table = open_table(tmp_path, [(2048, 4095), (6144, 8191)])
    with bf:
        table.remove(table.data_partitions())
    assert calls.delete.call_args.args[1] == [2, 1] and table.partitions == []


def test_misplaced_backup_is_moved_to_the_end(tmp_path, calls):
    old_backup = 16 * 2048 - 1
    bf, table = open_table(tmp_path, [(2048, 4095)], backup_at=old_backup,
                           last_lba=old_backup - 33)
    with bf:
        assert table.needs_repair()
        table.repair()
        assert not table.needs_repair() and table.last_usable == LAST - 33
        assert table.plan_new(2048).end == LAST - 33
    calls.relocate.assert_called_once()
    with open(bf.path, "rb") as f:                  # the stale backup's signature is gone
        f.seek(old_backup * 512)
        assert f.read(8) != b"EFI PART"


def test_partitions_beyond_a_shrunk_disk_are_refused(tmp_path, calls):
    bf, table = open_table(tmp_path, [(2048, LAST - 40)], backup_at=LAST - 1)
    table.total -= 2048                              # the disk is 1 MiB smaller
    with bf, pytest.raises(DeviceError) as err:
        table.repair()
    assert "beyond the end of the disk" in err.value.message
    assert not calls.relocate.called


def test_no_space_and_no_entry(tmp_path):
    bf, table = open_table(tmp_path, [(2048, LAST - 33)])
    with bf, pytest.raises(DeviceError) as err:
        table.plan_new(2048)
    assert "not enough free space" in err.value.message and "1.0 MiB" in err.value.message
    bf, table = open_table(tmp_path, [(2048 + i * 8, 2048 + i * 8 + 7) for i in range(128)])
    with bf, pytest.raises(DeviceError, match="all 128 GPT entries are in use"):
        table.plan_new(2048)


def test_a_primary_gpt_sfdisk_read_around_is_refused(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE)
    warned = listing([(2048, 4095)], warnings=(
        "The primary GPT table is corrupt, but the backup appears OK, so that will be used.",))
    with BlockFile(str(path)) as bf, pytest.raises(DeviceError) as err:
        gpt.read(bf, "/dev/sdx", warned)
    assert "/dev/sdx" in err.value.message and "primary GPT table is corrupt" in \
        err.value.message and "gdisk" in err.value.message
