"""The content check the writer runs before it makes an image valid."""

from __future__ import annotations

import os

import pytest

from agent_ext.disk import DriveWriter, Target, drive_check
from agent_ext.errors import NotAConfigDriveError
from ironic_configdrive.image import validate
from tests.fixtures import bad_drives

MIB = 1024 * 1024


@pytest.mark.parametrize("image", [bad_drives.good_iso, bad_drives.good_vfat])
def test_good_drives_pass(image) -> None:  # type: ignore[no-untyped-def]
    assert drive_check.problems(image()) == []
    drive_check.check_image(image(), "/dev/sdx")


@pytest.mark.parametrize("case", sorted(bad_drives.CASES))
def test_what_validate_rejects_is_refused(case: str) -> None:
    make, phrase = bad_drives.CASES[case]
    image = make()
    assert validate(image)  # the same verdict as `ironic-configdrive validate`
    with pytest.raises(NotAConfigDriveError) as err:
        drive_check.check_image(image, "/dev/sdx")
    message = err.value.message
    assert phrase in message
    assert "refused to write the config drive to /dev/sdx" in message
    assert "ironic-configdrive validate" in message and "rebuild" in message
    assert err.value.serialize()["category"] == "invalid_media"
    assert err.value.serialize()["type"] == "NotAConfigDriveError"


def test_many_problems_are_counted_not_all_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drive_check, "problems", lambda image: [f"p{i}" for i in range(5)])
    with pytest.raises(NotAConfigDriveError) as err:
        drive_check.check_image(b"", "/dev/sdx")
    assert "p0; p1; p2 (and 2 more problems)" in err.value.message
    assert "p3" not in err.value.message


def _target(tmp_path, old: bytes) -> Target:  # type: ignore[no-untyped-def]
    path = tmp_path / "part"
    path.write_bytes(old)
    return Target(device="/dev/sdx", path=str(path), partition_number=1,
                  capacity=len(old), logical_sector_size=512, action="reused")


@pytest.mark.parametrize("body", [0, 3 * MIB], ids=["in-head", "head-and-body"])
def test_writer_refuses_before_commit_and_zeroes_a_reused_partition(tmp_path,  # type: ignore[no-untyped-def]
                                                                     body: int) -> None:
    old = b"\x5a" * (8 * MIB)
    target = _target(tmp_path, old)
    image = bad_drives.CASES["meta_data_without_uuid"][0]()
    image += os.urandom(body)      # a body the writer streams to disk before the check
    with pytest.raises(NotAConfigDriveError) as err, DriveWriter(target) as writer:
        writer.write(image)
        writer.commit()
    assert "uuid is missing" in err.value.message
    # Nothing of the refused image nor of the earlier drive stays on the reused partition.
    assert not any((tmp_path / "part").read_bytes())


def test_writer_checks_the_bytes_it_commits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[bytes] = []
    image = bad_drives.good_iso() + os.urandom(2 * MIB)   # head and body both
    target = _target(tmp_path, bytes(4 * MIB))
    with DriveWriter(target, check=lambda data, device: seen.append(data)) as writer:
        for start in range(0, len(image), 300_000):
            writer.write(image[start : start + 300_000])
        writer.commit()
    assert seen == [image]
    assert (tmp_path / "part").read_bytes()[: len(image)] == image
