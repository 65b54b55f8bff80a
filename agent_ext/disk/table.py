"""A partition table as sfdisk reads it: partitions in sectors, free-space planning, and
changes of one entry at a time, each one sfdisk run (:mod:`.sfdisk`).

:class:`Table` holds what GPT and MBR share; :mod:`.gpt` and :mod:`.mbr` add where a new
partition may go, how far one may grow, and how a partition is marked as ours. The table in
memory follows each change, so a write costs one sfdisk read and at most one change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from agent_ext.disk import sfdisk
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError

MIB: Final = 1024 * 1024

#: Partition name (GPT) cloud-init does not need but operators recognise.
PART_NAME: Final = "config-2"


@dataclasses.dataclass
class Partition:
    """One partition in logical sectors; ``end`` is inclusive, as in the tables."""

    number: int
    start: int
    end: int
    kind: str                   # "gpt", "primary", "extended" or "logical"
    type_id: str = ""
    name: str = ""
    #: Carries this project's mark (GPT: the config-2 name and a unique GUID of ours; MBR:
    #: the marker in its last sector), so it is ours whatever it holds now (a drive, zeros,
    #: or what an older version let through).
    marked: bool = False

    @property
    def sectors(self) -> int:
        return self.end - self.start + 1


class Table:
    """A partition table read by sfdisk; its methods change the disk through sfdisk."""

    scheme = ""                 # "gpt" or "mbr"
    #: Bytes at a partition's end kept for our mark (MBR), never written by a drive.
    reserved_tail = 0

    def __init__(self, bf: BlockFile, device: str, layout: sfdisk.Layout) -> None:
        if layout.sector_size not in (None, bf.sector_size):
            raise DeviceError(device=device, reason=(
                f"sfdisk reads its table with {layout.sector_size}-byte sectors, the kernel "
                f"reports {bf.sector_size}; fix the table with sfdisk or gdisk"))
        self.bf = bf
        self.device = device
        self.sector_size = bf.sector_size
        self.total = bf.size // self.sector_size
        #: Every entry, extended partitions included, by number.
        self.partitions: list[Partition] = []

    # --- queries -----------------------------------------------------------------------
    def data_partitions(self) -> list[Partition]:
        return [p for p in self.partitions if p.kind != "extended"]

    def describe(self) -> str:
        raise NotImplementedError

    def needs_repair(self) -> bool:
        return False

    def repair(self) -> None:
        return None

    def plan_new(self, sectors: int) -> Partition:
        raise NotImplementedError

    def grow_limit(self, part: Partition) -> int:
        raise NotImplementedError

    # --- changes (one sfdisk run each) --------------------------------------------------
    def add(self, part: Partition) -> Partition:
        """Create ``part`` (from :meth:`plan_new`), with this project's mark."""
        raise NotImplementedError

    def grow(self, part: Partition, new_end: int) -> Partition:
        """Move the end of ``part`` to ``new_end`` (also used to shrink it back); a GPT entry
        gets this project's mark in the same run (an MBR marker is the caller's to move)."""
        marks = {} if part.marked else self._mark_fields()
        sfdisk.set_partition(self.device, part.number, f"resize partition {part.number}",
                             size=new_end - part.start + 1, **marks)
        # An MBR marker names the old bounds: it marks nothing until written again.
        marked = bool(marks) or (part.marked and not self.reserved_tail)
        return self._replace(dataclasses.replace(part, end=new_end, marked=marked))

    def mark(self, part: Partition) -> Partition:
        """Give ``part`` this project's mark; its type, bounds and attributes stay."""
        raise NotImplementedError

    def remove(self, parts: Iterable[Partition]) -> None:
        """Delete the entries of ``parts`` in one sfdisk run."""
        numbers = sorted((p.number for p in parts), reverse=True)
        if not numbers:
            return
        listed = ", ".join(map(str, numbers))
        sfdisk.delete(self.device, numbers, f"delete partition{'s' * (len(numbers) > 1)} "
                                            f"{listed}")
        for number in numbers:
            self._forget(number)

    # --- the table in memory -------------------------------------------------------------
    def _mark_fields(self) -> dict[str, str]:
        """Entry fields that mark a partition as ours ({} when entries have none: MBR)."""
        return {}

    def _replace(self, part: Partition) -> Partition:
        self.partitions = [part if p.number == part.number else p for p in self.partitions]
        return part

    def _insert(self, part: Partition) -> Partition:
        self.partitions = sorted([*self.partitions, part], key=lambda p: p.number)
        return part

    def _forget(self, number: int) -> None:
        self.partitions = [p for p in self.partitions if p.number != number]


def round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def align_sectors(sector_size: int) -> int:
    """1 MiB in sectors: the alignment every current partitioning tool uses."""
    return MIB // sector_size


def sectors_for(size: int, sector_size: int) -> int:
    """Sectors for ``size`` bytes, rounded up to whole MiB."""
    return round_up(size, MIB) // sector_size


def free_regions(used: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """Gaps (inclusive sector ranges) in ``[first, last]`` not covered by ``used``."""
    regions = []
    pos = first
    for start, end in sorted(used):
        if start > pos:
            regions.append((pos, min(start - 1, last)))
        pos = max(pos, end + 1)
        if pos > last:
            break
    if pos <= last:
        regions.append((pos, last))
    return [(s, e) for s, e in regions if e >= s]


def place_at_end(regions: list[tuple[int, int]], sectors: int, align: int,
                 lead: int = 0) -> tuple[int, int] | None:
    """``(start, end)`` at the end of the last region that fits ``sectors``.

    The start is aligned and the partition runs to the region's end, so no sliver of less
    than the alignment is left unusable behind it. ``lead`` sectors before the start must
    also be free (room for an EBR).
    """
    for first, last in reversed(regions):
        start = (last + 1 - sectors) // align * align
        if start - lead >= first and start + sectors - 1 <= last:
            return start, last
    return None


def mib(sectors: int, sector_size: int) -> str:
    return f"{sectors * sector_size / MIB:.1f} MiB"


def no_space(device: str, table: Table, sectors: int, regions: list[tuple[int, int]]) -> \
        DeviceError:
    largest = max((e - s + 1 for s, e in regions), default=0)
    return DeviceError(device=device, reason=(
        f"not enough free space for a {mib(sectors, table.sector_size)} config drive "
        f"partition (largest free region {mib(largest, table.sector_size)}; "
        f"layout: {table.describe()}); shrink the last partition or use a bigger disk"))
