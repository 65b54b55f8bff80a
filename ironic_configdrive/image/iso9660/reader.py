"""Read any ISO9660 image through pycdlib: Rock Ridge names, else Joliet, else ISO9660."""

from __future__ import annotations

import contextlib
import io
import posixpath
import struct
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

from ironic_configdrive.image import errors, formats
from ironic_configdrive.image.file_tree import FileTree

from .limits import SECTOR

if TYPE_CHECKING:
    import pycdlib
    from pycdlib.dr import DirectoryRecord

# What pycdlib lets escape on malformed input besides its own exceptions (caught as
# Exception subclasses: pycdlib is imported only when an image is read, since writing a
# drive, the agent's common path, never needs it): it slices and unpacks on-disk fields
# without checking every length and offset first.
_PARSE_ERRORS: Final = (
    struct.error,
    ValueError,  # includes UnicodeDecodeError
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    EOFError,
    OSError,
    RecursionError,
)


def _media_error(reason: str) -> errors.InvalidMediaError:
    return errors.InvalidMediaError(reason=reason)


def _precheck(image: bytes) -> None:
    if not image:
        raise _media_error("the image is empty (0 bytes); rebuild or re-send it")
    if len(image) < formats.SNIFF_SIZE:
        raise _media_error(
            f"only {len(image)} bytes, too short for an ISO9660 volume descriptor "
            f"(needs at least {formats.SNIFF_SIZE}); the image is truncated"
        )
    magic = image[formats.ISO_MAGIC_OFFSET : formats.ISO_MAGIC_OFFSET + len(formats.ISO_MAGIC)]
    if magic != formats.ISO_MAGIC or image[formats.ISO_PVD_OFFSET] != 1:
        raise _media_error(
            "no ISO9660 primary volume descriptor (CD001 at offset 0x8001); "
            "this is not an ISO9660 image"
        )
    pvd = formats.ISO_PVD_OFFSET
    block_size = struct.unpack_from("<H", image, pvd + 128)[0]
    if block_size != SECTOR:
        raise _media_error(
            f"logical block size {block_size} is not {SECTOR}; the volume descriptor is corrupt"
        )
    declared = struct.unpack_from("<I", image, pvd + 80)[0] * SECTOR
    if len(image) < declared:
        raise _media_error(
            f"the volume declares {declared} bytes but only {len(image)} are present; "
            "the image is truncated"
        )
    # pycdlib reads a zeroed or misplaced root directory as an empty one; a real root
    # directory starts with its "." record pointing at itself.
    root_extent = struct.unpack_from("<I", image, pvd + 156 + 2)[0]
    start = root_extent * SECTOR
    head = image[start : start + 34]
    if (
        len(head) < 34
        or head[0] < 34
        or head[32:34] != b"\x01\x00"
        or struct.unpack_from("<I", head, 2)[0] != root_extent
    ):
        raise _media_error(
            f"the root directory at sector {root_extent} does not start with its '.' record; "
            "the image is corrupt"
        )


def _iso_name(ident: bytes) -> str:
    name = ident.decode("ascii", "replace")
    name = name.split(";", 1)[0]
    return name.rstrip(".").lower()


def _walk(iso: pycdlib.PyCdlib, kind: str) -> Iterator[tuple[str, str, DirectoryRecord]]:
    """Yield (posix path, pycdlib path in the ``kind`` namespace, record) of every regular
    file."""
    pending = [("", "/")]
    while pending:
        rel, native = pending.pop()
        for rec in iso.list_children(**{kind: native}):
            if rec.is_dot() or rec.is_dotdot():
                continue
            ident = rec.file_identifier()
            if kind == "rr_path":
                if rec.rock_ridge is None:
                    raise _media_error(f"entry {ident!r} under /{rel} has no Rock Ridge data")
                if rec.rock_ridge.is_symlink():
                    continue
                raw = rec.rock_ridge.name()
                native_name = raw.decode("utf-8")
                name = native_name
            elif kind == "joliet_path":
                native_name = ident.decode("utf-16-be")
                name = native_name.split(";", 1)[0] if not rec.is_dir() else native_name
            else:
                native_name = ident.decode("ascii")
                name = native_name.lower() if rec.is_dir() else _iso_name(ident)
            if not name or name in (".", "..") or "/" in name:
                raise _media_error(f"entry {ident!r} under /{rel} has an unusable name {name!r}")
            child_rel = posixpath.join(rel, name) if rel else name
            child_native = posixpath.join(native, native_name)
            if rec.is_dir():
                pending.append((child_rel, child_native))
            else:
                yield child_rel, child_native, rec


