"""Unit tests of the pure-Python FAT writer and reader (no external tools)."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import subprocess
import sys
import time
import tracemalloc

import pytest

from ironic_configdrive.image import errors, formats, vfat

VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
            "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14", "2025-04-04",
            "latest")  # fmt: skip


def config_drive_files() -> dict[str, bytes]:
    """A typical Nova-shaped config drive: 17 directories, 63 small files."""
    files: dict[str, bytes] = {}
    for version in VERSIONS:
        base = f"openstack/{version}/"
        files[base + "meta_data.json"] = b'{"uuid": "c3a1e0e4", "name": "node-1"}' * 20
        files[base + "network_data.json"] = b'{"links": [], "networks": []}' * 30
        files[base + "vendor_data.json"] = b"{}"
        files[base + "vendor_data2.json"] = b'{"static": {}}'
        files[base + "user_data"] = b"#cloud-config\npackages: [vim]\n" * 10
    for n in range(4):
        files[f"openstack/content/{n:04d}"] = bytes(range(256)) * (n + 1)
    for version in ("2009-04-04", "latest"):
        files[f"ec2/{version}/meta-data.json"] = b'{"instance-id": "i-1"}'
        files[f"ec2/{version}/user-data"] = b"#cloud-config\n"
    return files


class Boot:
    """The boot sector fields, parsed here independently of the module under test."""

    def __init__(self, image: bytes) -> None:
        (self.sector_size, self.spc, self.reserved, self.fats, self.root_entries, total16,
         self.media, self.fat_sectors) = struct.unpack_from("<HBHBHHBH", image, 11)  # fmt: skip
        self.total = total16 or struct.unpack_from("<I", image, 32)[0]
        self.root_offset = (self.reserved + self.fats * self.fat_sectors) * self.sector_size
        root_sectors = self.root_entries * 32 // self.sector_size
        self.data_start = self.root_offset // self.sector_size + root_sectors
        self.clusters = (self.total - self.data_start) // self.spc
        self.fs_type = image[54:62]
        self.serial = struct.unpack_from("<I", image, 39)[0]
        self.label = image[43:54]

    def fat_entry(self, image: bytes, cluster: int) -> int:
        fat = self.reserved * self.sector_size
        if self.fs_type == b"FAT16   ":
            return struct.unpack_from("<H", image, fat + 2 * cluster)[0]
        pair = struct.unpack_from("<H", image, fat + cluster + cluster // 2)[0]
        return pair >> 4 if cluster & 1 else pair & 0xFFF


def root_entries(image: bytes) -> list[bytes]:
    boot = Boot(image)
    table = image[boot.root_offset : boot.root_offset + boot.root_entries * 32]
    out = []
    for offset in range(0, len(table), 32):
        if table[offset] == 0:
            break
        out.append(table[offset : offset + 32])
    return out


def short_entry(image: bytes, short: bytes) -> tuple[int, bytes]:
    """Offset in the image and bytes of the root entry with 11-byte name ``short``."""
    boot = Boot(image)
    for n, entry in enumerate(root_entries(image)):
        if entry[:11] == short:
            return boot.root_offset + 32 * n, entry
    raise AssertionError(f"{short!r} not in the root directory")


def patched(image: bytes, offset: int, data: bytes) -> bytes:
    out = bytearray(image)
    out[offset : offset + len(data)] = data
    return bytes(out)


# ---------------------------------------------------------------------------- round trips

SHAPES = {
    "config_drive": config_drive_files(),
    "no_files": {},
    "empty_file": {"empty": b""},
    "one_byte": {"a": b"x"},
    "300_in_one_dir": {f"dir/file-number-{n:03d}.json": b"%d" % n for n in range(300)},
    "300_in_root": {f"root-file-{n:03d}.txt": b"r" for n in range(300)},
    "8_deep": {"/".join(f"level{d}" for d in range(8)) + "/leaf.json": b"{}", "top": b"t"},
    "long_names": {"x" * 255: b"long", ("y" * 13): b"13", ("z" * 26) + "/" + "w" * 12: b"w"},
    "non_ascii": {"données/métadonnées.json": b"{}", "日本語.txt": "é".encode(), "Ω": b""},
    "mixed_case": {"Openstack/Latest/Meta_Data.JSON": b"{}", "README.TXT": b"r", "readme2": b""},
    "case_across_dirs": {"a/readme": b"1", "b/README": b"2"},
    "upper_83": {"META.JSO": b"1", "A": b"2", "DIR/FILE.TXT": b"3"},
    "dots_and_spaces": {".hidden": b"h", "a b c.tar.gz": b"t", "x.y.z": b"", "~1": b"t"},
    "similar_names": {f"meta_data_{n}.json": b"%d" % n for n in range(40)},
    "same_content": {"a": b"same" * 300, "b": b"same" * 300, "c/d": b"same" * 300},
    "cluster_exact": {"512": b"a" * 512, "4096": b"b" * 4096, "32768": b"c" * 32768},
    "two_mib": {"big": os.urandom(2 * 1024 * 1024 + 1)},
    "1000_deep": {"/".join(["d"] * 1000) + "/f": b"deep"},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_round_trip(shape: str) -> None:
    files = SHAPES[shape]
    image = vfat.write_fat(files)
    assert vfat.read_fat(image) == files
    assert vfat.read_fat_label(image) == "CONFIG-2"
    assert formats.detect_format(image) == formats.VFAT
    assert formats.read_label(image) == "CONFIG-2"


@pytest.mark.parametrize("sector_size", vfat.SECTOR_SIZES)
def test_sector_sizes(sector_size: int) -> None:
    files = config_drive_files()
    image = vfat.write_fat(files, sector_size=sector_size)
    boot = Boot(image)
    assert boot.sector_size == sector_size
    assert len(image) == boot.total * sector_size
    assert len(image) % sector_size == 0
    assert boot.root_entries * 32 % sector_size == 0  # Linux refuses a partial root sector
    assert image[510:512] == b"\x55\xaa"
    assert vfat.read_fat(image) == files


def test_boot_sector_fields() -> None:
    image = vfat.write_fat(config_drive_files())
    boot = Boot(image)
    assert image[:3] == b"\xeb\x3c\x90"
    assert (boot.fats, boot.media, boot.reserved) == (2, 0xF8, 1)
    assert image[38] == 0x29  # extended boot signature: serial, label and type follow
    assert boot.label == b"CONFIG-2   "
    assert boot.fs_type == b"FAT12   "
    fat_bytes = boot.fat_sectors * boot.sector_size
    first = boot.reserved * boot.sector_size
    assert image[first : first + fat_bytes] == image[first + fat_bytes : first + 2 * fat_bytes]
    assert boot.fat_entry(image, 0) == 0xFF8


# ------------------------------------------------------------------------- determinism


def test_independent_of_dict_order() -> None:
    files = config_drive_files()
    reordered = dict(reversed(list(files.items())))
    assert list(reordered) != list(files)
    assert vfat.write_fat(files) == vfat.write_fat(reordered)


def test_same_bytes_under_any_timezone() -> None:
    code = (
        "import hashlib, sys, time\n"
        "from ironic_configdrive.image import vfat\n"
        "from tests.unit.image.test_vfat import config_drive_files\n"
        "time.tzset()\n"
        "sys.stdout.write(hashlib.sha256(vfat.write_fat(config_drive_files())).hexdigest())\n"
    )
    digests = set()
    for tz in ("UTC", "Pacific/Kiritimati", "America/St_Johns", "Etc/GMT+12"):
        env = dict(os.environ, TZ=tz, PYTHONHASHSEED=str(len(tz)))
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
        )
        digests.add(result.stdout)
    digests.add(hashlib.sha256(vfat.write_fat(config_drive_files())).hexdigest())
    assert len(digests) == 1


def test_timestamps_are_utc_fields_of_the_given_time() -> None:
    stamp = 1700000003  # 2023-11-14 22:13:23 UTC: odd seconds exercise the 10 ms field
    image = vfat.write_fat({"FILE": b"x"}, timestamp=stamp)
    _, entry = short_entry(image, b"FILE       ")
    tenths, crt_time, crt_date, acc_date, _, wrt_time, wrt_date = struct.unpack_from(
        "<BHHHHHH", entry, 13
    )
    tm = time.gmtime(stamp)
    date = ((tm.tm_year - 1980) << 9) | (tm.tm_mon << 5) | tm.tm_mday
    clock = (tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec // 2)
    assert (crt_date, acc_date, wrt_date) == (date, date, date)
    assert (crt_time, wrt_time) == (clock, clock)
    assert tenths == 100
    assert vfat.write_fat({"FILE": b"x"}, timestamp=stamp + 2) != image


def test_serial_derived_from_content() -> None:
    first = Boot(vfat.write_fat({"a": b"1"})).serial
    assert first == Boot(vfat.write_fat({"a": b"1"})).serial
    assert first != Boot(vfat.write_fat({"a": b"2"})).serial
    assert first != Boot(vfat.write_fat({"b": b"1"})).serial


# ------------------------------------------------------------------------- names, label


def test_long_names_get_lfn_and_numbered_short_names() -> None:
    image = vfat.write_fat({"meta_data.json": b"1", "meta_data2.json": b"2", "FILE.TXT": b""})
    entries = root_entries(image)
    shorts = [e[:11] for e in entries if e[11] != 0x0F]
    assert shorts == [b"CONFIG-2   ", b"FILE    TXT", b"META_D~1JSO", b"META_D~2JSO"]
    # "FILE.TXT" is a valid upper-case 8.3 name: no LFN entry precedes it.
    assert entries[1][11] == 0x20
    # The LFN entries carry the checksum of the short name they precede.
    lfn = entries[2]
    assert lfn[11] == 0x0F and lfn[0] == 0x42  # last of two pieces ("meta_data.json" is 14)
    total = 0
    for byte in b"META_D~1JSO":
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    assert lfn[13] == total
    units = (lfn[1:11] + lfn[14:26] + lfn[28:32]).decode("utf-16-le")
    assert units == "n" + "\x00" + "\uffff" * 11


def test_lower_case_83_name_keeps_its_short_form() -> None:
    image = vfat.write_fat({"readme.txt": b"r"})
    shorts = [e[:11] for e in root_entries(image) if e[11] != 0x0F]
    assert b"README  TXT" in shorts
    assert vfat.read_fat(image) == {"readme.txt": b"r"}


def test_short_names_unique_for_many_similar_names() -> None:
    files = {f"longer-name-{n:04d}.data": b"" for n in range(1200)}
    image = vfat.write_fat(files)
    assert vfat.read_fat(image) == files
    shorts = [e[:11] for e in root_entries(image) if e[11] != 0x0F]
    assert len(shorts) == len(set(shorts)) == 1201
    assert b"LONGER~1DAT" in shorts and b"LONG~100DAT" in shorts


def test_equal_contents_are_separate_copies() -> None:
    image = vfat.write_fat({"A": b"z" * 600, "B": b"z" * 600})
    clusters = [struct.unpack_from("<H", short_entry(image, n)[1], 26)[0]
                for n in (b"A          ", b"B          ")]  # fmt: skip
    assert clusters[0] != clusters[1]


@pytest.mark.parametrize(
    ("label", "expected"), [("CONFIG-2", "CONFIG-2"), ("config-2", "CONFIG-2"), ("", None)]
)
def test_label(label: str, expected: str | None) -> None:
    image = vfat.write_fat({"a": b""}, label=label)
    assert vfat.read_fat_label(image) == expected
    # Without a label the boot sector holds "NO NAME" (as mkfs.fat writes), which blkid,
    # read_fat_label and formats.read_label all treat as no label.
    assert image[43:54] == (b"NO NAME    " if expected is None else b"CONFIG-2   ")
    assert formats.read_label(image) == expected
    labels = [e for e in root_entries(image) if e[11] == 0x08]
    assert len(labels) == (1 if expected else 0)


def test_label_falls_back_to_boot_sector() -> None:
    image = vfat.write_fat({"a": b""})
    offset, _ = short_entry(image, b"CONFIG-2   ")
    assert vfat.read_fat_label(patched(image, offset, b"\xe5")) == "CONFIG-2"


# ------------------------------------------------------------------------ size, layout


def fat_type(image: bytes) -> int:
    boot = Boot(image)
    # Microsoft's rule (and Linux's, dosfstools', mtools'): the cluster count decides.
    bits = 12 if boot.clusters < 4085 else 16 if boot.clusters < 65525 else 32
    assert boot.fs_type == b"FAT%d   " % bits
    return bits


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        1024 * 1024,
        2 * 1024 * 1024 - 7,
        3 * 1024 * 1024,
        8 * 1024 * 1024,
        20 * 1000 * 1000,
        60 * 1024 * 1024,
    ],  # fmt: skip
)
def test_single_file_sizes(size: int) -> None:
    files = {"f": b"\xa5" * size}
    image = vfat.write_fat(files)
    fat_type(image)
    assert vfat.read_fat(image) == files
    # Overhead: boot sector, two FATs, the root sector and at most one partial cluster.
    assert len(image) <= size + size // 256 + 32 * 1024 + 2048


def test_many_small_files_use_small_clusters() -> None:
    image = vfat.write_fat({f"d/{n}": b"x" * 100 for n in range(5000)})
    assert fat_type(image) == 16
    assert Boot(image).spc == 1
    assert len(image) < 5000 * 512 * 1.1


def test_typical_config_drive_size() -> None:
    files = config_drive_files()
    image = vfat.write_fat(files)
    rounded = sum(-(-len(d) // 512) * 512 for d in files.values())
    directories = 16
    # Data rounded to 512-byte clusters, a cluster per directory, 4 KiB of FAT metadata.
    assert len(image) <= rounded + directories * 512 + 4096


def shrink_cases() -> list[dict[str, bytes]]:
    rng = random.Random(42)
    cases = [config_drive_files(), {"a": b"x" * 4096}, {"big": b"b" * (2 * 1024 * 1024 + 1)}]
    for _ in range(6):
        cases.append(
            {
                f"d{rng.randrange(4)}/f{n}": b"y" * rng.choice([0, 1, 511, 512, 513, 4097, 70000])
                for n in range(rng.randrange(1, 80))
            }  # fmt: skip
        )
    return cases


@pytest.mark.parametrize("case", range(9))
def test_removing_a_byte_never_grows_the_image(case: int) -> None:
    files = shrink_cases()[case]
    size = len(vfat.write_fat(files))
    for path in sorted(files)[:25]:
        if files[path]:
            smaller = dict(files, **{path: files[path][:-1]})
            assert len(vfat.write_fat(smaller)) <= size, path


def test_over_the_cap_raises_before_allocating() -> None:
    files = {"user_data": bytes(formats.MAX_IMAGE_SIZE - 1000)}
    tracemalloc.start()
    try:
        with pytest.raises(errors.SizeLimitExceeded) as exc:
            vfat.write_fat(files)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "64 MiB" in str(exc.value) and "iso9660" in str(exc.value)
    assert peak < formats.MAX_IMAGE_SIZE // 8


def test_content_over_the_cap_raises() -> None:
    with pytest.raises(errors.SizeLimitExceeded, match="before any FAT overhead"):
        half = formats.MAX_IMAGE_SIZE // 2
        vfat.write_fat({"a": bytes(half), "b": bytes(half + 1)})


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"/etc/passwd": b""}, "absolute"),
        ({"a//b": b""}, "empty"),
        ({"a/./b": b""}, "'.'"),
        ({"../x": b""}, "'..'"),
        ({"": b""}, "empty"),
        ({"a/": b""}, "empty"),
        ({"a:b": b""}, "cannot store"),
        ({"a\\b": b""}, "cannot store"),
        ({"a\x01": b""}, "cannot store"),
        ({"name.": b""}, "ends with a dot"),
        ({"dir /x": b""}, "ends with a dot or space"),
        ({"x" * 256: b""}, "256 characters"),
        ({"smile-\U0001f600": b""}, "Multilingual Plane"),
        ({"Readme": b"1", "README": b"2"}, "differ only in case"),
        ({"a/X": b"1", "A/y": b"2"}, "differ only in case"),
        ({"a": b"", "a/b": b""}, "both a file and a directory"),
        ({"a/b": b"", "a": b""}, "both a file and a directory"),
        ({"a": "text"}, "must be bytes"),
        ({"a": 5}, "must be bytes"),
        ({"a": memoryview(b"x")}, "must be bytes"),
        ({1: b""}, "not a string"),
        ({"a": b"", 2: b""}, "not a string"),
    ],
)
def test_invalid_paths(files: dict, match: str) -> None:
    with pytest.raises(errors.InvalidInputError, match=match):
        vfat.write_fat(files)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sector_size": 256},
        {"sector_size": 8192},
        {"label": "TWELVE-CHARS"},
        {"label": "BAD:LABEL"},
        {"label": " LEADING"},
        {"timestamp": 0},  # 1970 is before the FAT epoch
        {"timestamp": 2**32 * 2},
        {"timestamp": 1.5},
    ],
)
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(errors.InvalidInputError):
        vfat.write_fat({"a": b""}, **kwargs)


def test_not_a_mapping() -> None:
    with pytest.raises(errors.InvalidInputError, match="mapping"):
        vfat.write_fat([("a", b"")])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ reader


def test_reader_honours_nt_lower_case_flags() -> None:
    image = vfat.write_fat({"README.TXT": b"r"})
    offset, _ = short_entry(image, b"README  TXT")
    assert vfat.read_fat(patched(image, offset + 12, b"\x18")) == {"readme.txt": b"r"}
    assert vfat.read_fat(patched(image, offset + 12, b"\x08")) == {"readme.TXT": b"r"}


def test_reader_ignores_lfn_with_wrong_checksum() -> None:
    image = vfat.write_fat({"meta_data.json": b"m"})
    offset, _ = short_entry(image, b"META_D~1JSO")
    assert vfat.read_fat(patched(image, offset - 32 + 13, b"\x00")) == {"META_D~1.JSO": b"m"}


def test_reader_skips_deleted_entries() -> None:
    image = vfat.write_fat({"A": b"1", "B": b"2"})
    offset, _ = short_entry(image, b"A          ")
    assert vfat.read_fat(patched(image, offset, b"\xe5")) == {"B": b"2"}


def test_reader_decodes_e5_escape() -> None:
    image = vfat.write_fat({"XA": b"1"})
    offset, _ = short_entry(image, b"XA         ")
    assert vfat.read_fat(patched(image, offset, b"\x05")) == {"\u03c3A": b"1"}  # cp437 0xE5


def corruptions() -> dict[str, bytes]:
    files = {"A": b"a" * 2000, "DIR/SUB/B": b"b" * 10, "meta_data.json": b"{}"}
    image = vfat.write_fat(files)
    boot = Boot(image)
    fat = boot.reserved * boot.sector_size
    data = boot.data_start * boot.sector_size
    a_offset, a_entry = short_entry(image, b"A          ")
    a_cluster = struct.unpack_from("<H", a_entry, 26)[0]
    dir_offset, dir_entry = short_entry(image, b"DIR        ")
    dir_cluster = struct.unpack_from("<H", dir_entry, 26)[0]
    sub_in_dir = data + (dir_cluster - 2) * boot.spc * boot.sector_size + 64
    lfn_offset = short_entry(image, b"META_D~1JSO")[0] - 64

    def set_fat12(img: bytes, cluster: int, value: int) -> bytes:
        out = bytearray(img)
        at = fat + cluster + cluster // 2
        pair = out[at] | out[at + 1] << 8
        pair = (pair & 0x000F) | (value << 4) if cluster & 1 else (pair & 0xF000) | value
        out[at : at + 2] = pair.to_bytes(2, "little")
        return bytes(out)

    return {
        "empty": b"",
        "short": image[:300],
        "zeros": bytes(4096),
        "no_signature": patched(image, 510, b"\0\0"),
        "truncated": image[: len(image) // 2],
        "bad_sector_size": patched(image, 11, struct.pack("<H", 300)),
        "bad_spc": patched(image, 13, b"\x03"),
        "no_fats": patched(image, 16, b"\x00"),
        "bad_media": patched(image, 21, b"\x12"),
        "zero_total": patched(image, 19, b"\0\0"),
        "huge_fat": patched(image, 22, struct.pack("<H", 0x7000)),
        "chain_loop": set_fat12(image, a_cluster + 1, a_cluster),
        "chain_to_free": set_fat12(image, a_cluster, 0),
        "chain_out_of_range": set_fat12(image, a_cluster, 0xFF0),
        "chain_bad_cluster": set_fat12(image, a_cluster, 0xFF7),
        "chain_too_short": set_fat12(image, a_cluster + 1, 0xFFF),
        "file_start_zero": patched(image, a_offset + 26, b"\0\0"),
        "dir_start_out_of_range": patched(image, dir_offset + 26, b"\xff\x7f"),
        "dir_loop": patched(image, sub_in_dir + 26, struct.pack("<H", dir_cluster)),
        "slash_in_long_name": patched(image, lfn_offset + 1, "/".encode("utf-16-le")),
        "duplicate_name": patched(image, a_offset + 32, b"A          "),
        "data_area_past_end": patched(image, 17, struct.pack("<H", 0xFFF0)),
    }


def test_cross_linked_files_cannot_expand_past_the_data_area() -> None:
    image = vfat.write_fat({"A": b"a" * 3000, "B": b"b"})
    _, a_entry = short_entry(image, b"A          ")
    b_offset, _ = short_entry(image, b"B          ")
    # B now claims A's clusters and size: a valid chain, but more bytes than the disk holds.
    image = patched(image, b_offset + 26, a_entry[26:32])
    with pytest.raises(errors.InvalidMediaError, match="cross-linked"):
        vfat.read_fat(image)


@pytest.mark.parametrize("case", sorted(corruptions()))
def test_corrupt_images(case: str) -> None:
    image = corruptions()[case]
    with pytest.raises(errors.InvalidMediaError, match="FAT"):
        vfat.read_fat(image)


@pytest.mark.parametrize("case", ["empty", "zeros", "no_signature", "truncated", "bad_spc"])
def test_corrupt_images_label(case: str) -> None:
    with pytest.raises(errors.InvalidMediaError):
        vfat.read_fat_label(corruptions()[case])


def test_not_bytes() -> None:
    with pytest.raises(errors.InvalidMediaError, match="bytes"):
        vfat.read_fat("not an image")  # type: ignore[arg-type]


def test_random_damage_never_leaks_other_errors() -> None:
    rng = random.Random(7)
    image = vfat.write_fat(config_drive_files())
    metadata = Boot(image).data_start * 512 + 4096  # boot sector, FATs, root and some dirs
    for _ in range(400):
        damaged = bytearray(image)
        for _ in range(rng.randrange(1, 6)):
            damaged[rng.randrange(metadata)] = rng.randrange(256)
        try:
            vfat.read_fat(bytes(damaged))
            vfat.read_fat_label(bytes(damaged))
        except errors.InvalidMediaError:
            pass
