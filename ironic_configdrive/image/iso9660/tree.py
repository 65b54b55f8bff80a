"""The directory tree to write, built from a ``{path: bytes}`` mapping and checked."""

from __future__ import annotations

from collections.abc import Mapping

from ironic_configdrive.image import errors

from .limits import MAX_FILE_SIZE, MAX_NAME_BYTES


class Entry:
    """A child of a directory: a file (``data`` set) or a subdirectory (``dir`` set)."""

    __slots__ = ("name", "data", "dir", "iso_id", "jol_id", "su", "ce", "ce_loc", "rec_len")

    def __init__(self, name: str, data: bytes | None, directory: Dir | None) -> None:
        self.name = name
        self.data = data
        self.dir = directory
        self.iso_id = b""
        self.jol_id = b""
        # Rock Ridge system-use bytes without the CE entry; ``ce`` is the continuation
        # payload (or None) and ``ce_loc`` its (sector, offset) once laid out.
        self.su = b""
        self.ce: bytes | None = None
        self.ce_loc = (0, 0)
        self.rec_len = 0


class Dir:
    """A directory, with its place in both hierarchies (ISO9660+Rock Ridge, and Joliet)."""

    __slots__ = (
        "parent",
        "subdirs",
        "files",
        "entries",
        "iso_id",
        "jol_id",
        "number",
        "jnumber",
        "extent",
        "size",
        "jextent",
        "jsize",
        "px",
    )

    def __init__(self, parent: Dir | None) -> None:
        self.parent = parent if parent is not None else self
        self.subdirs: dict[str, Dir] = {}
        self.files: dict[str, bytes] = {}
        self.entries: list[Entry] = []  # sorted by ISO9660 identifier
        self.iso_id = b"\x00"  # the root's identifier; children get theirs when named
        self.jol_id = b"\x00"
        self.number = 0  # path table numbers
        self.jnumber = 0
        self.extent = 0
        self.size = 0
        self.jextent = 0
        self.jsize = 0
        self.px = b""


def invalid(reason: str) -> errors.InvalidInputError:
    return errors.InvalidInputError(reason=reason)


def _split_path(path: object) -> list[str]:
    if not isinstance(path, str):
        raise invalid(f"file path {path!r} is not a string")
    if not path:
        raise invalid("empty file path")
    if path.startswith("/"):
        raise invalid(f"file path {path!r} must be relative (no leading '/')")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise invalid(
                f"file path {path!r} has an empty, '.' or '..' component; "
                "use plain relative paths such as 'openstack/latest/meta_data.json'"
            )
        if "\x00" in part:
            raise invalid(f"file path {path!r} contains a NUL character")
        try:
            encoded = part.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(f"file path {path!r} is not valid Unicode text") from None
        if len(encoded) > MAX_NAME_BYTES:
            raise invalid(
                f"name {part[:40]!r}... in {path[:80]!r} is {len(encoded)} bytes long; "
                f"the limit is {MAX_NAME_BYTES} bytes per path component"
            )
    return parts


def build_tree(files: Mapping[str, bytes]) -> Dir:
    """The root of ``files``; refuses bad paths, non-bytes contents and file/dir clashes."""
    if not isinstance(files, Mapping):
        raise invalid(f"files must be a mapping of path to bytes, not {type(files).__name__}")
    root = Dir(None)
    for path in sorted(files, key=lambda p: p if isinstance(p, str) else ""):
        parts = _split_path(path)
        data = files[path]
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, bytes):
            raise invalid(f"content of {path!r} must be bytes, not {type(data).__name__}")
        if len(data) > MAX_FILE_SIZE:
            raise invalid(f"file {path!r} is larger than ISO9660's 4 GiB per-file limit")
        node = root
        for i, part in enumerate(parts[:-1]):
            if part in node.files:
                raise invalid(
                    f"{'/'.join(parts[: i + 1])!r} is given as a file but {path!r} "
                    "needs it to be a directory"
                )
            child = node.subdirs.get(part)
            if child is None:
                child = node.subdirs[part] = Dir(node)
            node = child
        leaf = parts[-1]
        if leaf in node.subdirs:
            raise invalid(f"{path!r} is given as a file but other paths need it as a directory")
        node.files[leaf] = data
    return root
