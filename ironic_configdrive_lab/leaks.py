"""Search everything under the lab's workdir for secrets: logs, databases, store data, media.

Each needle is searched for as bytes in every file (binary files too: sqlite, Swift's object
files, the loop disk), in the forms a leak would take: as given, JSON-escaped and base64
(at all three alignments, since base64 of a larger text shifts). Patterns catch secrets
whose values the caller cannot know in advance (temp URL signatures).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Swift temp URL signatures in clear (a masked one reads ``temp_url_sig=***`` or is gone).
PATTERNS = {"temp URL signature": re.compile(rb"temp_url_sig=[0-9a-fA-F]{20,}")}
#: Larger files are read in pieces of this size, overlapping by the longest needle.
_PIECE = 16 * 1024 * 1024


def forms(secret: str) -> set[bytes]:
    """The byte forms under which ``secret`` would show in a file."""
    raw = secret.encode()
    found = {raw, json.dumps(secret)[1:-1].encode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # Drop the characters that depend on the neighbouring bytes.
        start = (shift * 4 + 2) // 3 + (1 if shift else 0)
        body = encoded[start: len(encoded) - 4]
        if len(body) >= 8:
            found.add(body)
    return found


def scan(root: Path, secrets: Mapping[str, str],
         patterns: Mapping[str, re.Pattern[bytes]] = PATTERNS) -> dict[str, list[str]]:
    """``{secret name: [files holding it]}`` for every secret or pattern found under ``root``."""
    return scan_files(_files(root), secrets, patterns)


def scan_files(paths: Iterable[Path], secrets: Mapping[str, str],
               patterns: Mapping[str, re.Pattern[bytes]] = PATTERNS) -> dict[str, list[str]]:
    """:func:`scan` over the given files only."""
    needles = {name: forms(value) for name, value in secrets.items()}
    overlap = max((len(f) for fs in needles.values() for f in fs), default=0) + 256
    hits: dict[str, list[str]] = {}
    for path in paths:
        for piece in _pieces(path, overlap) if not _is_gzip(path) else _gunzipped(path):
            for name, variants in needles.items():
                if any(v in piece for v in variants):
                    _add(hits, name, path)
            for name, pattern in patterns.items():
                if pattern.search(piece):
                    _add(hits, name, path)
    return hits


def _add(hits: dict[str, list[str]], name: str, path: Path) -> None:
    if str(path) not in hits.setdefault(name, []):
        hits[name].append(str(path))


def _files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _pieces(path: Path, overlap: int) -> Iterable[bytes]:
    try:
        handle = open(path, "rb")
    except OSError:
        return
    with handle:
        tail = b""
        while True:
            block = handle.read(_PIECE)
            if not block:
                break
            yield tail + block
            tail = block[-overlap:]


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def _gunzipped(path: Path) -> Iterable[bytes]:
    """A gzip file as stored and inflated (a plain drive compressed would hide its text)."""
    data = path.read_bytes()
    yield data
    try:
        yield gzip.decompress(data)[:_PIECE * 4]
    except (OSError, EOFError, zlib.error):
        return


def count_files(root: Path) -> int:
    return sum(1 for _ in _files(root))
