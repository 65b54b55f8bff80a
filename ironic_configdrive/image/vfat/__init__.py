"""FAT config drives: a reproducible FAT12/16 writer and a FAT12/16/32 reader, in pure Python.

:func:`write_fat` builds the smallest image holding the files (:mod:`.writer`,
:mod:`.geometry`); :func:`read_fat` and :func:`read_fat_label` read any FAT12/16/32 image
(:mod:`.reader`).
"""

from __future__ import annotations

from .reader import read_fat, read_fat_label
from .structs import SECTOR_SIZES
from .writer import write_fat

__all__ = ["SECTOR_SIZES", "read_fat", "read_fat_label", "write_fat"]
