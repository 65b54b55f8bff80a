"""Our FAT images checked by independent readers: dosfstools, mtools, libblkid, pyfatfs.

And the other way round: :func:`vfat.read_fat` on images made by ``mkfs.vfat`` + ``mcopy``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ironic_configdrive.image import inspect, vfat
from tests.conftest import require_tool, skip_or_fail
from tests.fixtures import eager_inspect
from tests.unit.image.test_vfat import SHAPES, Boot, config_drive_files

pytestmark = pytest.mark.interop

# Case-only differences across directories are fine for every reader; within one directory
# write_fat refuses them (see the unit tests).
TOOL_SHAPES = {name: files for name, files in SHAPES.items() if name != "1000_deep"}
TOOL_SHAPES["twenty_mb"] = {"big/file.bin": bytes(range(250)) * 80_000}
# Over 65535 sectors of 512 bytes: the boot sector's 32-bit sector count is used.
# 5000 one-cluster files need more than 4084 clusters: the smallest image is FAT16.
TOOL_SHAPES["fat16"] = {f"d{n % 10}/file-{n}": b"x" * 100 for n in range(5000)}
TOOL_SHAPES["forty_mib"] = {"user_data": bytes(range(256)) * 160 * 1024, "x/y": b"y"}
MTOOLS_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1", LANG="C.UTF-8", LC_ALL="C.UTF-8")


def run(*cmd: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    require_tool(cmd[0])
    result = subprocess.run(cmd, capture_output=True, env=env, check=False)
    if check and result.returncode:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}:\n"
            f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}"
        )
    return result.stdout.decode("utf-8", errors="replace")


def write_image(tmp_path: Path, files: dict[str, bytes], **kwargs: object) -> Path:
    path = tmp_path / "drive.img"
    path.write_bytes(vfat.write_fat(files, **kwargs))  # type: ignore[arg-type]
    return path


def directories(files: dict[str, bytes]) -> set[str]:
    return {p.rsplit("/", depth)[0] for p in files for depth in range(1, p.count("/") + 1)}


@pytest.mark.parametrize("sector_size", vfat.SECTOR_SIZES)
@pytest.mark.parametrize("shape", sorted(TOOL_SHAPES))
def test_fsck_finds_no_errors(tmp_path: Path, shape: str, sector_size: int) -> None:
    image = write_image(tmp_path, TOOL_SHAPES[shape], sector_size=sector_size)
    require_tool("fsck.fat")
    result = subprocess.run(["fsck.fat", "-n", "-v", str(image)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # With -n, fsck.fat says this whenever it found something it would have changed.
    assert "Leaving filesystem unchanged" not in result.stdout
    bits = Boot(image.read_bytes()).fs_type[3:5].decode()
    assert f"{bits} bit entries" in result.stdout
    if shape in ("fat16", "config_drive", "no_files"):
        assert bits == ("16" if shape == "fat16" else "12")
    assert f"{sector_size} bytes per logical sector" in result.stdout


@pytest.mark.parametrize("shape", sorted(TOOL_SHAPES))
def test_mtools_lists_and_reads(tmp_path: Path, shape: str) -> None:
    files = TOOL_SHAPES[shape]
    image = write_image(tmp_path, files)
    if not files:
        listing = run("mdir", "-i", str(image), "::", env=MTOOLS_ENV)
        assert "Volume in drive : is CONFIG-2" in listing
        assert "No files" in listing
        return
    listing = run("mdir", "-i", str(image), "-/", "-b", "::", env=MTOOLS_ENV)
    expected = {f"::/{p}" for p in files} | {f"::/{d}/" for d in directories(files)}
    assert set(listing.splitlines()) == expected
    for path in sorted(files)[:40]:
        content = subprocess.run(
            ["mtype", "-i", str(image), f"::/{path}"], capture_output=True, env=MTOOLS_ENV
        )
        assert content.returncode == 0, content.stderr
        assert content.stdout == files[path], path


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_mcopy_extracts_the_tree(tmp_path: Path, sector_size: int) -> None:
    files = dict(config_drive_files(), **SHAPES["non_ascii"], **SHAPES["long_names"])
    image = write_image(tmp_path, files, sector_size=sector_size)
    out = tmp_path / "out"
    out.mkdir()
    run("mcopy", "-s", "-n", "-i", str(image), "::/*", str(out), env=MTOOLS_ENV)
    found = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert found == files


@pytest.mark.parametrize(
    "shape", ["config_drive", "non_ascii", "300_in_one_dir", "8_deep", "empty_file", "no_files"]
)
@pytest.mark.parametrize("sector_size", [512, 4096])
def test_pyfatfs_reads_back(tmp_path: Path, shape: str, sector_size: int) -> None:
    try:
        from pyfatfs.PyFatFS import PyFatFS
    except ImportError:
        skip_or_fail("pyfatfs is not installed (pip install .[test])")
    files = SHAPES[shape]
    image = write_image(tmp_path, files, sector_size=sector_size)
    fs = PyFatFS(str(image), read_only=True)
    try:
        found = {p.lstrip("/"): fs.readbytes(p) for p in fs.walk.files("/")}
    finally:
        fs.close()
    assert found == files


@pytest.mark.parametrize("sector_size", vfat.SECTOR_SIZES)
def test_blkid_sees_vfat_config_2(tmp_path: Path, sector_size: int) -> None:
    image = write_image(tmp_path, config_drive_files(), sector_size=sector_size)
    boot = Boot(image.read_bytes())
    probed = dict(
        line.split("=", 1)
        for line in run("blkid", "-p", "-o", "export", str(image)).splitlines()
        if "=" in line
    )
    assert probed["TYPE"] == "vfat"
    assert probed["LABEL"] == "CONFIG-2"
    assert probed["UUID"] == f"{boot.serial >> 16:04X}-{boot.serial & 0xFFFF:04X}"
    assert probed["VERSION"] == boot.fs_type.decode().strip()
    assert probed["BLOCK_SIZE"] == str(sector_size)


def test_blkid_without_label(tmp_path: Path) -> None:
    image = write_image(tmp_path, {"a": b"1"}, label="")
    probed = run("blkid", "-p", "-o", "export", str(image))
    assert "TYPE=vfat" in probed.splitlines()
    assert "LABEL=" not in probed


def populate(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.mark.parametrize(
    ("fat", "sector_size", "kib"),
    [(12, 512, 2048), (16, 512, 8192), (32, 512, 40000), (12, 4096, 4096), (16, 4096, 40000)],
)
def test_read_fat_reads_mkfs_images(tmp_path: Path, fat: int, sector_size: int, kib: int) -> None:
    files = dict(config_drive_files(), **SHAPES["non_ascii"], **SHAPES["long_names"])
    files.update({f"many/{n:03d}-entry-with-a-long-name": b"%d" % n for n in range(150)})
    files["upper/README.TXT"] = b"upper"
    files["lower/readme.txt"] = b"lower"
    source = tmp_path / "src"
    populate(source, files)
    image = tmp_path / "mkfs.img"
    args = ["mkfs.vfat", "-F", str(fat), "-S", str(sector_size), "-n", "CONFIG-2"]
    if fat != 12:
        args += ["-s", "1"]  # enough clusters for FAT16/FAT32 in a small file
    run(*args, "-C", str(image), str(kib))
    entries = [str(p) for p in sorted(source.iterdir())]
    run("mcopy", "-s", "-i", str(image), *entries, "::", env=MTOOLS_ENV)
    data = image.read_bytes()
    assert vfat.read_fat(data) == files
    assert vfat.read_fat_label(data) == "CONFIG-2"
    # Read lazily (sizes from the directories, only JSON documents read), the same verdict.
    assert inspect(data).as_dict() == eager_inspect.inspect(data).as_dict()
    fsck = run("fsck.fat", "-n", "-v", str(image))
    assert f"{fat} bit entries" in fsck


def test_no_larger_than_the_smallest_mkfs_image(tmp_path: Path) -> None:
    """mkfs.vfat tuned for size (no alignment, 512-byte clusters, one root sector) + mcopy."""
    files = config_drive_files()
    ours = len(vfat.write_fat(files))
    source = tmp_path / "src"
    populate(source, files)
    entries = [str(p) for p in sorted(source.iterdir())]
    image = tmp_path / "mkfs.img"

    def fits(kib: int) -> bool:
        image.unlink(missing_ok=True)
        made = subprocess.run(
            [
                "mkfs.vfat",
                "-a",
                "-s",
                "1",
                "-r",
                "16",
                "-n",
                "CONFIG-2",
                "-C",
                str(image),
                str(kib),
            ],  # fmt: skip
            capture_output=True,
        )
        if made.returncode:
            return False
        copied = subprocess.run(
            ["mcopy", "-s", "-i", str(image), *entries, "::"], capture_output=True, env=MTOOLS_ENV
        )
        return copied.returncode == 0

    require_tool("mkfs.vfat")
    require_tool("mcopy")
    low, high = 1, 4096
    assert fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    assert ours <= high * 1024
