"""remove_config_drive / config_drive_status on real loop disks."""

from __future__ import annotations

import os

import pytest

from agent_ext.disk import (
    DriveWriter,
    config_drive_status,
    prepare_target,
    remove_config_drive,
)
from agent_ext.errors import DeviceError
from tests.functional.agent_ext.disk.conftest import (
    MIB,
    blkid_config_drives,
    nodes_of,
    parted,
    parted_partitions,
    run,
    sgdisk,
    sgdisk_verify,
)

pytestmark = pytest.mark.loopdev


def write_drive(device: str, image: bytes) -> tuple[int, int]:
    target = prepare_target(device, size=len(image))
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()
    return target.partition_number or 0, target.capacity


def test_remove_gpt_zeroes_and_deletes(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-n", "1:2048:+20M"))
    # Fill the disk's free space with non-zero bytes so zeroing is observable.
    with open(disk.backing, "r+b") as f:
        f.seek(22 * MIB)
        f.write(b"\xa5" * (100 * MIB))
    number, capacity = write_drive(disk.device, make_iso(extra_bytes=2 * MIB))
    start, size = disk.kernel_partitions()[number]
    result = remove_config_drive(disk.device)
    assert result.removed and result.partition_number == number
    assert result.zeroed_bytes == size == capacity
    assert result.path == f"{disk.device}p{number}"
    assert disk.read(start, size) == bytes(size)
    assert sorted(disk.kernel_partitions()) == [1]
    sgdisk_verify(disk.device)
    assert "config-2" not in run("sgdisk", "-p", disk.device).stdout
    assert blkid_config_drives(*nodes_of(disk)) == []
    status = config_drive_status(disk.device)
    assert not status.present and status.sha256 is None
    again = remove_config_drive(disk.device)
    assert not again.removed and "nothing to remove" in again.message


def test_remove_then_write_again_reuses_the_slot(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-o"))
    first, _ = write_drive(disk.device, make_iso())
    remove_config_drive(disk.device)
    second, _ = write_drive(disk.device, make_iso())
    assert first == second == 1
    sgdisk_verify(disk.device)


def test_remove_mbr_primary(loopdisk, make_iso):
    disk = loopdisk(128, layout=parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "50MiB"))
    number, _ = write_drive(disk.device, make_iso())
    start, size = disk.kernel_partitions()[number]
    assert remove_config_drive(disk.device).removed
    assert sorted(parted_partitions(disk.device)) == [1]
    assert disk.read(start, size) == bytes(size)
    assert sorted(disk.kernel_partitions()) == [1]


def test_remove_mbr_logical_keeps_chain_valid(loopdisk, make_iso):
    disk = loopdisk(
        160,
        layout=parted(
            "mklabel",
            "msdos",
            "mkpart",
            "primary",
            "1MiB",
            "20MiB",
            "mkpart",
            "primary",
            "20MiB",
            "40MiB",
            "mkpart",
            "primary",
            "40MiB",
            "60MiB",
            "mkpart",
            "extended",
            "60MiB",
            "100%",
            "mkpart",
            "logical",
            "61MiB",
            "80MiB",
        ),
    )
    number, _ = write_drive(disk.device, make_iso())
    assert number == 6
    start, size = disk.kernel_partitions()[6]
    result = remove_config_drive(disk.device)
    assert result.removed and result.partition_number == 6
    assert sorted(parted_partitions(disk.device)) == [1, 2, 3, 4, 5]
    assert disk.read(start, size) == bytes(size)
    # And the slot can be used again.
    assert write_drive(disk.device, make_iso())[0] == 6


def test_remove_with_no_table_and_no_drive(loopdisk):
    disk = loopdisk(16)
    result = remove_config_drive(disk.device)
    assert not result.removed and disk.device in result.message


def test_remove_whole_device_drive(loopdisk, make_iso):
    disk = loopdisk(16)
    image = make_iso(extra_bytes=MIB)
    target = prepare_target(disk.device, size=len(image), target="device")
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()
    result = remove_config_drive(disk.device)
    assert result.removed and result.partition_number is None
    assert result.zeroed_bytes >= len(image)
    assert disk.read(0, len(image)) == bytes(len(image))
    assert not config_drive_status(disk.device).present


def test_remove_refuses_a_claimed_partition(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = make_iso()
    number, _ = write_drive(disk.device, image)
    node = f"{disk.device}p{number}"
    holder = os.open(node, os.O_RDONLY | os.O_EXCL)    # what a mount holds
    try:
        with pytest.raises(DeviceError) as err:
            remove_config_drive(disk.device)
        assert node in err.value.message and "in use" in err.value.message
    finally:
        os.close(holder)
    start, _ = disk.kernel_partitions()[number]
    assert disk.read(start, len(image)) == image           # nothing was zeroed
    assert config_drive_status(disk.device).present
    assert remove_config_drive(disk.device).removed


def test_grow_logical_config_drive(loopdisk, make_iso):
    disk = loopdisk(160, layout=parted(
        "mklabel", "msdos", "mkpart", "primary", "1MiB", "20MiB",
        "mkpart", "primary", "20MiB", "40MiB", "mkpart", "primary", "40MiB", "60MiB",
        "mkpart", "extended", "60MiB", "100%", "mkpart", "logical", "61MiB", "62MiB"))
    start, _ = disk.kernel_partitions()[5]
    with open(disk.device, "r+b") as f:
        f.seek(start)
        f.write(make_iso())
    image = make_iso(extra_bytes=3 * MIB)
    target = prepare_target(disk.device, size=len(image))
    assert (target.action, target.partition_number) == ("grown", 5)
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()
    first, end, _fs = parted_partitions(disk.device)[5]
    size = target.capacity + target.reserved_tail  # the last sector holds our marker
    assert target.reserved_tail == 512
    assert first * 512 == start and (end - first + 1) * 512 == size
    assert disk.kernel_partitions()[5] == (start, size)
    assert disk.read(start, len(image)) == image
