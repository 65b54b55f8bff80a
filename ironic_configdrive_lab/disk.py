"""The node's disk: ``DIR/disk.img`` behind a loop device the lab attaches and detaches."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ironic_configdrive_lab.workdir import LabError, Workdir

DISK_SIZE = 256 * 1024 * 1024


def _run(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LabError(f"cannot run {argv[0]}: {exc.strerror}; install it "
                       "(bindep.txt)") from None
    if result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def ensure_image(workdir: Workdir, size: int = DISK_SIZE) -> Path:
    """Create the sparse disk file once; later runs keep its content for inspection."""
    if not workdir.disk.exists():
        with open(workdir.disk, "wb") as handle:
            handle.truncate(size)
    return workdir.disk


def backing_devices(path: Path) -> list[str]:
    """Loop devices currently backed by ``path`` (from a previous, crashed run too)."""
    out = _run(["losetup", "-j", str(path), "-O", "NAME", "-n"])
    return [line.strip() for line in out.splitlines() if line.strip()]


def attach(workdir: Workdir) -> str:
    if os.geteuid() != 0:
        raise LabError("the lab needs root for its loop device (losetup); run it as root")
    existing = backing_devices(workdir.disk)
    if existing:
        return existing[0]
    device = _run(["losetup", "-f", "--show", "-P", str(workdir.disk)]).strip()
    if not device.startswith("/dev/loop"):
        raise LabError(f"losetup returned {device!r} for {workdir.disk}, not a loop device")
    return device


def detach(workdir: Workdir) -> list[str]:
    """Detach every loop device over the lab's disk file; returns what was detached."""
    if not workdir.disk.exists():
        return []
    devices = backing_devices(workdir.disk)
    for device in devices:
        _run(["losetup", "-d", device])
    return devices


def read_range(device: str, offset: int, length: int) -> bytes:
    with open(device, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)
