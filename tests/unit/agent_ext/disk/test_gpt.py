from __future__ import annotations

import uuid

import pytest

from agent_ext.disk import gpt
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError
from tests.unit.agent_ext.disk import disk_images as di

SIZE = 64 * di.MIB
LAST = SIZE // 512 - 1


def open_table(path) -> tuple[BlockFile, gpt.GptTable]:  # type: ignore[no-untyped-def]
    bf = BlockFile(str(path), write=True)
    table = gpt.read(bf, str(path))
    assert table is not None
    return bf, table


def test_reads_partitions(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095), (8192, 10239)], size=SIZE)
    bf, table = open_table(path)
    with bf:
        assert [(p.number, p.start, p.end) for p in table.data_partitions()] == [
            (1, 2048, 4095), (2, 8192, 10239)]
        assert not table.needs_repair()
        assert "GPT with 2 partition(s)" in table.describe()


def test_no_signature_is_no_gpt(tmp_path):
    path = di.make_file(tmp_path / "d", SIZE)
    with BlockFile(str(path)) as bf:
        assert gpt.read(bf, "disk") is None


def test_corrupt_header_is_refused(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE)
    with open(path, "r+b") as f:
        f.seek(512 + 40)
        f.write(b"\x01")
    with BlockFile(str(path)) as bf, pytest.raises(DeviceError) as err:
        gpt.read(bf, "/dev/sdx")
    assert "/dev/sdx" in err.value.message and "header checksum" in err.value.message


def test_corrupt_entries_are_refused(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE)
    with open(path, "r+b") as f:
        f.seek(2 * 512 + 40)
        f.write(b"\x01")
    with BlockFile(str(path)) as bf, pytest.raises(DeviceError) as err:
        gpt.read(bf, "/dev/sdx")
    assert "entry array checksum" in err.value.message


def test_add_at_end_with_type_uuid_and_name(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE)
    bf, table = open_table(path)
    with bf:
        planned = table.plan_new(2048)
        assert (planned.number, planned.end) == (2, LAST - 33)
        assert planned.start % 2048 == 0 and planned.sectors >= 2048
        table.add(planned)
    for lba in (1, LAST):                           # primary and backup agree
        hdr = di.read_gpt(path, lba)
        first, end, tguid, uniq, name = hdr["parts"][2]  # type: ignore[index]
        assert (first, end, tguid, name) == (planned.start, planned.end, di.LINUX, "config-2")
        assert gpt.is_owned(uniq) and uniq.version == 8  # our mark, still a unique GUID
    assert di.read_gpt(path, 1)["parts"][1][:2] == (2048, 4095)  # type: ignore[index]


def test_owned_guids_are_unique_and_tools_guids_are_not_ours():
    guids = {gpt.owned_guid() for _ in range(1000)}
    assert len(guids) == 1000 and all(gpt.is_owned(g) for g in guids)
    assert all(g.variant == uuid.RFC_4122 for g in guids)
    assert not any(gpt.is_owned(uuid.uuid4()) for _ in range(1000))
    forged = uuid.UUID(bytes=gpt.OWNER_TAG + bytes(10))  # our prefix but version 0
    assert not gpt.is_owned(forged)


def test_mark_keeps_type_bounds_and_attributes(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE)
    bf, table = open_table(path)
    with bf:
        assert not table.data_partitions()[0].marked
        marked = table.mark(table.data_partitions()[0])
    assert marked.marked and (marked.start, marked.end, marked.name) == (2048, 4095, "config-2")
    first, end, tguid, uniq, name = di.read_gpt(path, LAST)["parts"][1]  # type: ignore[index]
    assert (first, end, tguid, name) == (2048, 4095, di.LINUX, "config-2")
    assert gpt.is_owned(uniq)


def test_grow_and_remove(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095), (6144, 8191)], size=SIZE)
    bf, table = open_table(path)
    with bf:
        first, last = table.data_partitions()
        assert table.grow_limit(first) == first.end          # something follows it
        assert table.grow_limit(last) == LAST - 33
        grown = table.grow(last, 20479)
        assert grown.end == 20479
        table.remove(first)
    parts = di.read_gpt(path, LAST)["parts"]
    assert list(parts) == [2] and parts[2][:2] == (6144, 20479)  # type: ignore[index]


def test_misplaced_backup_is_moved_to_the_end(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, 4095)], size=SIZE, backup_at=16 * 2048 - 1)
    bf, table = open_table(path)
    with bf:
        assert table.needs_repair()
        table.repair()
        assert not table.needs_repair()
    hdr = di.read_gpt(path, 1)
    assert (hdr["alternate"], hdr["last_usable"]) == (LAST, LAST - 33)
    backup = di.read_gpt(path, LAST)
    assert backup["my"] == LAST and backup["parts"] == hdr["parts"]
    with open(path, "rb") as f:                      # stale backup signature wiped
        f.seek((16 * 2048 - 1) * 512)
        assert f.read(8) != b"EFI PART"
        f.seek(446 + 12)                             # protective MBR covers the disk
        assert int.from_bytes(f.read(4), "little") == LAST


def test_partitions_beyond_a_shrunk_disk_are_refused(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, LAST - 40)], size=SIZE)
    with open(path, "r+b") as f:
        f.truncate(SIZE - di.MIB)
    bf, table = open_table(path)
    with bf, pytest.raises(DeviceError) as err:
        table.repair()
    assert "beyond the end of the disk" in err.value.message


def test_no_space(tmp_path):
    path = tmp_path / "d"
    di.gpt(path, [(2048, LAST - 33)], size=SIZE)
    bf, table = open_table(path)
    with bf, pytest.raises(DeviceError) as err:
        table.plan_new(2048)
    assert "not enough free space" in err.value.message and "1.0 MiB" in err.value.message
