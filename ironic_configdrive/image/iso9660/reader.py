"""Read any ISO9660 image through pycdlib: Rock Ridge names, else Joliet, else ISO9660."""

from __future__ import annotations

import contextlib
import io
import posixpath
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from ironic_configdrive.image import errors, formats

from .limits import SECTOR

if TYPE_CHECKING:
    import pycdlib

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


def _walk(iso: pycdlib.PyCdlib, kind: str) -> Iterator[tuple[str, str]]:
    """Yield (posix path, pycdlib path in the ``kind`` namespace) of every regular file."""
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
                yield child_rel, child_native


def read_iso(image: bytes) -> dict[str, bytes]:
    """Return ``{posix path: content}`` for every regular file in an ISO9660 image.

    Names come from Rock Ridge when present, else Joliet, else ISO9660 (version suffix and
    trailing dot stripped, lower-cased). Works on images from :func:`write_iso`,
    genisoimage, xorriso and pycdlib. Symbolic links are skipped.

    :raises InvalidMediaError: empty, truncated or corrupt image, or not ISO9660 at all.
    """
    if not isinstance(image, (bytes, bytearray, memoryview)):
        raise _media_error(f"expected image bytes, got {type(image).__name__}")
    image = bytes(image)
    _precheck(image)
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    parse_errors = (PyCdlibException, *_PARSE_ERRORS)
    iso = pycdlib.PyCdlib()
    try:
        iso.open_fp(io.BytesIO(image))
    except parse_errors as exc:
        raise _media_error(f"the ISO9660 structures are corrupt ({exc})") from None
    result: dict[str, bytes] = {}
    try:
        if iso.has_rock_ridge():
            kind = "rr_path"
        elif iso.has_joliet():
            kind = "joliet_path"
        else:
            kind = "iso_path"
        for rel, native in _walk(iso, kind):
            if rel in result:
                raise _media_error(f"two entries read as the same path {rel!r}")
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, **{kind: native})
            result[rel] = out.getvalue()
    except errors.InvalidMediaError:
        raise
    except UnicodeError:
        raise _media_error("a file name is not valid UTF-8/UCS-2 text") from None
    except parse_errors as exc:
        raise _media_error(f"cannot read the files of the image ({exc})") from None
    finally:
        with contextlib.suppress(*parse_errors):
            iso.close()
    return result
