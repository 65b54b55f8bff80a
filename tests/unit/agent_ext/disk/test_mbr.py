from __future__ import annotations

import pytest

from agent_ext.disk import mbr
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError
from tests.unit.agent_ext.disk import disk_images as di

SIZE = 128 * di.MIB
TOTAL = SIZE // 512


def open_table(path) -> tuple[BlockFile, mbr.MbrTable]:  # type: ignore[no-untyped-def]
    bf = BlockFile(str(path), write=True)
    table = mbr.read(bf, str(path))
    assert table is not None
    return bf, table


def test_chs():
    assert mbr.chs(0) == bytes((0, 1, 0))
    assert mbr.chs(2048) == bytes((32, 33, 0))
    assert mbr.chs(10**9) == b"\xfe\xff\xff"


def test_boot_code_or_zeroes_are_no_table(tmp_path):
    path = di.make_file(tmp_path / "d", SIZE)
    with BlockFile(str(path)) as bf:
        assert mbr.read(bf, "d") is None
    with open(path, "r+b") as f:
        f.seek(446)
        f.write(b"\x42" * 64 + b"\x55\xaa")        # signature, but entries are not a table
    with BlockFile(str(path)) as bf:
        assert mbr.read(bf, "d") is None


@pytest.mark.parametrize("used", [0, 1, 3])
def test_next_free_primary_slot_at_the_end(tmp_path, used):
    path = tmp_path / "d"
    di.mbr(path, [(0x83, 2048 + i * 20480, 20480) for i in range(used)], size=SIZE)
    bf, table = open_table(path)
    with bf:
        part = table.add(table.plan_new(2048))
    assert (part.number, part.kind, part.end) == (used + 1, "primary", TOTAL - 1)
    prim, _ = di.read_mbr_chain(path)
    assert prim[-1] == (used + 1, 0x83, part.start, part.sectors)


def test_four_primaries_is_a_clear_error(tmp_path):
    path = tmp_path / "d"
    di.mbr(path, [(0x83, 2048 + i * 20480, 20480) for i in range(4)], size=SIZE)
    bf, table = open_table(path)
    with bf, pytest.raises(DeviceError) as err:
        table.plan_new(2048)
    msg = err.value.message
    assert "no free primary slot" in msg and "GPT" in msg and "#4 primary" in msg


def test_over_2tib_stays_below_the_boundary(tmp_path):
    path = tmp_path / "d"
    di.mbr(path, [(0x83, 2048, 20480)], size=3 * 1024**4)   # sparse file
    bf, table = open_table(path)
    with bf:
        part = table.plan_new(2048)
    assert part.end == 2**32 - 1 and part.start % 2048 == 0


EXT_START = 3 * 20480 + 2048


def extended_disk(tmp_path, logicals):  # type: ignore[no-untyped-def]
    path = tmp_path / "d"
    primaries = [(0x83, 2048 + i * 20480, 20480) for i in range(3)]
    primaries.append((0x05, EXT_START, TOTAL - EXT_START))
    di.mbr(path, primaries, size=SIZE, logicals=logicals)
    return path


def test_first_logical_goes_into_the_first_ebr(tmp_path):
    path = extended_disk(tmp_path, [])
    bf, table = open_table(path)
    with bf:
        part = table.add(table.plan_new(2048))
        assert (part.number, part.kind, part.end) == (5, "logical", TOTAL - 1)
        assert [p.number for p in table.data_partitions()] == [1, 2, 3, 5]
    assert di.read_mbr_chain(path)[1] == [(part.start, part.sectors)]


def test_logical_is_chained_after_existing_ones(tmp_path):
    path = extended_disk(tmp_path, [(EXT_START + 2048, 10240)])
    bf, table = open_table(path)
    with bf:
        part = table.add(table.plan_new(2048))
        assert (part.number, part.end) == (6, TOTAL - 1)
    assert di.read_mbr_chain(path)[1] == [(EXT_START + 2048, 10240), (part.start, part.sectors)]


def test_full_extended_partition(tmp_path):
    path = extended_disk(tmp_path, [(EXT_START + 2048, TOTAL - EXT_START - 2048)])
    bf, table = open_table(path)
    with bf, pytest.raises(DeviceError) as err:
        table.plan_new(2048)
    assert "extended partition has no room" in err.value.message


def test_remove_middle_logical_relinks_the_chain(tmp_path):
    logicals = [(EXT_START + 2048, 4096), (EXT_START + 8192, 4096), (EXT_START + 14336, 4096)]
    path = extended_disk(tmp_path, logicals)
    bf, table = open_table(path)
    with bf:
        middle = next(p for p in table.data_partitions() if p.number == 6)
        table.remove(middle)
        assert [p.number for p in table.data_partitions()] == [1, 2, 3, 5, 6]
    assert di.read_mbr_chain(path)[1] == [logicals[0], logicals[2]]


def test_remove_first_logical_keeps_the_first_ebr(tmp_path):
    logicals = [(EXT_START + 2048, 4096), (EXT_START + 8192, 4096)]
    path = extended_disk(tmp_path, logicals)
    bf, table = open_table(path)
    with bf:
        table.remove(next(p for p in table.data_partitions() if p.number == 5))
    assert di.read_mbr_chain(path)[1] == [logicals[1]]


def test_grow_last_logical_updates_the_link(tmp_path):
    logicals = [(EXT_START + 2048, 4096), (EXT_START + 8192, 2048)]
    path = extended_disk(tmp_path, logicals)
    bf, table = open_table(path)
    with bf:
        first, last = [p for p in table.data_partitions() if p.kind == "logical"]
        assert table.grow_limit(first) == first.end
        assert table.grow_limit(last) == TOTAL - 1
        table.grow(last, last.start + 8191)
    assert di.read_mbr_chain(path)[1] == [logicals[0], (EXT_START + 8192, 8192)]
    with open(path, "rb") as f:                     # link in the first EBR covers it
        f.seek(EXT_START * 512 + 462 + 12)
        assert int.from_bytes(f.read(4), "little") == 8192 + 2048


def test_grow_primary(tmp_path):
    path = tmp_path / "d"
    di.mbr(path, [(0x83, 2048, 2048), (0x83, 8192, 2048)], size=SIZE)
    bf, table = open_table(path)
    with bf:
        first, second = table.data_partitions()
        assert table.grow_limit(first) == first.end
        assert table.grow_limit(second) == TOTAL - 1
        table.grow(second, 8192 + 4095)
    assert di.read_mbr_chain(path)[0][1] == (2, 0x83, 8192, 4096)


def test_partition_beyond_the_disk_is_refused(tmp_path):
    path = tmp_path / "d"
    di.mbr(path, [(0x83, 2048, TOTAL)], size=SIZE)
    with BlockFile(str(path)) as bf, pytest.raises(DeviceError) as err:
        mbr.read(bf, "/dev/sdq")
    assert "beyond the end of the disk" in err.value.message
