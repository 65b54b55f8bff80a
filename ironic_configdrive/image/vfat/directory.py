"""Directory tables: 32-byte entries with their long names, written and parsed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .names import decode_lfn, lfn_checksum, lfn_entries, lfn_piece, short_name
from .structs import (
    ATTR_ARCHIVE,
    ATTR_DIRECTORY,
    ATTR_LFN,
    ATTR_VOLUME_ID,
    DIRENT,
    DIRENT_FMT,
)
from .tree import Node, invalid
from .volume import bad

_FAT_EPOCH_YEAR = 1980
_FAT_LAST_YEAR = 2107


def fat_datetime(timestamp: int) -> tuple[int, int, int]:
    """FAT (date, time, 10 ms units) for ``timestamp``, in UTC whatever the local zone."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise invalid(f"FAT timestamp must be an integer of seconds, not {timestamp!r}")
    try:
        tm = time.gmtime(timestamp)
    except (OverflowError, OSError, ValueError) as exc:
        raise invalid(f"FAT timestamp {timestamp} is out of range: {exc}") from None
    if not _FAT_EPOCH_YEAR <= tm.tm_year <= _FAT_LAST_YEAR:
        raise invalid(
            f"FAT timestamp {timestamp} ({tm.tm_year}) is outside the years FAT can store "
            f"({_FAT_EPOCH_YEAR}-{_FAT_LAST_YEAR})"
        )
    fat_date = ((tm.tm_year - _FAT_EPOCH_YEAR) << 9) | (tm.tm_mon << 5) | tm.tm_mday
    fat_time = (tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec // 2)
    return fat_date, fat_time, (tm.tm_sec % 2) * 100


# ------------------------------------------------------------------------------ writing


def _dirent(
    short: bytes, attr: int, cluster: int, size: int, stamp: tuple[int, int, int]
) -> bytes:
    fat_date, fat_time, tenths = stamp
    return DIRENT_FMT.pack(
        short, attr, 0, tenths, fat_time, fat_date, fat_date, 0, fat_time, fat_date, cluster, size
    )


def dir_table(
    node: Node,
    parent_cluster: int | None,
    label: bytes | None,
    stamp: tuple[int, int, int],
) -> bytes:
    """Entries of one directory (the root if ``parent_cluster`` is None)."""
    out: list[bytes] = []
    if parent_cluster is None:
        if label is not None:
            out.append(_dirent(label, ATTR_VOLUME_ID, 0, 0, stamp))
    else:
        out.append(_dirent(b".".ljust(11), ATTR_DIRECTORY, node.first_cluster, 0, stamp))
        out.append(_dirent(b"..".ljust(11), ATTR_DIRECTORY, parent_cluster, 0, stamp))
    for child in sorted(node.children.values(), key=lambda n: n.name):
        if child.needs_lfn:
            out.extend(lfn_entries(child.name, child.short))
        if child.is_dir:
            out.append(_dirent(child.short, ATTR_DIRECTORY, child.first_cluster, 0, stamp))
        else:
            assert child.data is not None
            out.append(
                _dirent(child.short, ATTR_ARCHIVE, child.first_cluster, len(child.data), stamp)
            )
    return b"".join(out)


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class DirEntry:
    """A file or subdirectory as read from a directory table."""

    name: str
    is_dir: bool
    cluster: int
    size: int


def parse_dir(table: bytes, fat32: bool, where: str) -> tuple[list[DirEntry], str | None]:
    """Entries of a directory table (``.``/``..`` left out) and any volume label."""
    entries: list[DirEntry] = []
    label: str | None = None
    lfn: list[bytes] = []
    lfn_next = 0
    lfn_sum = -1
    for offset in range(0, len(table) - DIRENT + 1, DIRENT):
        entry = table[offset : offset + DIRENT]
        first, attr = entry[0], entry[11]
        if first == 0x00:
            break
        if first == 0xE5:
            lfn, lfn_next = [], 0
            continue
        if attr & 0x3F == ATTR_LFN:
            seq = first & 0x1F
            if first & 0x40:
                lfn, lfn_next, lfn_sum = [lfn_piece(entry)], seq - 1, entry[13]
            elif lfn and seq == lfn_next and entry[13] == lfn_sum:
                lfn.insert(0, lfn_piece(entry))
                lfn_next -= 1
            else:
                lfn, lfn_next = [], 0  # orphaned piece: ignore, as every driver does
            continue
        if attr & ATTR_VOLUME_ID:
            if not attr & ATTR_DIRECTORY and label is None:
                label = entry[:11].decode("cp437").rstrip(" ") or None
            lfn, lfn_next = [], 0
            continue
        raw = entry[:11]
        long_name = None
        if lfn and lfn_next == 0 and lfn_sum == lfn_checksum(raw):
            long_name = decode_lfn(lfn)
        lfn, lfn_next = [], 0
        if raw in (b".".ljust(11), b"..".ljust(11)):
            continue
        name = long_name or short_name(raw, entry[12])
        if name in ("", ".", "..") or "/" in name or "\x00" in name:
            raise bad(f"{where} holds an entry with an unusable name {name!r}")
        _, _, _, _, _, _, _, hi, _, _, lo, size = DIRENT_FMT.unpack(entry)
        cluster = (hi << 16 | lo) if fat32 else lo
        entries.append(DirEntry(name, bool(attr & ATTR_DIRECTORY), cluster, size))
    return entries, label
