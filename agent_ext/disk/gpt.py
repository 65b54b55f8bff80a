"""GUID partition tables through sfdisk: where a new entry goes, our mark, a misplaced backup.

sfdisk (libfdisk) reads and writes the table; the few header fields its listing lacks (where
the backup header is, how many entries the array holds) are read from LBA 1 here.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import uuid
from typing import Final

from agent_ext.disk import sfdisk
from agent_ext.disk import table as tbl
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError

SIGNATURE: Final = b"EFI PART"
#: Header fields from the alternate LBA to the entry size (UEFI 2.x, table 5-5).
_HEADER_TAIL: Final = struct.Struct("<QQQ16sQII")
_HEADER_TAIL_OFFSET: Final = 32

#: "Linux filesystem data", sgdisk's 8300 — the type IPA gives its config drive partition
#: (and the default of every Linux tool). Microsoft basic data would make Windows guests
#: mount the drive and assign it a letter, which cloudbase-init does not need.
LINUX_FS_GUID: Final = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")

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


def _is_owned_text(text: str) -> bool:
    try:
        return is_owned(uuid.UUID(text))
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Header:
    """The primary header's fields sfdisk's listing does not give."""

    alternate_lba: int
    entries: int
    entry_size: int


def read_header(bf: BlockFile) -> Header | None:
    """The primary GPT header at LBA 1, unchecked (sfdisk judges validity), or ``None``."""
    raw = bf.read(bf.sector_size, _HEADER_TAIL_OFFSET + _HEADER_TAIL.size)
    if raw[:8] != SIGNATURE or len(raw) < _HEADER_TAIL_OFFSET + _HEADER_TAIL.size:
        return None
    alternate, _first, _last, _guid, _entries_lba, count, size = _HEADER_TAIL.unpack_from(
        raw, _HEADER_TAIL_OFFSET)
    return Header(alternate_lba=alternate, entries=count, entry_size=size)


class GptTable(tbl.Table):
    scheme = "gpt"

    def __init__(self, bf: BlockFile, device: str, layout: sfdisk.Layout,
                 header: Header) -> None:
        super().__init__(bf, device, layout)
        assert layout.first_lba is not None and layout.last_lba is not None
        self.first_usable = layout.first_lba
        self.last_usable = layout.last_lba
        self.header = header
        self.entry_sectors = tbl.round_up(header.entries * header.entry_size,
                                          self.sector_size) // self.sector_size
        self.partitions = [tbl.Partition(
            number=e.number, start=e.start, end=e.start + e.size - 1, kind="gpt",
            type_id=e.type, name=e.name,
            marked=e.name == tbl.PART_NAME and _is_owned_text(e.uuid)) for e in layout.entries]

    # --- queries -----------------------------------------------------------------------
    def describe(self) -> str:
        parts = ", ".join(
            f"#{p.number} {tbl.mib(p.start, self.sector_size)}+"
            f"{tbl.mib(p.sectors, self.sector_size)}" for p in self.partitions)
        return f"GPT with {len(self.partitions)} partition(s)" + (f": {parts}" if parts else "")

    def needs_repair(self) -> bool:
        return self.header.alternate_lba != self.total - 1

    def _regions(self) -> list[tuple[int, int]]:
        return tbl.free_regions([(p.start, p.end) for p in self.partitions],
                                self.first_usable, self.last_usable)

    def plan_new(self, sectors: int) -> tbl.Partition:
        used = {p.number for p in self.partitions}
        free = [n for n in range(1, self.header.entries + 1) if n not in used]
        if not free:
            raise DeviceError(device=self.device, reason=(
                f"all {self.header.entries} GPT entries are in use ({self.describe()}); "
                "delete a partition"))
        regions = self._regions()
        spot = tbl.place_at_end(regions, sectors, tbl.align_sectors(self.sector_size))
        if spot is None:
            raise tbl.no_space(self.device, self, sectors, regions)
        return tbl.Partition(number=free[0], start=spot[0], end=spot[1], kind="gpt",
                             type_id=str(LINUX_FS_GUID).upper(), name=tbl.PART_NAME,
                             marked=True)

    def grow_limit(self, part: tbl.Partition) -> int:
        """Last sector ``part`` may grow to: the end of usable space if nothing follows it."""
        if any(p.start > part.start for p in self.partitions):
            return part.end
        return self.last_usable

    # --- changes -----------------------------------------------------------------------
    def repair(self) -> None:
        """Move the backup header and entries to the disk's end (sfdisk ``--relocate``).

        A whole-disk image written to a bigger disk leaves them in the middle, and the
        space behind them is then unusable until they move.
        """
        new_last_usable = self.total - 1 - self.entry_sectors - 1
        if any(p.end > new_last_usable for p in self.partitions):
            raise DeviceError(device=self.device, reason=(
                "the GPT describes partitions beyond the end of the disk (the disk is smaller "
                "than the image written to it); fix the layout with gdisk"))
        old_backup = self.header.alternate_lba
        sfdisk.relocate_backup(self.device)
        self.last_usable = new_last_usable
        self.header = dataclasses.replace(self.header, alternate_lba=self.total - 1)
        if 1 < old_backup < self.total - 1 and \
                not any(p.start <= old_backup <= p.end for p in self.partitions):
            # The stale backup header now sits in free space: wipe its signature.
            self.bf.write(old_backup * self.sector_size, bytes(self.sector_size))
            self.bf.sync()

    def _mark_fields(self) -> dict[str, str]:
        return {"uuid": str(owned_guid()).upper(), "name": tbl.PART_NAME}

    def add(self, part: tbl.Partition) -> tbl.Partition:
        sfdisk.set_partition(self.device, part.number, f"add partition {part.number}",
                             start=part.start, size=part.sectors,
                             type=str(LINUX_FS_GUID).upper(), **self._mark_fields())
        return self._insert(dataclasses.replace(part, marked=True))

    def mark(self, part: tbl.Partition) -> tbl.Partition:
        """Give an existing partition (a drive another tool wrote) our name and GUID, so a
        failed write into it leaves it findable; its type, bounds and attributes stay."""
        sfdisk.set_partition(self.device, part.number, f"mark partition {part.number}",
                             **self._mark_fields())
        return self._replace(dataclasses.replace(part, name=tbl.PART_NAME, marked=True))


def read(bf: BlockFile, device: str, layout: sfdisk.Layout) -> GptTable:
    """The GPT sfdisk listed as ``layout``."""
    corrupt = [w for w in layout.warnings if "corrupt" in w]
    if corrupt:
        raise DeviceError(device=device, reason=(
            f"its GPT is damaged (sfdisk: {corrupt[0]}); inspect and repair it with "
            "`sgdisk -v` / `gdisk` before writing a config drive"))
    header = read_header(bf)
    if header is None or not 0 < header.entries <= 4096 or header.entry_size < 128:
        raise DeviceError(device=device, reason=(
            "sfdisk reads a GPT whose primary header is missing or implausible; inspect "
            "and repair it with `sgdisk -v` / `gdisk` before writing a config drive"))
    return GptTable(bf, device, layout, header)
