"""ISO9660 and Joliet identifiers: mangled from the real names, unique per directory.

ISO9660 names become upper-case d-characters within ECMA-119 level 2 lengths; Joliet names
keep UCS-2 text without the characters Joliet forbids. The real names travel in Rock Ridge.
"""

from __future__ import annotations

import functools
import re
from typing import Final

# ECMA-119 level 2 limits: file name + extension <= 30 characters, directory name <= 31.
_ISO_FILE_MAX: Final = 30
_ISO_DIR_MAX: Final = 31
_ISO_EXT_MAX: Final = 8
#: Joliet allows 64 UCS-2 characters per name.
_JOLIET_MAX: Final = 64
# Joliet forbids these and control characters; UCS-2 cannot hold characters beyond the BMP.
_JOLIET_BAD: Final = re.compile(r"[\x00-\x1f*/:;?\\\U00010000-\U0010ffff]")
_NOT_D_CHARS: Final = re.compile("[^A-Z0-9_]")


class Namespace:
    """Names already given in one directory of one hierarchy."""

    __slots__ = ("used", "next_number")

    def __init__(self) -> None:
        self.used: set[str] = set()
        # Where numbering resumes for a (stem, ext), so many clashes stay linear.
        self.next_number: dict[tuple[str, str], int] = {}

    def unique(self, stem: str, ext: str, limit: int, sep: str) -> str:
        """``stem + ext`` cut to ``limit`` characters, numbered with ``sep`` if taken."""
        cut = stem[: max(limit - len(ext), 0)]
        candidate = cut + ext
        if candidate in self.used:
            n = self.next_number.get((cut, ext), 1)
            while True:
                suffix = f"{sep}{n}"
                candidate = stem[: max(limit - len(ext) - len(suffix), 0)] + suffix + ext
                n += 1
                if candidate not in self.used:
                    break
            self.next_number[(cut, ext)] = n
        self.used.add(candidate)
        return candidate


@functools.lru_cache(maxsize=4096)
def _iso_file_parts(name: str) -> tuple[str, str]:
    """Mangled (stem, ".EXT") of a file name; config drives repeat names, hence the cache."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = _NOT_D_CHARS.sub("_", stem.upper())
    ext = _NOT_D_CHARS.sub("_", ext.upper())[:_ISO_EXT_MAX]
    if not stem and not ext:
        stem = "_"
    return stem, "." + ext


@functools.lru_cache(maxsize=4096)
def _iso_dir_stem(name: str) -> str:
    return _NOT_D_CHARS.sub("_", name.upper())


@functools.lru_cache(maxsize=4096)
def _joliet_parts(name: str, is_dir: bool) -> tuple[str, str]:
    """(stem, ext) of a Joliet name: UCS-2 only, without the characters Joliet forbids."""
    clean = _JOLIET_BAD.sub("_", name)
    stem, dot, ext = clean.rpartition(".")
    if is_dir or not dot or not stem or len(ext) > 16:
        return clean, ""
    return stem, "." + ext


def iso_file_id(name: str, names: Namespace) -> bytes:
    """The ISO9660 file identifier (``NAME.EXT;1``) for ``name``, unique in ``names``."""
    stem, ext = _iso_file_parts(name)
    # the "." counts towards neither limit, hence + 1
    return names.unique(stem, ext, _ISO_FILE_MAX + 1, "_").encode("ascii") + b";1"


def iso_dir_id(name: str, names: Namespace) -> bytes:
    """The ISO9660 directory identifier for ``name``, unique in ``names``."""
    return names.unique(_iso_dir_stem(name), "", _ISO_DIR_MAX, "_").encode("ascii")


def joliet_id(name: str, is_dir: bool, names: Namespace) -> bytes:
    """The Joliet identifier (UCS-2 big-endian) for ``name``, unique in ``names``."""
    stem, ext = _joliet_parts(name, is_dir)
    return names.unique(stem, ext, _JOLIET_MAX, "~").encode("utf-16-be")
