"""Write reproducible FAT12/16 images in pure Python.

Why hand-written: the conductor must not need mkfs/mtools binaries, and pyfatfs only works
on files on disk, stamps wall-clock times and drags in PyFilesystem2. Here the same
``files`` mapping and options always give the same bytes (names sorted, every timestamp
taken from ``timestamp``, the volume serial hashed from the content). The image is the
smallest that holds the files (see :mod:`.geometry`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ironic_configdrive.image import errors, formats

from .boot import boot_sector, volume_serial
from .directory import dir_table, fat_datetime
from .fat_table import fat_table
from .geometry import choose_layout
from .names import assign_short_names, label_field
from .structs import DIRENT, NUM_FATS, RESERVED_SECTORS, SECTOR_SIZES
from .tree import Node, build_tree, invalid, walk


def write_fat(
    files: Mapping[str, bytes],
    *,
    label: str = formats.VFAT_LABEL,
    sector_size: int = 512,
    timestamp: int = formats.DEFAULT_TIMESTAMP,
) -> bytes:
    """Build the smallest FAT12/FAT16 image holding ``files``; same input, same bytes.

    :param files: POSIX relative path (``openstack/latest/meta_data.json``) to content;
        directories are implied. Names that are not upper-case 8.3 names get VFAT long names.
    :param label: volume label, stored upper-case in the boot sector and as the root
        directory's volume-label entry; ``""`` for none.
    :param sector_size: logical sector size, one of :data:`SECTOR_SIZES` (4096 for 4Kn disks).
    :param timestamp: seconds since the epoch, stamped (as UTC) on every entry.
    :raises InvalidInputError: bad path, name, label, sector size or timestamp.
    :raises SizeLimitExceeded: the image would be larger than :data:`formats.MAX_IMAGE_SIZE`.
    """
    if sector_size not in SECTOR_SIZES:
        raise invalid(f"FAT sector size {sector_size!r} is not one of {SECTOR_SIZES}")
    label_bytes = label_field(label)
    stamp = fat_datetime(timestamp)
    limit_mib = formats.MAX_IMAGE_SIZE // (1024 * 1024)
    content = 0
    if isinstance(files, Mapping):
        content = sum(len(d) for d in files.values() if isinstance(d, (bytes, bytearray)))
    if content > formats.MAX_IMAGE_SIZE:
        raise errors.SizeLimitExceeded(
            limit_mib=limit_mib,
            what=f"{content} bytes of files before any FAT overhead",
        )
    root = build_tree(files)
    has_label = label_bytes.strip() != b""

    directories = [root] + [node for node in walk(root) if node.is_dir]
    for directory in directories:
        assign_short_names(directory)
    root_slots = root.own_slots(is_root=True, label=has_label)
    dir_slots = [d.own_slots(is_root=False, label=False) for d in directories[1:]]
    file_nodes = [node for node in walk(root) if not node.is_dir]
    layout = choose_layout(
        sector_size, root_slots, dir_slots, [len(n.data or b"") for n in file_nodes]
    )
    if layout.size > formats.MAX_IMAGE_SIZE:
        raise errors.SizeLimitExceeded(
            limit_mib=limit_mib,
            what=f"the smallest FAT image would be {layout.size} bytes; the iso9660 format "
            "has less overhead",
        )

    # Allocate clusters contiguously in pre-order. Equal contents get their own copy (a shared
    # chain is a cross-link to fsck); config drives are folded first (see .copies).
    cluster_bytes = layout.cluster_bytes
    next_cluster = 2
    chains: list[tuple[int, int]] = []
    for node in walk(root):
        if node.is_dir:
            size = node.own_slots(is_root=False, label=False) * DIRENT
        else:
            size = len(node.data or b"")
        node.cluster_count = -(-size // cluster_bytes)
        if node.cluster_count:
            node.first_cluster = next_cluster
            chains.append((next_cluster, node.cluster_count))
            next_cluster += node.cluster_count
    if next_cluster - 2 > layout.clusters:
        raise errors.InternalError(reason="FAT layout has fewer clusters than allocated")

    image = bytearray(layout.size)
    serial = volume_serial(files, label_bytes, sector_size, timestamp)
    boot_label = label_bytes if has_label else b"NO NAME    "
    image[:sector_size] = boot_sector(layout, serial, boot_label)
    fat = fat_table(layout, chains)
    fat_offset = RESERVED_SECTORS * sector_size
    for copy in range(NUM_FATS):
        start = fat_offset + copy * len(fat)
        image[start : start + len(fat)] = fat
    root_table = dir_table(root, None, label_bytes if has_label else None, stamp)
    root_offset = fat_offset + NUM_FATS * len(fat)
    image[root_offset : root_offset + len(root_table)] = root_table
    data_offset = layout.data_start * sector_size

    def place(node: Node, payload: bytes) -> None:
        start = data_offset + (node.first_cluster - 2) * cluster_bytes
        image[start : start + len(payload)] = payload

    stack: list[tuple[Node, int]] = [(root, 0)]
    while stack:
        directory, parent_cluster = stack.pop()
        for child in directory.children.values():
            if child.is_dir:
                # ".." of a directory in the root points to cluster 0, by definition.
                place(child, dir_table(child, parent_cluster, None, stamp))
                stack.append((child, child.first_cluster))
            elif child.cluster_count:
                assert child.data is not None
                place(child, child.data)
    return bytes(image)
