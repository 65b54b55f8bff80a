"""The last gate before a written image is made valid: would cloud-init and glean use it?

The sha256 only proves the bytes arrived as the conductor sent them; with a URL passed
through, nobody on the conductor looked at them. So the writer checks exactly the bytes it is
about to commit with the image core's own rules (what ``ironic-configdrive validate`` runs):
the label as blkid reports it, a readable ``openstack/<version>/meta_data.json`` JSON object
with a uuid for the version cloud-init picks and ``latest`` for glean, every other JSON
document, and directory structures that read without error (no truncation, cycles,
cross-links, records outside the volume).

Bounded and fast: the image is read through a :class:`Source` (the writer's head buffer plus
the body read back from the disk), and only what the rules need is read: the volume
descriptors, every directory, and the JSON documents; user_data and embedded files never
are. ISO9660 directories are walked here (Rock Ridge names, else Joliet, else ISO9660, as
Linux mounts them) rather than through pycdlib, which parses every record of every tree and
reads whole files. A FAT image is checked on one in-memory copy (at most the 64 MiB cap) with
the image core's lazy FAT tree, the one validate reads (every cluster chain checked against
its file's size, contents read only when a rule looks them up); only this project's rebuild
and vfat requests produce one.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator, Mapping
from typing import Final, Protocol

from agent_ext.errors import NotAConfigDriveError
from ironic_configdrive.image import formats
from ironic_configdrive.image.errors import ConfigDriveError, InvalidMediaError

# The rules of inspect/validate themselves (not copies), applied to a lazily read tree.
from ironic_configdrive.image.inspect import Report, check_label, check_tree
from ironic_configdrive.image.vfat.reader import FatFiles

#: Problems quoted in the error; the rest are counted (``validate`` lists them all).
MAX_QUOTED: Final = 3
_SECTOR: Final = formats.ISO_SECTOR
#: Bounds on what a walk may visit, far above any real drive (Nova's has ~70 entries).
MAX_ENTRIES: Final = 100_000
MAX_DEPTH: Final = 32
_CE_HOPS: Final = 8
_JOLIET: Final = (b"%/@", b"%/C", b"%/E")
#: The volume descriptors blkid reads for the label: 16 sectors from sector 16 on.
_DESCRIPTORS_END: Final = formats.ISO_PVD_OFFSET + 16 * _SECTOR


class Source(Protocol):
    """Random access to the image about to be committed."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


@dataclasses.dataclass(frozen=True)
class BytesSource:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


def _bad(reason: str) -> InvalidMediaError:
    return InvalidMediaError(reason=reason)


# -- ISO9660 ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Node:
    extent: int
    size: int
    is_dir: bool


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _both32(data: bytes, offset: int, what: str, path: str = "") -> int:
    """A both-endian 32-bit field; copies that disagree mean a damaged structure."""
    little, big = struct.unpack_from("<I", data, offset)[0], \
        struct.unpack_from(">I", data, offset + 4)[0]
    if little != big:
        where = f" of /{path}" if path else ""
        raise _bad(f"the {what}{where} reads {little} little-endian but {big} big-endian; "
                   "the ISO9660 structures are corrupt")
    return int(little)