class IsoFiles(FileTree):
    """The regular files of an ISO9660 image, read one at a time when looked up.

    pycdlib parses the volume descriptors and directories (never file data); each file's size
    is the one its directory records give (pycdlib cuts a record reaching past the image's
    end to what the image holds, as it does when it reads the file), and a lookup copies
    exactly that many bytes of that one file. Names as :func:`read_iso` gives them.

    :raises InvalidMediaError: empty, truncated or corrupt image, or not ISO9660 at all.
    """

    def __init__(self, image: bytes) -> None:
        if not isinstance(image, (bytes, bytearray, memoryview)):
            raise _media_error(f"expected image bytes, got {type(image).__name__}")
        image = bytes(image)  # no copy of bytes, the only type callers hold
        _precheck(image)
        import pycdlib
        from pycdlib.pycdlibexception import PyCdlibException

        self._parse_errors = (PyCdlibException, *_PARSE_ERRORS)
        self._iso = pycdlib.PyCdlib()
        try:
            # BytesIO shares the bytes object's buffer for as long as nobody writes to it.
            self._iso.open_fp(io.BytesIO(image))
        except self._parse_errors as exc:
            raise _media_error(f"the ISO9660 structures are corrupt ({exc})") from None
        self._native: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        try:
            if self._iso.has_rock_ridge():
                self._kind = "rr_path"
            elif self._iso.has_joliet():
                self._kind = "joliet_path"
            else:
                self._kind = "iso_path"
            for rel, native, rec in _walk(self._iso, self._kind):
                if rel in self._native:
                    raise _media_error(f"two entries read as the same path {rel!r}")
                self._native[rel] = native
                self._sizes[rel] = self._size(rec, native)
        except errors.InvalidMediaError:
            self.close()
            raise
        except UnicodeError:
            self.close()
            raise _media_error("a file name is not valid UTF-8/UCS-2 text") from None
        except self._parse_errors as exc:
            self.close()
            raise _media_error(f"cannot read the files of the image ({exc})") from None

    @property
    def sizes(self) -> Mapping[str, int]:
        return self._sizes

    def _size(self, rec: DirectoryRecord, native: str) -> int:
        """Bytes a read of the file yields: its extents' lengths, chained for a file of
        several extents, as pycdlib's own read walks them."""
        if rec.inode is None:
            # pycdlib serves an El Torito boot catalog (a few records) from memory.
            out = io.BytesIO()
            self._iso.get_file_from_iso_fp(out, **{self._kind: native})
            return out.tell()
        size = 0
        part: DirectoryRecord | None = rec
        while part is not None and part.inode is not None and part.data_length > 0:
            size += part.data_length
            part = part.data_continuation
        return size

    def __getitem__(self, path: str) -> bytes:
        native = self._native[path]
        out = io.BytesIO()
        try:
            self._iso.get_file_from_iso_fp(out, **{self._kind: native})
        except self._parse_errors as exc:
            raise _media_error(f"cannot read the files of the image ({exc})") from None
        return out.getvalue()

    def close(self) -> None:
        with contextlib.suppress(*self._parse_errors):
            self._iso.close()


def read_iso(image: bytes) -> dict[str, bytes]:
    """Return ``{posix path: content}`` for every regular file in an ISO9660 image.

    Names come from Rock Ridge when present, else Joliet, else ISO9660 (version suffix and
    trailing dot stripped, lower-cased). Works on images from :func:`write_iso`,
    genisoimage, xorriso and pycdlib. Symbolic links are skipped.

    :raises InvalidMediaError: empty, truncated or corrupt image, or not ISO9660 at all.
    """
    with IsoFiles(image) as files:
        return {path: files[path] for path in files}
