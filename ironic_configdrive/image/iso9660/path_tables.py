"""Path tables (ECMA-119 9.4): every directory in breadth-first order, L and M forms."""

from __future__ import annotations

import struct
from typing import Final

from .tree import Dir

_PT_L: Final = struct.Struct("<BBIH")
_PT_M: Final = struct.Struct(">BBIH")


def bfs(root: Dir, joliet: bool) -> list[Dir]:
    """Directories in path table order: by level, then parent number, then identifier."""
    order = [root]
    for node in order:
        subs = [e.dir for e in node.entries if e.dir is not None]
        if joliet:
            subs.sort(key=lambda d: d.jol_id)
        order.extend(subs)
    return order


def path_tables(order: list[Dir], joliet: bool) -> tuple[bytes, bytes]:
    """(L, M) path tables for directories in path table ``order``."""
    little: list[bytes] = []
    big: list[bytes] = []
    for node in order:
        if joliet:
            name, extent, parent = node.jol_id, node.jextent, node.parent.jnumber
        else:
            name, extent, parent = node.iso_id, node.extent, node.parent.number
        pad = b"\x00" * (len(name) % 2)
        little.append(_PT_L.pack(len(name), 0, extent, parent) + name + pad)
        big.append(_PT_M.pack(len(name), 0, extent, parent) + name + pad)
    return b"".join(little), b"".join(big)


def path_table_size(order: list[Dir], joliet: bool) -> int:
    """Bytes of one path table for directories in ``order``."""
    return sum(8 + len(n) + len(n) % 2 for n in (d.jol_id if joliet else d.iso_id for d in order))