class _IsoTree:
    """The directory tree of an ISO9660 image, as Linux's isofs shows it."""

    def __init__(self, source: Source) -> None:
        self.source = source
        pvd = source.read(formats.ISO_PVD_OFFSET, _SECTOR)
        if len(pvd) < _SECTOR or pvd[0] != 1 or pvd[1:6] != formats.ISO_MAGIC:
            raise _bad("no ISO9660 primary volume descriptor (CD001 at offset 0x8001); "
                       "this is not an ISO9660 image")
        block = struct.unpack_from("<H", pvd, 128)[0]
        if block != _SECTOR:
            raise _bad(f"logical block size {block} is not {_SECTOR}; the volume "
                       "descriptor is corrupt")
        declared = _both32(pvd, 80, "volume space size") * _SECTOR
        if source.size < declared:
            raise _bad(f"the volume declares {declared} bytes but only {source.size} are "
                       "present; the image is truncated")
        self.blocks = declared // _SECTOR
        root = self._root_of(pvd)
        self.names = "iso"
        if self._has_rock_ridge(root):
            self.names = "rr"
        else:
            joliet = self._joliet_descriptor()
            if joliet is not None:
                root, self.names = self._root_of(joliet), "joliet"
        self.root = root

    def _root_of(self, descriptor: bytes) -> _Node:
        extent = _both32(descriptor, 156 + 2, "root directory location")
        size = _both32(descriptor, 156 + 10, "root directory size")
        head = self._extent(extent, min(size, 34))
        if len(head) < 34 or head[0] < 34 or head[32:34] != b"\x01\x00" or \
                _u32(head, 2) != extent:
            raise _bad(f"the root directory at sector {extent} does not start with its '.' "
                       "record; the image is corrupt")
        return _Node(extent, size, True)

    def _joliet_descriptor(self) -> bytes | None:
        for index in range(1, 16):
            desc = self.source.read(formats.ISO_PVD_OFFSET + index * _SECTOR, _SECTOR)
            if len(desc) < _SECTOR or desc[0] == 255:
                return None
            if desc[0] == 2 and desc[88:91] in _JOLIET:
                return desc
        return None

    def _extent(self, extent: int, size: int) -> bytes:
        if extent + -(-size // _SECTOR) > self.blocks:
            raise _bad(f"a record points at sectors {extent}+{size} bytes, beyond the "
                       f"{self.blocks}-sector volume; the image is corrupt")
        data = self.source.read(extent * _SECTOR, size)
        if len(data) != size:
            raise _bad("a directory or file runs past the end of the image; it is truncated")
        return data

    def _records(self, node: _Node) -> Iterator[tuple[bytes, bytes]]:
        """(record, system use area) of every record of a directory, '.' and '..' skipped."""
        data = self._extent(node.extent, node.size)
        pos = 0
        while pos < len(data):
            length = data[pos]
            if length == 0:                      # the rest of this sector is padding
                pos = (pos // _SECTOR + 1) * _SECTOR
                continue
            name_len = data[pos + 32] if pos + 33 <= len(data) else 0
            if length < 34 or 33 + name_len > length or \
                    pos // _SECTOR != (pos + length - 1) // _SECTOR:
                raise _bad(f"a malformed directory record in the directory at sector "
                           f"{node.extent}; the ISO9660 structures are corrupt")
            record = data[pos : pos + length]
            pos += length
            if name_len == 1 and record[33] in (0, 1):
                continue
            su_start = 33 + name_len + (1 - name_len % 2)
            yield record, record[su_start:]

    def _has_rock_ridge(self, root: _Node) -> bool:
        dot = self._extent(root.extent, min(root.size, _SECTOR))
        return dot[34:36] == b"SP" and dot[38:40] == b"\xbe\xef"

    def _rock_ridge(self, system_use: bytes) -> tuple[str | None, bool]:
        """The Rock Ridge name of a record (None: it has none) and whether it is a link."""
        name, area, hops, link = b"", system_use, 0, False
        while True:
            pos, follow = 0, None
            while pos + 4 <= len(area):
                sig, length = area[pos : pos + 2], area[pos + 2]
                if length < 4 or pos + length > len(area):
                    break
                if sig == b"NM" and length >= 5:
                    name += area[pos + 5 : pos + length]
                elif sig == b"SL":
                    link = True
                elif sig == b"CE" and length >= 28:
                    follow = (_u32(area, pos + 4), _u32(area, pos + 12), _u32(area, pos + 20))
                elif sig == b"ST":
                    break
                pos += length
            if follow is None or hops >= _CE_HOPS:
                break
            hops += 1
            block, offset, size = follow
            area = self._extent(block, offset + size)[offset:]
        return (name.decode("utf-8", "surrogateescape") if name else None), link

    def _name(self, record: bytes, is_dir: bool) -> str:
        ident = record[33 : 33 + record[32]]
        if self.names == "joliet":
            text = ident.decode("utf-16-be", "surrogatepass")
            return text if is_dir else text.split(";", 1)[0]
        text = ident.decode("ascii", "replace")
        return text.lower() if is_dir else text.split(";", 1)[0].rstrip(".").lower()

    def walk(self) -> dict[str, _Node]:
        """Every regular file by posix path; each directory is read once, loops refused."""
        files: dict[str, _Node] = {}
        seen = {self.root.extent}
        pending: list[tuple[str, _Node, int]] = [("", self.root, 0)]
        entries = 0
        while pending:
            prefix, node, depth = pending.pop()
            for record, system_use in self._records(node):
                entries += 1
                if entries > MAX_ENTRIES:
                    raise _bad(f"more than {MAX_ENTRIES} directory entries")
                is_dir = bool(record[25] & 2)
                if self.names == "rr":
                    rr_name, link = self._rock_ridge(system_use)
                    if link and not is_dir:
                        continue                 # a symbolic link: read_iso skips them too
                    if rr_name is None:
                        raise _bad(f"entry {record[33 : 33 + record[32]]!r} has no Rock Ridge "
                                   "name; the image is corrupt")
                    name = rr_name
                else:
                    name = self._name(record, is_dir)
                if not name or name in (".", "..") or "/" in name:
                    raise _bad(f"an entry under /{prefix} has an unusable name {name!r}")
                path = prefix + name
                child = _Node(_both32(record, 2, "location", path),
                              _both32(record, 10, "size", path), is_dir)
                if is_dir:
                    if child.extent in seen:
                        raise _bad(f"directory /{path} loops back to a directory already read "
                                   "(ISO Directory Records form a loop)")
                    if depth >= MAX_DEPTH:
                        raise _bad(f"directory /{path} nests deeper than {MAX_DEPTH} levels")
                    seen.add(child.extent)
                    pending.append((path + "/", child, depth + 1))
                elif path in files:
                    raise _bad(f"two entries read as the same path {path!r}")
                else:
                    if child.size and (child.extent * _SECTOR + child.size
                                       > self.blocks * _SECTOR):
                        raise _bad(f"file /{path} lies beyond the end of the volume; the "
                                   "image is truncated or corrupt")
                    files[path] = child
        return files

    def read(self, node: _Node) -> bytes:
        return self._extent(node.extent, node.size) if node.size else b""


class _LazyFiles(Mapping[str, bytes]):
    """The tree as the image core's rules read it; a file's bytes are read on lookup only."""

    def __init__(self, tree: _IsoTree, nodes: dict[str, _Node]) -> None:
        self.tree, self.nodes = tree, nodes

    def __getitem__(self, path: str) -> bytes:
        return self.tree.read(self.nodes[path])

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


# -- FAT -------------------------------------------------------------------------------------

# -- the check -------------------------------------------------------------------------------

def problems(image: bytes | Source) -> list[str]:
    """What stops cloud-init or glean from using the raw ISO9660/FAT ``image``; [] if fine."""
    source = BytesSource(image) if isinstance(image, (bytes, bytearray)) else image
    head = source.read(0, min(source.size, _DESCRIPTORS_END))
    fmt = formats.detect_format(head[: formats.SNIFF_SIZE])
    if fmt is None:
        return ["no ISO9660 or FAT signature in the image"]
    if source.size > formats.MAX_IMAGE_SIZE:
        return [f"image is larger than {formats.MAX_IMAGE_SIZE} bytes"]
    report = Report(format=fmt, label=formats.read_label(head), size=source.size)
    # The image core's own label and tree rules (inspect's), so that what validate rejects
    # write refuses; only the way to the files differs (bounded, lazy).
    try:
        if fmt == formats.ISO9660:
            check_label(head, fmt, report)
            tree = _IsoTree(source)
            files: Mapping[str, bytes] = _LazyFiles(tree, tree.walk())
        else:
            image_bytes = source.read(0, source.size)
            check_label(image_bytes, fmt, report)
            files = FatFiles(image_bytes)
        check_tree(files, report)
    except ConfigDriveError as exc:
        report.problems.append(exc.message)
    except (IndexError, struct.error, ValueError) as exc:   # bounds are checked; backstop
        report.problems.append(f"invalid config drive image: malformed structure ({exc})")
    return report.problems


def check_image(image: bytes | Source, device: str) -> None:
    """Raise :class:`NotAConfigDriveError` naming ``device`` unless ``image`` is usable."""
    found = problems(image)
    if not found:
        return
    quoted = "; ".join(found[:MAX_QUOTED])
    more = len(found) - MAX_QUOTED
    if more > 0:
        quoted += f" (and {more} more problem{'s' if more > 1 else ''})"
    raise NotAConfigDriveError(device=device, reason=f"the image is no usable config "
                                                     f"drive: {quoted}")


__all__ = ["BytesSource", "Source", "check_image", "problems"]
