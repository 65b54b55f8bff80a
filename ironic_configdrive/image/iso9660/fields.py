"""ECMA-119 field encodings shared by records, path tables and volume descriptors."""

from __future__ import annotations

import time

from .limits import SECTOR


def both32(value: int) -> bytes:
    """A 32-bit "both-byte orders" field: little-endian, then big-endian."""
    return value.to_bytes(4, "little") + value.to_bytes(4, "big")


def both16(value: int) -> bytes:
    """A 16-bit "both-byte orders" field: little-endian, then big-endian."""
    return value.to_bytes(2, "little") + value.to_bytes(2, "big")


def pad(text: bytes, size: int, fill: bytes) -> bytes:
    """``text`` cut or filled with ``fill`` to exactly ``size`` bytes."""
    return (text + fill * size)[:size]


def vd_date(tm: time.struct_time) -> bytes:
    """The 17-byte volume descriptor date (digits, hundredths, GMT offset 0)."""
    return b"%04d%02d%02d%02d%02d%02d00\x00" % tm[:6]


def dr_date(tm: time.struct_time) -> bytes:
    """The 7-byte directory record date (year since 1900, ..., GMT offset 0)."""
    return bytes((tm.tm_year - 1900, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, 0))


def sectors(nbytes: int) -> int:
    """Sectors needed for ``nbytes``."""
    return -(-nbytes // SECTOR)
