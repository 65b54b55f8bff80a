"""DriveWriter on real loop disks: content, discoverability, failure leaves nothing valid."""

from __future__ import annotations

import hashlib
import os

import pytest

from agent_ext.disk import DriveWriter, config_drive_status, prepare_target
from agent_ext.errors import DeviceError, VerificationError
from tests.functional.agent_ext.disk.conftest import (
    MIB,
    blkid_config_drives,
    nodes_of,
    parted,
    require_tool,
    run,
    sgdisk,
)

pytestmark = pytest.mark.loopdev


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk_size", [1, 4093, 65536, 5 * MIB])
def test_written_bytes_hash_to_the_image(loopdisk, make_iso, chunk_size):
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = make_iso(extra_bytes=(6 * MIB + 123) if chunk_size > 1 else 0)
    target = prepare_target(disk.device, size=len(image))
    digest = hashlib.sha256(image).hexdigest()
    with DriveWriter(target) as writer:
        for piece in chunks(image, chunk_size):
            writer.write(piece)
        result = writer.commit(expected_sha256=digest, expected_size=len(image))
    assert (result.path, result.size, result.sha256, result.verified) == (
        target.path,
        len(image),
        digest,
        True,
    )
    start, _ = disk.kernel_partitions()[1]
    assert hashlib.sha256(disk.read(start, len(image))).hexdigest() == digest
    status = config_drive_status(disk.device)
    assert (status.present, status.path, status.sha256, status.size) == (
        True,
        target.path,
        digest,
        len(image),
    )


def test_found_by_blkid_like_cloud_init(loopdisk, make_iso):
    disk = loopdisk(128, layout=parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "50MiB"))
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()
    assert blkid_config_drives(*nodes_of(disk)) == [target.path]
    out = run("blkid", "-p", "-o", "export", target.path).stdout
    assert "TYPE=iso9660" in out and "LABEL=config-2" in out


def test_abort_mid_write_leaves_no_config_drive(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-o"))
    old = make_iso()
    target = prepare_target(disk.device, size=8 * MIB)
    with DriveWriter(target) as writer:  # a valid drive is there first
        writer.write(old)
        writer.commit()
    assert blkid_config_drives(*nodes_of(disk)) == [target.path]
    image = make_iso(extra_bytes=6 * MIB)

    class BrokenStreamError(Exception):
        pass

    with pytest.raises(BrokenStreamError), DriveWriter(target) as writer:
        for i, piece in enumerate(chunks(image, MIB)):
            if i == 4:
                raise BrokenStreamError("connection lost")
            writer.write(piece)
    assert blkid_config_drives(*nodes_of(disk)) == []
    assert not config_drive_status(disk.device).present
    start, _ = disk.kernel_partitions()[1]
    assert disk.read(start, MIB) == bytes(MIB)


def test_wrong_sha256_leaves_no_config_drive(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    writer = DriveWriter(target)
    writer.write(image)
    with pytest.raises(VerificationError) as err:
        writer.commit(expected_sha256="0" * 64)
    assert target.path in err.value.message and "0" * 64 in err.value.message
    assert blkid_config_drives(*nodes_of(disk)) == []
    assert "was deleted again" in err.value.message and disk.kernel_partitions() == {}
    with pytest.raises(DeviceError, match="prepare_target again"):
        DriveWriter(target).commit()  # the partition it named is gone
    with pytest.raises(VerificationError):
        DriveWriter(prepare_target(disk.device, size=len(image))).commit()  # empty image
    assert blkid_config_drives(*nodes_of(disk)) == [] and disk.kernel_partitions() == {}


def test_image_larger_than_partition_is_refused(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-o"))
    target = prepare_target(disk.device, size=MIB)
    image = make_iso(extra_bytes=target.capacity)
    with pytest.raises(DeviceError) as err, DriveWriter(target) as writer:
        for piece in chunks(image, MIB):
            writer.write(piece)
    assert "larger than" in err.value.message
    assert blkid_config_drives(*nodes_of(disk)) == []


def test_claimed_partition_is_refused(loopdisk, make_iso):
    """A partition someone holds exclusively (what a mount does) is never written."""
    disk = loopdisk(128, layout=sgdisk("-o"))
    target = prepare_target(disk.device, size=MIB)
    holder = os.open(target.path, os.O_RDONLY | os.O_EXCL)  # the kernel's mount-style claim
    try:
        with pytest.raises(DeviceError) as err:
            with DriveWriter(target) as writer:
                writer.write(make_iso())
        assert "in use" in err.value.message and target.path in err.value.message
    finally:
        os.close(holder)


def test_4kn_disk_with_vfat_image(loopdisk, tmp_path):
    require_tool("mkfs.vfat")
    disk = loopdisk(128, sector_size=4096, layout=sgdisk("-o"))
    img = tmp_path / "cd.vfat"
    with open(img, "wb") as f:
        f.truncate(4 * MIB)
    run("mkfs.vfat", "-S", "4096", "-n", "CONFIG-2", str(img))
    image = img.read_bytes()
    target = prepare_target(disk.device, size=len(image))
    assert target.logical_sector_size == 4096
    # mkfs.vfat's empty filesystem holds no meta_data.json: this is about sectors, not content.
    with DriveWriter(target, check=None) as writer:
        for piece in chunks(image, 1000):
            writer.write(piece)
        result = writer.commit(expected_sha256=hashlib.sha256(image).hexdigest())
    assert result.verified
    out = run("blkid", "-p", "-o", "export", target.path).stdout
    assert "TYPE=vfat" in out and "LABEL=CONFIG-2" in out
    status = config_drive_status(disk.device)
    assert (status.format, status.label, status.size) == ("vfat", "CONFIG-2", len(image))


def test_whole_device_target(loopdisk, make_iso):
    disk = loopdisk(16)
    image = make_iso()
    target = prepare_target(disk.device, size=len(image), target="device")
    assert (target.action, target.path, target.partition_number) == (
        "whole-device",
        disk.device,
        None,
    )
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()
    assert disk.read(0, len(image)) == image
    assert blkid_config_drives(disk.device) == [disk.device]
    status = config_drive_status(disk.device)
    assert (status.present, status.path, status.partition_number) == (True, disk.device, None)
    assert status.sha256 == hashlib.sha256(image).hexdigest()
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=32 * MIB, target="device")
    assert "too small" in err.value.message


def test_whole_device_with_partitions_is_refused(loopdisk):
    disk = loopdisk(64, layout=sgdisk("-n", "1:2048:+10M"))
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=MIB, target="device")
    assert "partition" in err.value.message
