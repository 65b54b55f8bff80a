"""ISO9660 writer checked against pycdlib (an independent reader) and against the spec."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
import subprocess
import sys
import time

import pycdlib
import pytest

from ironic_configdrive.image import errors, formats, iso9660

SECTOR = 2048

VERSIONS = (
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
    "2025-04-04",
    "latest",
)


def typical_drive(user_data: bytes = b"#cloud-config\npackages: [htop]\n" * 20) -> dict:
    """A config drive like the builder writes: every version, ec2 and content files.

    15 directories, 58 files, most of them repeated across versions (shared extents).
    """
    meta = json.dumps(
        {
            "uuid": "83679162-1378-4288-a2d4-70e13ec132aa",
            "name": "node-1",
            "hostname": "node-1",
            "public_keys": {"default": "ssh-ed25519 " + "A" * 68},
            "availability_zone": "nova",
            "meta": {"role": "webservers"},
            "launch_index": 0,
            "project_id": "f" * 32,
            "devices": [],
        }
    ).encode()
    network = json.dumps(
        {
            "links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}],
            "networks": [{"id": "n0", "type": "ipv4_dhcp", "link": "eth0"}],
            "services": [],
        }
    ).encode()
    files = {}
    for version in VERSIONS:
        files[f"openstack/{version}/meta_data.json"] = meta
        files[f"openstack/{version}/user_data"] = user_data
        files[f"openstack/{version}/network_data.json"] = network
        files[f"openstack/{version}/vendor_data.json"] = b"{}"
        files[f"openstack/{version}/vendor_data2.json"] = b"{}"
    for i in range(4):
        files[f"openstack/content/{i:04d}"] = b"content %d\n" % i
    for version in ("2009-04-04", "latest"):
        files[f"ec2/{version}/meta-data.json"] = b'{"instance-id": "i-00000001"}'
        files[f"ec2/{version}/user-data"] = user_data
    return files


def open_iso(image: bytes) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    return iso


def pycdlib_read(iso: pycdlib.PyCdlib, **path: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **path)
    return out.getvalue()


def children(iso: pycdlib.PyCdlib, **path: str) -> list:
    return [c for c in iso.list_children(**path) if not (c.is_dot() or c.is_dotdot())]


def directory_extents(image: bytes, pvd_sector: int = 16) -> list[tuple[int, int]]:
    """(extent, size) of every directory, found through the L path table and the records."""
    vd = pvd_sector * SECTOR
    pt_size = struct.unpack_from("<I", image, vd + 132)[0]
    pt_loc = struct.unpack_from("<I", image, vd + 140)[0]
    table = image[pt_loc * SECTOR : pt_loc * SECTOR + pt_size]
    out = []
    pos = 0
    while pos < len(table):
        len_di = table[pos]
        extent = struct.unpack_from("<I", table, pos + 2)[0]
        # the "." record of a directory holds its own size
        size = struct.unpack_from("<I", image, extent * SECTOR + 10)[0]
        out.append((extent, size))
        pos += 8 + len_di + len_di % 2
    return out


def iter_records(image: bytes, extent: int, size: int):
    """Yield (offset, record bytes); fail if a record crosses a sector boundary."""
    start = extent * SECTOR
    pos = start
    while pos < start + size:
        length = image[pos]
        if length == 0:  # rest of the sector is padding
            pos = (pos // SECTOR + 1) * SECTOR
            continue
        assert length >= 34 and length % 2 == 0, f"bad record length {length} at {pos}"
        assert pos % SECTOR + length <= SECTOR, f"record at {pos} crosses a sector boundary"
        yield pos, image[pos : pos + length]
        pos += length


@pytest.fixture(scope="module")
def drive() -> dict:
    return typical_drive()


@pytest.fixture(scope="module")
def image(drive: dict) -> bytes:
    return iso9660.write_iso(drive)


# --------------------------------------------------------------------------- round trip


def test_round_trip_typical_drive(drive: dict, image: bytes) -> None:
    assert iso9660.read_iso(image) == drive
    assert len(image) % SECTOR == 0


def test_empty_tree_is_a_valid_volume() -> None:
    image = iso9660.write_iso({})
    assert iso9660.read_iso(image) == {}
    iso = open_iso(image)
    assert children(iso, rr_path="/") == []


def test_pycdlib_sees_three_consistent_views(drive: dict, image: bytes) -> None:
    iso = open_iso(image)
    try:
        assert iso.has_rock_ridge()
        assert iso.rock_ridge == "1.09"
        assert iso.has_joliet()
        for path, data in drive.items():
            rr = iso.get_record(rr_path="/" + path)
            jol = iso.get_record(joliet_path="/" + path)
            assert rr.extent_location() == jol.extent_location()
            assert rr.get_data_length() == jol.get_data_length() == len(data)
            assert pycdlib_read(iso, rr_path="/" + path) == data
            assert pycdlib_read(iso, joliet_path="/" + path) == data
            # the ISO9660 path is the one pycdlib reports for the Rock Ridge record
            iso_path = iso.full_path_from_dirrecord(rr)
            assert pycdlib_read(iso, iso_path=iso_path) == data
        rr_names = sorted(
            c.rock_ridge.name().decode() for c in children(iso, rr_path="/openstack")
        )
        jol_names = sorted(
            c.file_identifier().decode("utf-16-be")
            for c in children(iso, joliet_path="/openstack")
        )
        iso_names = sorted(
            c.file_identifier().decode() for c in children(iso, iso_path="/OPENSTACK")
        )
        assert rr_names == jol_names == sorted(("content", *VERSIONS))
        assert iso_names == sorted(n.upper().replace("-", "_") for n in rr_names)
        latest = sorted(
            c.file_identifier().decode() for c in children(iso, iso_path="/OPENSTACK/LATEST")
        )
        assert latest == [
            "META_DATA.JSON;1",
            "NETWORK_DATA.JSON;1",
            "USER_DATA.;1",
            "VENDOR_DATA.JSON;1",
            "VENDOR_DATA2.JSON;1",
        ]
    finally:
        iso.close()


def test_rock_ridge_attributes(image: bytes) -> None:
    iso = open_iso(image)
    try:
        root = next(c for c in iso.list_children(rr_path="/") if c.is_dot())
        assert root.rock_ridge.dr_entries.sp_record is not None
        er = root.rock_ridge.ce_entries.er_record
        assert er is not None and er.ext_id == b"RRIP_1991A"
        f = iso.get_record(rr_path="/openstack/latest/meta_data.json")
        px = f.rock_ridge.dr_entries.px_record
        assert px.posix_file_mode == 0o100444
        assert (px.posix_file_links, px.posix_user_id, px.posix_group_id) == (1, 0, 0)
        d = iso.get_record(rr_path="/openstack")
        dpx = d.rock_ridge.dr_entries.px_record
        assert dpx.posix_file_mode == 0o40555
        assert dpx.posix_file_links == 2 + len(VERSIONS) + 1  # versions + content
        tf = f.rock_ridge.dr_entries.tf_record
        assert tf.modification_time is not None
        for stamp in (tf.modification_time, tf.access_time, tf.attribute_change_time):
            assert stamp.years_since_1900 == 112  # 2012-08-10, the default timestamp
            assert (stamp.month, stamp.day_of_month, stamp.gmtoffset) == (8, 10, 0)
    finally:
        iso.close()


def test_primary_and_joliet_descriptors(image: bytes) -> None:
    pvd = image[16 * SECTOR : 17 * SECTOR]
    svd = image[17 * SECTOR : 18 * SECTOR]
    term = image[18 * SECTOR : 19 * SECTOR]
    assert image[: 16 * SECTOR] == bytes(16 * SECTOR)
    assert pvd[:7] == b"\x01CD001\x01"
    assert pvd[8:40].rstrip() == b"LINUX"
    assert pvd[40:72].rstrip() == b"config-2"
    assert pvd[318:446].rstrip() == b"ironic-configdrive"
    assert pvd[813:830] == b"2012081000000000\x00"  # creation, UTC, offset 0
    assert pvd[830:847] == b"2012081000000000\x00"
    assert struct.unpack_from("<I", pvd, 80)[0] * SECTOR == len(image)
    assert struct.unpack_from(">I", pvd, 84)[0] * SECTOR == len(image)
    assert svd[:7] == b"\x02CD001\x01"
    assert svd[88:91] == b"%/E"
    assert svd[40:56].decode("utf-16-be") == "config-2"
    assert term[:7] == b"\xffCD001\x01"
    assert formats.read_label(image[: formats.SNIFF_SIZE]) == "config-2"
    assert formats.detect_format(image[: formats.SNIFF_SIZE]) == formats.ISO9660


def test_label_publisher_and_timestamp_options() -> None:
    ts = 1700000000  # 2023-11-14T22:13:20Z
    image = iso9660.write_iso(
        {"a": b"x"}, label="CONFIG-2", timestamp=ts, publisher="someone else"
    )
    pvd = image[16 * SECTOR : 17 * SECTOR]
    assert pvd[40:72].rstrip() == b"CONFIG-2"
    assert pvd[318:446].rstrip() == b"someone else"
    assert pvd[813:830] == b"2023111422132000\x00"
    iso = open_iso(image)
    try:
        rec = iso.get_record(rr_path="/a")
        assert rec.date.years_since_1900 == 123
        assert (rec.date.hour, rec.date.minute, rec.date.second) == (22, 13, 20)
    finally:
        iso.close()


def test_records_never_cross_sectors_and_directories_span_sectors() -> None:
    files = {f"many/file-{i:03d}.json": b"%d" % i for i in range(300)}
    image = iso9660.write_iso(files)
    extents = directory_extents(image)
    assert len(extents) == 2
    sizes = dict(extents)
    big = max(sizes.values())
    assert big > 10 * SECTOR  # the 300-entry directory spans many sectors
    count = sum(1 for ext, size in extents for _ in iter_records(image, ext, size))
    assert count == 300 + 1 + 2 * 2  # plus "many" and "." and ".." in both directories
    assert iso9660.read_iso(image) == files
    # and the Joliet hierarchy
    jextents = directory_extents(image, pvd_sector=17)
    assert sum(1 for e, s in jextents for _ in iter_records(image, e, s)) == 305


def test_iso9660_names_are_unique_d_characters() -> None:
    names = [
        "meta_data.json",
        "META_DATA.JSON",
        "meta-data.json",
        "a.b.c.d.json",
        "a_b_c_d.json",
        "naïve.json",
        "nave.json",
        ".hidden",
        "x" * 200,
        "x" * 199 + "y",
        "y" * 200 + ".json",
        "y" * 200 + ".jsox",
    ]
    files = {f"d/{n}": n.encode() for n in names}
    image = iso9660.write_iso(files)
    iso = open_iso(image)
    try:
        idents = [c.file_identifier().decode("ascii") for c in children(iso, iso_path="/D")]
    finally:
        iso.close()
    assert len(idents) == len(set(idents)) == len(names)
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
    for ident in idents:
        assert ident.endswith(";1")
        stem, dot, ext = ident[:-2].partition(".")
        assert dot == "."
        assert set(stem + ext) <= allowed
        assert len(stem) + len(ext) <= 30
    assert iso9660.read_iso(image) == files


def test_joliet_names_are_limited_and_unique() -> None:
    names = ["l" * 200 + ".txt", "l" * 199 + "m.txt", "a*b?.json", "emoji-😀.txt", "ü.json"]
    files = {n: n.encode() for n in names}
    image = iso9660.write_iso(files)
    iso = open_iso(image)
    try:
        jol = [c.file_identifier().decode("utf-16-be") for c in children(iso, joliet_path="/")]
    finally:
        iso.close()
    assert len(set(jol)) == len(names)
    assert all(len(n) <= 64 for n in jol)
    assert "a_b_.json" in jol and "ü.json" in jol and "emoji-_.txt" in jol
    assert any(n.startswith("lll") and n.endswith(".txt") for n in jol)


@pytest.mark.parametrize(
    "name",
    ["n" * 255, "é" * 127 + "a", "m" * 200 + ".json", "v" * 120],
    ids=["255-ascii", "255-bytes-utf8", "200-chars", "120-chars"],
)
def test_long_names_use_continuation_areas(name: str) -> None:
    files = {f"long/{name}": b"long", "long/short": b"s"}
    image = iso9660.write_iso(files)
    assert iso9660.read_iso(image) == files
    iso = open_iso(image)
    try:
        rec = iso.get_record(rr_path=f"/long/{name}")
        assert rec.rock_ridge.name() == name.encode()
    finally:
        iso.close()
    for ext, size in directory_extents(image):
        list(iter_records(image, ext, size))  # boundary checks


def test_many_long_names_fill_several_continuation_sectors() -> None:
    files = {f"d/{i:03d}" + "z" * 230: b"%d" % i for i in range(40)}
    image = iso9660.write_iso(files)
    assert iso9660.read_iso(image) == files


def test_deep_non_ascii_and_special_names() -> None:
    files = {
        "/".join(f"level{i}" for i in range(8)) + "/deep.txt": b"deep",
        "ünïcødé/naïve-файл.json": "ü".encode(),
        "dots/vendor_data2.json": b"v2",
        "dots/meta_data.json": b"m",
        "dots/a.b.c": b"abc",
        "spaces/with space.txt": b"sp",
    }
    assert iso9660.read_iso(iso9660.write_iso(files)) == files


def test_empty_files_use_extent_zero() -> None:
    files = {"e/one": b"", "e/two": b"", "e/full": b"x"}
    image = iso9660.write_iso(files)
    iso = open_iso(image)
    try:
        for name in ("one", "two"):
            for kind, path in (("rr_path", f"/e/{name}"), ("joliet_path", f"/e/{name}")):
                rec = iso.get_record(**{kind: path})
                assert (rec.extent_location(), rec.get_data_length()) == (0, 0)
    finally:
        iso.close()
    assert iso9660.read_iso(image) == files


def test_large_file() -> None:
    big = os.urandom(20 * 1024 * 1024 + 7)
    files = {"big/blob": big, "big/small": b"s"}
    image = iso9660.write_iso(files)
    assert len(image) < len(big) + 64 * SECTOR
    assert iso9660.read_iso(image) == files


def random_tree(rnd: random.Random) -> dict[str, bytes]:
    alphabet = "abcXYZ019_-.~ üé中😀"
    files: dict[str, bytes] = {}
    dirs = [""]
    for _ in range(rnd.randint(1, 60)):
        parent = rnd.choice(dirs)
        name = "".join(rnd.choice(alphabet) for _ in range(rnd.choice((1, 3, 8, 20, 70))))
        name = name.strip(".") or "n"
        path = f"{parent}/{name}" if parent else name
        if any(p == path or p.startswith(path + "/") for p in files) or path in dirs:
            continue
        if any(path.startswith(f + "/") for f in files):
            continue
        if rnd.random() < 0.25 and path.count("/") < 6:
            dirs.append(path)
            path = f"{path}/f"
        files[path] = rnd.choice((b"", b"same", os.urandom(rnd.randint(1, 5000))))
    return files


def test_random_trees_round_trip_and_views_agree() -> None:
    rnd = random.Random(20120810)  # fixed seed: the same trees every run
    for _ in range(40):
        files = random_tree(rnd)
        image = iso9660.write_iso(files)
        assert iso9660.read_iso(image) == files
        iso = open_iso(image)
        try:
            for path, data in files.items():
                rr = iso.get_record(rr_path="/" + path)
                iso_path = iso.full_path_from_dirrecord(rr)
                assert pycdlib_read(iso, iso_path=iso_path) == data
        finally:
            iso.close()
        for ext, size in directory_extents(image) + directory_extents(image, pvd_sector=17):
            list(iter_records(image, ext, size))


# --------------------------------------------------------------------------- dedup


def test_identical_content_is_stored_once() -> None:
    blob = os.urandom(1024 * 1024)
    files = {f"copy{i}/data": blob for i in range(10)}
    image = iso9660.write_iso(files)
    assert len(image) < len(blob) + 64 * SECTOR
    iso = open_iso(image)
    try:
        extents = {iso.get_record(rr_path=f"/copy{i}/data").extent_location() for i in range(10)}
    finally:
        iso.close()
    assert len(extents) == 1
    assert iso9660.read_iso(image) == files


def test_full_drive_with_8mib_user_data_stays_8mib() -> None:
    user_data = os.urandom(8 * 1024 * 1024)
    files = typical_drive(user_data)
    image = iso9660.write_iso(files)
    assert len(image) < len(user_data) + 256 * 1024
    assert iso9660.read_iso(image) == files


def test_different_contents_are_not_merged() -> None:
    files = {"a": b"one", "b": b"two", "c": b"one"}
    image = iso9660.write_iso(files)
    assert iso9660.read_iso(image) == files


# --------------------------------------------------------------------------- determinism


def test_insertion_order_does_not_matter(drive: dict, image: bytes) -> None:
    reordered = dict(reversed(list(drive.items())))
    assert iso9660.write_iso(reordered) == image


def test_wall_clock_does_not_matter(
    drive: dict, image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)
    monkeypatch.setattr(time, "time_ns", lambda: 2_000_000_000 * 10**9)
    monkeypatch.setattr(time, "localtime", lambda *a: time.gmtime(1_000))
    assert iso9660.write_iso(drive) == image


def test_timezone_does_not_matter(image: bytes) -> None:
    code = (
        "import hashlib, sys, time\n"
        "from tests.unit.image.test_iso9660 import typical_drive\n"
        "from ironic_configdrive.image import iso9660\n"
        "digest = hashlib.sha256(iso9660.write_iso(typical_drive())).hexdigest()\n"
        "sys.stdout.write(f'{time.timezone} {digest}')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    offsets, digests = set(), set()
    # POSIX TZ strings work without tzdata installed.
    for tz in ("UTC0", "LINT-14", "NST+3:30NDT,M3.2.0,M11.1.0", "NPT-5:45"):
        env = dict(os.environ, TZ=tz)
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, check=True
        )
        offset, digest = out.stdout.decode().split()
        offsets.add(offset)
        digests.add(digest)
    assert len(offsets) == 4  # the zones really differed
    assert digests == {hashlib.sha256(image).hexdigest()}


def test_options_change_the_image(drive: dict, image: bytes) -> None:
    assert iso9660.write_iso(drive, timestamp=formats.DEFAULT_TIMESTAMP + 1) != image
    assert iso9660.write_iso(drive, label="other") != image


# --------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "path",
    ["", "/abs/file", "a//b", "a/./b", "a/../b", "a/", ".", "..", "a/b\x00c", "x/" + "n" * 256],
)
def test_invalid_paths(path: str) -> None:
    with pytest.raises(errors.InvalidInputError) as exc:
        iso9660.write_iso({path: b"x"})
    assert exc.value.category == "invalid_input"


def test_non_string_path_and_non_bytes_content() -> None:
    with pytest.raises(errors.InvalidInputError, match="not a string"):
        iso9660.write_iso({1: b"x"})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidInputError, match="must be bytes"):
        iso9660.write_iso({"a": "text"})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidInputError, match="mapping"):
        iso9660.write_iso([("a", b"x")])  # type: ignore[arg-type]


def test_bytes_like_content_is_accepted() -> None:
    files = {"a": bytearray(b"ab"), "b": memoryview(b"cd")}
    assert iso9660.read_iso(iso9660.write_iso(files)) == {"a": b"ab", "b": b"cd"}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "files",
    [{"a": b"file", "a/b": b"child"}, {"a/b": b"child", "a": b"file"}],
    ids=["file-then-dir", "dir-then-file"],
)
def test_file_and_directory_conflict(files: dict) -> None:
    with pytest.raises(errors.InvalidInputError, match="'a'"):
        iso9660.write_iso(files)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"label": ""},
        {"label": "x" * 33},
        {"label": "confïg"},
        {"label": "bad\nlabel"},
        {"publisher": "p" * 129},
        {"timestamp": -1},
        {"timestamp": 1.5},
        {"timestamp": True},
        {"timestamp": 6_000_000_000},
    ],
)
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(errors.InvalidInputError):
        iso9660.write_iso({"a": b"x"}, **kwargs)


# --------------------------------------------------------------------------- invalid media


def test_empty_image() -> None:
    with pytest.raises(errors.InvalidMediaError, match="empty"):
        iso9660.read_iso(b"")


def test_not_an_iso() -> None:
    with pytest.raises(errors.InvalidMediaError, match="CD001"):
        iso9660.read_iso(os.urandom(64 * 1024))
    with pytest.raises(errors.InvalidMediaError, match="truncated"):
        iso9660.read_iso(b"\x00" * 100)


def test_truncated_image(image: bytes) -> None:
    with pytest.raises(errors.InvalidMediaError, match="truncated"):
        iso9660.read_iso(image[: len(image) // 2])
    with pytest.raises(errors.InvalidMediaError, match="truncated"):
        iso9660.read_iso(image[: 16 * SECTOR + 100])


def test_non_bytes_image() -> None:
    with pytest.raises(errors.InvalidMediaError, match="expected image bytes"):
        iso9660.read_iso("not bytes")  # type: ignore[arg-type]


def both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _corrupt(image: bytes, offset: int, data: bytes) -> bytes:
    return image[:offset] + data + image[offset + len(data) :]


@pytest.mark.parametrize(
    "where",
    ["root-extent", "path-table-size", "root-dir-zeroed", "pvd-type", "block-size", "descriptor"],
)
def test_corrupt_structures(image: bytes, where: str) -> None:
    pvd = 16 * SECTOR
    root_extent = struct.unpack_from("<I", image, pvd + 156 + 2)[0]
    corrupt = {
        "root-extent": lambda: _corrupt(image, pvd + 156 + 2, both32(10**6)),
        "path-table-size": lambda: _corrupt(image, pvd + 132, both32(10**8)),
        "root-dir-zeroed": lambda: _corrupt(image, root_extent * SECTOR, bytes(SECTOR)),
        "pvd-type": lambda: _corrupt(image, 17 * SECTOR, b"\x05"),
        "block-size": lambda: _corrupt(
            image, pvd + 128, struct.pack("<H", 512) + struct.pack(">H", 512)
        ),
        "descriptor": lambda: _corrupt(image, 18 * SECTOR, bytes(SECTOR)),
    }[where]()
    with pytest.raises(errors.InvalidMediaError) as exc:
        iso9660.read_iso(corrupt)
    assert exc.value.category == "invalid_media"


def test_random_corruption_only_raises_invalid_media(image: bytes) -> None:
    rnd = random.Random(1234)  # fixed seed: the same cases every run
    meta_end = 60 * SECTOR
    for _ in range(300):
        damaged = bytearray(image)
        for _ in range(rnd.randint(1, 6)):
            damaged[rnd.randrange(16 * SECTOR, meta_end)] = rnd.randrange(256)
        try:
            iso9660.read_iso(bytes(damaged))
        except errors.InvalidMediaError:
            pass


# --------------------------------------------------------------------------- other writers


def _pycdlib_image(joliet: bool, rock_ridge: bool) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=1,
        joliet=3 if joliet else None,
        rock_ridge="1.09" if rock_ridge else None,
        vol_ident="config-2",
    )
    kw_dir: dict = {}
    kw_file: dict = {}
    if joliet:
        kw_dir["joliet_path"] = "/openstack"
        kw_file["joliet_path"] = "/openstack/meta_data.json"
    if rock_ridge:
        kw_dir["rr_name"] = "openstack"
        kw_file["rr_name"] = "meta_data.json"
    iso.add_directory("/OPENSTAC", **kw_dir)
    iso.add_fp(io.BytesIO(b"{}"), 2, "/OPENSTAC/META_DAT.JSO;1", **kw_file)
    if not (joliet or rock_ridge):
        iso.add_fp(io.BytesIO(b"ud"), 2, "/USER_DAT.;1")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def test_reads_plain_iso9660_names() -> None:
    image = _pycdlib_image(joliet=False, rock_ridge=False)
    assert iso9660.read_iso(image) == {"openstac/meta_dat.jso": b"{}", "user_dat": b"ud"}


def test_reads_joliet_names() -> None:
    image = _pycdlib_image(joliet=True, rock_ridge=False)
    assert iso9660.read_iso(image) == {"openstack/meta_data.json": b"{}"}


def test_reads_rock_ridge_names() -> None:
    image = _pycdlib_image(joliet=False, rock_ridge=True)
    assert iso9660.read_iso(image) == {"openstack/meta_data.json": b"{}"}


def test_contents_are_let_go_when_the_image_is_written() -> None:
    """The directory tree is a reference cycle: the writer must drop the file contents
    itself, or each drive's user_data stays in memory until gc's next full collection."""
    import gc
    import tracemalloc

    gc.disable()
    tracemalloc.start()
    try:
        # the contents' only reference is the mapping handed to the writer
        image = iso9660.write_iso({"openstack/latest/user_data": os.urandom(4 * 1024 * 1024),
                                   "openstack/latest/meta_data.json": b"{}"})
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < len(image) + 256 * 1024, held
