"""What the GPT and MBR modules share: partitions in sectors, free-space planning, errors."""

from __future__ import annotations

import dataclasses
from typing import Final, Protocol

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
    #: Carries this project's mark (GPT: the config-2 name and a unique GUID of ours), so it
    #: is ours whatever it holds now (a drive, zeros, or what an older version let through).
    marked: bool = False

    @property
    def sectors(self) -> int:
        return self.end - self.start + 1


class Table(Protocol):
    """A partition table read from a disk and rewritten in place by its methods."""

    scheme: str                 # "gpt" or "mbr"
    sector_size: int

    @property
    def reserved_tail(self) -> int:
        """Bytes at a partition's end kept for our mark (MBR), never written by a drive."""

    def data_partitions(self) -> list[Partition]: ...

    def describe(self) -> str: ...

    def needs_repair(self) -> bool: ...

    def repair(self) -> None: ...

    def plan_new(self, sectors: int) -> Partition: ...

    def add(self, part: Partition) -> Partition: ...

    def grow_limit(self, part: Partition) -> int: ...

    def grow(self, part: Partition, new_end: int) -> Partition: ...

    def mark(self, part: Partition) -> Partition:
        """Give ``part`` this project's mark (GPT: name and unique GUID; MBR: tail sector)."""

    def remove(self, part: Partition) -> None: ...


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
