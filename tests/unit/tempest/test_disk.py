"""Reading the node's disk from a raw image file, as the scenario does in the lab."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from ironic_configdrive import image
from ironic_configdrive_tempest import disk
from tests.conftest import require_tool


@pytest.fixture
def disk_image(tmp_path: Path) -> tuple[Path, bytes]:
    """A GPT disk image with a root partition and a config-2 partition holding a drive."""
    sfdisk = require_tool("sfdisk")
    drive = image.build_image({"meta_data": {"uuid": "u-1", "hostname": "h1"}})
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    layout = "label: gpt\nstart=2048, size=8192\nstart=12288, size=8192\n"
    subprocess.run([sfdisk, "--quiet", str(path)], input=layout, text=True, check=True,
                   capture_output=True, timeout=60)
    with open(path, "r+b") as f:
        f.seek(12288 * 512)
        f.write(drive)
    return path, drive


def test_disk_finds_config_drive(disk_image: tuple[Path, bytes]) -> None:
    path, drive = disk_image
    part = disk.find_config_drive(str(path))
    assert (part.offset, part.size) == (12288 * 512, 8192 * 512)
    assert disk.sha256_at(str(path), part.offset, len(drive)) == \
        hashlib.sha256(drive).hexdigest()
    assert not disk.is_zero(str(path), part.offset, len(drive))
    with open(path, "r+b") as f:
        f.seek(part.offset)
        f.write(bytes(len(drive)))
    assert disk.is_zero(str(path), part.offset, len(drive))
    with pytest.raises(disk.DiskCheckError, match="0 partitions labelled config-2"):
        disk.find_config_drive(str(path))


def test_disk_errors_name_the_file(tmp_path: Path) -> None:
    require_tool("sfdisk")
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(1024 * 1024))
    with pytest.raises(disk.DiskCheckError, match=str(blank)):
        disk.find_config_drive(str(blank))
    with pytest.raises(disk.DiskCheckError, match="ends before byte"):
        disk.read_at(str(blank), 1024 * 1024 - 10, 100)
