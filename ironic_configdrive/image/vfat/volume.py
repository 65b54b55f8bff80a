"""Reading side: a FAT12/16/32 volume parsed from its boot sector, and its cluster chains."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ironic_configdrive.image import errors

from .fat_table import decode_fat
from .structs import BPB_FMT, DIRENT, FAT12_MAX_CLUSTERS, FAT16_MAX_CLUSTERS, SECTOR_SIZES


def bad(reason: str) -> errors.InvalidMediaError:
    return errors.InvalidMediaError(reason=f"FAT: {reason}")


@dataclass(frozen=True)
class Volume:
    """A FAT volume as its boot sector describes it, with the decoded FAT."""

    image: memoryview
    sector_size: int
    cluster_bytes: int
    fat_bits: int
    clusters: int
    fat: Sequence[int]
    root_offset: int
    root_bytes: int
    root_cluster: int
    data_offset: int
    boot_label: str | None

    def cluster_offset(self, cluster: int) -> int:
        return self.data_offset + (cluster - 2) * self.cluster_bytes

    def links(self, first: int, what: str) -> Iterator[int]:
        """Clusters of a chain in order, refusing loops, free or out-of-range links."""
        eoc = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.fat_bits]
        bad_mark = eoc - 1
        count = 0
        cluster = first
        while True:
            if not 2 <= cluster <= self.clusters + 1:
                raise bad(f"{what}: cluster chain reaches invalid cluster {cluster:#x}")
            count += 1
            if count > self.clusters:
                raise bad(f"{what}: cluster chain loops")
            yield cluster
            cluster = self.fat[cluster]
            if cluster >= eoc:
                return
            if cluster == bad_mark:
                raise bad(f"{what}: cluster chain runs into a cluster marked bad")

    def chain(self, first: int, what: str) -> list[int]:
        """Clusters of a chain, refusing loops, free or out-of-range links."""
        return list(self.links(first, what))

    def check_chain(self, first: int, what: str, size: int) -> None:
        """What :meth:`read_chain` checks for ``size`` bytes, without reading them."""
        self._check_length(sum(1 for _ in self.links(first, what)), what, size)

    def _check_length(self, clusters: int, what: str, limit: int | None) -> None:
        if limit is not None and clusters * self.cluster_bytes < limit:
            raise bad(
                f"{what}: {limit} bytes need {-(-limit // self.cluster_bytes)} clusters but "
                f"its chain has {clusters}"
            )

    def read_chain(self, first: int, what: str, limit: int | None = None) -> bytes:
        chain = self.chain(first, what)
        self._check_length(len(chain), what, limit)
        left = len(chain) * self.cluster_bytes if limit is None else limit
        pieces = []
        for cluster in chain:
            start = self.cluster_offset(cluster)
            pieces.append(self.image[start : start + min(left, self.cluster_bytes)])
            left -= self.cluster_bytes
            if left <= 0:
                break
        return b"".join(pieces)

    def root_table(self) -> bytes:
        if self.fat_bits == 32:
            return self.read_chain(self.root_cluster, "root directory")
        return bytes(self.image[self.root_offset : self.root_offset + self.root_bytes])


def parse_volume(image: bytes) -> Volume:
    """The volume in ``image``, its boot sector and FAT checked against the image size."""
    if not isinstance(image, (bytes, bytearray, memoryview)):
        raise bad(f"expected the image as bytes, not {type(image).__name__}")
    view = memoryview(image).cast("B")
    if len(view) < 512:
        raise bad(f"image is {len(view)} bytes, too short for a boot sector (512)")
    head = bytes(view[:512])
    if head[510:512] != b"\x55\xaa":
        raise bad("no boot sector signature 0x55AA at offset 510; not a FAT filesystem")
    (_, _, sector_size, spc, reserved, fats, root_entries, total16, media, fat16, _, _, _,
     total32) = BPB_FMT.unpack_from(head)  # fmt: skip
    if sector_size not in SECTOR_SIZES:
        raise bad(
            f"bytes per sector {sector_size} is not one of {SECTOR_SIZES}; not a FAT12/16/32 "
            "filesystem"
        )
    if spc not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise bad(f"sectors per cluster {spc} is not a power of two up to 128")
    if reserved < 1 or fats < 1:
        raise bad(f"boot sector declares {reserved} reserved sectors and {fats} FATs")
    if media != 0xF0 and media < 0xF8:
        raise bad(f"invalid media descriptor {media:#x}")
    total = total16 or total32
    fat_sectors = fat16 or struct.unpack_from("<I", head, 36)[0]
    if total == 0 or fat_sectors == 0:
        raise bad("boot sector declares zero sectors or a zero-sized FAT")
    if len(view) < total * sector_size:
        raise bad(
            f"image is truncated: {len(view)} bytes, the boot sector declares "
            f"{total * sector_size}"
        )
    root_sectors = -(-root_entries * DIRENT // sector_size)
    data_start = reserved + fats * fat_sectors + root_sectors
    if data_start >= total:
        raise bad("the FATs and root directory leave no data area")
    clusters = (total - data_start) // spc
    if fat16 == 0:  # as Linux decides: a zero 16-bit FAT size means FAT32
        bits = 32
        label_at = 0x42
        root_cluster = struct.unpack_from("<I", head, 44)[0]
        if root_entries:
            raise bad("FAT32 boot sector with a fixed root directory")
    else:
        bits = 12 if clusters <= FAT12_MAX_CLUSTERS else 16
        if clusters > FAT16_MAX_CLUSTERS:
            raise bad(f"{clusters} clusters is too many for FAT16 and the BPB is not FAT32")
        label_at = 0x26
        root_cluster = 0
    if fat_sectors * sector_size * 8 // bits < clusters + 2:
        raise bad(f"FAT of {fat_sectors} sectors cannot map {clusters} clusters")
    fat_offset = reserved * sector_size
    fat = decode_fat(bytes(view[fat_offset : fat_offset + fat_sectors * sector_size]), bits,
                      clusters + 2)  # fmt: skip
    boot_label = None
    if head[label_at] == 0x29:
        text = head[label_at + 5 : label_at + 16].decode("cp437").rstrip(" \x00")
        boot_label = text if text and text != "NO NAME" else None
    return Volume(
        image=view,
        sector_size=sector_size,
        cluster_bytes=spc * sector_size,
        fat_bits=bits,
        clusters=clusters,
        fat=fat,
        root_offset=(reserved + fats * fat_sectors) * sector_size,
        root_bytes=root_entries * DIRENT,
        root_cluster=root_cluster,
        data_offset=data_start * sector_size,
        boot_label=boot_label,
    )
