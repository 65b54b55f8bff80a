"""FAT on-disk structures and limits: boot sector fields, directory entries, FAT types."""

from __future__ import annotations

import struct
from typing import Final

#: Logical sector sizes the writer accepts; 4096 is for 4Kn disks (Linux mounts a FAT only
#: if its logical sector size is at least the device's).
SECTOR_SIZES = (512, 1024, 2048, 4096)

DIRENT: Final = 32
# Microsoft's thresholds: the cluster count alone decides the FAT type.
FAT12_MAX_CLUSTERS: Final = 4084
FAT16_MIN_CLUSTERS: Final = 4085
FAT16_MAX_CLUSTERS: Final = 65524
MEDIA: Final = 0xF8
NUM_FATS: Final = 2
RESERVED_SECTORS: Final = 1

ATTR_READ_ONLY: Final = 0x01
ATTR_HIDDEN: Final = 0x02
ATTR_SYSTEM: Final = 0x04
ATTR_VOLUME_ID: Final = 0x08
ATTR_DIRECTORY: Final = 0x10
ATTR_ARCHIVE: Final = 0x20
ATTR_LFN: Final = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID
#: UCS-2 characters per long-name entry.
LFN_CHARS: Final = 13
LFN_MAX: Final = 255
# Characters allowed in an 8.3 short name besides A-Z and 0-9 (ASCII only: we write no
# OEM code page characters, so every reader decodes our short names alike).
SHORT_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()-@^_`{}~")
LFN_FORBIDDEN: Final = frozenset('"*/:<>?\\|')
# Windows NT "lower case" flags for the base name and extension of an 8.3 entry.
NT_LOWER_BASE: Final = 0x08
NT_LOWER_EXT: Final = 0x10

DIRENT_FMT: Final = struct.Struct("<11sBBBHHHHHHHI")
LFN_FMT: Final = struct.Struct("<B10sBBB12sH4s")
BPB_FMT: Final = struct.Struct("<3s8sHBHBHHBHHHII")
EBPB_FMT: Final = struct.Struct("<BBBI11s8s")
