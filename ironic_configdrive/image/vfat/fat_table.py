"""The File Allocation Table itself: packing FAT12/FAT16 chains, unpacking FAT12/16/32."""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Sequence

from .geometry import Layout
from .structs import MEDIA


def fat_table(layout: Layout, chains: list[tuple[int, int]]) -> bytes:
    """The FAT for contiguous ``(first cluster, count)`` chains."""
    eoc = 0xFFF if layout.fat_bits == 12 else 0xFFFF
    entries = [0] * (layout.clusters + 2)
    entries[0] = (eoc & ~0xFF) | MEDIA
    entries[1] = eoc  # for FAT16 this also sets the "clean" and "no error" bits
    for first, count in chains:
        last = first + count - 1
        entries[first:last] = range(first + 1, last + 1)
        entries[last] = eoc
    if layout.fat_bits == 16:
        table = struct.pack(f"<{len(entries)}H", *entries)
    else:
        if len(entries) % 2:
            entries.append(0)
        packed = bytearray()
        for i in range(0, len(entries), 2):
            pair = entries[i] | (entries[i + 1] << 12)
            packed += pair.to_bytes(3, "little")
        table = bytes(packed)
    return table.ljust(layout.fat_sectors * layout.sector_size, b"\0")


def decode_fat(raw: bytes, bits: int, count: int) -> Sequence[int]:
    """The first ``count`` entries of a FAT of ``bits``-bit entries (FAT32: low 28 bits).

    An array of machine integers (2 or 4 bytes an entry, not a Python int each): the table of
    a 64 MiB volume stays well below a megabyte.
    """
    if len(raw) * 8 < count * bits:
        raise ValueError(f"a FAT of {len(raw)} bytes holds fewer than {count} entries")
    if bits == 16:
        table = array.array("H", raw[: 2 * count])
    elif bits == 32:
        table = array.array("I", raw[: 4 * count])
    else:
        return array.array("H", ((raw[n + n // 2] | (raw[n + n // 2 + 1] << 8))
                                 >> (4 if n & 1 else 0) & 0xFFF for n in range(count)))
    if sys.byteorder == "big":
        table.byteswap()
    if bits == 32:
        table = array.array("I", (value & 0x0FFFFFFF for value in table))
    return table
