"""System Use entries: SUSP 1.10 (SP, CE, ER) and Rock Ridge RRIP 1.09 (RR, PX, TF, NM)."""

from __future__ import annotations

import functools
import struct
from typing import Final

from .fields import both32

DIR_MODE: Final = 0o40555
FILE_MODE: Final = 0o100444

# Rock Ridge (RRIP 1.09) "RR" flags.
_RR_PX: Final = 0x01
_RR_NM: Final = 0x08
_RR_TF: Final = 0x80
# TF flags: modify, access, attributes (what genisoimage records), short 7-byte dates.
_TF_FLAGS: Final = 0x0E
_NM_CONTINUE: Final = 0x01
_NM_CHUNK: Final = 250  # 255 - 5 header bytes
CE_LEN: Final = 28

_ER_ID: Final = b"RRIP_1991A"
_ER_DESC: Final = (
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
)
_ER_SRC: Final = (
    b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN "
    b"PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION."
)
ER: Final = (
    struct.pack(
        "<2sBBBBBB",
        b"ER",
        8 + len(_ER_ID) + len(_ER_DESC) + len(_ER_SRC),
        1,
        len(_ER_ID),
        len(_ER_DESC),
        len(_ER_SRC),
        1,
    )
    + _ER_ID
    + _ER_DESC
    + _ER_SRC
)
SP: Final = b"SP\x07\x01\xbe\xef\x00"

# "RR" entries (RRIP 1.09): which Rock Ridge entries the record carries.
RR_NAMED: Final = bytes((0x52, 0x52, 5, 1, _RR_PX | _RR_TF | _RR_NM))
RR_DOTS: Final = bytes((0x52, 0x52, 5, 1, _RR_PX | _RR_TF))

_CE: Final = struct.Struct("<2sBBI4sI4sI4s")


def px(mode: int, nlink: int) -> bytes:
    """POSIX attributes: ``mode``, ``nlink``, owner and group 0."""
    return b"PX\x24\x01" + both32(mode) + both32(nlink) + both32(0) + both32(0)


def tf(dr_date: bytes) -> bytes:
    """Modify, access and attribute times, all ``dr_date`` (a 7-byte record date)."""
    return b"TF\x1a\x01" + bytes((_TF_FLAGS,)) + dr_date * 3


@functools.lru_cache(maxsize=4096)
def nm_entries(name: bytes) -> bytes:
    """One NM entry per 250 bytes of name; all but the last carry the CONTINUE flag."""
    chunks = [name[i : i + _NM_CHUNK] for i in range(0, len(name), _NM_CHUNK)]
    out = []
    for i, chunk in enumerate(chunks):
        flags = _NM_CONTINUE if i < len(chunks) - 1 else 0
        out.append(bytes((0x4E, 0x4D, 5 + len(chunk), 1, flags)) + chunk)
    return b"".join(out)


def ce_entry(loc: tuple[int, int], length: int) -> bytes:
    """A CE entry pointing at ``length`` bytes at ``loc`` = (sector, offset)."""
    block, offset = loc
    return _CE.pack(
        b"CE",
        CE_LEN,
        1,
        block,
        block.to_bytes(4, "big"),
        offset,
        offset.to_bytes(4, "big"),
        length,
        length.to_bytes(4, "big"),
    )
