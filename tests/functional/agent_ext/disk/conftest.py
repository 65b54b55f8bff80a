"""Loop-device fixtures: disks over files under tmp_path, always detached afterwards."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import require_root, require_tool

MIB = 1024 * 1024


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


@dataclasses.dataclass
class LoopDisk:
    device: str
    backing: pathlib.Path
    sector_size: int

    @property
    def name(self) -> str:
        return os.path.basename(self.device)

    def kernel_partitions(self) -> dict[int, tuple[int, int]]:
        """{number: (start_bytes, size_bytes)} from sysfs."""
        parts = {}
        base = pathlib.Path("/sys/block") / self.name
        for child in base.iterdir():
            if (child / "partition").exists():
                number = int((child / "partition").read_text())
                parts[number] = (
                    int((child / "start").read_text()) * 512,
                    int((child / "size").read_text()) * 512,
                )
        return parts

    def read(self, offset: int, length: int) -> bytes:
        """Bytes as stored in the backing file (what a reboot would see)."""
        with open(self.backing, "rb") as f:
            f.seek(offset)
            return f.read(length)


#: A protective MBR's ending CHS (entry 1, bytes 5-7). sgdisk computes it from the disk's
#: size; libfdisk (sfdisk, which the agent edits tables with) writes 0xFFFFFF on its first
#: change of a GPT, which firmware and every reader ignore. Comparisons of a whole disk
#: "as it was" blank it; nothing else in sector 0 may differ.
PMBR_END_CHS = slice(446 + 5, 446 + 8)


def without_pmbr_end_chs(sector0: bytes) -> bytes:
    """``sector0`` with a protective MBR's ending CHS blanked (an MBR stays as it is)."""
    raw = bytearray(sector0)
    if len(raw) >= 512 and raw[446 + 4] == 0xEE:
        raw[PMBR_END_CHS] = bytes(3)
    return bytes(raw)


def _detach(device: str) -> None:
    # Drop partitions first so no /dev/loopNpM node outlives the disk, then detach.
    run("partx", "--delete", device, check=False)
    run("losetup", "-d", device, check=False)


@pytest.fixture
def loopdisk(tmp_path: pathlib.Path) -> Iterator[Callable[..., LoopDisk]]:
    """Factory: ``loopdisk(size_mib, layout=..., sector_size=..., read_only=...)``.

    ``file_layout(path)`` runs on the backing file before attaching; ``layout(device)`` on
    the attached disk (so tables match a 4096-byte sector size), after which the kernel is
    told about the partitions like a booted ramdisk would know them.
    """
    require_root()
    require_tool("losetup")
    require_tool("partx")
    attached: list[str] = []

    def make(
        size_mib: int = 256,
        *,
        layout: Callable[[str], object] | None = None,
        file_layout: Callable[[str], object] | None = None,
        sector_size: int = 512,
        read_only: bool = False,
        name: str = "disk.img",
    ) -> LoopDisk:
        backing = tmp_path / name
        with open(backing, "wb") as f:
            f.truncate(size_mib * MIB)
        if file_layout is not None:
            file_layout(str(backing))
        args = ["losetup", "-f", "--show", "-P"]
        if sector_size != 512:
            args += ["--sector-size", str(sector_size)]
        if read_only:
            args.append("-r")
        device = run(*args, str(backing)).stdout.strip()
        attached.append(device)
        if layout is not None:
            layout(device)
            run("partx", "--update", device, check=False)
        return LoopDisk(device=device, backing=backing, sector_size=sector_size)

    try:
        yield make
    finally:
        for device in attached:
            _detach(device)


@pytest.fixture
def make_iso(tmp_path: pathlib.Path) -> Callable[..., bytes]:
    """Factory for small real config drives: ``make_iso(extra_bytes=0, label="config-2")``."""
    genisoimage = require_tool("genisoimage")
    counter = iter(range(1000))

    def make(extra_bytes: int = 0, label: str = "config-2") -> bytes:
        n = next(counter)
        root = tmp_path / f"iso-tree-{n}"
        latest = root / "openstack" / "latest"
        latest.mkdir(parents=True)
        (latest / "meta_data.json").write_text(f'{{"uuid": "node-{n}"}}')
        if extra_bytes:
            (root / "openstack" / "content").mkdir()
            (root / "openstack" / "content" / "0000").write_bytes(os.urandom(extra_bytes))
        out = tmp_path / f"cd-{n}.iso"
        run(genisoimage, "-quiet", "-J", "-r", "-V", label, "-o", str(out), str(root))
        return out.read_bytes()

    return make


def sgdisk(*args: str) -> Callable[[str], object]:
    """A ``layout`` step running sgdisk with ``args`` on the target."""
    require_tool("sgdisk")
    return lambda target: run("sgdisk", *args, target)


def parted(*commands: str) -> Callable[[str], object]:
    """A ``layout`` step running ``parted -s`` with ``commands`` on the target."""
    require_tool("parted")
    return lambda target: run("parted", "-s", "-a", "none", target, "--", *commands)


def sgdisk_verify(device: str) -> str:
    """``sgdisk -v`` output; asserts the table has no problems."""
    out = run("sgdisk", "-v", device, check=False).stdout
    assert "No problems found" in out, out
    return out


def parted_partitions(device: str) -> dict[int, tuple[int, int, str]]:
    """{number: (start_sector, end_sector, type)} per ``parted -m ... unit s print``.

    parted exits non-zero on a table it considers broken, which fails the test.
    """
    out = run("parted", "-s", "-m", device, "unit", "s", "print").stdout
    parts = {}
    for line in out.splitlines()[2:]:
        fields = line.rstrip(";").split(":")
        parts[int(fields[0])] = (int(fields[1].rstrip("s")), int(fields[2].rstrip("s")), fields[4])
    return parts


def blkid_config_drives(*devices: str) -> list[str]:
    """Devices blkid (cache bypassed) finds with LABEL=config-2, as cloud-init searches.

    Only our own nodes are named, so the host's disks are never probed.
    """
    require_tool("blkid")
    out = run(
        "blkid", "-c", "/dev/null", "-t", "LABEL=config-2", "-o", "device", *devices, check=False
    ).stdout
    return out.split()


def nodes_of(disk: LoopDisk) -> list[str]:
    names = [disk.device]
    base = pathlib.Path("/sys/block") / disk.name
    names += [f"/dev/{c.name}" for c in base.iterdir() if (c / "partition").exists()]
    return names
