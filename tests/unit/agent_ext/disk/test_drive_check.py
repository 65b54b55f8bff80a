"""The content check the writer runs before it makes an image valid."""

from __future__ import annotations

import io
import itertools
import os
import random
import struct

import pycdlib
import pytest

from agent_ext.disk import DriveWriter, Target, drive_check
from agent_ext.errors import NotAConfigDriveError
from ironic_configdrive.image import formats, read_tree, validate, write_tree
from tests.fixtures import bad_drives
from tests.unit.image.test_vfat import Boot, patched, short_entry

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
    with DriveWriter(target, check=lambda src, _: seen.append(src.read(0, src.size))) as writer:
        for start in range(0, len(image), 300_000):
            writer.write(image[start : start + 300_000])
        writer.commit()
    assert seen == [image]
    assert (tmp_path / "part").read_bytes()[: len(image)] == image


# -- the same verdict as validate, on the image core's own corpora -------------------------------

def _corrupted_isos() -> list[bytes]:
    """A good drive with 1-6 random bytes changed in its descriptors and directories."""
    rnd = random.Random(4321)  # fixed seed: the same cases every run
    image = bad_drives.good_iso()
    out = []
    for _ in range(300):
        damaged = bytearray(image)
        for _ in range(rnd.randint(1, 6)):
            damaged[rnd.randrange(16 * 2048, 60 * 2048)] = rnd.randrange(256)
        out.append(bytes(damaged))
    return out


def _other_writers() -> list[bytes]:
    images = []
    for joliet, rock_ridge in itertools.product((False, True), repeat=2):
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3 if joliet else None,
                rock_ridge="1.09" if rock_ridge else None, vol_ident="config-2")
        names: dict[str, str] = {}
        for directory in ("/OPENSTAC", "/OPENSTAC/LATEST"):
            kw = {}
            if joliet:
                kw["joliet_path"] = directory.replace("OPENSTAC", "openstack").lower()
            if rock_ridge:
                kw["rr_name"] = directory.rsplit("/", 1)[1].replace("OPENSTAC", "openstack")\
                    .lower()
            iso.add_directory(directory, **kw)
            names[directory] = directory
        meta = b'{"uuid": "' + bad_drives.UUID.encode() + b'"}'
        kw = {}
        if joliet:
            kw["joliet_path"] = "/openstack/latest/meta_data.json"
        if rock_ridge:
            kw["rr_name"] = "meta_data.json"
        iso.add_fp(io.BytesIO(meta), len(meta), "/OPENSTAC/LATEST/META_DAT.JSO;1", **kw)
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
        images.append(out.getvalue())
    return images


def test_same_verdict_as_validate_on_fat_corruptions_and_foreign_isos() -> None:
    from tests.unit.image.test_vfat import corruptions

    cases = [*corruptions().values(), *_other_writers(),
             *(make() for make, _ in bad_drives.CASES.values()),
             bad_drives.good_iso(), bad_drives.good_vfat()]
    differ = [i for i, image in enumerate(cases)
              if bool(drive_check.problems(image)) != bool(validate(image))]
    assert differ == []
    # pycdlib's three naming schemes, each a valid drive, but the plain ISO9660 one (8.3
    # names: no openstack/ directory as Linux shows it).
    assert [bool(drive_check.problems(image)) for image in _other_writers()] == [
        True, False, False, False]


def test_random_iso_damage_never_refused_where_validate_accepts() -> None:
    """The walk follows what Linux's isofs reads; validate (pycdlib) also checks formal
    fields Linux ignores (descriptor padding, path tables, both copies of Rock Ridge
    fields), which the agent leaves to validate. It refuses nothing validate accepts, but
    damage validate's reader does not see (a record's two size copies disagreeing, which
    pycdlib reads past silently)."""
    refused_only_here = []
    refused = 0
    for image in _corrupted_isos():
        ours = drive_check.problems(image)
        refused += bool(ours)
        if ours and not validate(image):
            refused_only_here.extend(ours)
    assert all("little-endian but" in p or "beyond the end of the volume" in p
               for p in refused_only_here), refused_only_here
    assert refused >= 30    # the walk does notice damage on its way (42 of these 300)


def test_a_chain_too_short_for_its_size_is_refused_where_nobody_reads_the_file() -> None:
    """validate refuses a FAT file whose cluster chain cannot hold its size even when no
    rule reads it (user_data, an embedded file); so does the agent's check."""
    files = {**read_tree(bad_drives.good_iso()), "A": b"a" * 5000}
    image = write_tree(files, fmt=formats.VFAT)
    assert drive_check.problems(image) == [] and validate(image) == []
    offset, entry = short_entry(image, b"A          ")
    cluster = Boot(image).spc * Boot(image).sector_size
    # one byte more than its clusters hold (the data area has room for it: no cross-link)
    grown = patched(image, offset + 28, struct.pack("<I", -(-5000 // cluster) * cluster + 1))
    assert validate(grown) != []
    assert any("/A: " in problem and "chain has" in problem
               for problem in drive_check.problems(grown)), drive_check.problems(grown)
