"""Read FAT12/16/32 images (mkfs.vfat + mcopy images included): files and volume label."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from ironic_configdrive.image.file_tree import FileTree

from .directory import parse_dir
from .volume import bad, parse_volume


class FatFiles(FileTree):
    """The files of a FAT12/16/32 image (long names preferred), read when looked up.

    Walking the directories checks every file's cluster chain (no loop, no free or bad
    cluster, long enough for its size) without reading it, so a lookup cannot fail and the
    verdict on the image is :func:`read_fat`'s.

    :raises InvalidMediaError: the bytes are not a well-formed FAT filesystem (bad boot
        sector, truncated image, broken or looping cluster chains, unusable names).
    """

    def __init__(self, image: bytes) -> None:
        self._clusters: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        try:
            self._volume = volume = parse_volume(image)
            seen_dirs: set[int] = set()
            stack: list[tuple[str, bytes]] = [("", volume.root_table())]
            total = len(stack[0][1]) if volume.fat_bits == 32 else 0  # bytes from data area
            fat32 = volume.fat_bits == 32
            root = volume.root_cluster
            while stack:
                prefix, table = stack.pop()
                where = f"directory /{prefix}" if prefix else "root directory"
                entries, _ = parse_dir(table, fat32, where)
                names: set[str] = set()
                for entry in entries:
                    if entry.name in names:
                        raise bad(f"{where} lists {entry.name!r} twice")
                    names.add(entry.name)
                    path = prefix + entry.name
                    if entry.is_dir:
                        if entry.cluster in seen_dirs or (fat32 and entry.cluster == root):
                            raise bad(f"directory /{path} loops back to a directory already "
                                      "read")
                        seen_dirs.add(entry.cluster)
                        table = volume.read_chain(entry.cluster, f"/{path}")
                        stack.append((path + "/", table))
                        total += len(table)
                    else:
                        total += entry.size
                    # Cross-linked entries could otherwise make a small image expand without
                    # bound.
                    if total > volume.clusters * volume.cluster_bytes:
                        raise bad(
                            f"entries up to /{path} add up to {total} bytes, more than the "
                            "data area holds: cross-linked clusters"
                        )
                    if not entry.is_dir:
                        if entry.size:
                            volume.check_chain(entry.cluster, f"/{path}", entry.size)
                        self._clusters[path] = entry.cluster
                        self._sizes[path] = entry.size
        except (IndexError, struct.error, ValueError) as exc:
            # Bounds are checked above; this is the backstop so no raw parser error escapes.
            raise bad(f"malformed structure ({exc})") from None

    @property
    def sizes(self) -> Mapping[str, int]:
        return self._sizes

    def __getitem__(self, path: str) -> bytes:
        size = self._sizes[path]
        return self._volume.read_chain(self._clusters[path], f"/{path}", size) if size else b""


def read_fat(image: bytes) -> dict[str, bytes]:
    """Every file of a FAT12/16/32 image as ``{posix path: content}`` (long names preferred).

    :raises InvalidMediaError: the bytes are not a well-formed FAT filesystem (bad boot
        sector, truncated image, broken or looping cluster chains, unusable names).
    """
    files = FatFiles(image)
    return {path: files[path] for path in files}


def read_fat_label(image: bytes) -> str | None:
    """The volume label: the root directory's label entry (as blkid reads it), else the
    boot sector's; ``None`` if neither has one.

    :raises InvalidMediaError: the bytes are not a well-formed FAT filesystem.
    """
    try:
        volume = parse_volume(image)
        _, label = parse_dir(volume.root_table(), volume.fat_bits == 32, "root directory")
    except (IndexError, struct.error, ValueError) as exc:
        raise bad(f"malformed structure ({exc})") from None
    return label if label is not None else volume.boot_label
