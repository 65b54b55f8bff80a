"""The writer undoes prepare_target after a failed write and says what it did.

The table side of the rollback runs sfdisk: tests/functional/agent_ext/disk/
(test_image_files.py on image files, test_rollback.py on loop devices).
"""

from __future__ import annotations

from unittest import mock

import pytest

from agent_ext.disk import DriveWriter, Target, partition
from agent_ext.errors import DeviceError, VerificationError
from tests.unit.agent_ext.disk import disk_images as di


def part_target(tmp_path, action: str) -> Target:  # type: ignore[no-untyped-def]
    node = tmp_path / "part"
    node.write_bytes(bytes(4 * di.MIB))
    return Target(device="/dev/fake", path=str(node), partition_number=2,
                  capacity=4 * di.MIB, logical_sector_size=512, action=action,
                  start_sector=2048, previous_capacity=di.MIB if action == "grown" else None)


def test_failed_commit_rolls_back_and_says_so(tmp_path):
    target = part_target(tmp_path, "created")
    with mock.patch.object(partition, "rollback",
                           return_value="partition 2, created for this write, was deleted "
                                        "again") as rollback:
        writer = DriveWriter(target)
        writer.write(b"x" * (2 * di.MIB))
        with pytest.raises(VerificationError) as err:
            writer.commit(expected_sha256="0" * 64)
    rollback.assert_called_once_with(target, 2 * di.MIB)
    assert err.value.message.endswith("; partition 2, created for this write, was deleted "
                                      "again")
    assert str(err.value) == err.value.message


def test_caller_error_gets_the_note_too(tmp_path):
    target = part_target(tmp_path, "grown")
    with mock.patch.object(partition, "rollback", return_value="shrunk back") as rollback, \
            pytest.raises(DeviceError) as err, DriveWriter(target) as writer:
        writer.write(b"x")
        raise DeviceError(device="/dev/fake", reason="download failed")
    rollback.assert_called_once_with(target, di.MIB)
    assert err.value.message.endswith("download failed; shrunk back")


def test_rollback_failure_is_reported(tmp_path):
    target = part_target(tmp_path, "created")
    busy = DeviceError(device="/dev/fake", reason="busy")
    with mock.patch.object(partition, "rollback", side_effect=busy), \
            pytest.raises(VerificationError) as err:
        DriveWriter(target).commit()
    assert "could not be deleted again (device /dev/fake: busy)" in err.value.message
    assert "parted /dev/fake rm 2" in err.value.message
    grown = part_target(tmp_path, "grown")
    with mock.patch.object(partition, "rollback", side_effect=busy), \
            pytest.raises(VerificationError) as err:
        DriveWriter(grown).commit()
    assert "stays grown to 4194304 bytes, wiped" in err.value.message


def test_reused_or_committed_target_is_never_rolled_back(tmp_path):
    target = part_target(tmp_path, "created")
    with mock.patch.object(partition, "rollback") as rollback:
        with DriveWriter(target, check=None) as writer:
            writer.write(b"x" * 4096)
            writer.commit()
        assert target.action == "reused"  # the partition now holds a drive
        with pytest.raises(VerificationError), DriveWriter(target) as writer:
            writer.commit(expected_sha256="0" * 64)
    assert not rollback.called


def test_rolled_back_target_is_refused(tmp_path):
    target = part_target(tmp_path, "rolled-back")
    with pytest.raises(DeviceError, match="prepare_target again"):
        DriveWriter(target).write(b"x")


def test_kernel_not_following_the_rollback_is_reported(tmp_path):
    target = part_target(tmp_path, "created")

    def table_done_kernel_busy(t: Target, _written: int) -> str:
        t.action = "rolled-back"
        raise DeviceError(device="/dev/fake", reason="the kernel still uses partition 2")

    with mock.patch.object(partition, "rollback", side_effect=table_done_kernel_busy), \
            pytest.raises(VerificationError) as err:
        DriveWriter(target).commit()
    assert "change to partition 2 was undone but the kernel did not follow" in err.value.message
    assert "could not be deleted" not in err.value.message
