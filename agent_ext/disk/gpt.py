"""GUID partition tables: read, add/grow/remove one entry, move a misplaced backup.

Written in Python rather than through sgdisk so the agent knows exactly which entry changed
and can tell the kernel about that one partition alone (BLKPG) instead of re-reading the
whole table. ``sgdisk -v`` checks the result in the functional tests.
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from typing import Final

from agent_ext.disk import table as tbl
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError

SIGNATURE: Final = b"EFI PART"
_HEADER: Final = struct.Struct("<8sIIIIQQQQ16sQIII")
HEADER_SIZE: Final = _HEADER.size          # 92
_ENTRY: Final = struct.Struct("<16s16sQQQ72s")

#: "Linux filesystem data", sgdisk's 8300 — the type IPA gives its config drive partition
#: (and the default of every Linux tool). Microsoft basic data would make Windows guests
#: mount the drive and assign it a letter, which cloudbase-init does not need.
LINUX_FS_GUID: Final = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
_EMPTY: Final = bytes(16)

#: How a partition this project made is recognised whatever it holds: the name
#: ``config-2`` *and* a unique partition GUID that is an RFC 9562 version 8 ("custom")
#: UUID starting with these 6 bytes, the other 74 bits random. Partitioning tools make
#: version 4 GUIDs, so no partition made elsewhere matches by chance, and the type stays
#: Linux filesystem data, which IPA, the guest and other tools expect. The name alone is
#: not enough: anyone may name a partition config-2.
OWNER_TAG: Final = bytes.fromhex("c0f1d217e5a1")  # "config drive, ironic-configdrive"


def owned_guid() -> uuid.UUID:
    """A fresh unique partition GUID carrying :data:`OWNER_TAG`."""
    raw = bytearray(OWNER_TAG + os.urandom(10))
    raw[6] = 0x80 | (raw[6] & 0x0F)        # version 8
    raw[8] = 0x80 | (raw[8] & 0x3F)        # RFC 9562 variant
    return uuid.UUID(bytes=bytes(raw))


def is_owned(guid: uuid.UUID) -> bool:
    return guid.bytes[:6] == OWNER_TAG and guid.version == 8


def _encoded_name(name: str) -> bytes:
    return name.encode("utf-16-le").ljust(72, b"\x00")


def _crc(data: bytes | bytearray) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


class GptTable:
    scheme = "gpt"

    def __init__(self, bf: BlockFile, device: str, header: bytes) -> None:
        self.bf = bf
        self.device = device
        self.sector_size = bf.sector_size
        self.last_lba = bf.size // self.sector_size - 1
        (sig, self.revision, hsize, _crc32, _res, my_lba, self.alternate_lba, self.first_usable,
         self.last_usable, self.disk_guid, self.entries_lba, self.num_entries, self.entry_size,
         entries_crc) = _HEADER.unpack_from(header)
        if not HEADER_SIZE <= hsize <= self.sector_size or my_lba != 1:
            raise self._corrupt("implausible header size or location")
        raw = bytearray(header[:hsize])
        struct.pack_into("<I", raw, 16, 0)
        if _crc(raw) != _crc32:
            raise self._corrupt("header checksum mismatch")
        if self.entry_size < _ENTRY.size or self.entry_size % 8 or \
                not 0 < self.num_entries <= 4096:
            raise self._corrupt("implausible partition entry array")
        self.header_extra = header[HEADER_SIZE:hsize]
        self.entries = bytearray(bf.read(self.entries_lba * self.sector_size,
                                         self.num_entries * self.entry_size))
        if len(self.entries) != self.num_entries * self.entry_size or \
                _crc(self.entries) != entries_crc:
            raise self._corrupt("partition entry array checksum mismatch")
        self.entry_sectors = tbl.round_up(len(self.entries), self.sector_size) // self.sector_size
        self.partitions = self._parse_entries()

    def _corrupt(self, what: str) -> DeviceError:
        return DeviceError(device=self.device, reason=(
            f"primary GPT is corrupt ({what}); inspect and repair it with `sgdisk -v` / "
            "`gdisk` before writing a config drive"))

    def _parse_entries(self) -> list[tbl.Partition]:
        parts = []
        for i in range(self.num_entries):
            type_guid, unique, first, last, _attrs, raw_name = _ENTRY.unpack_from(
                self.entries, i * self.entry_size)
            if type_guid == _EMPTY:
                continue
            name = raw_name.decode("utf-16-le", "replace").split("\x00", 1)[0]
            parts.append(tbl.Partition(
                number=i + 1, start=first, end=last, kind="gpt",
                type_id=str(uuid.UUID(bytes_le=type_guid)).upper(), name=name,
                marked=name == tbl.PART_NAME and is_owned(uuid.UUID(bytes_le=unique))))
        return parts

    # --- queries -----------------------------------------------------------------------
    def data_partitions(self) -> list[tbl.Partition]:
        return list(self.partitions)

    def describe(self) -> str:
        parts = ", ".join(
            f"#{p.number} {tbl.mib(p.start, self.sector_size)}+"
            f"{tbl.mib(p.sectors, self.sector_size)}" for p in self.partitions)
        return f"GPT with {len(self.partitions)} partition(s)" + (f": {parts}" if parts else "")

    def needs_repair(self) -> bool:
        return self.alternate_lba != self.last_lba

    def _regions(self) -> list[tuple[int, int]]:
        return tbl.free_regions([(p.start, p.end) for p in self.partitions],
                                self.first_usable, self.last_usable)

    # --- changes -----------------------------------------------------------------------
    def repair(self) -> None:
        """Move the backup header and entries to the disk's end, as ``sgdisk -e`` does.

        A whole-disk image written to a bigger disk leaves them in the middle, and the
        space behind them is then unusable until they move.
        """
        new_last_usable = self.last_lba - self.entry_sectors - 1
        if any(p.end > new_last_usable for p in self.partitions):
            raise DeviceError(device=self.device, reason=(
                "the GPT describes partitions beyond the end of the disk (the disk is smaller "
                "than the image written to it); fix the layout with gdisk"))
        old_backup = self.alternate_lba
        self.alternate_lba = self.last_lba
        self.last_usable = new_last_usable
        self._write()
        if 1 < old_backup < self.last_lba and \
                not any(p.start <= old_backup <= p.end for p in self.partitions):
            # The stale backup header now sits in free space: wipe its signature.
            self.bf.write(old_backup * self.sector_size, bytes(self.sector_size))
            self.bf.sync()

    def plan_new(self, sectors: int) -> tbl.Partition:
        free = [i for i in range(self.num_entries) if self._entry_type(i) == _EMPTY]
        if not free:
            raise DeviceError(device=self.device, reason=(
                f"all {self.num_entries} GPT entries are in use ({self.describe()}); "
                "delete a partition"))
        regions = self._regions()
        spot = tbl.place_at_end(regions, sectors, tbl.align_sectors(self.sector_size))
        if spot is None:
            raise tbl.no_space(self.device, self, sectors, regions)
        return tbl.Partition(number=free[0] + 1, start=spot[0], end=spot[1], kind="gpt",
                             type_id=str(LINUX_FS_GUID).upper(), name=tbl.PART_NAME,
                             marked=True)

    def _entry_type(self, index: int) -> bytes:
        off = index * self.entry_size
        return bytes(self.entries[off : off + 16])

    def add(self, part: tbl.Partition) -> tbl.Partition:
        _ENTRY.pack_into(self.entries, (part.number - 1) * self.entry_size,
                         LINUX_FS_GUID.bytes_le, owned_guid().bytes_le, part.start, part.end,
                         0, _encoded_name(tbl.PART_NAME))
        self.partitions = self._parse_entries()
        self._write()
        return part

    #: The mark lives in the entry: the whole partition is the drive's.
    reserved_tail = 0

    def mark(self, part: tbl.Partition) -> tbl.Partition:
        """Give an existing partition (a drive another tool wrote) our name and GUID, so a
        failed write into it leaves it findable; its type, bounds and attributes stay."""
        off = (part.number - 1) * self.entry_size
        self.entries[off + 16 : off + 32] = owned_guid().bytes_le
        self.entries[off + 56 : off + 128] = _encoded_name(tbl.PART_NAME)
        self.partitions = self._parse_entries()
        self._write()
        return next(p for p in self.partitions if p.number == part.number)

    def grow_limit(self, part: tbl.Partition) -> int:
        """Last sector ``part`` may grow to: the end of usable space if nothing follows it."""
        if any(p.start > part.start for p in self.partitions):
            return part.end
        return self.last_usable

    def grow(self, part: tbl.Partition, new_end: int) -> tbl.Partition:
        struct.pack_into("<Q", self.entries, (part.number - 1) * self.entry_size + 40, new_end)
        self.partitions = self._parse_entries()
        self._write()
        return next(p for p in self.partitions if p.number == part.number)

    def remove(self, part: tbl.Partition) -> None:
        off = (part.number - 1) * self.entry_size
        self.entries[off : off + self.entry_size] = bytes(self.entry_size)
        self.partitions = self._parse_entries()
        self._write()

    def _header(self, my_lba: int, alternate: int, entries_lba: int) -> bytes:
        fields = [SIGNATURE, self.revision, HEADER_SIZE + len(self.header_extra), 0, 0, my_lba,
                  alternate, self.first_usable, self.last_usable, self.disk_guid, entries_lba,
                  self.num_entries, self.entry_size, _crc(self.entries)]
        raw = bytearray(_HEADER.pack(*fields) + self.header_extra)
        struct.pack_into("<I", raw, 16, _crc(raw))
        return bytes(raw).ljust(self.sector_size, b"\x00")

    def _write(self) -> None:
        """Backup copy first, primary last: a crash in between leaves one valid copy."""
        ss = self.sector_size
        backup_entries = self.alternate_lba - self.entry_sectors
        entries = bytes(self.entries).ljust(self.entry_sectors * ss, b"\x00")
        self.bf.write(backup_entries * ss, entries)
        self.bf.write(self.alternate_lba * ss, self._header(self.alternate_lba, 1,
                                                            backup_entries))
        self.bf.write(self.entries_lba * ss, entries)
        self.bf.write(ss, self._header(1, self.alternate_lba, self.entries_lba))
        self._fix_protective_mbr()
        self.bf.sync()

    def _fix_protective_mbr(self) -> None:
        """Keep a pure protective MBR's size in step with the disk (hybrid MBRs untouched)."""
        mbr = bytearray(self.bf.read(0, 512))
        if mbr[510:512] != b"\x55\xaa":
            return
        types = [mbr[446 + 16 * i + 4] for i in range(4)]
        if types[0] != 0xEE or any(types[1:]):
            return
        want = min(self.last_lba, 0xFFFFFFFF)
        if struct.unpack_from("<I", mbr, 446 + 12)[0] != want:
            struct.pack_into("<I", mbr, 446 + 12, want)
            self.bf.write(0, bytes(mbr))


def read(bf: BlockFile, device: str) -> GptTable | None:
    """The primary GPT of the disk, or ``None`` when LBA 1 carries no GPT signature."""
    header = bf.read(bf.sector_size, bf.sector_size)
    if header[:8] != SIGNATURE:
        return None
    return GptTable(bf, device, header)
