"""Independent builders of partition tables in regular files, for the unit tests.

Written from the specifications (UEFI 2.x chapter 5, the classic MBR/EBR layout), not with
the code under test, so a shared misunderstanding cannot pass unnoticed.
"""

from __future__ import annotations

import pathlib
import struct
import uuid
import zlib

SECTOR = 512
MIB = 1024 * 1024
LINUX = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def make_file(path: pathlib.Path, size: int) -> pathlib.Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def gpt(
    path: pathlib.Path,
    parts: list[tuple[int, int]],
    *,
    size: int,
    backup_at: int | None = None,
    names: list[str] | None = None,
) -> None:
    """GPT with 128 entries; ``parts`` = [(first_lba, last_lba)] numbered from 1.

    ``backup_at`` puts the backup header at that LBA (a smaller image on a bigger disk);
    ``names`` are the partitions' names (default ``part1``, ``part2`` ...).
    """
    make_file(path, size)
    last = size // SECTOR - 1
    backup = last if backup_at is None else backup_at
    entries = bytearray(128 * 128)
    for i, (first, end) in enumerate(parts):
        struct.pack_into(
            "<16s16sQQQ72s",
            entries,
            i * 128,
            LINUX.bytes_le,
            uuid.uuid4().bytes_le,
            first,
            end,
            0,
            (names[i] if names else f"part{i + 1}").encode("utf-16-le"),
        )
    disk_guid = uuid.uuid4().bytes_le

    def header(my: int, alt: int, entries_lba: int) -> bytes:
        raw = bytearray(
            struct.pack(
                "<8sIIIIQQQQ16sQIII",
                b"EFI PART",
                0x10000,
                92,
                0,
                0,
                my,
                alt,
                34,
                backup - 33,
                disk_guid,
                entries_lba,
                128,
                128,
                crc(bytes(entries)),
            )
        )
        struct.pack_into("<I", raw, 16, crc(bytes(raw)))
        return bytes(raw)

    mbr = bytearray(SECTOR)
    struct.pack_into(
        "<B3sB3sII", mbr, 446, 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, min(last, 0xFFFFFFFF)
    )
    mbr[510:512] = b"\x55\xaa"
    with open(path, "r+b") as f:
        f.write(mbr)
        f.seek(SECTOR)
        f.write(header(1, backup, 2))
        f.seek(2 * SECTOR)
        f.write(entries)
        f.seek((backup - 32) * SECTOR)
        f.write(entries)
        f.seek(backup * SECTOR)
        f.write(header(backup, 1, backup - 32))


def read_gpt(path: pathlib.Path, lba: int = 1) -> dict[str, object]:
    """Parse and CRC-check the GPT header at ``lba`` and its entries."""
    with open(path, "rb") as f:
        f.seek(lba * SECTOR)
        raw = f.read(92)
        fields = struct.unpack("<8sIIIIQQQQ16sQIII", raw)
        check = bytearray(raw)
        struct.pack_into("<I", check, 16, 0)
        assert fields[0] == b"EFI PART" and crc(bytes(check)) == fields[3]
        f.seek(fields[10] * SECTOR)
        entries = f.read(fields[11] * fields[12])
        assert crc(entries) == fields[13]
    parts = {}
    for i in range(fields[11]):
        tguid, uniq, first, end, _attrs, name = struct.unpack_from(
            "<16s16sQQQ72s", entries, i * 128
        )
        if tguid != bytes(16):
            parts[i + 1] = (
                first,
                end,
                uuid.UUID(bytes_le=tguid),
                uuid.UUID(bytes_le=uniq),
                name.decode("utf-16-le").rstrip("\x00"),
            )
    return {
        "my": fields[5],
        "alternate": fields[6],
        "first_usable": fields[7],
        "last_usable": fields[8],
        "parts": parts,
    }


def entry(ptype: int, start: int, sectors: int) -> bytes:
    return struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff", start, sectors)


def mbr(
    path: pathlib.Path,
    primaries: list[tuple[int, int, int]],
    *,
    size: int,
    logicals: list[tuple[int, int]] = (),
) -> None:  # type: ignore[assignment]
    """``primaries`` = [(type, start, sectors)] in slots 1..; ``logicals`` = [(start, sectors)]
    inside the (single) extended partition, each preceded by its EBR 2048 sectors earlier
    (the first EBR at the extended partition's start)."""
    make_file(path, size)
    sector0 = bytearray(SECTOR)
    for i, (ptype, start, sectors) in enumerate(primaries):
        sector0[446 + 16 * i : 462 + 16 * i] = entry(ptype, start, sectors)
    sector0[510:512] = b"\x55\xaa"
    ext = next((s for t, s, _n in primaries if t in (0x05, 0x0F)), None)
    with open(path, "r+b") as f:
        f.write(sector0)
        if ext is None:
            return
        ebrs = [ext] + [start - 2048 for start, _ in logicals[1:]]
        for i, (start, sectors) in enumerate(logicals):
            ebr = bytearray(SECTOR)
            ebr[446:462] = entry(0x83, start - ebrs[i], sectors)
            if i + 1 < len(logicals):
                nxt = ebrs[i + 1]
                n_start, n_sectors = logicals[i + 1]
                ebr[462:478] = entry(0x05, nxt - ext, n_start + n_sectors - nxt)
            ebr[510:512] = b"\x55\xaa"
            f.seek(ebrs[i] * SECTOR)
            f.write(ebr)


def read_mbr_chain(path: pathlib.Path) -> tuple[list[tuple[int, ...]], list[tuple[int, int]]]:
    """(primaries [(slot, type, start, sectors)], logicals [(abs start, sectors)])."""
    with open(path, "rb") as f:
        s0 = f.read(SECTOR)
        prim = []
        ext = None
        for i in range(4):
            _b, _c, t, _c2, start, n = struct.unpack_from("<B3sB3sII", s0, 446 + 16 * i)
            if t:
                prim.append((i + 1, t, start, n))
                if t in (0x05, 0x0F, 0x85):
                    ext = start
        logicals = []
        ebr = ext
        while ebr is not None:
            f.seek(ebr * SECTOR)
            sec = f.read(SECTOR)
            assert sec[510:512] == b"\x55\xaa"
            _b, _c, t, _c2, rel, n = struct.unpack_from("<B3sB3sII", sec, 446)
            if t:
                logicals.append((ebr + rel, n))
            _b, _c, t2, _c2, nrel, _n2 = struct.unpack_from("<B3sB3sII", sec, 462)
            ebr = ext + nrel if t2 else None  # type: ignore[operator]
    return prim, logicals
