"""FAT config drives: a reproducible FAT12/16 writer and a FAT12/16/32 reader, in pure Python.

:func:`write_fat` builds the smallest image holding the files (:mod:`.writer`,
:mod:`.geometry`); :func:`read_fat` and :func:`read_fat_label` read any FAT12/16/32 image
(:mod:`.reader`). :func:`fold_versions` leaves out the version directories a config drive's
readers do not need, since FAT has no way to store equal files once (:mod:`.copies`).
"""

from __future__ import annotations

from .copies import fold_versions
from .reader import FatFiles, read_fat, read_fat_label
from .structs import SECTOR_SIZES
from .writer import write_fat

__all__ = ["SECTOR_SIZES", "FatFiles", "fold_versions", "read_fat", "read_fat_label", "write_fat"]
