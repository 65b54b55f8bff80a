import json

import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    build_image,
    inspect,
    iso9660,
    layout,
    pack,
    validate,
)

UUID = "7b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


def tree(**overrides):
    files = layout.build_tree({"meta_data": {"name": "h1"}}, node_uuid=UUID)
    files.update(overrides)
    return {k: v for k, v in files.items() if v is not None}


@pytest.mark.parametrize("fmt", [ISO9660, VFAT])
def test_report_of_a_good_drive(fmt):
    image = build_image({"meta_data": {"name": "h1"}, "user_data": "ud"}, fmt=fmt, node_uuid=UUID)
    report = inspect(pack(image))
    assert report.valid, report.problems
    assert report.format == fmt and report.encoding == "base64+gzip"
    assert report.label == ("config-2" if fmt == ISO9660 else "CONFIG-2")
    assert report.uuid == UUID and report.hostname == "h1"
    assert report.openstack_versions == [*layout.OPENSTACK_VERSIONS, "latest"]
    assert report.cloud_init_version == "2020-10-14"
    assert "openstack/latest/user_data" in report.files
    assert report.as_dict()["valid"] is True
    assert validate(image) == []


@pytest.mark.parametrize(
    "files,problem",
    [
        (tree(**{"openstack/latest/meta_data.json": b'{"name": "x"}'}), "no 'uuid'"),
        (tree(**{"openstack/2020-10-14/meta_data.json": b"{not json"}), "not valid JSON"),
        ({p: v for p, v in tree().items() if "/latest/" not in p}, "openstack/latest/ is missing"),
        ({"ec2/latest/meta-data.json": b"{}"}, "no openstack/<version>/ directory"),
        (
            tree(**{"openstack/latest/network_data.json": b'{"links": {}}'}),
            "'links' must be a list",
        ),
        (
            tree(
                **{
                    "openstack/latest/meta_data.json": json.dumps(
                        {"uuid": UUID, "public_keys": {"k": 1}}
                    ).encode()
                }
            ),
            "public_keys",
        ),
        (
            tree(
                **{
                    "openstack/latest/meta_data.json": json.dumps(
                        {"uuid": UUID, "files": [{"path": "/a", "content_path": "/content/0009"}]}
                    ).encode()
                }
            ),
            "missing /content/0009",
        ),
        (
            tree(**{"openstack/latest/meta_data.json": json.dumps(
                {"uuid": UUID, "files": {"path": "/a"}}).encode()}),
            "'files' must be a list",
        ),
        (
            tree(**{"openstack/latest/meta_data.json": json.dumps(
                {"uuid": UUID, "files": [{"path": "/a", "content_path": 7}]}).encode()}),
            "needs a content_path string",
        ),
    ],
)
def test_problems_are_named(files, problem):
    problems = validate(iso9660.write_iso(files))
    assert any(problem in text for text in problems), problems


def test_wrong_label():
    image = iso9660.write_iso(tree(), label="cidata")
    assert any("volume label is 'cidata'" in p for p in validate(image))


def test_only_unknown_versions_and_no_latest():
    files = {"openstack/2099-01-01/meta_data.json": json.dumps({"uuid": UUID}).encode()}
    problems = validate(iso9660.write_iso(files))
    assert any("no version cloud-init knows" in p for p in problems)


def test_garbage_is_reported_not_raised():
    report = inspect(b"hello")
    assert not report.valid and report.format is None
    assert "unrecognised" in report.problems[0] or "signature" in report.problems[0]
