"""Every rule of every reader profile, on facts and on real images."""

import dataclasses
import struct

import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    build_image,
    inspect,
    iso9660,
    layout,
    readers,
    write_tree,
)
from ironic_configdrive.image.formats import ISO_PVD_OFFSET

UUID = "7b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
ALL = set(readers.READERS)


def failing(report_or_facts) -> set[str]:
    if isinstance(report_or_facts, readers.DriveFacts):
        return {p.name for p in readers.profiles() if readers.check(p, report_or_facts)}
    return {name for name, why in report_or_facts.readers.items() if why}


def tree(**overrides):
    files = layout.build_tree({"meta_data": {"name": "h1"}}, node_uuid=UUID)
    files.update(overrides)
    return {k: v for k, v in files.items() if v is not None}


def with_iso_blocks(image: bytes, blocks: int) -> bytes:
    """``image`` whose primary volume descriptor claims ``blocks`` blocks (both-endian)."""
    patched = bytearray(image)
    struct.pack_into("<I", patched, ISO_PVD_OFFSET + 80, blocks)
    struct.pack_into(">I", patched, ISO_PVD_OFFSET + 84, blocks)
    return bytes(patched)


ISO_FACTS = readers.built_drive_facts(ISO9660)


def test_profiles_state_the_researched_facts():
    profiles = readers.PROFILES
    assert list(profiles) == ["cloud-init", "glean", "cloudbase-init", "ignition"]
    assert profiles["ignition"].formats == {ISO9660}
    assert profiles["ignition"].labels == {"config-2"}
    assert not profiles["ignition"].label_any_case
    assert profiles["cloudbase-init"].label_any_case
    assert profiles["cloudbase-init"].max_iso_blocks == 65535
    assert profiles["cloud-init"].versions == readers.NEWEST_KNOWN
    assert {p.versions for n, p in profiles.items() if n != "cloud-init"} == {readers.LATEST_ONLY}
    with pytest.raises(dataclasses.FrozenInstanceError):
        profiles["glean"].name = "x"  # type: ignore[misc]


def test_our_iso_suits_every_reader():
    report = inspect(build_image({"meta_data": {"name": "h1"}}, node_uuid=UUID))
    assert report.readers == {name: [] for name in readers.READERS}
    assert 0 < report.iso_blocks <= 65535
    assert failing(ISO_FACTS) == set()


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_a_vfat_drive_fails_ignition_only(sector_size):
    report = inspect(build_image({"meta_data": {"name": "h1"}}, fmt=VFAT, node_uuid=UUID,
                                 sector_size=sector_size))
    assert report.valid and failing(report) == {"ignition"}
    assert report.readers["ignition"] == [
        "it mounts iso9660 only, and the drive is vfat",
        "volume label is 'CONFIG-2'; it looks for config-2"]


def test_an_iso_over_65535_blocks_fails_cloudbase_init_only():
    assert failing(dataclasses.replace(ISO_FACTS, iso_blocks=65535)) == set()
    assert failing(dataclasses.replace(ISO_FACTS, iso_blocks=65536)) == {"cloudbase-init"}


def test_the_block_count_is_read_from_the_image():
    # Such an ISO (over 128 MiB) is beyond the 64 MiB cap: a patched descriptor stands in
    # (and makes the image look truncated to everyone, which it then is).
    image = build_image({"meta_data": {"name": "h1"}}, node_uuid=UUID)
    report = inspect(with_iso_blocks(image, 70000))
    assert report.iso_blocks == 70000
    reasons = report.readers["cloudbase-init"]
    assert any("16 bits, so a volume of 70000 blocks" in text for text in reasons)
    assert not any("16 bits" in text for text in report.readers["cloud-init"])


def test_the_block_limit_is_about_iso9660_only():
    facts = readers.built_drive_facts(VFAT)
    assert failing(dataclasses.replace(facts, iso_blocks=70000)) == {"ignition"}


def test_upper_case_label_on_iso9660_fails_ignition_but_not_cloudbase_init():
    report = inspect(iso9660.write_iso(tree(), label="CONFIG-2"))
    assert report.label == "CONFIG-2"
    assert failing(report) == {"ignition"}
    assert report.readers["ignition"] == ["volume label is 'CONFIG-2'; it looks for config-2"]


def test_mixed_case_label_suits_cloudbase_init_alone():
    report = inspect(iso9660.write_iso(tree(), label="Config-2"))
    assert failing(report) == ALL - {"cloudbase-init"}
    assert report.readers["cloud-init"] == [
        "volume label is 'Config-2'; it looks for CONFIG-2 or config-2"]


def test_no_label_fails_everyone():
    assert failing(dataclasses.replace(ISO_FACTS, label=None)) == ALL


