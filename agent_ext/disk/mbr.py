"""MS-DOS (MBR) partition tables through sfdisk: primaries, and logical partitions in an
extended one; where a new partition goes, and our marker in a partition's last sector.

sfdisk (libfdisk) reads and writes the MBR and the EBR chain; this module plans and keeps
the marker, which is data the agent writes into the partition itself.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterable
from typing import Final

from agent_ext.disk import sfdisk
from agent_ext.disk import table as tbl
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError

_ENTRY: Final = struct.Struct("<B3sB3sII")
_TABLE_OFFSET: Final = 446
_SIGNATURE: Final = b"\x55\xaa"
EXTENDED_TYPES: Final = frozenset((0x05, 0x0F, 0x85))
LINUX_TYPE: Final = 0x83
#: MBR entries hold 32-bit LBAs: nothing may end at or beyond sector 2**32 (2 TiB at 512 B).
MAX_LBA: Final = 2**32 - 1

#: An MBR entry has no name or GUID, so a partition this project made or wrote into is
#: marked in its own last logical sector, which the config drive never uses (capacity
#: excludes it): this magic, the partition's start and length in sectors (a copy left
#: behind by a moved or resized partition does not match) and a CRC32 of the three.
#: Removing the partition zeroes it with everything else.
MARKER_MAGIC: Final = b"ironic-configdrive config-2 v1\x00\x00"
_MARKER: Final = struct.Struct("<32sQQ")


def marker(part: tbl.Partition, sector_size: int) -> bytes:
    body = _MARKER.pack(MARKER_MAGIC, part.start, part.sectors)
    return (body + struct.pack("<I", zlib.crc32(body))).ljust(sector_size, b"\x00")


def is_marked(tail: bytes, part: tbl.Partition) -> bool:
    """Whether ``tail`` (the partition's last sector) is our marker for exactly ``part``."""
    size = _MARKER.size
    if len(tail) < size + 4 or not tail.startswith(MARKER_MAGIC):
        return False
    _magic, start, sectors = _MARKER.unpack_from(tail)
    (crc,) = struct.unpack_from("<I", tail, size)
    return (start, sectors) == (part.start, part.sectors) and crc == zlib.crc32(tail[:size])


def plausible(sector0: bytes) -> bool:
    """Whether sector 0 holds a partition table rather than boot code or a filesystem.

    libfdisk takes any sector ending in 55AA for an MBR; boot flags other than 0 and 0x80,
    or a partition starting at sector 0, mean the bytes are something else.
    """
    if len(sector0) < 512 or sector0[510:512] != _SIGNATURE:
        return False
    for i in range(4):
        boot, _c1, ptype, _c2, start, sectors = _ENTRY.unpack_from(sector0,
                                                                    _TABLE_OFFSET + 16 * i)
        if boot not in (0, 0x80) or (ptype and sectors and start == 0):
            return False
    return True


class MbrTable(tbl.Table):
    scheme = "mbr"

    def __init__(self, bf: BlockFile, device: str, layout: sfdisk.Layout) -> None:
        super().__init__(bf, device, layout)
        self.limit = min(self.total - 1, MAX_LBA)
        #: A drive may not use a partition's last sector: it holds the marker.
        self.reserved_tail = self.sector_size
        for entry in layout.entries:
            ptype = int(entry.type, 16)
            if entry.number > 4:
                kind = "logical"
            else:
                kind = "extended" if ptype in EXTENDED_TYPES else "primary"
            if entry.start + entry.size > self.total:
                raise DeviceError(device=self.device, reason=(
                    f"MBR partition {entry.number} ends beyond the end of the disk; the disk "
                    "is smaller than the image written to it: fix the layout with fdisk"))
            self.partitions.append(tbl.Partition(
                number=entry.number, start=entry.start, end=entry.start + entry.size - 1,
                kind=kind, type_id=f"0x{ptype:02x}"))
        for part in self.data_partitions():
            part.marked = is_marked(self._tail(part), part)

    def _tail(self, part: tbl.Partition) -> bytes:
        return self.bf.read(part.end * self.sector_size, self.sector_size)

    @property
    def extended(self) -> tbl.Partition | None:
        return next((p for p in self.partitions if p.kind == "extended"), None)

    def _logicals(self) -> list[tbl.Partition]:
        return sorted((p for p in self.partitions if p.kind == "logical"),
                      key=lambda p: p.start)

    # --- queries -----------------------------------------------------------------------
    def describe(self) -> str:
        ss = self.sector_size
        items = [f"#{p.number} {p.kind} {tbl.mib(p.start, ss)}+{tbl.mib(p.sectors, ss)}"
                 for p in self.partitions]
        return "MBR with " + (", ".join(items) if items else "no partitions")

    def plan_new(self, sectors: int) -> tbl.Partition:
        align = tbl.align_sectors(self.sector_size)
        used_slots = {p.number for p in self.partitions if p.number <= 4}
        free_slot = next((n for n in range(1, 5) if n not in used_slots), None)
        if free_slot is not None:
            used = [(p.start, p.end) for p in self.partitions if p.number <= 4]
            regions = tbl.free_regions(used, align, self.limit)
            spot = tbl.place_at_end(regions, sectors, align)
            if spot is None:
                raise tbl.no_space(self.device, self, sectors, regions)
            return tbl.Partition(number=free_slot, start=spot[0], end=spot[1],
                                 kind="primary", type_id=f"0x{LINUX_TYPE:02x}")
        extended = self.extended
        if extended is None:
            raise DeviceError(device=self.device, reason=(
                f"the MBR has no free primary slot and no extended partition "
                f"({self.describe()}); convert the disk to GPT (sgdisk -g) or free a slot"))
        ext_end = min(extended.end, self.limit)
        logicals = self._logicals()
        if not logicals:
            # The first logical partition lives in the EBR at the extended partition's start.
            first, lead, number = extended.start + 1, 0, 5
        else:
            # libfdisk puts a new EBR one alignment unit before its partition.
            first, lead = logicals[-1].end + 1, align
            number = max(p.number for p in logicals) + 1
        regions = [(first, ext_end)] if ext_end >= first else []
        spot = tbl.place_at_end(regions, sectors, align, lead=lead)
        if spot is None:
            raise DeviceError(device=self.device, reason=(
                f"all four MBR slots are used and the extended partition has no room for a "
                f"{tbl.mib(sectors, self.sector_size)} logical partition after its last one "
                f"({self.describe()}); convert the disk to GPT or shrink a partition"))
        return tbl.Partition(number=number, start=spot[0], end=spot[1], kind="logical",
                             type_id=f"0x{LINUX_TYPE:02x}")

    def grow_limit(self, part: tbl.Partition) -> int:
        if part.kind != "logical":
            later = [p for p in self.partitions if p.number <= 4 and p.start > part.start]
            return part.end if later else self.limit
        if self._logicals()[-1].number != part.number:
            return part.end
        assert self.extended is not None
        return min(self.extended.end, self.limit)

    # --- changes -----------------------------------------------------------------------
    def add(self, part: tbl.Partition) -> tbl.Partition:
        sfdisk.set_partition(self.device, part.number, f"add partition {part.number}",
                             start=part.start, size=part.sectors, type=f"{LINUX_TYPE:x}")
        return self._insert(part)

    def mark(self, part: tbl.Partition) -> tbl.Partition:
        """Write our marker into the partition's last sector (see :data:`MARKER_MAGIC`);
        the caller keeps that sector out of the space it writes a drive to."""
        self.bf.write(part.end * self.sector_size, marker(part, self.sector_size))
        self.bf.sync()
        return self._replace(dataclasses.replace(part, marked=True))

    def remove(self, parts: Iterable[tbl.Partition]) -> None:
        parts = list(parts)
        ebrs = [lba for lba in map(self._own_ebr, parts) if lba is not None]
        super().remove(parts)
        # libfdisk unlinks a logical partition's EBR but leaves its bytes: free space keeps
        # no trace of the table entry, as it keeps no trace of the partition.
        for lba in ebrs:
            self.bf.write(lba * self.sector_size, bytes(512))
        if ebrs:
            self.bf.sync()
        # Logical partitions after a deleted one move down a number.
        for number in sorted((p.number for p in parts if p.kind == "logical"), reverse=True):
            self.partitions = [dataclasses.replace(p, number=p.number - 1)
                               if p.kind == "logical" and p.number > number else p
                               for p in self.partitions]

    def _own_ebr(self, part: tbl.Partition) -> int | None:
        """The EBR of a logical partition that is not the first (whose EBR stays at the
        extended partition's start), when it sits where libfdisk puts it."""
        extended = self.extended
        if part.kind != "logical" or extended is None:
            return None
        lba = part.start - tbl.align_sectors(self.sector_size)
        if lba <= extended.start:
            return None
        sector = self.bf.read(lba * self.sector_size, 512)
        if len(sector) < 512 or sector[510:512] != _SIGNATURE:
            return None
        _boot, _c1, ptype, _c2, rel, sectors = _ENTRY.unpack_from(sector, _TABLE_OFFSET)
        if ptype == 0 or lba + rel != part.start or sectors != part.sectors:
            return None
        return lba


def read(bf: BlockFile, device: str, layout: sfdisk.Layout) -> MbrTable:
    """The MBR sfdisk listed as ``layout``."""
    return MbrTable(bf, device, layout)
