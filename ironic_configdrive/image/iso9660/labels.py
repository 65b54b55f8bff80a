"""An ISO9660 image's volume labels, and the one blkid reports (what cloud-init looks up).

An image has a label in its primary volume descriptor (ASCII) and, with Joliet, another in
the Joliet supplementary descriptor (UCS-2). libblkid's iso9660 probe (util-linux 2.38,
``probe_iso9660``) reads up to 16 descriptors from sector 16 on, takes the first primary and
the first supplementary one with a Joliet escape sequence (``%/@``, ``%/C``, ``%/E``) and:

* without Joliet, reports the primary label;
* with Joliet, reports the Joliet label merged with the primary one when Joliet's is a
  prefix of it (ASCII case and the ``_`` stand-in for unrepresentable characters ignored:
  ``merge_utf16be_ascii``), else **the Joliet label alone**.

Older libblkid (before 2.37) also reported the Joliet label whenever it was not byte for
byte the primary one. cloud-init finds the drive by ``blkid -t LABEL=config-2``, so a Joliet
label other than ``config-2`` hides the drive however correct the primary label is.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from ironic_configdrive.image import formats

_LABEL_AT: Final = 40
_LABEL_SIZE: Final = 32
_ESCAPES_AT: Final = 88
_JOLIET_ESCAPES: Final = (b"%/@", b"%/C", b"%/E")
#: libblkid reads at most this many volume descriptors.
_MAX_DESCRIPTORS: Final = 16
_BOOT_RECORD, _PRIMARY, _SUPPLEMENTARY, _TERMINATOR = 0, 1, 2, 255
#: C's isspace() in the C locale: what blkid trims from the end of a label.
_C_SPACE: Final = " \t\n\v\f\r"


@dataclasses.dataclass(frozen=True)
class VolumeLabels:
    """The labels of an ISO9660 image; ``None`` where there is none (or it is blank)."""

    primary: str | None
    #: The Joliet descriptor's label; ``has_joliet`` tells a blank one from no descriptor.
    joliet: str | None
    has_joliet: bool
    #: What ``blkid -p`` reports as LABEL.
    blkid: str | None

    @property
    def differ(self) -> bool:
        return self.has_joliet and self.joliet != self.primary


def _c_upper(byte: int) -> int:
    return byte - 32 if 0x61 <= byte <= 0x7A else byte


def _merge(utf16: bytes, ascii_: bytes) -> bytes | None:
    """libblkid's ``merge_utf16be_ascii``: the merged label in UTF-16BE, or None."""
    out = bytearray()
    size = len(ascii_)
    a = u = 0
    while u + 1 < size and a < size:
        if (0xD8 <= utf16[u] <= 0xDB and u + 3 < size and 0xDC <= utf16[u + 2] <= 0xDF):
            out += utf16[u : u + 2]  # the high half of a surrogate pair goes through
            u += 2
        if ascii_[a] == ord("_"):
            out += utf16[u : u + 2]
        elif utf16[u] == 0 and utf16[u + 1] == ord("_"):
            out += bytes((0, ascii_[a]))
        elif utf16[u] == 0 and _c_upper(ascii_[a]) == _c_upper(utf16[u + 1]):
            upper = 0x41 <= ascii_[a] <= 0x5A
            out += bytes((0, utf16[u + 1] if upper else ascii_[a]))
        else:
            return None
        a += 1
        u += 2
    for byte in ascii_[a:]:
        out += bytes((0, byte))
    return bytes(out)


def _text(raw: bytes, encoding: str) -> str | None:
    """A label as blkid makes it: up to the first NUL, trailing white space trimmed."""
    if encoding == "utf-16-be":
        text = raw.decode("utf-16-be", "surrogatepass")
    else:
        text = raw.decode("latin-1")
    return text.split("\x00", 1)[0].rstrip(_C_SPACE) or None


def volume_labels(image: bytes) -> VolumeLabels | None:
    """The labels of an ISO9660 image, or None when blkid would find no primary descriptor."""
    if formats.detect_format(image[: formats.SNIFF_SIZE]) != formats.ISO9660:
        return None
    primary = joliet = None
    for index in range(_MAX_DESCRIPTORS):
        start = formats.ISO_PVD_OFFSET + index * formats.ISO_SECTOR
        desc = image[start : start + formats.ISO_SECTOR]
        if len(desc) < formats.ISO_SECTOR or desc[0] == _TERMINATOR:
            break
        if desc[0] == _PRIMARY and primary is None:
            primary = desc
        elif (desc[0] == _SUPPLEMENTARY and joliet is None
              and desc[_ESCAPES_AT : _ESCAPES_AT + 3] in _JOLIET_ESCAPES):
            joliet = desc
        if primary is not None and joliet is not None:
            break
    if primary is None:
        return None
    primary_raw = primary[_LABEL_AT : _LABEL_AT + _LABEL_SIZE]
    primary_label = _text(primary_raw, "latin-1")
    if joliet is None:
        return VolumeLabels(primary_label, None, False, primary_label)
    joliet_raw = joliet[_LABEL_AT : _LABEL_AT + _LABEL_SIZE]
    joliet_label = _text(joliet_raw, "utf-16-be")
    merged = _merge(joliet_raw, primary_raw)
    seen = _text(merged, "utf-16-be") if merged is not None else joliet_label
    return VolumeLabels(primary_label, joliet_label, True, seen)
