"""sfdisk on loop disks: a failing sfdisk leaves the table as it was, a disk in use is
partitioned anyway (BLKPG, not a whole-table re-read), logical partitions on 4Kn disks."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import stat
from collections.abc import Callable, Iterator

import pytest

from agent_ext.disk import (
    DriveWriter,
    config_drive_status,
    prepare_target,
    remove_config_drive,
    sfdisk,
)
from agent_ext.errors import DeviceError, VerificationError
from tests.functional.agent_ext.disk.conftest import (
    MIB,
    LoopDisk,
    blkid_config_drives,
    nodes_of,
    parted,
    parted_partitions,
    sgdisk,
    sgdisk_verify,
)
from tests.functional.agent_ext.disk.test_rollback import MBR_FULL, file_sha

pytestmark = pytest.mark.loopdev

LAYOUTS: dict[str, Callable[[str], object]] = {
    "gpt": sgdisk("-n", "1:2048:+20M"),
    "mbr-logical": parted(*MBR_FULL, "mkpart", "logical", "61MiB", "80MiB"),
}


@pytest.fixture
def failing_sfdisk(tmp_path: pathlib.Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool], None]]:
    """``fail(True)``: from now on every sfdisk run that would change a table fails as
    sfdisk fails (a message, exit 1, nothing written); ``sfdisk --json`` still reads."""
    real = shutil.which("sfdisk")
    assert real is not None
    wrapper = tmp_path / "sfdisk"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" --json "*) exec ' + real + ' "$@";; esac\n'
        'echo "sfdisk: injected failure: Input/output error" >&2\n'
        "exit 1\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)

    def fail(on: bool) -> None:
        monkeypatch.setattr(sfdisk, "SFDISK", str(wrapper) if on else real)

    yield fail


def write(target, image: bytes) -> None:  # type: ignore[no-untyped-def]
    with DriveWriter(target) as writer:
        writer.write(image)
        writer.commit(expected_sha256=hashlib.sha256(image).hexdigest())


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_sfdisk_refusing_the_new_partition_leaves_the_disk_as_it_was(
        loopdisk, make_iso, failing_sfdisk, layout):
    disk = loopdisk(160, layout=LAYOUTS[layout])
    before, parts_before = file_sha(disk), disk.kernel_partitions()
    failing_sfdisk(True)
    with pytest.raises(DeviceError) as err:
        prepare_target(disk.device, size=len(make_iso()))
    assert disk.device in err.value.message
    assert "sfdisk could not add partition" in err.value.message
    assert "injected failure: Input/output error" in err.value.message
    assert file_sha(disk) == before and disk.kernel_partitions() == parts_before


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_sfdisk_failing_the_rollback_leaves_a_partition_remove_takes_back(
        loopdisk, make_iso, failing_sfdisk, layout):
    disk = loopdisk(160, layout=LAYOUTS[layout])
    before, parts_before = file_sha(disk), disk.kernel_partitions()
    image = make_iso(extra_bytes=2 * MIB)
    target = prepare_target(disk.device, size=len(image))
    assert target.action == "created"
    failing_sfdisk(True)          # the table change worked; undoing it will not
    with pytest.raises(VerificationError) as err, DriveWriter(target) as writer:
        writer.write(image)
        writer.commit(expected_sha256="0" * 64)
    told = err.value.message
    assert f"partition {target.partition_number}, created for this write, could not be " \
           "deleted again" in told and "injected failure" in told
    # Wiped and still marked: nothing valid, and it is found again as ours.
    assert blkid_config_drives(*nodes_of(disk)) == []
    status = config_drive_status(disk.device)
    assert not status.present
    assert [(p.number, p.marked) for p in status.partitions] == [(target.partition_number,
                                                                   True)]
    failing_sfdisk(False)
    removed = remove_config_drive(disk.device)
    assert removed.partitions == [target.partition_number]
    assert file_sha(disk) == before and disk.kernel_partitions() == parts_before


def test_sfdisk_failing_remove_leaves_the_table_for_the_next_remove(
        loopdisk, make_iso, failing_sfdisk):
    disk = loopdisk(160, layout=LAYOUTS["mbr-logical"])
    before = file_sha(disk)
    image = make_iso()
    target = prepare_target(disk.device, size=len(image))
    write(target, image)
    listed = parted_partitions(disk.device)
    failing_sfdisk(True)
    with pytest.raises(DeviceError, match="sfdisk could not delete partition 6"):
        remove_config_drive(disk.device)
    assert parted_partitions(disk.device) == listed         # the entry stays ...
    assert blkid_config_drives(*nodes_of(disk)) == []       # ... zeroed, still ours
    failing_sfdisk(False)
    assert remove_config_drive(disk.device).partitions == [6]
    assert file_sha(disk) == before


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_disk_in_use_is_partitioned_one_partition_at_a_time(loopdisk, make_iso, layout):
    """Partition 1 is held exclusively, as a mounted root filesystem holds it: a whole-table
    re-read (BLKRRPART, what sfdisk would do) fails then; BLKPG on the new one does not."""
    disk = loopdisk(160, layout=LAYOUTS[layout])
    held = os.open(f"{disk.device}p1", os.O_RDONLY | os.O_EXCL)
    try:
        image = make_iso(extra_bytes=MIB)
        failed = prepare_target(disk.device, size=len(image))
        with pytest.raises(VerificationError), DriveWriter(failed) as writer:
            writer.write(image)
            writer.commit(expected_sha256="0" * 64)
        target = prepare_target(disk.device, size=len(image))
        assert target.partition_number == failed.partition_number
        write(target, image)
        assert blkid_config_drives(*nodes_of(disk)) == [target.path]
        assert remove_config_drive(disk.device).removed
        assert sorted(disk.kernel_partitions()) == sorted(parted_partitions(disk.device))
        assert os.fstat(held).st_rdev == os.stat(f"{disk.device}p1").st_rdev
    finally:
        os.close(held)
    if layout == "gpt":
        sgdisk_verify(disk.device)


def test_4kn_mbr_logical_partition(loopdisk: Callable[..., LoopDisk], make_iso):
    disk = loopdisk(160, sector_size=4096, layout=parted(*MBR_FULL))
    image = make_iso()
    listed = parted_partitions(disk.device)
    ebr = disk.read(listed[4][0] * 4096, 512)
    target = prepare_target(disk.device, size=len(image))
    assert (target.action, target.partition_number, target.logical_sector_size) == (
        "created", 5, 4096)
    assert target.reserved_tail == 4096
    write(target, image)
    start, end, _fs = parted_partitions(disk.device)[5]
    assert start % 256 == 0 and end == 160 * 256 - 1         # 1 MiB aligned, at the end
    assert disk.read(start * 4096, len(image)) == image
    assert config_drive_status(disk.device).partition_number == 5
    assert remove_config_drive(disk.device).partitions == [5]
    # The table as it was: entries, and the first EBR's 512 bytes (parted and libfdisk both
    # fill the rest of a 4096-byte EBR sector with whatever their buffer held).
    assert parted_partitions(disk.device) == listed
    assert disk.read(listed[4][0] * 4096, 512) == ebr
    size = (end - start + 1) * 4096
    assert disk.read(start * 4096, size) == bytes(size)
