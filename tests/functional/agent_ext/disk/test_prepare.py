"""prepare_target on real loop disks: every partition layout the agent meets."""

from __future__ import annotations

import os

import pytest

from agent_ext.disk import DriveWriter, prepare_target
from agent_ext.disk.gpt import LINUX_FS_GUID
from agent_ext.errors import DeviceError
from tests.functional.agent_ext.disk.conftest import (
    MIB,
    parted,
    parted_partitions,
    run,
    sgdisk,
    sgdisk_verify,
)

pytestmark = pytest.mark.loopdev


def write(target, image: bytes) -> None:  # type: ignore[no-untyped-def]
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()


def test_empty_gpt_gets_partition_at_the_end(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    assert target.action == "created"
    assert target.partition_number == 1
    assert target.path == f"{disk.device}p1"
    assert target.capacity >= MIB and target.capacity % MIB < 34 * 512 + MIB
    start, size = disk.kernel_partitions()[1]
    assert start % MIB == 0
    assert start + size > 127 * MIB  # at the end, before the backup GPT
    out = run("sgdisk", "-i", "1", disk.device).stdout
    assert str(LINUX_FS_GUID).upper() in out
    assert "'config-2'" in out
    assert "Partition unique GUID" in out
    sgdisk_verify(disk.device)


def test_gpt_with_partitions_keeps_them(loopdisk, make_iso):
    disk = loopdisk(256, layout=sgdisk("-n", "1:2048:+20M", "-n", "2:0:+30M", "-n", "3:0:+40M"))
    before = run("sgdisk", "-p", disk.device).stdout.splitlines()[-3:]
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    assert (target.action, target.partition_number) == ("created", 4)
    after = run("sgdisk", "-p", disk.device).stdout.splitlines()
    assert after[-4:-1] == before
    assert "config-2" in after[-1]
    parts = disk.kernel_partitions()
    assert parts[4][0] > parts[3][0] + parts[3][1]
    sgdisk_verify(disk.device)


def test_gpt_backup_header_not_at_end_is_moved(loopdisk, make_iso):
    # A 64 MiB whole-disk image (GPT, one partition filling it) written to a 256 MiB disk.
    def small_image(path: str) -> None:
        with open(path, "r+b") as f:
            f.truncate(64 * MIB)
        run("sgdisk", "-n", "1:2048:0", path)
        with open(path, "r+b") as f:
            f.truncate(256 * MIB)

    disk = loopdisk(256, file_layout=small_image)
    assert "No problems found" not in run("sgdisk", "-v", disk.device, check=False).stdout
    target = prepare_target(disk.device, size=len(make_iso()))
    assert target.partition_number == 2
    start, _size = disk.kernel_partitions()[2]
    assert start > 64 * MIB  # the space the backup GPT was blocking
    sgdisk_verify(disk.device)
    # The stale backup header in the middle of the disk no longer carries a signature.
    assert disk.read(64 * MIB - 512, 8) != b"EFI PART"


@pytest.mark.parametrize("primaries", [1, 2, 3])
def test_mbr_uses_next_free_primary_slot(loopdisk, make_iso, primaries):
    steps = ["mklabel", "msdos"]
    for i in range(primaries):
        steps += ["mkpart", "primary", f"{1 + 20 * i}MiB", f"{20 * (i + 1)}MiB"]
    disk = loopdisk(128, layout=parted(*steps))
    target = prepare_target(disk.device, size=len(make_iso()))
    assert (target.action, target.partition_number) == ("created", primaries + 1)
    parts = parted_partitions(disk.device)
    assert sorted(parts) == list(range(1, primaries + 2))
    start, end, _fs = parts[primaries + 1]
    assert start % 2048 == 0 and end == 128 * 2048 - 1
    assert disk.kernel_partitions()[primaries + 1] == (start * 512, (end - start + 1) * 512)
    out = run("blkid", "-p", "-o", "export", target.path, check=False).stdout
    assert "PART_ENTRY_SCHEME=dos" in out
    assert "PART_ENTRY_TYPE=0x83" in out


@pytest.mark.parametrize("existing_logicals", [0, 1])
def test_mbr_full_with_extended_gets_logical(loopdisk, make_iso, existing_logicals):
    steps = [
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
    ]
    if existing_logicals:
        steps += ["mkpart", "logical", "61MiB", "80MiB"]
    disk = loopdisk(160, layout=parted(*steps))
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    number = 5 + existing_logicals
    assert (target.action, target.partition_number) == ("created", number)
    assert target.path == f"{disk.device}p{number}"
    parts = parted_partitions(disk.device)
    assert sorted(parts) == [1, 2, 3, 4, *range(5, number + 1)]
    start, end, _fs = parts[number]
    assert end == 160 * 2048 - 1 and start % 2048 == 0
    write(target, image)
    assert disk.read(start * 512, len(image)) == image


def test_mbr_with_four_primaries_is_refused(loopdisk, make_iso):
    steps = ["mklabel", "msdos"]
    for i in range(4):
        steps += ["mkpart", "primary", f"{1 + 20 * i}MiB", f"{20 * (i + 1)}MiB"]
    disk = loopdisk(128, layout=parted(*steps))
    before = disk.read(0, 512)
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=len(make_iso()))
    assert disk.device in err.value.message
    assert "GPT" in err.value.message and "#4 primary" in err.value.message
    assert disk.read(0, 512) == before


