import json
import os

import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    build,
    build_image,
    errors,
    formats,
    inspect,
    layout,
    read_tree,
    rebuild_image,
    vfat,
)

UUID = "0f4e8a1c-5b2d-4c3e-9f1a-2b3c4d5e6f70"
CONFIGDRIVE = {
    "meta_data": {
        "name": "node-1",
        "public_keys": {"k": "ssh-ed25519 AAAA k@x"},
        "files": [{"path": "/etc/motd", "contents": "hi\n"}],
    },
    "user_data": "#cloud-config\n",
    "network_data": {"links": [], "networks": [], "services": []},
    "vendor_data": {"v": 1},
}


@pytest.mark.parametrize("fmt", [ISO9660, VFAT])
def test_build_then_read_gives_the_same_tree(fmt):
    image = build_image(CONFIGDRIVE, fmt=fmt, node_uuid=UUID)
    expected = layout.build_tree(CONFIGDRIVE, node_uuid=UUID)
    # FAT cannot store equal files once: it carries the copies its readers need.
    assert read_tree(image) == (expected if fmt == ISO9660 else vfat.fold_versions(expected))
    assert formats.detect_format(image) == fmt


@pytest.mark.parametrize("fmt,sector_size", [(ISO9660, 512), (VFAT, 512), (VFAT, 4096)])
def test_builds_are_reproducible(fmt, sector_size, monkeypatch):
    first = build_image(CONFIGDRIVE, fmt=fmt, node_uuid=UUID, sector_size=sector_size)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    reordered = dict(reversed(list(CONFIGDRIVE.items())))
    assert build_image(reordered, fmt=fmt, node_uuid=UUID, sector_size=sector_size) == first


def test_different_timestamps_give_different_images():
    a = build_image(CONFIGDRIVE, node_uuid=UUID)
    b = build_image(CONFIGDRIVE, node_uuid=UUID, timestamp=formats.DEFAULT_TIMESTAMP + 86400)
    assert a != b and read_tree(a) == read_tree(b)


def test_vfat_4k_sectors():
    image = build_image(CONFIGDRIVE, fmt=VFAT, node_uuid=UUID, sector_size=4096)
    assert int.from_bytes(image[11:13], "little") == 4096
    assert inspect(image).valid


def test_large_user_data_is_stored_once_in_iso():
    user_data = os.urandom(8 * 1024 * 1024)
    image = build_image({"user_data": user_data}, node_uuid=UUID)
    # 20 copies are referenced (10 openstack + 10 ec2 directories), one is stored.
    assert len(image) < 9 * 1024 * 1024
    assert read_tree(image)["openstack/2013-04-04/user_data"] == user_data


def test_large_user_data_is_stored_once_in_vfat():
    user_data = os.urandom(8 * 1024 * 1024)
    image = build_image({"user_data": user_data}, fmt=VFAT, node_uuid=UUID)
    assert len(image) < 9 * 1024 * 1024
    assert read_tree(image)["openstack/latest/user_data"] == user_data


def test_user_data_over_the_cap_in_vfat_is_refused():
    with pytest.raises(errors.SizeLimitExceeded, match="64 MiB"):
        build_image({"user_data": b"x" * (formats.MAX_IMAGE_SIZE - 1024)}, fmt=VFAT,
                    node_uuid=UUID)


def test_user_data_over_the_cap_is_refused_before_building():
    with pytest.raises(errors.SizeLimitExceeded):
        build_image({"user_data": b"x" * (formats.MAX_IMAGE_SIZE + 1)}, node_uuid=UUID)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fmt": "udf"}, "unknown image format 'udf'"),
        ({"fmt": ISO9660, "sector_size": 4096}, "use vfat for 4096-byte sectors"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(errors.InvalidInputError, match=match):
        build_image(CONFIGDRIVE, node_uuid=UUID, **kwargs)


def test_rebuild_iso_as_4k_vfat_keeps_every_file_a_reader_needs():
    iso = build_image(CONFIGDRIVE, node_uuid=UUID)
    fat = rebuild_image(iso, fmt=VFAT, sector_size=4096)
    assert formats.detect_format(fat) == VFAT
    assert read_tree(fat) == vfat.fold_versions(read_tree(iso))
    assert inspect(fat).valid


def test_read_tree_rejects_non_images():
    with pytest.raises(errors.UnknownFormatError):
        read_tree(b"\0" * 40000)


def test_write_tree_checks_the_cap_of_the_result():
    with pytest.raises(errors.SizeLimitExceeded):
        build.write_tree({"a": b"x" * 5000}, cap=4096)


def test_meta_data_json_is_compact_and_sorted():
    tree = read_tree(build_image(CONFIGDRIVE, node_uuid=UUID))
    meta = json.loads(tree["openstack/latest/meta_data.json"])
    assert meta["uuid"] == UUID and meta["hostname"] == "node-1"
