"""Volume descriptors (ECMA-119 8.4, 8.5): the primary one and the Joliet supplementary one."""

from __future__ import annotations

import struct
import time
from typing import Final

from .fields import both16, both32, pad, vd_date
from .limits import SECTOR

_JOLIET_ESCAPE: Final = b"%/E"  # UCS-2 level 3
#: The volume descriptor set terminator.
TERMINATOR: Final = b"\xffCD001\x01"


def volume_descriptor(
    *,
    joliet: bool,
    label: str,
    publisher: str,
    tm: time.struct_time,
    total_sectors: int,
    pt_size: int,
    pt_l: int,
    pt_m: int,
    root_rec: bytes,
) -> bytes:
    """The primary (``joliet`` False) or Joliet supplementary volume descriptor."""

    def field(value: str, size: int) -> bytes:
        if joliet:
            return pad(value[: size // 2].encode("utf-16-be"), size, b"\x00 ")
        return pad(value.encode("ascii"), size, b" ")

    date = vd_date(tm)
    no_date = b"0" * 16 + b"\x00"
    return b"".join(
        (
            b"\x02" if joliet else b"\x01",
            b"CD001\x01\x00",
            field("LINUX", 32),
            field(label, 32),
            bytes(8),
            both32(total_sectors),
            pad(_JOLIET_ESCAPE if joliet else b"", 32, b"\x00"),
            both16(1),  # volume set size
            both16(1),  # volume sequence number
            both16(SECTOR),
            both32(pt_size),
            struct.pack("<II", pt_l, 0) + struct.pack(">II", pt_m, 0),
            root_rec,
            field("", 128),  # volume set
            field(publisher, 128),
            field("", 128),  # data preparer
            field("", 128),  # application
            field("", 37),  # copyright file
            field("", 37),  # abstract file
            field("", 37),  # bibliographic file
            date,  # creation
            date,  # modification
            no_date,  # expiration
            no_date,  # effective
            b"\x01\x00",  # file structure version, reserved
            bytes(512 + 653),  # application use, reserved
        )
    )
