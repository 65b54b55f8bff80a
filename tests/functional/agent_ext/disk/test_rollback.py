"""A failed write on real loop disks: the table goes back to what it was, a retry adds nothing."""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable

import pytest

from agent_ext.disk import DriveWriter, Target, config_drive_status, gpt, prepare_target
from agent_ext.errors import DeviceError, VerificationError
from tests.functional.agent_ext.disk.conftest import (
    MIB,
    LoopDisk,
    blkid_config_drives,
    nodes_of,
    parted,
    parted_partitions,
    run,
    sgdisk,
    sgdisk_verify,
    without_pmbr_end_chs,
)

pytestmark = pytest.mark.loopdev


class LostError(Exception):
    """The stream broke (connection lost for good, agent error)."""


def chunks(data: bytes, size: int = MIB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def fail_write(target: Target, image: bytes, how: str) -> str:
    """Write ``image`` so that it fails ``how``; return what the caller is told."""
    if how == "sha256":
        with pytest.raises(VerificationError) as verr, DriveWriter(target) as writer:
            for piece in chunks(image):
                writer.write(piece)
            writer.commit(expected_sha256="0" * 64)
        return verr.value.message
    if how == "too-large":
        with pytest.raises(DeviceError) as derr, DriveWriter(target) as writer:
            for piece in chunks(image + bytes(target.capacity)):
                writer.write(piece)
        return derr.value.message
    # The stream breaks after 6 MiB: the head is in memory, 4 MiB of body on the disk.
    with pytest.raises(LostError) as lost, DriveWriter(target) as writer:
        for i, piece in enumerate(chunks(image)):
            if i == 6:
                raise LostError("connection lost")
            writer.write(piece)
    return " ".join(getattr(lost.value, "__notes__", []))


def write(target: Target, image: bytes) -> None:
    with DriveWriter(target) as writer:
        for piece in chunks(image):
            writer.write(piece)
        writer.commit(expected_sha256=hashlib.sha256(image).hexdigest())


def file_sha(disk: LoopDisk) -> str:
    """sha256 of every byte of the disk (the protective MBR's ending CHS blanked)."""
    digest = hashlib.sha256()
    with open(disk.backing, "rb") as f:
        digest.update(without_pmbr_end_chs(f.read(512)))
        while block := f.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def sgdisk_backup(disk: LoopDisk, path: pathlib.Path) -> bytes:
    """``sgdisk --backup``: protective MBR (its ending CHS blanked), both GPT headers and
    the entries."""
    run("sgdisk", f"--backup={path}", disk.device)
    raw = path.read_bytes()
    return without_pmbr_end_chs(raw[:512]) + raw[512:]


MBR_FULL = ["mklabel", "msdos", "mkpart", "primary", "1MiB", "20MiB",
            "mkpart", "primary", "20MiB", "40MiB", "mkpart", "primary", "40MiB", "60MiB",
            "mkpart", "extended", "60MiB", "100%"]

LAYOUTS: dict[str, tuple[Callable[[str], object], int]] = {
    "gpt-empty": (sgdisk("-o"), 512),
    "gpt-partitions": (sgdisk("-n", "1:2048:+20M", "-n", "2:0:+30M"), 512),
    "gpt-4kn": (sgdisk("-n", "1:0:+20M"), 4096),
    "mbr-primary": (parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "20MiB"), 512),
    "mbr-logical": (parted(*MBR_FULL, "mkpart", "logical", "61MiB", "80MiB"), 512),
    "mbr-first-logical": (parted(*MBR_FULL), 512),
}


@pytest.mark.parametrize(("layout", "how"), [
    *[(name, "stream") for name in LAYOUTS],
    ("gpt-partitions", "sha256"),
    ("gpt-partitions", "too-large"),
    ("mbr-primary", "sha256"),
])
def test_created_then_failed_leaves_disk_as_it_was(loopdisk, make_iso, tmp_path, layout, how):
    steps, sector_size = LAYOUTS[layout]
    disk = loopdisk(160, layout=steps, sector_size=sector_size)
    image = make_iso(extra_bytes=6 * MIB)
    before, parts_before = file_sha(disk), disk.kernel_partitions()
    gpt = layout.startswith("gpt")
    dump = sgdisk_backup(disk, tmp_path / "before.gpt") if gpt else b""

    target = prepare_target(disk.device, size=len(image))
    assert target.action == "created" and target.partition_number not in parts_before
    told = fail_write(target, image, how)

    assert f"partition {target.partition_number}, created for this write, was deleted " \
           "again" in told
    # Every byte of the disk is back: table entries, backup GPT, EBRs, the data area.
    assert file_sha(disk) == before
    assert disk.kernel_partitions() == parts_before
    if gpt:
        assert sgdisk_backup(disk, tmp_path / "after.gpt") == dump
        sgdisk_verify(disk.device)

    # The retry makes exactly one config-2 partition, with the same number.
    again = prepare_target(disk.device, size=len(image))
    assert (again.action, again.partition_number) == ("created", target.partition_number)
    write(again, image)
    assert sorted(disk.kernel_partitions()) == sorted([*parts_before, again.partition_number])
    assert blkid_config_drives(*nodes_of(disk)) == [again.path]
    assert config_drive_status(disk.device).sha256 == hashlib.sha256(image).hexdigest()
    if not gpt:
        assert sorted(parted_partitions(disk.device)) == sorted(disk.kernel_partitions())


