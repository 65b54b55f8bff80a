"""One copy of each file on FAT: which version directories a FAT config drive carries."""

from __future__ import annotations

import random

import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    build_image,
    inspect,
    iso9660,
    layout,
    read_tree,
    rebuild_image,
    vfat,
)

UUID = "5d0c1f7e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"
MIB = 1024 * 1024
#: The issue's bound: a FAT drive at most this much larger than the ISO of the same input.
MAX_RATIO = 1.25
LATEST_FILES = ("meta_data.json", "network_data.json", "user_data", "vendor_data.json",
                "vendor_data2.json")  # fmt: skip


def drive(user_data_size: int) -> dict[str, object]:
    return {
        "meta_data": {"name": "big", "public_keys": {"k": "ssh-ed25519 AAAA k@x"},
                      "files": [{"path": "/etc/motd", "contents": "hi\n"}]},
        "user_data": random.Random(user_data_size).randbytes(user_data_size),
        "network_data": {"links": [], "networks": [], "services": []},
        "vendor_data": {"v": 1},
    }


def tree(**changes: bytes | None) -> dict[str, bytes]:
    files = layout.build_tree(drive(100), node_uuid=UUID)
    files.update(changes)  # type: ignore[arg-type]
    return {path: data for path, data in files.items() if data is not None}


def test_layout_tree_keeps_latest_content_and_ec2_latest_meta_data() -> None:
    files = tree()
    folded = vfat.fold_versions(files)
    assert sorted(folded) == sorted(
        [f"openstack/latest/{name}" for name in LATEST_FILES]
        + ["openstack/content/0000", "ec2/latest/meta-data.json"]
    )
    assert all(folded[path] == files[path] for path in folded)
    assert list(folded) == [path for path in files if path in folded]  # order kept


@pytest.mark.parametrize(
    "change",
    [
        # A Nova-built ISO gates keys by version: the dated meta_data.json differs.
        {"openstack/2016-06-30/meta_data.json": b'{"uuid": "u"}'},
        # A file latest does not have.
        {"openstack/2012-08-10/extra.json": b"{}"},
        # latest without meta_data.json: cloud-init could not use it.
        {"openstack/latest/meta_data.json": None},
    ],
)
def test_openstack_tree_is_kept_whole_unless_latest_reads_the_same(
        change: dict[str, bytes | None]) -> None:
    files = tree(**change)
    folded = vfat.fold_versions(files)
    openstack = {p: d for p, d in files.items() if p.startswith("openstack/")}
    assert {p: d for p, d in folded.items() if p.startswith("openstack/")} == openstack
    assert not any(p.startswith("ec2/") and "/latest/" not in p for p in folded)


def test_ec2_user_data_is_kept_when_it_is_not_a_copy() -> None:
    folded = vfat.fold_versions(tree(**{"ec2/latest/user-data": b"other"}))
    assert folded["ec2/latest/user-data"] == b"other"


def test_other_paths_are_kept() -> None:
    files = {
        "openstack/latest/meta_data.json": b"{}",
        "openstack/2012-08-10/meta_data.json": b"{}",
        "openstack/notes/a": b"a",
        "openstack/README": b"r",
        "ec2/README": b"e",
        "cloudstack/userdata/user_data.txt": b"u",
        "top": b"t",
    }
    assert vfat.fold_versions(files) == {p: d for p, d in files.items() if "2012" not in p}


def test_a_tree_without_versions_is_unchanged() -> None:
    files = {"a/b": b"1", "openstack/2012-08-10/meta_data.json": b"{}"}
    assert vfat.fold_versions(files) == files


@pytest.mark.parametrize("sector_size", [512, 4096])
@pytest.mark.parametrize("user_data_mib", [0, 1, 8, 60])
def test_vfat_is_at_most_a_quarter_larger_than_the_iso(user_data_mib: int,
                                                        sector_size: int) -> None:
    source = drive(user_data_mib * MIB)
    iso = build_image(source, fmt=ISO9660, node_uuid=UUID)
    fat = build_image(source, fmt=VFAT, node_uuid=UUID, sector_size=sector_size)
    assert len(fat) <= MAX_RATIO * len(iso), (len(fat), len(iso))
    files = read_tree(fat)
    assert files["openstack/latest/user_data"] == source["user_data"]
    assert files == vfat.fold_versions(layout.build_tree(source, node_uuid=UUID))


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_what_cloud_init_and_glean_read_is_there(sector_size: int) -> None:
    source = drive(MIB)
    fat = build_image(source, fmt=VFAT, node_uuid=UUID, sector_size=sector_size)
    report = inspect(fat)
    assert report.valid, report.problems
    # No dated directory: cloud-init falls back to latest, the only one glean reads.
    assert report.cloud_init_version == "latest"
    files = vfat.read_fat(fat)
    iso_files = iso9660.read_iso(build_image(source, fmt=ISO9660, node_uuid=UUID))
    for name in LATEST_FILES:
        path = f"openstack/latest/{name}"
        assert files[path] == iso_files[path] == iso_files[f"openstack/2018-08-27/{name}"]
    assert files["ec2/latest/meta-data.json"] == iso_files["ec2/latest/meta-data.json"]
    assert files["openstack/content/0000"] == b"hi\n"


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_same_input_same_image(sector_size: int) -> None:
    first = build_image(drive(8 * MIB), fmt=VFAT, node_uuid=UUID, sector_size=sector_size)
    again = build_image(drive(8 * MIB), fmt=VFAT, node_uuid=UUID, sector_size=sector_size)
    assert first == again


def test_rebuilt_iso_is_folded_too() -> None:
    """The agent's ISO to 4Kn vfat rebuild: an 8 MiB user_data drive fits."""
    iso = build_image(drive(8 * MIB), fmt=ISO9660, node_uuid=UUID)
    fat = rebuild_image(iso, fmt=VFAT, sector_size=4096)
    assert len(fat) <= MAX_RATIO * len(iso)
    assert read_tree(fat) == vfat.fold_versions(read_tree(iso))


def test_dated_meta_data_with_fewer_keys_is_still_a_copy_of_latest() -> None:
    # Keys Nova gates by version (project_id from 2015-10-15, dedicated_cpus from
    # 2020-10-14) make the dated meta_data.json differ from latest's, as our build writes it.
    configdrive = drive(100)
    configdrive["meta_data"] = {"name": "big", "project_id": "p", "dedicated_cpus": [1]}
    files = layout.build_tree(configdrive, node_uuid=UUID)
    assert files["openstack/2012-08-10/meta_data.json"] != files[
        "openstack/latest/meta_data.json"]
    folded = vfat.fold_versions(files)
    assert not any(p.startswith("openstack/20") for p in folded)
    assert "openstack/latest/meta_data.json" in folded
