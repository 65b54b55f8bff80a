"""FAT names: unique 8.3 short names, VFAT long-name entries, and the volume label."""

from __future__ import annotations

from .structs import (
    ATTR_LFN,
    LFN_CHARS,
    LFN_FMT,
    NT_LOWER_BASE,
    NT_LOWER_EXT,
    SHORT_CHARS,
)
from .tree import Node, invalid


def label_field(label: str) -> bytes:
    """Validate the volume label; return it as the 11-byte space-padded field."""
    if not isinstance(label, str):
        raise invalid(f"FAT volume label must be a string, not {type(label)}")
    upper = label.upper()
    bad = sorted({c for c in upper if c not in SHORT_CHARS and c != " "})
    if len(upper) > 11 or bad or upper.startswith(" "):
        raise invalid(
            f"FAT volume label {label!r} is not usable: at most 11 characters from A-Z, 0-9, "
            "space (not first) and !#$%&'()-@^_`{}~"
        )
    return upper.ljust(11).encode("ascii")


# ----------------------------------------------------------------------------- 8.3 names


def _exact_short(name: str) -> bytes | None:
    """The 11-byte field if ``name`` is a valid 8.3 name as it stands, else ``None``."""
    base, dot, ext = name.partition(".")
    if not 1 <= len(base) <= 8 or len(ext) > 3 or (dot and not ext) or "." in ext:
        return None
    if not all(c in SHORT_CHARS for c in base + ext):
        return None
    return (base.ljust(8) + ext.ljust(3)).encode("ascii")


def _short_part(text: str) -> str:
    out = []
    for c in text:
        if c in " .":
            continue  # spaces and embedded dots are dropped, as Windows does
        upper = c.upper() if c.isascii() else "_"
        out.append(upper if upper in SHORT_CHARS else "_")
    return "".join(out)


def assign_short_names(directory: Node) -> None:
    """Give every child a unique 8.3 name; deterministic for a given set of names."""
    taken: set[bytes] = set()
    pending: list[Node] = []
    for child in sorted(directory.children.values(), key=lambda n: n.name):
        exact = _exact_short(child.name.upper()) if child.name.isascii() else None
        if exact is None:
            pending.append(child)
            continue
        # Names that differ only in case were refused, so these never collide.
        child.short = exact
        child.needs_lfn = child.name != child.name.upper()
        taken.add(exact)
    next_tail: dict[tuple[str, str], int] = {}
    for child in pending:
        stripped = child.name.lstrip(".")
        dot = stripped.rfind(".")
        base_raw, ext_raw = (stripped[:dot], stripped[dot + 1 :]) if dot > 0 else (stripped, "")
        base = _short_part(base_raw) or "_"
        ext = _short_part(ext_raw)[:3]
        tail_no = next_tail.get((base, ext), 1)
        while True:
            tail = f"~{tail_no}"
            candidate = (base[: 8 - len(tail)] + tail).ljust(8) + ext.ljust(3)
            short = candidate.encode("ascii")
            tail_no += 1
            if short not in taken:
                break
        next_tail[(base, ext)] = tail_no
        child.short = short
        child.needs_lfn = True
        taken.add(short)


def short_name(raw: bytes, nt_flags: int) -> str:
    """The name an 11-byte 8.3 field reads as, lower-cased as the NT flags say."""
    if raw[0] == 0x05:  # 0xE5 as a first character is stored as 0x05
        raw = b"\xe5" + raw[1:]
    base = raw[:8].decode("cp437").rstrip(" ")
    ext = raw[8:].decode("cp437").rstrip(" ")
    if nt_flags & NT_LOWER_BASE:
        base = base.lower()
    if nt_flags & NT_LOWER_EXT:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


# ---------------------------------------------------------------------------- long names


def lfn_checksum(short: bytes) -> int:
    """The checksum of the 8.3 field that ties long-name entries to their short entry."""
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def lfn_entries(name: str, short: bytes) -> list[bytes]:
    """The long-name entries, in on-disk order (last piece first)."""
    units = name.encode("utf-16-le")
    if len(units) % (2 * LFN_CHARS):
        units += b"\x00\x00"
        units += b"\xff\xff" * (-(len(units) // 2) % LFN_CHARS)
    checksum = lfn_checksum(short)
    pieces = [units[i : i + 2 * LFN_CHARS] for i in range(0, len(units), 2 * LFN_CHARS)]
    entries = []
    for number, piece in enumerate(pieces, start=1):
        order = number | (0x40 if number == len(pieces) else 0)
        entries.append(
            LFN_FMT.pack(order, piece[:10], ATTR_LFN, 0, checksum, piece[10:22], 0, piece[22:])
        )
    entries.reverse()
    return entries


def lfn_piece(entry: bytes) -> bytes:
    """The 26 bytes of UCS-2 name one long-name entry carries."""
    return entry[1:11] + entry[14:26] + entry[28:32]


def decode_lfn(pieces: list[bytes]) -> str | None:
    """The long name from its pieces in name order, or ``None`` if they are not UCS-2."""
    units = b"".join(pieces)
    try:
        text = units.decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    end = text.find("\x00")
    return text if end < 0 else text[:end]