def put_image(disk: LoopDisk, number: int, image: bytes) -> None:
    start, _ = disk.kernel_partitions()[number]
    with open(disk.device, "r+b") as f:
        f.seek(start)
        f.write(image)


def table_sectors(disk: LoopDisk, mask_end_chs: int | None = None) -> bytes:
    """Sector 0 (MBR) and the GPT's primary and backup copies, as stored.

    ``mask_end_chs``: blank that MBR entry's end CHS, which libfdisk computes in its own
    geometry where parted used the loop device's (or, for a protective MBR, writes as
    0xFFFFFF where sgdisk computed it: ``conftest.PMBR_END_CHS``).
    """
    size = disk.backing.stat().st_size
    raw = bytearray(disk.read(0, 34 * 512) + disk.read(size - 33 * 512, 33 * 512))
    if mask_end_chs is not None:
        offset = 446 + 16 * (mask_end_chs - 1) + 5
        raw[offset : offset + 3] = bytes(3)
    return bytes(raw)


@pytest.mark.parametrize("scheme", ["gpt", "mbr"])
def test_grown_then_failed_is_shrunk_back(loopdisk, make_iso, scheme):
    if scheme == "gpt":
        # Our own 1 MiB config-2 partition (named, our unique GUID), with free space behind.
        steps = sgdisk("-n", "1:2048:+20M", "-n", "2:0:+1M", "-c", "2:config-2",
                       "-u", f"2:{gpt.owned_guid()}")
    else:
        steps = parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "20MiB",
                       "mkpart", "primary", "20MiB", "21MiB")
    disk = loopdisk(128, layout=steps)
    put_image(disk, 2, make_iso())
    mask = 1 if scheme == "gpt" else 2     # the protective MBR's entry, or the grown one
    table, parts_before = table_sectors(disk, mask), disk.kernel_partitions()
    listed = run("parted", "-s", "-m", disk.device, "unit", "s", "print").stdout
    image = make_iso(extra_bytes=6 * MIB)
    target = prepare_target(disk.device, size=len(image))
    assert (target.action, target.partition_number) == ("grown", 2)
    assert disk.kernel_partitions()[2][1] > MIB

    told = fail_write(target, image, "stream")
    assert "partition 2, grown for this write, was shrunk back to 1.0 MiB" in told
    assert table_sectors(disk, mask) == table
    assert run("parted", "-s", "-m", disk.device, "unit", "s", "print").stdout == listed
    assert disk.kernel_partitions() == parts_before
    assert blkid_config_drives(*nodes_of(disk)) == []  # the old drive was wiped
    if scheme == "gpt":
        sgdisk_verify(disk.device)
        # Emptied but named config-2: the retry grows the same partition again.
        again = prepare_target(disk.device, size=len(image))
        assert (again.action, again.partition_number) == ("grown", 2)
        write(again, image)
        assert sorted(disk.kernel_partitions()) == [1, 2]
        assert blkid_config_drives(*nodes_of(disk)) == [again.path]


def test_reused_then_failed_is_reused_by_the_retry(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-n", "1:2048:+20M"))
    image = make_iso(extra_bytes=6 * MIB)
    first = prepare_target(disk.device, size=len(image))
    write(first, make_iso())
    table = table_sectors(disk)

    target = prepare_target(disk.device, size=len(image))
    assert (target.action, target.partition_number) == ("reused", 2)
    assert fail_write(target, image, "sha256").count("partition") == 0  # table untouched
    assert table_sectors(disk) == table
    assert sorted(disk.kernel_partitions()) == [1, 2]
    assert not config_drive_status(disk.device).present
    start, _ = disk.kernel_partitions()[2]
    assert disk.read(start, MIB) == bytes(MIB)

    # No config-2 filesystem left, but the GPT name says whose it is: reused, not doubled.
    again = prepare_target(disk.device, size=len(image))
    assert (again.action, again.partition_number, again.path) == ("reused", 2, target.path)
    write(again, image)
    assert sorted(disk.kernel_partitions()) == [1, 2]
    assert blkid_config_drives(*nodes_of(disk)) == [again.path]


def test_foreign_partition_named_config2_with_data_is_not_taken(loopdisk, make_iso):
    disk = loopdisk(128, layout=sgdisk("-n", "1:2048:+20M", "-c", "1:config-2"))
    put_image(disk, 1, b"someone's data" * 1000)
    target = prepare_target(disk.device, size=len(make_iso()))
    assert (target.action, target.partition_number) == ("created", 2)
    start, _ = disk.kernel_partitions()[1]
    assert disk.read(start, 14) == b"someone's data"
