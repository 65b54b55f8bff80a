"""Where everything goes: names, record sizes, then sectors for metadata and file data.

Sectors (2048 bytes)::

    0-15   system area (zeros)
    16     primary volume descriptor (ISO9660 names + Rock Ridge)
    17     Joliet supplementary volume descriptor (UCS-2 names)
    18     volume descriptor set terminator
    19-    L and M path tables of the ISO9660 hierarchy, then of the Joliet one
           ISO9660 directory extents, Rock Ridge continuation areas,
           Joliet directory extents, then file data (one extent per distinct content)
"""

from __future__ import annotations

import time
from typing import Final

from . import rockridge
from .fields import dr_date, sectors
from .limits import MAX_FILE_SIZE, SECTOR
from .names import Namespace, iso_dir_id, iso_file_id, joliet_id
from .path_tables import bfs, path_table_size
from .records import dir_bytes, dr_len
from .tree import Dir, Entry, invalid

_FIRST_PATH_TABLE_SECTOR: Final = 19
_ZERO: Final = bytes(SECTOR)


class Layout:
    """The placed image: name and measure, lay out metadata, then place file data."""

    def __init__(self, root: Dir, tm: time.struct_time) -> None:
        self.root = root
        self.dr_date = dr_date(tm)
        # Every record carries the same Rock Ridge timestamps and (for files) POSIX data.
        self.tf = rockridge.tf(self.dr_date)
        self.px_file = rockridge.px(rockridge.FILE_MODE, 1)
        self.iso_order: list[Dir] = []
        self.jol_order: list[Dir] = []
        self.pt_sectors = (0, 0, 0, 0)  # ISO L, ISO M, Joliet L, Joliet M
        self.pt_sizes = (0, 0)
        self.root_ce_loc = (0, 0)
        self.ce_start = 0
        self.ce_blobs: list[tuple[int, bytes]] = []
        self.meta_sectors = 0
        self.total_sectors = 0
        self.data_parts: list[bytes] = []
        self.file_extent: dict[int, int] = {}
        self._name_and_measure()
        self._layout_metadata()
        self._place_data()

    # -- pass 1: names and record sizes

    def _name_and_measure(self) -> None:
        stack = [self.root]
        while stack:
            node = stack.pop()
            node.px = rockridge.px(rockridge.DIR_MODE, 2 + len(node.subdirs))
            entries = [Entry(n, None, d) for n, d in node.subdirs.items()]
            entries += [Entry(n, data, None) for n, data in node.files.items()]
            # Mangled names depend on which sibling claims a name first: fix that order.
            entries.sort(key=lambda e: e.name.encode("utf-8"))
            iso_used = Namespace()
            jol_used = Namespace()
            for e in entries:
                sub = e.dir
                if sub is not None:
                    e.iso_id = sub.iso_id = iso_dir_id(e.name, iso_used)
                    e.jol_id = sub.jol_id = joliet_id(e.name, True, jol_used)
                    px = rockridge.px(rockridge.DIR_MODE, 2 + len(sub.subdirs))
                else:
                    e.iso_id = iso_file_id(e.name, iso_used)
                    e.jol_id = joliet_id(e.name, False, jol_used)
                    px = self.px_file
                inline = rockridge.RR_NAMED + px + self.tf
                nm = rockridge.nm_entries(e.name.encode("utf-8"))
                room = 255 - 33 - len(e.iso_id) - (1 - len(e.iso_id) % 2)
                if len(inline) + len(nm) <= room:
                    e.su = inline + nm
                else:  # long names go to a continuation area
                    e.su, e.ce = inline, nm
                e.rec_len = dr_len(len(e.iso_id), len(e.su) + (rockridge.CE_LEN if e.ce else 0))
            entries.sort(key=lambda e: e.iso_id)
            node.entries = entries
            stack.extend(e.dir for e in reversed(entries) if e.dir is not None)

    # -- pass 2: sectors for path tables, directories and continuation areas

    def dot_su(self, node: Dir) -> bytes:
        """System-use bytes of ``node``'s "." record."""
        su = rockridge.RR_DOTS + node.px + self.tf
        if node is self.root:
            # SP first in the root's "." record (SUSP), ER behind a CE like genisoimage.
            su = rockridge.SP + rockridge.ce_entry(self.root_ce_loc, len(rockridge.ER)) + su
        return su

    def _layout_metadata(self) -> None:
        self.iso_order = bfs(self.root, joliet=False)
        self.jol_order = bfs(self.root, joliet=True)
        if len(self.iso_order) > 0xFFFF:
            raise invalid(
                f"{len(self.iso_order)} directories do not fit ISO9660 path tables (max 65535)"
            )
        for number, node in enumerate(self.iso_order, 1):
            node.number = number
        for number, node in enumerate(self.jol_order, 1):
            node.jnumber = number

        iso_pt = path_table_size(self.iso_order, joliet=False)
        jol_pt = path_table_size(self.jol_order, joliet=True)
        self.pt_sizes = (iso_pt, jol_pt)
        cursor = _FIRST_PATH_TABLE_SECTOR
        starts = []
        for size in (iso_pt, iso_pt, jol_pt, jol_pt):
            starts.append(cursor)
            cursor += sectors(size)
        self.pt_sectors = (starts[0], starts[1], starts[2], starts[3])

        # PX has one size for files and directories, so every ".." record is this long.
        dotdot_len = dr_len(1, len(rockridge.RR_DOTS) + len(self.px_file) + len(self.tf))
        root_dot_len = dr_len(1, len(self.dot_su(self.root)))
        for node in self.iso_order:
            first = root_dot_len if node is self.root else dotdot_len
            node.size = dir_bytes([first, dotdot_len] + [e.rec_len for e in node.entries])
            node.extent = cursor
            cursor += node.size // SECTOR

        # Continuation areas, packed so that none crosses a sector boundary (Linux checks).
        self.ce_start = cursor
        used = 0
        owners: list[Entry | None] = [None]  # None: the root's ER
        owners += [e for node in self.iso_order for e in node.entries if e.ce is not None]
        for owner in owners:
            blob = rockridge.ER if owner is None or owner.ce is None else owner.ce
            if len(blob) > SECTOR - used % SECTOR:
                used += SECTOR - used % SECTOR
            loc = (self.ce_start + used // SECTOR, used % SECTOR)
            self.ce_blobs.append((used, blob))
            used += len(blob)
            if owner is None:
                self.root_ce_loc = loc
            else:
                owner.ce_loc = loc
        cursor += sectors(used)

        for node in self.jol_order:
            lengths = [34, 34] + [dr_len(len(e.jol_id), 0) for e in node.entries]
            node.jsize = dir_bytes(lengths)
            node.jextent = cursor
            cursor += node.jsize // SECTOR
        self.meta_sectors = cursor

    # -- pass 3: file data, one extent per distinct content; empty files at extent 0

    def _place_data(self) -> None:
        cursor = self.meta_sectors
        extents: dict[bytes, int] = {}
        for node in self.iso_order:
            for e in node.entries:
                data = e.data
                if not data:
                    continue
                extent = extents.get(data)
                if extent is None:
                    extent = extents[data] = cursor
                    cursor += sectors(len(data))
                    self.data_parts.append(data)
                    tail = len(data) % SECTOR
                    if tail:
                        self.data_parts.append(_ZERO[tail:])
                self.file_extent[id(e)] = extent
        if cursor > MAX_FILE_SIZE:
            raise invalid("content too large for an ISO9660 volume (over 2^32 sectors)")
        self.total_sectors = cursor
