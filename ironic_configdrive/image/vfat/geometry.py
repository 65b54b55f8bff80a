"""FAT type and cluster size: the smallest FAT12/FAT16 geometry that holds the content.

Every geometry (cluster size x FAT type) is sized exactly and the smallest wins, while the
cluster count stays inside Microsoft's thresholds (FAT12 below 4085 clusters, FAT16
4085..65524) so that every reader (Linux, Windows, dosfstools, mtools, libblkid) agrees on
the FAT type. FAT32 is never needed: FAT16 with 2 KiB clusters already spans 128 MiB, twice
the config drive cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from ironic_configdrive.image import errors, formats

from .structs import (
    DIRENT,
    FAT12_MAX_CLUSTERS,
    FAT16_MAX_CLUSTERS,
    FAT16_MIN_CLUSTERS,
    NUM_FATS,
    RESERVED_SECTORS,
)
from .tree import invalid

_MAX_CLUSTER_BYTES = 32 * 1024  # larger clusters upset old readers and gain nothing here


@dataclass(frozen=True)
class Layout:
    """Sizes of every region of the image."""

    fat_bits: int
    sector_size: int
    sectors_per_cluster: int
    fat_sectors: int
    root_entries: int
    clusters: int

    @property
    def cluster_bytes(self) -> int:
        return self.sector_size * self.sectors_per_cluster

    @property
    def root_sectors(self) -> int:
        return self.root_entries * DIRENT // self.sector_size

    @property
    def data_start(self) -> int:
        return RESERVED_SECTORS + NUM_FATS * self.fat_sectors + self.root_sectors

    @property
    def total_sectors(self) -> int:
        return self.data_start + self.clusters * self.sectors_per_cluster

    @property
    def size(self) -> int:
        return self.total_sectors * self.sector_size


def choose_layout(
    sector_size: int, root_slots: int, dir_slots: list[int], file_sizes: list[int]
) -> Layout:
    """The smallest FAT12/FAT16 geometry that holds the content."""
    per_sector = sector_size // DIRENT
    # The fixed root directory fills whole sectors (Linux refuses a partial one).
    root_entries = max(1, -(-root_slots // per_sector)) * per_sector
    if root_entries > 0xFFFF:
        raise invalid(
            f"{root_slots} directory entries in the FAT root directory exceed the FAT12/16 "
            "limit; put the files in subdirectories"
        )
    best: Layout | None = None
    sectors_per_cluster = 1
    while sectors_per_cluster <= 128 and sectors_per_cluster * sector_size <= _MAX_CLUSTER_BYTES:
        cluster = sectors_per_cluster * sector_size
        needed = sum(-(-size // cluster) for size in file_sizes)
        needed += sum(-(-(slots * DIRENT) // cluster) for slots in dir_slots)
        for bits, low, high in (
            (12, 1, FAT12_MAX_CLUSTERS),
            (16, FAT16_MIN_CLUSTERS, FAT16_MAX_CLUSTERS),
        ):
            clusters = max(needed, low)  # pad up to the type's minimum so readers agree
            if clusters > high:
                continue
            fat_bytes = ((clusters + 2) * bits + 7) // 8
            layout = Layout(
                fat_bits=bits,
                sector_size=sector_size,
                sectors_per_cluster=sectors_per_cluster,
                fat_sectors=-(-fat_bytes // sector_size),
                root_entries=root_entries,
                clusters=clusters,
            )
            if best is None or layout.size < best.size:
                best = layout
        sectors_per_cluster *= 2
    if best is None:
        raise errors.SizeLimitExceeded(
            limit_mib=formats.MAX_IMAGE_SIZE // (1024 * 1024),
            what="the files do not fit any FAT12/FAT16 layout",
        )
    return best
