"""The file tree to write, built from a ``{path: bytes}`` mapping and checked for FAT."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ironic_configdrive.image import errors

from .structs import LFN_CHARS, LFN_FORBIDDEN, LFN_MAX


@dataclass
class Node:
    """One file or directory of the tree to write."""

    name: str
    data: bytes | None = None  # None for a directory
    children: dict[str, Node] = field(default_factory=dict)
    short: bytes = b""  # 11-byte 8.3 name, space padded
    needs_lfn: bool = False
    first_cluster: int = 0
    cluster_count: int = 0

    @property
    def is_dir(self) -> bool:
        return self.data is None

    def entry_slots(self) -> int:
        """Directory entries this node takes in its parent (LFN entries + the 8.3 one)."""
        if not self.needs_lfn:
            return 1
        return 1 + -(-len(self.name.encode("utf-16-le")) // (2 * LFN_CHARS))

    def own_slots(self, is_root: bool, label: bool) -> int:
        """Entries of this directory's own table (``.``/``..`` or the volume label)."""
        base = (1 if label else 0) if is_root else 2
        return base + sum(child.entry_slots() for child in self.children.values())


def invalid(reason: str) -> errors.InvalidInputError:
    return errors.InvalidInputError(reason=reason)


def _check_component(path: str, name: str) -> None:
    if name in ("", ".", ".."):
        raise invalid(
            f"FAT path {path!r} has an empty, '.' or '..' component; give relative POSIX "
            "paths such as 'openstack/latest/meta_data.json'"
        )
    bad = sorted({c for c in name if c in LFN_FORBIDDEN or ord(c) < 0x20})
    if bad:
        raise invalid(
            f"FAT path {path!r}: name {name!r} contains characters FAT cannot store: "
            f"{''.join(bad)!r}"
        )
    if name[-1] in ". ":
        raise invalid(
            f"FAT path {path!r}: name {name!r} ends with a dot or space, which FAT drivers "
            "strip; rename it"
        )
    if any(ord(c) > 0xFFFF for c in name):
        raise invalid(
            f"FAT path {path!r}: name {name!r} has characters outside the Unicode Basic "
            "Multilingual Plane; FAT long names are UCS-2"
        )
    if len(name) > LFN_MAX:
        raise invalid(f"FAT path {path!r}: name is {len(name)} characters, FAT allows {LFN_MAX}")


def build_tree(files: Mapping[str, bytes]) -> Node:
    """The root of ``files``; refuses bad paths and names, case clashes, file/dir clashes."""
    if not isinstance(files, Mapping):
        raise invalid(f"FAT content must be a mapping of path to bytes, not {type(files)}")
    for path in files:
        if not isinstance(path, str):
            raise invalid(f"FAT path {path!r} is not a string")
    root = Node(name="")
    for path in sorted(files):
        data = files[path]
        if not isinstance(data, (bytes, bytearray)):
            raise invalid(f"FAT file {path!r}: content must be bytes, not {type(data)}")
        if path.startswith("/"):
            raise invalid(f"FAT path {path!r} is absolute; give a path relative to the root")
        parts = path.split("/")
        for part in parts:
            _check_component(path, part)
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            key = part.casefold()
            child = node.children.get(key)
            if child is not None and child.name != part:
                raise invalid(
                    f"FAT path {path!r}: {part!r} and {child.name!r} differ only in case, and "
                    "FAT compares names case-insensitively, so one would hide the other"
                )
            if last:
                if child is not None:
                    raise invalid(f"FAT path {path!r} is both a file and a directory")
                node.children[key] = Node(name=part, data=bytes(data))
            else:
                if child is None:
                    child = node.children[key] = Node(name=part)
                elif not child.is_dir:
                    # Sorted order puts "a" before "a/b", so clashes are mostly seen here.
                    prefix = "/".join(parts[: depth + 1])
                    raise invalid(f"FAT path {prefix!r} is both a file and a directory")
                node = child
    return root


def walk(node: Node) -> Iterator[Node]:
    """Pre-order, sorted: the order clusters are allocated in (iterative: no depth limit)."""
    stack = [iter(sorted(node.children.values(), key=lambda n: n.name))]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        yield child
        if child.is_dir:
            stack.append(iter(sorted(child.children.values(), key=lambda n: n.name)))
