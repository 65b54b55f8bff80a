"""The boot sector the writer emits: BPB, extended BPB, a no-boot stub, and its serial."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .geometry import Layout
from .structs import BPB_FMT, EBPB_FMT, MEDIA, NUM_FATS, RESERVED_SECTORS

_OEM_NAME = b"MSWIN4.1"  # the value Microsoft recommends for the widest compatibility
# int 18h (tell the BIOS to try the next boot device), then halt forever.
_BOOT_CODE = b"\xcd\x18\xf4\xeb\xfd"


def volume_serial(
    files: Mapping[str, bytes], label: bytes, sector_size: int, timestamp: int
) -> int:
    """A serial number hashed from the content, so the same input gives the same image."""
    digest = hashlib.sha256()
    digest.update(b"ironic-configdrive vfat\0%s\0%d\0%d\0" % (label, sector_size, timestamp))
    for path in sorted(files):
        digest.update(path.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(files[path]).digest())
    return int.from_bytes(digest.digest()[:4], "little")


def boot_sector(layout: Layout, serial: int, label: bytes) -> bytes:
    """Sector 0 for ``layout``, with the 11-byte ``label`` field."""
    total = layout.total_sectors
    bpb = BPB_FMT.pack(
        b"\xeb\x3c\x90",
        _OEM_NAME,
        layout.sector_size,
        layout.sectors_per_cluster,
        RESERVED_SECTORS,
        NUM_FATS,
        layout.root_entries,
        total if total < 0x10000 else 0,
        MEDIA,
        layout.fat_sectors,
        32,  # sectors per track and heads: nominal CHS geometry, unused by anyone today
        64,
        0,  # hidden sectors: images are written to partitions of any offset
        total if total >= 0x10000 else 0,
    )
    ebpb = EBPB_FMT.pack(
        0x80, 0, 0x29, serial, label, b"FAT12   " if layout.fat_bits == 12 else b"FAT16   "
    )
    sector = bytearray(layout.sector_size)
    head = bpb + ebpb + _BOOT_CODE
    sector[: len(head)] = head
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)
