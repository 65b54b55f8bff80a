"""MBR planning, logical partitions and the tail marker on sfdisk's listing (sfdisk recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest

from agent_ext.disk import mbr, sfdisk
from agent_ext.disk import table as tbl
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError
from tests.unit.agent_ext.disk import disk_images as di

SIZE = 128 * di.MIB
TOTAL = SIZE // 512
EXT_START = 3 * 20480 + 2048


def listing(primaries: list[tuple[int, int, int]], logicals: list[tuple[int, int]] = (),
            ) -> sfdisk.Layout:  # type: ignore[assignment]
    """What ``sfdisk --json`` reports: ``primaries`` [(type, start, sectors)] in slots 1..,
    ``logicals`` [(start, sectors)] numbered from 5."""
    entries = [sfdisk.Entry(number=i + 1, start=s, size=n, type=f"{t:X}")
               for i, (t, s, n) in enumerate(primaries)]
    entries += [sfdisk.Entry(number=5 + i, start=s, size=n, type="83")
                for i, (s, n) in enumerate(logicals)]
    return sfdisk.Layout(label="dos", sector_size=512, entries=tuple(entries))


def open_table(tmp_path, primaries, logicals=(), size=SIZE):  # type: ignore[no-untyped-def]
    path = tmp_path / "d"
    di.mbr(path, primaries, size=size, logicals=logicals)
    bf = BlockFile(str(path), write=True)
    return bf, mbr.read(bf, str(path), listing(primaries, logicals))


def extended(tmp_path, logicals):  # type: ignore[no-untyped-def]
    primaries = [(0x83, 2048 + i * 20480, 20480) for i in range(3)]
    primaries.append((0x05, EXT_START, TOTAL - EXT_START))
    return open_table(tmp_path, primaries, logicals)


@pytest.fixture
def calls() -> Iterator[tuple[mock.MagicMock, mock.MagicMock]]:
    with mock.patch.object(sfdisk, "set_partition") as set_partition, \
            mock.patch.object(sfdisk, "delete") as delete:
        yield set_partition, delete


def test_boot_code_or_zeroes_are_no_table(tmp_path):
    path = di.make_file(tmp_path / "d", SIZE)
    assert not mbr.plausible(path.read_bytes()[:512])
    sector = bytearray(512)
    sector[446:] = b"\x42" * 64 + b"\x55\xaa"       # signature, but entries are not a table
    assert not mbr.plausible(bytes(sector))
    di.mbr(path, [(0x83, 2048, 2048)], size=SIZE)
    assert mbr.plausible(path.read_bytes()[:512])


@pytest.mark.parametrize("used", [0, 1, 3])
def test_next_free_primary_slot_at_the_end(tmp_path, calls, used):
    bf, table = open_table(tmp_path, [(0x83, 2048 + i * 20480, 20480) for i in range(used)])
    with bf:
        part = table.add(table.plan_new(2048))
    assert (part.number, part.kind, part.end) == (used + 1, "primary", TOTAL - 1)
    args, fields = calls[0].call_args
    assert args[1] == used + 1 and fields == {"start": part.start, "size": part.sectors,
                                              "type": "83"}


def test_four_primaries_is_a_clear_error(tmp_path):
    bf, table = open_table(tmp_path, [(0x83, 2048 + i * 20480, 20480) for i in range(4)])
    with bf, pytest.raises(DeviceError) as err:
        table.plan_new(2048)
    msg = err.value.message
    assert "no free primary slot" in msg and "GPT" in msg and "#4 primary" in msg


def test_over_2tib_stays_below_the_boundary(tmp_path):
    bf, table = open_table(tmp_path, [(0x83, 2048, 20480)], size=3 * 1024**4)  # sparse
    with bf:
        part = table.plan_new(2048)
    assert part.end == 2**32 - 1 and part.start % 2048 == 0


def test_first_logical_goes_into_the_first_ebr(tmp_path, calls):
    bf, table = extended(tmp_path, [])
    with bf:
        part = table.add(table.plan_new(2048))
        assert (part.number, part.kind, part.end) == (5, "logical", TOTAL - 1)
        assert [p.number for p in table.data_partitions()] == [1, 2, 3, 5]
    assert calls[0].call_args.args[1] == 5


def test_logical_is_chained_after_existing_ones_with_room_for_its_ebr(tmp_path):
    bf, table = extended(tmp_path, [(EXT_START + 2048, TOTAL - EXT_START - 2048 - 4096)])
    with bf:
        part = table.plan_new(2048)
    assert (part.number, part.start, part.end) == (6, TOTAL - 2048, TOTAL - 1)
    # 2048 sectors were free, but the EBR needs the alignment unit before the partition.
    bf, table = extended(tmp_path, [(EXT_START + 2048, TOTAL - EXT_START - 2048 - 2048)])
    with bf, pytest.raises(DeviceError, match="extended partition has no room"):
        table.plan_new(2048)


def test_full_extended_partition(tmp_path):
    bf, table = extended(tmp_path, [(EXT_START + 2048, TOTAL - EXT_START - 2048)])
    with bf, pytest.raises(DeviceError) as err:
        table.plan_new(2048)
    assert "extended partition has no room" in err.value.message


def test_grow_limits(tmp_path):
    logicals = [(EXT_START + 2048, 4096), (EXT_START + 8192, 2048)]
    bf, table = extended(tmp_path, logicals)
    with bf:
        parts = {p.number: p for p in table.data_partitions()}
        assert table.grow_limit(parts[3]) == parts[3].end      # the extended follows it
        assert table.grow_limit(parts[5]) == parts[5].end
        assert table.grow_limit(parts[6]) == TOTAL - 1
    bf, table = open_table(tmp_path, [(0x83, 2048, 2048), (0x83, 8192, 2048)])
    with bf:
        first, second = table.data_partitions()
        assert table.grow_limit(first) == first.end
        assert table.grow_limit(second) == TOTAL - 1


def test_grown_partition_loses_its_marker_until_marked_again(tmp_path, calls):
    bf, table = open_table(tmp_path, [(0x83, 2048, 2048)])
    with bf:
        part = table.mark(table.data_partitions()[0])
        assert part.marked
        grown = table.grow(part, 8191)
        assert not grown.marked and calls[0].call_args.kwargs == {"size": 6144}
        assert table.mark(grown).marked
        assert mbr.is_marked(bf.read(8191 * 512, 512), grown)


def test_remove_middle_logical_zeroes_its_ebr_and_renumbers(tmp_path, calls):
    logicals = [(EXT_START + 2048, 4096), (EXT_START + 8192, 4096), (EXT_START + 14336, 4096)]
    bf, table = extended(tmp_path, logicals)
    middle_ebr = (EXT_START + 8192 - 2048) * 512
    with bf:
        assert bf.read(middle_ebr + 510, 2) == b"\x55\xaa"
        table.remove([p for p in table.data_partitions() if p.number == 6])
        assert [(p.number, p.start) for p in table.data_partitions() if p.number > 4] == [
            (5, logicals[0][0]), (6, logicals[2][0])]
        assert bf.read(middle_ebr, 512) == bytes(512)
    assert calls[1].call_args.args[1] == [6]


def test_remove_first_logical_keeps_the_first_ebr(tmp_path, calls):
    bf, table = extended(tmp_path, [(EXT_START + 2048, 4096), (EXT_START + 8192, 4096)])
    with bf:
        first_ebr = bf.read(EXT_START * 512, 512)
        table.remove([p for p in table.data_partitions() if p.number == 5])
        assert bf.read(EXT_START * 512, 512) == first_ebr    # libfdisk's to rewrite
        assert [p.number for p in table.data_partitions()] == [1, 2, 3, 5]


def test_partition_beyond_the_disk_is_refused(tmp_path):
    path = tmp_path / "d"
    di.mbr(path, [(0x83, 2048, TOTAL)], size=SIZE)
    with BlockFile(str(path)) as bf, pytest.raises(DeviceError) as err:
        mbr.read(bf, "/dev/sdq", listing([(0x83, 2048, TOTAL)]))
    assert "beyond the end of the disk" in err.value.message


def test_marker_must_match_its_partition():
    part = tbl.Partition(number=1, start=2048, end=4095, kind="primary")
    tail = mbr.marker(part, 512)
    assert mbr.is_marked(tail, part)
    moved = tbl.Partition(number=1, start=4096, end=6143, kind="primary")
    assert not mbr.is_marked(tail, moved)
    damaged = tail[:40] + bytes([tail[40] ^ 1]) + tail[41:]
    assert not mbr.is_marked(damaged, part)
