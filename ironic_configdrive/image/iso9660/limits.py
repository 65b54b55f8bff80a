"""What an ISO9660 volume can hold, as this writer lays it out."""

from __future__ import annotations

from typing import Final

from ironic_configdrive.image import formats

SECTOR: Final = formats.ISO_SECTOR

#: Longest file or directory name (one path component) in UTF-8 bytes, as Linux NAME_MAX.
#: Note that Linux isofs drops the NM piece that would take a Rock Ridge name past 253 bytes,
#: so 254- and 255-byte names read back shortened there (pycdlib, libisofs, libarchive and
#: isoinfo read them whole). Config drive names are far shorter.
MAX_NAME_BYTES: Final = 255
#: ISO9660 extents and the volume size are 32-bit counts.
MAX_FILE_SIZE: Final = 0xFFFFFFFF
#: 2156-01-01T00:00:00Z: directory records store the year as an offset from 1900 in a byte.
MAX_TIMESTAMP: Final = 5869584000
