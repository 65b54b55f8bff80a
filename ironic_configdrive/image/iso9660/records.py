"""Directory records (ECMA-119 9.1) and the extents that hold them."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final

from .limits import SECTOR

DIR_FLAG: Final = 0x02
_SEQ_ONE: Final = b"\x01\x00\x00\x01"  # volume sequence number 1, both byte orders
# ECMA-119 "both-byte orders" fields: struct cannot mix byte orders in one format, so the
# big-endian half is packed as a little-endian field holding the byte-swapped value.
_DR_HEAD: Final = struct.Struct("<BBI4sI4s7sBBB4sB")  # directory record up to len_fi


def dr_len(len_fi: int, su_len: int) -> int:
    """Length of a record with a ``len_fi``-byte identifier and ``su_len`` system-use bytes."""
    # The identifier is followed by a pad byte when its length is even; the record itself
    # must have an even length, so an odd system-use area gets a trailing zero byte.
    return 33 + len_fi + (1 - len_fi % 2) + su_len + (su_len % 2)


def record(ident: bytes, extent: int, size: int, flags: int, su: bytes, date: bytes) -> bytes:
    """One directory record; ``date`` is the 7-byte record date."""
    len_fi = len(ident)
    body = ident + (b"\x00" if len_fi % 2 == 0 else b"") + su
    if len(su) % 2:
        body += b"\x00"
    return (
        _DR_HEAD.pack(
            33 + len(body),
            0,
            extent,
            extent.to_bytes(4, "big"),
            size,
            size.to_bytes(4, "big"),
            date,
            flags,
            0,
            0,
            _SEQ_ONE,
            len_fi,
        )
        + body
    )


def dir_bytes(lengths: Iterator[int] | list[int]) -> int:
    """Bytes of a directory extent whose records never cross a sector boundary."""
    used = 0
    for length in lengths:
        room = SECTOR - used % SECTOR
        if length > room:
            used += room
        used += length
    return max(SECTOR, -(-used // SECTOR) * SECTOR)


def put_dir(buf: bytearray, start: int, records: list[bytes]) -> None:
    """Write ``records`` from sector ``start``, moving to the next sector where one won't fit."""
    pos = start * SECTOR
    for rec in records:
        room = SECTOR - pos % SECTOR
        if len(rec) > room:
            pos += room
        buf[pos : pos + len(rec)] = rec
        pos += len(rec)
