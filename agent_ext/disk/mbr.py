"""MS-DOS (MBR) partition tables: primaries, and logical partitions in an extended one.

The table is read-modify-written in place; each change touches one 16-byte entry (plus the
link in the previous EBR for logical partitions), so nothing else on the disk moves.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from typing import Final

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
_MAX_EBRS: Final = 256

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


def chs(lba: int) -> bytes:
    """CHS address in the conventional 255-head/63-sector geometry (saturated past 1024 cyl)."""
    heads, sectors = 255, 63
    cyl = lba // (heads * sectors)
    if cyl > 1023:
        return b"\xfe\xff\xff"
    head = (lba // sectors) % heads
    sector = lba % sectors + 1
    return bytes((head, ((cyl >> 2) & 0xC0) | sector, cyl & 0xFF))


def pack_entry(ptype: int, start: int, sectors: int, base: int = 0) -> bytes:
    """A partition entry; ``start`` is relative to ``base`` (0, the EBR or the extended)."""
    absolute = base + start
    return _ENTRY.pack(0, chs(absolute), ptype, chs(absolute + sectors - 1), start, sectors)


@dataclasses.dataclass
class Ebr:
    lba: int
    data: tbl.Partition | None
    link_start: int          # next EBR, relative to the extended partition (0 = last)
    link_sectors: int

    @property
    def last(self) -> int:
        return self.data.end if self.data else self.lba


class MbrTable:
    scheme = "mbr"

    def __init__(self, bf: BlockFile, device: str, sector0: bytes) -> None:
        self.bf = bf
        self.device = device
        self.sector_size = bf.sector_size
        self.total = bf.size // self.sector_size
        self.limit = min(self.total - 1, MAX_LBA)
        self._load(sector0)

    def _load(self, sector0: bytes) -> None:
        self.slots: list[tbl.Partition | None] = []
        for i in range(4):
            _boot, _c1, ptype, _c2, start, sectors = _ENTRY.unpack_from(
                sector0, _TABLE_OFFSET + 16 * i)
            if ptype == 0 or sectors == 0:
                self.slots.append(None)
                continue
            kind = "extended" if ptype in EXTENDED_TYPES else "primary"
            if start + sectors > self.total:
                raise DeviceError(device=self.device, reason=(
                    f"MBR partition {i + 1} ends beyond the end of the disk; the disk is "
                    "smaller than the image written to it: fix the layout with fdisk"))
            self.slots.append(tbl.Partition(number=i + 1, start=start, end=start + sectors - 1,
                                            kind=kind, type_id=f"0x{ptype:02x}"))
        self.extended = next((p for p in self.slots if p and p.kind == "extended"), None)
        self.chain = self._read_chain() if self.extended else []
        for part in self.data_partitions():
            tail = self.bf.read(part.end * self.sector_size, self.sector_size)
            part.marked = is_marked(tail, part)

    def _read_chain(self) -> list[Ebr]:
        assert self.extended is not None
        chain: list[Ebr] = []
        lba, seen, number = self.extended.start, set(), 5
        while lba not in seen and len(chain) < _MAX_EBRS:
            seen.add(lba)
            sector = self.bf.read(lba * self.sector_size, 512)
            if sector[510:512] != _SIGNATURE:
                if chain:
                    raise DeviceError(device=self.device, reason=(
                        f"broken logical partition chain (no EBR at sector {lba}); "
                        "repair the table with fdisk or parted"))
                break       # an extended partition without logical partitions yet
            e0 = _ENTRY.unpack_from(sector, _TABLE_OFFSET)
            e1 = _ENTRY.unpack_from(sector, _TABLE_OFFSET + 16)
            data = None
            if e0[2] != 0 and e0[5] != 0:
                data = tbl.Partition(number=number, start=lba + e0[4],
                                     end=lba + e0[4] + e0[5] - 1, kind="logical",
                                     type_id=f"0x{e0[2]:02x}")
                number += 1
            linked = e1[2] in EXTENDED_TYPES and e1[5] != 0
            chain.append(Ebr(lba=lba, data=data, link_start=e1[4] if linked else 0,
                             link_sectors=e1[5] if linked else 0))
            if not linked:
                break
            lba = self.extended.start + e1[4]
        return chain

    # --- queries -----------------------------------------------------------------------
    def data_partitions(self) -> list[tbl.Partition]:
        parts = [p for p in self.slots if p and p.kind == "primary"]
        return parts + [e.data for e in self.chain if e.data]

    def describe(self) -> str:
        ss = self.sector_size
        items = [f"#{p.number} {p.kind} {tbl.mib(p.start, ss)}+{tbl.mib(p.sectors, ss)}"
                 for p in self.slots if p] + \
                [f"#{e.data.number} logical {tbl.mib(e.data.start, ss)}+"
                 f"{tbl.mib(e.data.sectors, ss)}" for e in self.chain if e.data]
        return "MBR with " + (", ".join(items) if items else "no partitions")

    def needs_repair(self) -> bool:
        return False

    def repair(self) -> None:
        return None

    # --- planning ----------------------------------------------------------------------
    def plan_new(self, sectors: int) -> tbl.Partition:
        align = tbl.align_sectors(self.sector_size)
        free_slot = next((i for i, p in enumerate(self.slots) if p is None), None)
        if free_slot is not None:
            used = [(p.start, p.end) for p in self.slots if p]
            regions = tbl.free_regions(used, align, self.limit)
            spot = tbl.place_at_end(regions, sectors, align)
            if spot is None:
                raise tbl.no_space(self.device, self, sectors, regions)
            return tbl.Partition(number=free_slot + 1, start=spot[0], end=spot[1],
                                 kind="primary", type_id=f"0x{LINUX_TYPE:02x}")
        if self.extended is None:
            raise DeviceError(device=self.device, reason=(
                f"the MBR has no free primary slot and no extended partition "
                f"({self.describe()}); convert the disk to GPT (sgdisk -g) or free a slot"))
        ext_end = min(self.extended.end, self.limit)
        if not self.chain or (len(self.chain) == 1 and self.chain[0].data is None):
            # The first logical partition lives in the EBR at the extended partition's start.
            first, lead, number = self.extended.start + 1, 0, 5
        else:
            first, lead = self.chain[-1].last + 1, align
            number = 5 + sum(1 for e in self.chain if e.data)
        regions = [(first, ext_end)] if ext_end >= first else []
        spot = tbl.place_at_end(regions, sectors, align, lead=lead)
        if spot is None:
            raise DeviceError(device=self.device, reason=(
                f"all four MBR slots are used and the extended partition has no room for a "
                f"{tbl.mib(sectors, self.sector_size)} logical partition after its last one "
                f"({self.describe()}); convert the disk to GPT or shrink a partition"))
        return tbl.Partition(number=number, start=spot[0], end=spot[1], kind="logical",
                             type_id=f"0x{LINUX_TYPE:02x}")

    # --- changes -----------------------------------------------------------------------
    def _write_entry(self, lba: int, index: int, entry: bytes) -> None:
        sector = bytearray(self.bf.read(lba * self.sector_size, 512).ljust(512, b"\x00"))
        if sector[510:512] != _SIGNATURE:
            sector = bytearray(512)    # a fresh EBR: no stale bytes from the old data
            sector[510:512] = _SIGNATURE
        sector[_TABLE_OFFSET + 16 * index : _TABLE_OFFSET + 16 * (index + 1)] = entry
        self.bf.write(lba * self.sector_size, bytes(sector))

    def _reload(self) -> None:
        self.bf.sync()
        self._load(self.bf.read(0, 512))

    def add(self, part: tbl.Partition) -> tbl.Partition:
        if part.kind == "primary":
            self._write_entry(0, part.number - 1, pack_entry(LINUX_TYPE, part.start,
                                                             part.sectors))
        else:
            assert self.extended is not None
            ext = self.extended.start
            if not self.chain or (len(self.chain) == 1 and self.chain[0].data is None):
                self._write_entry(ext, 0, pack_entry(LINUX_TYPE, part.start - ext,
                                                     part.sectors, ext))
            else:
                ebr = part.start - tbl.align_sectors(self.sector_size)
                # The new EBR first, then the link to it: a crash leaves the old chain intact.
                self._write_entry(ebr, 1, bytes(16))
                self._write_entry(ebr, 0, pack_entry(LINUX_TYPE, part.start - ebr,
                                                     part.sectors, ebr))
                self.bf.sync()
                self._write_entry(self.chain[-1].lba, 1,
                                  pack_entry(0x05, ebr - ext, part.end - ebr + 1, ext))
        self._reload()
        return part

    def _find(self, part: tbl.Partition) -> tuple[int, Ebr | None]:
        if part.kind == "primary":
            return part.number - 1, None
        for i, ebr in enumerate(self.chain):
            if ebr.data and ebr.data.number == part.number:
                return i, ebr
        raise DeviceError(device=self.device, reason=(
            f"partition {part.number} vanished from the table while we worked; retry"))

    def grow_limit(self, part: tbl.Partition) -> int:
        index, ebr = self._find(part)
        if ebr is None:
            later = [p for p in self.slots if p and p.start > part.start]
            return part.end if later else self.limit
        if index != len(self.chain) - 1:
            return part.end
        assert self.extended is not None
        return min(self.extended.end, self.limit)

    def _resized_entry(self, lba: int, index: int, new_end: int, sectors: int) -> bytes:
        """The entry with only its end (CHS) and length changed: the boot flag, type and
        start CHS the creating tool wrote stay, so shrinking back restores the same bytes
        but for the end CHS (whose geometry is the creating tool's guess)."""
        raw = bytearray(self.bf.read(lba * self.sector_size, 512)[
            _TABLE_OFFSET + 16 * index : _TABLE_OFFSET + 16 * (index + 1)])
        raw[5:8] = chs(new_end)
        struct.pack_into("<I", raw, 12, sectors)
        return bytes(raw)

    def grow(self, part: tbl.Partition, new_end: int) -> tbl.Partition:
        """Move the end of ``part`` to ``new_end`` (also used to shrink it back)."""
        index, ebr = self._find(part)
        sectors = new_end - part.start + 1
        if ebr is None:
            self._write_entry(0, part.number - 1,
                              self._resized_entry(0, part.number - 1, new_end, sectors))
        else:
            assert self.extended is not None
            self._write_entry(ebr.lba, 0, self._resized_entry(ebr.lba, 0, new_end, sectors))
            if index > 0:
                prev = self.chain[index - 1]
                self._write_entry(prev.lba, 1, pack_entry(
                    0x05, ebr.lba - self.extended.start, new_end - ebr.lba + 1,
                    self.extended.start))
        self._reload()
        return next(p for p in self.data_partitions() if p.number == part.number)

    def mark(self, part: tbl.Partition) -> tbl.Partition:
        """Write our marker into the partition's last sector (see :data:`MARKER_MAGIC`);
        the caller keeps that sector out of the space it writes a drive to."""
        self.bf.write(part.end * self.sector_size, marker(part, self.sector_size))
        self.bf.sync()
        return dataclasses.replace(part, marked=True)

    #: Bytes at the end of a partition a drive may not use: the marker's sector.
    @property
    def reserved_tail(self) -> int:
        return self.sector_size

    def remove(self, part: tbl.Partition) -> None:
        index, ebr = self._find(part)
        if ebr is None:
            self._write_entry(0, part.number - 1, bytes(16))
        elif index == 0:
            # The first EBR must stay at the extended partition's start: empty its data entry.
            self._write_entry(ebr.lba, 0, bytes(16))
        else:
            assert self.extended is not None
            prev = self.chain[index - 1]
            link = bytes(16)
            if ebr.link_sectors:
                link = pack_entry(0x05, ebr.link_start, ebr.link_sectors, self.extended.start)
            self._write_entry(prev.lba, 1, link)
            self.bf.sync()
            self.bf.write(ebr.lba * self.sector_size, bytes(512))
        self._reload()


def read(bf: BlockFile, device: str) -> MbrTable | None:
    """The MBR of the disk, or ``None`` when sector 0 holds no plausible partition table."""
    sector0 = bf.read(0, 512)
    if len(sector0) < 512 or sector0[510:512] != _SIGNATURE:
        return None
    for i in range(4):
        boot, _c1, ptype, _c2, start, sectors = _ENTRY.unpack_from(sector0,
                                                                    _TABLE_OFFSET + 16 * i)
        if boot not in (0, 0x80):
            return None        # boot code or a filesystem, not a partition table
        if ptype and sectors and start == 0:
            return None
    return MbrTable(bf, device, sector0)
