from __future__ import annotations

from agent_ext.disk import table as tbl


def test_sectors_for_rounds_up_to_mib():
    assert tbl.sectors_for(1, 512) == 2048
    assert tbl.sectors_for(tbl.MIB, 512) == 2048
    assert tbl.sectors_for(tbl.MIB + 1, 512) == 4096
    assert tbl.sectors_for(3 * tbl.MIB, 4096) == 768


def test_free_regions():
    assert tbl.free_regions([], 34, 100) == [(34, 100)]
    assert tbl.free_regions([(50, 60), (34, 40)], 34, 100) == [(41, 49), (61, 100)]
    assert tbl.free_regions([(34, 100)], 34, 100) == []
    assert tbl.free_regions([(90, 200)], 34, 100) == [(34, 89)]
    assert tbl.free_regions([(40, 60), (50, 70)], 34, 100) == [(34, 39), (71, 100)]


def test_place_at_end_aligns_start_and_fills_region():
    assert tbl.place_at_end([(2048, 10_000)], 2048, 2048) == (6144, 10_000)
    # Too small a region is skipped in favour of an earlier one.
    assert tbl.place_at_end([(2048, 9000), (9100, 9200)], 2048, 2048) == (6144, 9000)
    assert tbl.place_at_end([(2048, 3000)], 2048, 2048) is None
    # An EBR needs room before the partition.
    assert tbl.place_at_end([(4500, 8191)], 2048, 2048, lead=2048) is None
    assert tbl.place_at_end([(4000, 8191)], 2048, 2048, lead=2048) == (6144, 8191)
    assert tbl.place_at_end([(4000, 12287)], 2048, 2048, lead=2048) == (10240, 12287)
