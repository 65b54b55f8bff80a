"""Our ISO9660 images read by real tools (isoinfo, isovfy, xorriso, bsdtar, blkid), and images
made by genisoimage/xorriso read by ``read_iso``.

The kernel on the build machines cannot mount iso9660, so the Linux driver is not exercised;
these readers are independent implementations of the same structures.

Write-time figures: ``python -m tests.bench.bench_iso9660``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ironic_configdrive.image import build, inspect, iso9660
from tests.conftest import require_tool
from tests.fixtures import eager_inspect
from tests.unit.image.test_iso9660 import typical_drive

pytestmark = pytest.mark.interop

# xorriso message severities that mean something is wrong with what it read.
XORRISO_BAD = ("WARNING", "SORRY", "FAILURE", "MISHAP", "FATAL", "ABORT")


def stress_tree() -> dict[str, bytes]:
    files = typical_drive()
    files.update({f"many/file-{i:03d}.json": b"%d\n" % i for i in range(300)})
    files["/".join(f"level{i}" for i in range(8)) + "/deep.txt"] = b"deep"
    files["long/" + "n" * 255] = b"255 ascii bytes"
    files["long/" + "é" * 127 + "a"] = b"255 utf-8 bytes"
    files["long/" + "m" * 200 + ".json"] = b"200"
    files["names/naïve-файл.json"] = b"non-ascii"
    files["names/a.b.c.d.json"] = b"dots"
    files["names/with space"] = b"space"
    files["empty/zero"] = b""
    # enough long names that the continuation areas fill several sectors
    files.update({f"longmany/{i:03d}" + "z" * 230: b"%d" % i for i in range(20)})
    files["big/blob"] = os.urandom(3 * 1024 * 1024 + 5)
    return files


TREES = {"typical": typical_drive, "stress": stress_tree}


@pytest.fixture(scope="module", params=sorted(TREES))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    files = TREES[request.param]()
    path = tmp_path_factory.mktemp("iso") / f"{request.param}.iso"
    path.write_bytes(iso9660.write_iso(files))
    return files, path


def run(*cmd: str, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def all_dirs(files: dict[str, bytes]) -> set[str]:
    dirs = set()
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return dirs


def ascii_only(files: dict[str, bytes]) -> dict[str, bytes]:
    return {p: d for p, d in files.items() if p.isascii()}


# --------------------------------------------------------------------------- isoinfo / isovfy


def test_isoinfo_reports_volume_rock_ridge_and_joliet(built) -> None:
    _, path = built
    out = run(require_tool("isoinfo"), "-d", "-i", str(path))
    assert "Volume id: config-2" in out
    assert "System id: LINUX" in out
    assert "Publisher id: ironic-configdrive" in out
    assert "Logical block size is: 2048" in out
    assert f"Volume size is: {path.stat().st_size // 2048}" in out
    assert "Rock Ridge signatures version 1 found" in out
    assert "Joliet with UCS level 3 found" in out


def test_isoinfo_rock_ridge_listing(built) -> None:
    files, path = built
    out = run(require_tool("isoinfo"), "-R", "-f", "-i", str(path))
    listed = {line.lstrip("/") for line in out.splitlines() if line.startswith("/")}
    assert listed == set(files) | all_dirs(files)
    long_listing = run("isoinfo", "-R", "-l", "-i", str(path))
    assert "-r--r--r--   1    0    0" in long_listing
    assert "dr-xr-xr-x" in long_listing
    assert "Aug 10 2012" in long_listing


def test_isoinfo_joliet_listing(built) -> None:
    files, path = built
    out = run(require_tool("isoinfo"), "-J", "-f", "-i", str(path))
    listed = {line.lstrip("/") for line in out.splitlines() if line.startswith("/")}
    # isoinfo prints Joliet names in Latin-1; names over 64 characters are shortened.
    expected = {p for p in set(ascii_only(files)) | all_dirs(files) if p.isascii()}
    expected = {p for p in expected if all(len(c) <= 64 for c in p.split("/"))}
    assert expected <= listed
    assert len(listed) == len(set(files) | all_dirs(files))


def test_isoinfo_extracts_through_every_namespace(built) -> None:
    files, path = built
    isoinfo = require_tool("isoinfo")
    data = files["openstack/latest/meta_data.json"]
    for args in (
        ("-R", "-x", "/openstack/latest/meta_data.json"),
        ("-J", "-x", "/openstack/latest/meta_data.json"),
        ("-x", "/OPENSTACK/LATEST/META_DATA.JSON;1"),
    ):
        proc = subprocess.run(
            [isoinfo, *args, "-i", str(path)], capture_output=True, check=True, timeout=60
        )
        assert proc.stdout == data, args


def test_isovfy_finds_no_errors(built) -> None:
    _, path = built
    out = run(require_tool("isovfy"), "-i", str(path))
    assert "No errors found" in out


# --------------------------------------------------------------------------- xorriso


def test_xorriso_lists_without_complaint(built) -> None:
    files, path = built
    out = run(require_tool("xorriso"), "-indev", str(path), "-find", "/", "-exec", "lsdl")
    assert not [line for line in out.splitlines() if any(w in line for w in XORRISO_BAD)], out
    listed = {
        line.split("'", 1)[1].rstrip("'").lstrip("/")
        for line in out.splitlines()
        if line[:1] in "-d" and "'" in line
    }
    assert listed - {""} == set(files) | all_dirs(files)
    assert "Volume id    : 'config-2'" in out


def test_xorriso_check_media_is_clean(built) -> None:
    _, path = built
    out = run(require_tool("xorriso"), "-indev", str(path), "-check_media", "--")
    assert "+ good" in out
    assert not [line for line in out.splitlines() if any(w in line for w in XORRISO_BAD)], out


@pytest.mark.parametrize("view", ["any", "norock", "ecma119"])
def test_xorriso_extracts_identical_files(built, tmp_path: Path, view: str) -> None:
    """Extract through Rock Ridge ("any"), Joliet ("norock") and plain ISO9660 names."""
    files, path = built
    xorriso = require_tool("xorriso")
    out_dir = tmp_path / "out"
    out = run(
        xorriso, "-read_fs", view, "-indev", str(path), "-osirrox", "on",
        "-extract", "/", str(out_dir),
    )  # fmt: skip
    assert not [line for line in out.splitlines() if any(w in line for w in XORRISO_BAD)], out
    extracted = {
        str(p.relative_to(out_dir)): p.read_bytes() for p in out_dir.rglob("*") if p.is_file()
    }
    assert len(extracted) == len(files)
    assert sorted(extracted.values()) == sorted(files.values())
    if view == "any":
        assert extracted == files
    elif view == "norock":
        # Joliet keeps at most 64 UCS-2 characters per name: compare the names that fit.
        fits = {p: d for p, d in files.items() if all(len(c) <= 64 for c in p.split("/"))}
        assert {p: extracted[p] for p in fits} == fits
        assert all(len(c) <= 64 for p in extracted for c in p.split("/"))
    else:
        assert (
            extracted["OPENSTACK/LATEST/META_DATA.JSON"]
            == files["openstack/latest/meta_data.json"]
        )
        assert all(p == p.upper() and p.isascii() for p in extracted)


# --------------------------------------------------------------------------- libarchive


def test_bsdtar_extracts_identical_files(built, tmp_path: Path) -> None:
    """libarchive: a third, independent ISO9660/Rock Ridge reader."""
    files, path = built
    bsdtar = require_tool("bsdtar")
    listing = run(bsdtar, "-tf", str(path))
    assert {line.rstrip("/") for line in listing.splitlines()} - {"."} == set(files) | all_dirs(
        files
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run(bsdtar, "-xf", str(path), "-C", str(out_dir))
    extracted = {
        str(p.relative_to(out_dir)): p.read_bytes() for p in out_dir.rglob("*") if p.is_file()
    }
    assert extracted == files


# --------------------------------------------------------------------------- blkid


def test_blkid_probes_label_and_type(built) -> None:
    _, path = built
    out = run(require_tool("blkid"), "-p", "-o", "export", str(path))
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert values["TYPE"] == "iso9660"
    assert values["LABEL"] == "config-2"
    assert values["USAGE"] == "filesystem"


# --------------------------------------------------------------------------- other writers


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.mark.parametrize(
    "tool",
    [
        ("genisoimage", "-quiet", "-J", "-r", "-V", "config-2"),
        ("xorriso", "-as", "mkisofs", "-quiet", "-J", "-r", "-V", "config-2"),
    ],
    ids=["genisoimage", "xorrisofs"],
)
def test_read_iso_reads_images_of_other_tools(tmp_path: Path, tool: tuple) -> None:
    exe = require_tool(tool[0])
    files = typical_drive()
    files["names/naïve.json"] = b"non-ascii"
    files["empty/zero"] = b""
    src = tmp_path / "src"
    write_tree(src, files)
    image = tmp_path / "out.iso"
    run(exe, *tool[1:], "-o", str(image), str(src))
    assert iso9660.read_iso(image.read_bytes()) == files


def test_read_iso_joliet_only_image_from_genisoimage(tmp_path: Path) -> None:
    exe = require_tool("genisoimage")
    files = {"openstack/latest/meta_data.json": b"{}", "openstack/latest/user_data": b"ud"}
    write_tree(tmp_path / "src", files)
    image = tmp_path / "j.iso"
    run(exe, "-quiet", "-J", "-V", "config-2", "-o", str(image), str(tmp_path / "src"))
    assert iso9660.read_iso(image.read_bytes()) == files


@pytest.mark.parametrize(
    "options",
    [
        ("-J", "-r"),
        ("-J",),
        (),
        ("-J", "-r", "-b", "boot.img", "-c", "boot.cat", "-no-emul-boot", "-boot-info-table"),
        ("-b", "boot.img", "-c", "boot.cat", "-no-emul-boot", "-boot-load-size", "4"),
    ],
    ids=["rock-ridge+joliet", "joliet", "iso9660-names", "el-torito", "el-torito-plain"],
)
def test_inspect_reads_lazily_what_reading_everything_reads(tmp_path: Path,
                                                            options: tuple) -> None:
    """Drives of another writer (with a boot catalog pycdlib serves from memory, a boot info
    table it overlays): sizes from the directories are what a read yields, and inspect's
    verdict is that of reading every file."""
    exe = require_tool("genisoimage")
    files = typical_drive(user_data=b"#cloud-config\n" * 40_000)
    files["boot.img"] = b"\x90" * 8192
    write_tree(tmp_path / "src", files)
    path = tmp_path / "foreign.iso"
    run(exe, "-quiet", *options, "-V", "config-2", "-o", str(path), str(tmp_path / "src"))
    data = path.read_bytes()
    with build.open_tree(data) as tree:
        assert dict(tree.sizes) == {name: len(tree[name]) for name in tree}
    report = inspect(data)
    assert report.as_dict() == eager_inspect.inspect(data).as_dict()
    if "-r" in options or "-J" in options:
        assert report.valid, report.problems
