"""FAT drives with one copy of each file, as independent tools and consumers see them.

dosfstools (no cross-linked clusters: every file has its own chain), mtools, Debian's
cloud-init and glean, with user_data sizes that needed twenty copies before
(see ``vfat.fold_versions``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from ironic_configdrive.image import VFAT, build_image, layout, vfat
from tests.conftest import require_tool
from tests.functional.test_consumers import CONFIGDRIVE, MAC, cloud_init_read, extract
from tests.functional.test_vfat_tools import MTOOLS_ENV, directories, run

pytestmark = pytest.mark.interop

UUID = "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
MIB = 1024 * 1024
SIZES = [0, 1, 8, 60]


def drive(user_data_mib: int) -> dict[str, object]:
    """CONFIGDRIVE with text user_data of the given size (cloud-init decodes it)."""
    line = b"# padding line to make the user data large enough for the test\n"
    head = b"#cloud-config\nhostname: ud-host\n"
    size = user_data_mib * MIB
    user_data = head + line * max(0, (size - len(head)) // len(line)) if size else head
    return dict(CONFIGDRIVE, user_data=user_data.decode())


def image_of(tmp_path: Path, user_data_mib: int, sector_size: int) -> tuple[Path, dict]:
    source = drive(user_data_mib)
    path = tmp_path / f"drive-{user_data_mib}-{sector_size}.img"
    path.write_bytes(build_image(source, fmt=VFAT, node_uuid=UUID, sector_size=sector_size))
    return path, vfat.fold_versions(layout.build_tree(source, node_uuid=UUID))


@pytest.mark.parametrize("sector_size", [512, 4096])
@pytest.mark.parametrize("user_data_mib", SIZES)
def test_fsck_is_clean(tmp_path: Path, user_data_mib: int, sector_size: int) -> None:
    image, _ = image_of(tmp_path, user_data_mib, sector_size)
    require_tool("fsck.fat")
    result = subprocess.run(["fsck.fat", "-n", "-v", str(image)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Leaving filesystem unchanged" not in result.stdout
    assert "share clusters" not in result.stdout


@pytest.mark.parametrize("sector_size", [512, 4096])
@pytest.mark.parametrize("user_data_mib", SIZES)
def test_mtools_reads_every_file(tmp_path: Path, user_data_mib: int, sector_size: int) -> None:
    image, files = image_of(tmp_path, user_data_mib, sector_size)
    listing = run("mdir", "-i", str(image), "-/", "-b", "::", env=MTOOLS_ENV)
    expected = {f"::/{p}" for p in files} | {f"::/{d}/" for d in directories(files)}
    assert set(listing.splitlines()) == expected
    out = tmp_path / "out"
    out.mkdir()
    run("mcopy", "-s", "-n", "-i", str(image), "::/*", str(out), env=MTOOLS_ENV)
    found = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert found == files


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_cloud_init_reads_latest(tmp_path: Path, sector_size: int) -> None:
    source = drive(8)
    image = build_image(source, fmt=VFAT, node_uuid=UUID, sector_size=sector_size)
    found = cloud_init_read(extract(image, VFAT, tmp_path))
    assert found["uuid"] == UUID and found["hostname"] == "glean-host"
    assert found["userdata"] == source["user_data"]
    assert found["files"] == {"/etc/motd": "hello\n"}
    assert found["vendordata2"] == {"vendor": True}


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_glean_reads_latest(tmp_path: Path, sector_size: int, capsys) -> None:
    from glean import cmd as glean

    image = build_image(drive(8), fmt=VFAT, node_uuid=UUID, sector_size=sector_size)
    root = tmp_path / "guest"
    (root / "mnt").mkdir(parents=True)
    os.rename(extract(image, VFAT, tmp_path), root / "mnt" / "config")
    args = argparse.Namespace(root=str(root), noop=True)
    network = glean.get_network_info(args)
    assert glean.get_config_drive_interfaces(network)["n0"]["mac_address"] == MAC
    assert glean.get_dns_from_config_drive(network) == ["192.0.2.53"]


def test_equal_files_sharing_one_chain_are_what_fsck_refuses(tmp_path: Path) -> None:
    """Why there is no sharing: two entries on one chain are cross-linked for dosfstools."""
    raw = bytearray(vfat.write_fat({"a/user_data": b"u" * 3000, "b/user_data": b"u" * 3000}))
    entries = [at for at in range(0, len(raw), 32) if raw[at : at + 8] == b"USER_D~1"]
    assert len(entries) == 2
    raw[entries[1] + 26 : entries[1] + 28] = raw[entries[0] + 26 : entries[0] + 28]
    image = tmp_path / "shared.img"
    image.write_bytes(bytes(raw))
    require_tool("fsck.fat")
    result = subprocess.run(["fsck.fat", "-n", str(image)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "share clusters" in result.stdout and "Truncating second to 0 bytes" in result.stdout