def test_cloud_init_takes_a_whole_device_whatever_its_label():
    facts = dataclasses.replace(ISO_FACTS, label="cidata", on_partition=False)
    assert failing(facts) == ALL - {"cloud-init"}
    assert failing(dataclasses.replace(facts, on_partition=True)) == ALL


def test_iso9660_on_a_4k_sector_partition_is_unreadable():
    facts = dataclasses.replace(ISO_FACTS, sector_size=4096)
    assert failing(facts) == ALL
    assert "4096-byte sectors" in readers.check(readers.PROFILES["glean"], facts)[0]
    assert failing(dataclasses.replace(ISO_FACTS, sector_size=2048)) == set()


def test_a_built_iso_lands_as_vfat_on_a_4k_disk():
    facts = readers.built_drive_facts(ISO9660, sector_size=4096)
    assert (facts.format, facts.label) == (VFAT, "CONFIG-2")
    assert failing(facts) == {"ignition"}


def test_unknown_filesystem_fails_everyone():
    assert failing(dataclasses.replace(ISO_FACTS, format=None)) == ALL


def test_without_latest_only_cloud_init_reads_it():
    report = inspect(write_tree(tree(**{
        path: None for path in layout.build_tree({}, node_uuid=UUID)
        if path.startswith("openstack/latest/")})))
    assert "latest" not in report.openstack_versions
    assert failing(report) == ALL - {"cloud-init"}
    assert report.readers["glean"] == ["it reads openstack/latest/ only, which is missing"]


def test_without_a_known_version_or_latest_nobody_reads_it():
    facts = dataclasses.replace(ISO_FACTS, openstack_versions=("2099-01-01",),
                                with_meta_data=("2099-01-01",))
    assert failing(facts) == ALL
    assert "newest dated" in readers.check(readers.PROFILES["cloud-init"], facts)[0]


def test_missing_meta_data_counts_for_the_readers_of_that_version():
    facts = dataclasses.replace(ISO_FACTS, with_meta_data=tuple(layout.OPENSTACK_VERSIONS))
    assert failing(facts) == ALL - {"cloud-init"}
    assert readers.check(readers.PROFILES["ignition"], facts) == [
        "it reads openstack/latest/meta_data.json, which is missing"]


def test_a_problem_counts_for_the_readers_of_its_directory():
    newest = readers.CLOUD_INIT_VERSIONS[-1]
    report = inspect(write_tree(tree(**{f"openstack/{newest}/network_data.json": b"{bad"})))
    assert failing(report) == {"cloud-init"}
    report = inspect(write_tree(tree(**{"openstack/latest/network_data.json": b"{bad"})))
    assert failing(report) == ALL - {"cloud-init"}


def test_a_problem_in_a_directory_nobody_reads_is_reported_as_unread():
    oldest = layout.OPENSTACK_VERSIONS[0]
    report = inspect(write_tree(tree(**{f"openstack/{oldest}/vendor_data.json": b"{bad"})))
    assert failing(report) == set()
    assert report.unread and report.unread[0].startswith(f"openstack/{oldest}/")
    assert report.unread[0] in report.problems


def test_a_problem_outside_openstack_counts_for_everyone():
    report = inspect(write_tree(tree(**{"ec2/latest/meta-data.json": b"{bad"})))
    assert failing(report) == ALL


def test_an_undecodable_image_fails_everyone():
    report = inspect(b"\0" * 40000)
    assert failing(report) == ALL
    assert report.readers["glean"] == report.problems


def test_unknown_names_and_selection():
    assert readers.unknown(["glean", "afterburn", "cloud-init", "x"]) == ["afterburn", "x"]
    assert [p.name for p in readers.profiles(["ignition"])] == ["ignition"]
    with pytest.raises(KeyError):
        readers.profiles(["nope"])


def test_iso_blocks_is_none_for_other_filesystems():
    assert readers.iso_blocks(build_image({}, fmt=VFAT, node_uuid=UUID)) is None
    assert readers.iso_blocks(b"") is None


def test_which_version_each_reader_picks_on_a_nova_drive():
    # Nova writes up to 2025-04-04; cloud-init knows up to 2018-08-27 (its OS_VERSIONS).
    nova = (*layout.OPENSTACK_VERSIONS, "latest")
    picks = {name: readers.version_read(profile, nova)
             for name, profile in readers.PROFILES.items()}
    assert picks == {"cloud-init": "2018-08-27", "glean": "latest",
                     "cloudbase-init": "latest", "ignition": "latest"}
    assert readers.version_read(readers.PROFILES["cloud-init"],
                                ("2020-10-14", "2025-04-04", "latest")) == "latest"
