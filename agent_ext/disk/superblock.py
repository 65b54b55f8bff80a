"""Recognise a config drive on raw bytes and tell how long its filesystem is."""

from __future__ import annotations

import dataclasses
import struct

from ironic_configdrive.image import formats


@dataclasses.dataclass(frozen=True)
class Probe:
    format: str
    label: str
    size: int        # bytes the filesystem itself spans (not the partition)


def filesystem_size(head: bytes, fmt: str) -> int:
    """Bytes covered by the filesystem, from its own superblock.

    ISO9660: volume space size × logical block size (both-endian fields of the PVD).
    FAT: total sectors (16- or 32-bit field) × bytes per sector.
    """
    if fmt == formats.ISO9660:
        pvd = formats.ISO_PVD_OFFSET
        blocks = struct.unpack_from("<I", head, pvd + 80)[0]
        block_size = struct.unpack_from("<H", head, pvd + 128)[0]
        return int(blocks) * int(block_size)
    bytes_per_sector = struct.unpack_from("<H", head, 11)[0]
    total = struct.unpack_from("<H", head, 19)[0] or struct.unpack_from("<I", head, 32)[0]
    return int(total) * int(bytes_per_sector)


def probe(head: bytes) -> Probe | None:
    """A :class:`Probe` when ``head`` starts a ``config-2`` filesystem, else ``None``."""
    fmt = formats.detect_format(head)
    if fmt is None:
        return None
    if fmt == formats.ISO9660 and len(head) < formats.SNIFF_SIZE:
        return None
    label = formats.read_label(head)
    if not formats.is_config_drive_label(label):
        return None
    assert label is not None
    return Probe(format=fmt, label=label, size=filesystem_size(head, fmt))