def test_mbr_over_2tib_places_partition_below_boundary(loopdisk, make_iso):
    disk = loopdisk(
        3 * 1024 * 1024, layout=parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "100MiB")
    )
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    start, size = disk.kernel_partitions()[2]
    assert start + size <= 2**32 * 512
    assert start + size > 2**32 * 512 - 2 * MIB  # as high as the boundary allows
    write(target, image)
    assert disk.read(start, len(image)) == image
    parted_partitions(disk.device)


def test_existing_config_drive_big_enough_is_reused(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-n", "1:2048:+20M"))
    first = prepare_target(disk.device, size=len(make_iso()))
    write(first, make_iso())
    table = run("sgdisk", "-p", disk.device).stdout
    image = make_iso(extra_bytes=4096)
    again = prepare_target(disk.device, size=len(image))
    assert again.action == "reused"
    assert (again.path, again.partition_number) == (first.path, first.partition_number)
    assert run("sgdisk", "-p", disk.device).stdout == table
    write(again, image)
    start, _ = disk.kernel_partitions()[2]
    assert disk.read(start, len(image)) == image


def put_image(disk, number: int, image: bytes) -> None:  # type: ignore[no-untyped-def]
    """Write a config drive into an existing partition the way another tool would."""
    start, _ = disk.kernel_partitions()[number]
    with open(disk.device, "r+b") as f:
        f.seek(start)
        f.write(image)
        f.flush()
        os.fsync(f.fileno())


def test_existing_config_drive_too_small_and_last_is_grown(loopdisk, make_iso):
    # A 1 MiB config-2 partition after partition 1, free space behind it.
    disk = loopdisk(128, layout=sgdisk("-n", "1:2048:+20M", "-n", "2:0:+1M"))
    put_image(disk, 2, make_iso())
    image = make_iso(extra_bytes=3 * MIB)
    target = prepare_target(disk.device, size=len(image))
    assert (target.action, target.partition_number) == ("grown", 2)
    assert target.capacity >= len(image)
    start, size = disk.kernel_partitions()[2]
    assert start == 21 * MIB and size == target.capacity
    assert sorted(disk.kernel_partitions()) == [1, 2]
    sgdisk_verify(disk.device)
    write(target, image)
    assert disk.read(start, len(image)) == image


def test_existing_config_drive_too_small_not_last_is_refused(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-n", "1:2048:+1M", "-n", "2:0:+20M"))
    put_image(disk, 1, make_iso())
    table = run("sgdisk", "-p", disk.device).stdout
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=len(make_iso(extra_bytes=2 * MIB)))
    assert "cannot grow" in err.value.message and "partition 1" in err.value.message
    assert run("sgdisk", "-p", disk.device).stdout == table


def test_no_partition_table_is_refused(loopdisk):
    disk = loopdisk(64)
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=MIB)
    assert "no partition table" in err.value.message
    assert disk.device in err.value.message


def test_device_too_small(loopdisk):
    disk = loopdisk(4, layout=sgdisk("-o"))
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=8 * MIB)
    assert "too small" in err.value.message


def test_no_free_space(loopdisk, make_iso):
    disk = loopdisk(64, layout=sgdisk("-n", "1:2048:0"))
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=len(make_iso()))
    assert "not enough free space" in err.value.message


def test_read_only_device_is_refused(loopdisk):
    disk = loopdisk(64, file_layout=sgdisk("-o"), read_only=True)
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=MIB)
    assert "read-only" in err.value.message


def test_missing_device_is_refused(tmp_path):
    with pytest.raises(DeviceError) as err:
        prepare_target(str(tmp_path / "no-such-disk"), size=MIB)
    assert "no such device" in err.value.message


def test_partition_instead_of_disk_is_refused(loopdisk):
    disk = loopdisk(64, layout=sgdisk("-n", "1:2048:+10M"))
    with pytest.raises(DeviceError) as err:
        prepare_target(f"{disk.device}p1", size=MIB)
    assert "is a partition" in err.value.message and disk.device in err.value.message


def test_4kn_disk(loopdisk, make_iso):
    disk = loopdisk(128, sector_size=4096, layout=sgdisk("-o"))
    from agent_ext.disk import logical_sector_size

    assert logical_sector_size(disk.device) == 4096
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    assert target.logical_sector_size == 4096
    write(target, image)
    start, _ = disk.kernel_partitions()[1]
    assert disk.read(start, len(image)) == image
    sgdisk_verify(disk.device)
