"""ISO9660 config drives: a hand-written writer (Rock Ridge + Joliet), a pycdlib reader.

:func:`write_iso` lays the image out in one pass, reproducibly (see :mod:`.writer`);
:func:`read_iso` reads any ISO9660 image (see :mod:`.reader`). ISO9660 names are mangled to
upper-case d-characters (:mod:`.names`); the real names travel in Rock Ridge ``NM``
(:mod:`.rockridge`) and in Joliet.
"""

from __future__ import annotations

from .limits import MAX_FILE_SIZE, MAX_NAME_BYTES, SECTOR
from .reader import IsoFiles, read_iso
from .writer import write_iso

__all__ = ["MAX_FILE_SIZE", "MAX_NAME_BYTES", "SECTOR", "IsoFiles", "read_iso", "write_iso"]
