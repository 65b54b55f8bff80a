"""Recognise config drive filesystems by their on-disk signatures.

Only magic bytes decide: the agent uses these functions on raw partitions (no udev database
on a ramdisk without udevd) and the decoder uses them to tell an image from an encoding.
"""

from __future__ import annotations

import struct
from typing import Final

ISO9660: Final = "iso9660"
VFAT: Final = "vfat"
FORMATS: Final = (ISO9660, VFAT)

#: cloud-init looks for this label (case-insensitively for vfat, where it is upper case).
LABEL: Final = "config-2"
VFAT_LABEL: Final = "CONFIG-2"

ISO_SECTOR: Final = 2048
#: The primary volume descriptor sits in sector 16; "CD001" starts one byte in.
ISO_PVD_OFFSET: Final = 16 * ISO_SECTOR
ISO_MAGIC_OFFSET: Final = ISO_PVD_OFFSET + 1
ISO_MAGIC: Final = b"CD001"
#: Bytes needed to tell any supported format apart.
SNIFF_SIZE: Final = ISO_PVD_OFFSET + ISO_SECTOR

GZIP_MAGIC: Final = b"\x1f\x8b"

#: Default timestamp stamped on every file and volume date (2012-08-10T00:00:00Z, the first
#: OpenStack metadata version): same input and options must give the same bytes.
DEFAULT_TIMESTAMP: Final = 1344556800

#: Upstream Ironic, IPA and consumers expect no more than this, decompressed.
MAX_IMAGE_SIZE: Final = 64 * 1024 * 1024

_FAT_SECTOR_SIZES: Final = (512, 1024, 2048, 4096)


def _is_fat_boot_sector(head: bytes) -> bool:
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return False
    if head[0] not in (0xEB, 0xE9):
        return False
    bytes_per_sector, sectors_per_cluster, reserved, fats = struct.unpack_from("<HBHB", head, 11)
    media = head[21]
    return (
        bytes_per_sector in _FAT_SECTOR_SIZES
        and sectors_per_cluster in (1, 2, 4, 8, 16, 32, 64, 128)
        and reserved >= 1
        and fats in (1, 2)
        and (media == 0xF0 or media >= 0xF8)
    )


def fat_sector_size(head: bytes) -> int | None:
    """The logical sector size a FAT image was made for (None: no FAT boot sector)."""
    if not _is_fat_boot_sector(head):
        return None
    return int(struct.unpack_from("<H", head, 11)[0])


def detect_format(head: bytes) -> str | None:
    """Return :data:`ISO9660`, :data:`VFAT` or ``None`` for the first bytes of an image.

    ``head`` should hold at least :data:`SNIFF_SIZE` bytes for ISO9660; 512 suffice for FAT.
    A FAT boot sector wins over an ISO signature only if the ISO one is absent, so a
    hybrid ISO (with an MBR in its system area) is still reported as ISO9660.
    """
    if head[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + len(ISO_MAGIC)] == ISO_MAGIC:
        return ISO9660
    if _is_fat_boot_sector(head):
        return VFAT
    return None


def _fat_boot_sector_label(head: bytes) -> str | None:
    # FAT32 keeps its extended BPB after the 28 extra bytes of the FAT32 BPB.
    fat_size_16 = struct.unpack_from("<H", head, 22)[0]
    sig_offset, label_offset = (0x26, 0x2B) if fat_size_16 else (0x42, 0x47)
    if head[sig_offset] != 0x29:  # 0x28 marks an extended BPB without the label field
        return None
    label = head[label_offset : label_offset + 11].decode("ascii", "replace").rstrip(" \x00")
    # mkfs.fat and our writer put "NO NAME" there when a volume has no label.
    return None if label in ("", "NO NAME") else label


def read_label(head: bytes) -> str | None:
    """Volume label from the superblock, or ``None`` when there is no known filesystem.

    For FAT this is the boot sector's copy; the root directory's volume-label entry (which
    blkid prefers) is checked by the full reader in :mod:`ironic_configdrive.image.vfat`.
    """
    fmt = detect_format(head)
    if fmt == ISO9660:
        ident = head[ISO_PVD_OFFSET + 40 : ISO_PVD_OFFSET + 72]
        return ident.decode("ascii", "replace").rstrip(" \x00") or None
    if fmt == VFAT:
        return _fat_boot_sector_label(head)
    return None


def is_config_drive_label(label: str | None) -> bool:
    """cloud-init accepts ``config-2`` in either case (vfat labels are upper case)."""
    return label is not None and label.lower() == LABEL
