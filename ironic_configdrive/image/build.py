"""Build config drive images from Ironic's JSON form, and convert between formats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import formats, iso9660, layout, vfat
from .errors import InvalidInputError, SizeLimitExceeded, UnknownFormatError
from .file_tree import FileTree


def _check_format(fmt: str) -> None:
    if fmt not in formats.FORMATS:
        raise InvalidInputError(
            reason=f"unknown image format {fmt!r}; choose one of {', '.join(formats.FORMATS)}")


def write_tree(files: Mapping[str, bytes], *, fmt: str = formats.ISO9660,
               sector_size: int = 512, timestamp: int = formats.DEFAULT_TIMESTAMP,
               cap: int = formats.MAX_IMAGE_SIZE) -> bytes:
    """Write a ``{posix path: bytes}`` tree as an ISO9660 or FAT image no larger than ``cap``."""
    _check_format(fmt)
    if fmt == formats.ISO9660:
        if sector_size != 512:
            raise InvalidInputError(
                reason="ISO9660 has no sector-size option (its blocks are 2048 bytes and Linux "
                "cannot mount it on 4Kn disks); use vfat for 4096-byte sectors")
        needed = layout.content_size(files)
    else:
        # FAT cannot store equal files once: leave out the copies no reader needs.
        files = vfat.fold_versions(files)
        needed = sum(len(data) for data in files.values())
    if needed > cap:
        raise SizeLimitExceeded(limit_mib=cap // (1024 * 1024),
                                what=f"{needed} bytes of file content")
    if fmt == formats.ISO9660:
        image = iso9660.write_iso(files, timestamp=timestamp)
    else:
        image = vfat.write_fat(files, sector_size=sector_size, timestamp=timestamp)
    if len(image) > cap:
        raise SizeLimitExceeded(limit_mib=cap // (1024 * 1024),
                                what=f"the {fmt} image would be {len(image)} bytes")
    return image


def build_image(configdrive: Mapping[str, Any], *, fmt: str = formats.ISO9660,
                node_uuid: str | None = None, node_name: str | None = None,
                cloudstack: bool = False, sector_size: int = 512,
                timestamp: int = formats.DEFAULT_TIMESTAMP,
                warnings: list[str] | None = None) -> bytes:
    """Build a config drive image from ``{meta_data, user_data, network_data, vendor_data}``.

    :param fmt: ``"iso9660"`` (label ``config-2``) or ``"vfat"`` (label ``CONFIG-2``).
    :param node_uuid: default for ``meta_data.uuid``, as Ironic does.
    :param node_name: default for ``meta_data.name`` (and ``hostname``), as Ironic does.
    :param cloudstack: also write the CloudStack layout.
    :param sector_size: logical sector size for vfat (4096 for 4Kn disks).
    :param timestamp: the time stamped on every file; fixed by default so builds are
        reproducible.
    :param warnings: when given, what readers take but Nova never writes is appended here
        (e.g. a ``meta_data.uuid`` that is not a UUID); the same warnings :func:`.inspect`
        reports.
    :raises InvalidInputError: the content breaks a rule of :mod:`.rules` (the message names
        the field); a drive built is one :func:`.validate` accepts.
    """
    _check_format(fmt)
    tree = layout.build_tree(configdrive, node_uuid=node_uuid, node_name=node_name,
                             cloudstack=cloudstack, warnings=warnings)
    return write_tree(tree, fmt=fmt, sector_size=sector_size, timestamp=timestamp)


def read_tree(image: bytes) -> dict[str, bytes]:
    """Every file of a raw ISO9660 or FAT image as ``{posix path: bytes}``."""
    fmt = formats.detect_format(image[: formats.SNIFF_SIZE])
    if fmt == formats.ISO9660:
        return iso9660.read_iso(image)
    if fmt == formats.VFAT:
        return vfat.read_fat(image)
    raise UnknownFormatError(reason="no ISO9660 or FAT signature in the image")


def open_tree(image: bytes) -> FileTree:
    """The files of a raw ISO9660 or FAT image, each read only when looked up (see
    :mod:`.file_tree`); use it as a context manager."""
    fmt = formats.detect_format(image[: formats.SNIFF_SIZE])
    if fmt == formats.ISO9660:
        return iso9660.IsoFiles(image)
    if fmt == formats.VFAT:
        return vfat.FatFiles(image)
    raise UnknownFormatError(reason="no ISO9660 or FAT signature in the image")


def rebuild_image(image: bytes, *, fmt: str, sector_size: int = 512,
                  timestamp: int = formats.DEFAULT_TIMESTAMP) -> bytes:
    """Re-create an image's files in another format (e.g. ISO → vfat for a 4Kn disk)."""
    return write_tree(read_tree(image), fmt=fmt, sector_size=sector_size, timestamp=timestamp)


def replace_files(image: bytes, changes: Mapping[str, bytes], *,
                  timestamp: int = formats.DEFAULT_TIMESTAMP,
                  cap: int = formats.MAX_IMAGE_SIZE) -> bytes:
    """``image`` with ``changes`` (``{posix path: bytes}``) written over its files, in the
    image's own format (and, for FAT, its own sector size)."""
    head = image[: formats.SNIFF_SIZE]
    fmt = formats.detect_format(head)
    files = read_tree(image)
    files.update(changes)
    sector_size = (formats.fat_sector_size(head) or 512) if fmt == formats.VFAT else 512
    return write_tree(files, fmt=fmt or formats.ISO9660, sector_size=sector_size,
                      timestamp=timestamp, cap=cap)
