"""Write ISO9660 config drives (Rock Ridge + Joliet) in one pass with :mod:`struct`.

Why not pycdlib for writing: it keeps heavy per-record bookkeeping (several milliseconds for
a typical drive) and stamps wall-clock time into the image. This writer takes every date from
one timestamp and stores equal file contents once (a config drive repeats meta_data.json and
user_data in every version directory). pycdlib stays the independent reader, so tests check
this writer against it.

Standards: ECMA-119 (ISO9660), SUSP 1.10 and RRIP 1.09 (Rock Ridge, ``RRIP_1991A``), Joliet
UCS-2 level 3.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ironic_configdrive.image import formats

from . import rockridge
from .descriptors import TERMINATOR, volume_descriptor
from .layout import Layout
from .limits import MAX_TIMESTAMP, SECTOR
from .path_tables import path_tables
from .records import DIR_FLAG, put_dir, record
from .tree import Entry, build_tree, invalid


def _check_text(what: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"{what} must be a string, not {type(value).__name__}")
    if not value.isascii() or not value.isprintable():
        raise invalid(f"{what} {value!r} must be printable ASCII")
    if len(value) > limit:
        raise invalid(f"{what} {value!r} is longer than {limit} characters")
    return value


def _check_timestamp(timestamp: object) -> time.struct_time:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise invalid(f"timestamp must be whole seconds since the epoch, not {timestamp!r}")
    # Directory-record dates store years since 1900 in one byte.
    if not 0 <= timestamp < MAX_TIMESTAMP:
        raise invalid(f"timestamp {timestamp} is outside 1970..2155, the years ISO9660 can record")
    return time.gmtime(timestamp)


class _Renderer:
    """Turns a :class:`Layout` into the image bytes."""

    def __init__(self, layout: Layout, label: str, publisher: str, tm: time.struct_time) -> None:
        self.layout = layout
        self.label = label
        self.publisher = publisher
        self.tm = tm

    def _record(self, ident: bytes, extent: int, size: int, flags: int, su: bytes) -> bytes:
        return record(ident, extent, size, flags, su, self.layout.dr_date)

    def _file_record(self, e: Entry, ident: bytes, su: bytes) -> bytes:
        if e.dir is not None:
            if su:
                return self._record(ident, e.dir.extent, e.dir.size, DIR_FLAG, su)
            return self._record(ident, e.dir.jextent, e.dir.jsize, DIR_FLAG, su)
        size = len(e.data) if e.data is not None else 0
        return self._record(ident, self.layout.file_extent.get(id(e), 0), size, 0, su)

    def _descriptor(self, joliet: bool, root_rec: bytes) -> bytes:
        pt_l, pt_m = self.layout.pt_sectors[2:] if joliet else self.layout.pt_sectors[:2]
        return volume_descriptor(
            joliet=joliet,
            label=self.label,
            publisher=self.publisher,
            tm=self.tm,
            total_sectors=self.layout.total_sectors,
            pt_size=self.layout.pt_sizes[joliet],
            pt_l=pt_l,
            pt_m=pt_m,
            root_rec=root_rec,
        )

    def render(self) -> bytes:
        lay = self.layout
        buf = bytearray(lay.meta_sectors * SECTOR)
        for joliet in (False, True):
            order = lay.jol_order if joliet else lay.iso_order
            size = lay.pt_sizes[joliet]
            starts = lay.pt_sectors[2 * joliet : 2 * joliet + 2]
            for table, sector in zip(path_tables(order, joliet), starts, strict=True):
                buf[sector * SECTOR : sector * SECTOR + size] = table

        dotdot_tail = lay.tf
        for node in lay.iso_order:
            parent = node.parent
            records = [
                self._record(b"\x00", node.extent, node.size, DIR_FLAG, lay.dot_su(node)),
                self._record(
                    b"\x01",
                    parent.extent,
                    parent.size,
                    DIR_FLAG,
                    rockridge.RR_DOTS + parent.px + dotdot_tail,
                ),
            ]
            for e in node.entries:
                su = e.su if e.ce is None else e.su + rockridge.ce_entry(e.ce_loc, len(e.ce))
                records.append(self._file_record(e, e.iso_id, su))
            put_dir(buf, node.extent, records)

        base = lay.ce_start * SECTOR
        for offset, blob in lay.ce_blobs:
            buf[base + offset : base + offset + len(blob)] = blob

        for node in lay.jol_order:
            parent = node.parent
            records = [
                self._record(b"\x00", node.jextent, node.jsize, DIR_FLAG, b""),
                self._record(b"\x01", parent.jextent, parent.jsize, DIR_FLAG, b""),
            ]
            for e in sorted(node.entries, key=lambda e: e.jol_id):
                records.append(self._file_record(e, e.jol_id, b""))
            put_dir(buf, node.jextent, records)

        root = lay.root
        pvd = self._descriptor(False, self._record(b"\x00", root.extent, root.size, 2, b""))
        svd = self._descriptor(True, self._record(b"\x00", root.jextent, root.jsize, 2, b""))
        buf[16 * SECTOR : 17 * SECTOR] = pvd
        buf[17 * SECTOR : 18 * SECTOR] = svd
        buf[18 * SECTOR : 18 * SECTOR + len(TERMINATOR)] = TERMINATOR
        return b"".join([buf, *lay.data_parts])


def write_iso(
    files: Mapping[str, bytes],
    *,
    label: str = formats.LABEL,
    timestamp: int = formats.DEFAULT_TIMESTAMP,
    publisher: str = "ironic-configdrive",
) -> bytes:
    """Build an ISO9660 image with Rock Ridge and Joliet holding ``files``.

    :param files: relative POSIX path (``openstack/latest/meta_data.json``) to content;
        directories are implied. Order does not matter: the image is the same for any order.
    :param label: volume identifier (cloud-init looks for ``config-2``), up to 32 ASCII
        characters (Joliet keeps the first 16).
    :param timestamp: seconds since the epoch, UTC; every date in the image is this one, so
        the same input always gives the same bytes.
    :param publisher: publisher identifier, up to 128 ASCII characters.
    :returns: the image; equal contents share one extent.
    :raises InvalidInputError: bad paths (absolute, empty, ``.``/``..`` components, a file
        used as a directory), names over 255 bytes, non-bytes contents or bad options.
    """
    label = _check_text("label", label, 32)
    if not label:
        raise invalid("label must not be empty")
    publisher = _check_text("publisher", publisher, 128)
    tm = _check_timestamp(timestamp)
    layout = Layout(build_tree(files), tm)
    try:
        return _Renderer(layout, label, publisher, tm).render()
    finally:
        # Directories point at their parents, a cycle only the garbage collector frees:
        # let go of the contents now (on the conductor, 8 MiB of user_data stayed until
        # gc's next full run).
        layout.data_parts.clear()
        for node in layout.iso_order:
            node.files.clear()
            for entry in node.entries:
                entry.data = b""
