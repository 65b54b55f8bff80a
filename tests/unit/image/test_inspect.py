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
    rules,
    validate,
)
from tests.fixtures.memory import one_copy, traced_peak

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
    if fmt == ISO9660:
        assert report.openstack_versions == [*layout.OPENSTACK_VERSIONS, "latest"]
        # cloud-init knows versions up to 2018-08-27 only, fewer than Nova writes.
        assert report.cloud_init_version == "2018-08-27"
    else:  # one copy of each file: cloud-init reads latest (see vfat.fold_versions)
        assert report.openstack_versions == report.ec2_versions == ["latest"]
        assert report.cloud_init_version == "latest"
    assert "openstack/latest/user_data" in report.files
    assert report.as_dict()["valid"] is True
    assert validate(image) == []


@pytest.mark.parametrize(
    "files,problem",
    [
        (tree(**{"openstack/latest/meta_data.json": b'{"name": "x"}'}),
         "meta_data.uuid is missing"),
        (tree(**{f"openstack/{layout.OPENSTACK_VERSIONS[-1]}/meta_data.json": b"{not json"}),
         "not valid JSON"),
        # the version cloud-init reads is checked, not only the newest
        (tree(**{"openstack/2018-08-27/meta_data.json": b"{not json"}), "2018-08-27"),
        ({p: v for p, v in tree().items() if "/latest/" not in p}, "openstack/latest/ is missing"),
        ({"ec2/latest/meta-data.json": b"{}"}, "no openstack/<version>/ directory"),
        (
            tree(**{"openstack/latest/network_data.json": b'{"links": {}}'}),
            "network_data.links must be a list",
        ),
        (
            tree(
                **{
                    "openstack/latest/meta_data.json": json.dumps(
                        {"uuid": UUID, "public_keys": {"k": 1}}
                    ).encode()
                }
            ),
            "meta_data.public_keys.k must be a key string",
        ),
        (
            tree(
                **{
                    "openstack/latest/meta_data.json": json.dumps(
                        {"uuid": UUID, "files": [{"path": "/a", "content_path": "/content/0009"}]}
                    ).encode()
                }
            ),
            "meta_data.files[0].content_path refers to missing /content/0009",
        ),
        (
            tree(**{"openstack/latest/meta_data.json": json.dumps(
                {"uuid": UUID, "files": {"path": "/a"}}).encode()}),
            "meta_data.files must be a list",
        ),
        (
            tree(**{"openstack/latest/meta_data.json": json.dumps(
                {"uuid": UUID, "files": [{"path": "/a", "content_path": 7}]}).encode()}),
            "meta_data.files[0].content_path must be a non-empty string",
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


# -- the label as blkid reads it: Joliet's, where the two descriptors disagree ---------------

def set_label(image: bytes, label: str, *, joliet: bool) -> bytes:
    """``image`` with the primary (or Joliet) volume descriptor's label replaced."""
    raw = bytearray(image)
    for sector in range(16, 32):
        desc = raw[sector * 2048 : sector * 2048 + 2048]
        if joliet and desc[0] == 2 and desc[88:91] == b"%/E":
            field = (label.encode("utf-16-be") + b"\x00 " * 16)[:32]
        elif not joliet and desc[0] == 1:
            field = label.encode("ascii").ljust(32)
        else:
            continue
        raw[sector * 2048 + 40 : sector * 2048 + 72] = field
        return bytes(raw)
    raise AssertionError("no such volume descriptor")


@pytest.fixture(scope="module")
def iso_image():
    return build_image({"meta_data": {"name": "h1"}}, node_uuid=UUID)


def test_joliet_label_that_differs_is_what_blkid_reports(iso_image):
    report = inspect(set_label(iso_image, "other", joliet=True))
    assert report.label == "other"
    assert any("volume label is 'config-2' in the primary volume descriptor but 'other' in "
               "the Joliet one" in p for p in report.problems), report.problems
    assert any("volume label is 'other'; cloud-init looks for" in p for p in report.problems)


def test_primary_label_that_differs_from_joliet(iso_image):
    report = inspect(set_label(iso_image, "WRONG", joliet=False))
    assert report.label == "config-2"  # blkid: Joliet's, since the two do not merge
    assert report.problems == [
        "volume label is 'WRONG' in the primary volume descriptor but 'config-2' in the "
        "Joliet one, and blkid (which cloud-init uses to find the drive) reports 'config-2'; "
        "write the same label, 'config-2', in both"]


def test_label_case_differs(iso_image):
    report = inspect(set_label(iso_image, "CONFIG-2", joliet=True))
    assert report.label == "config-2"  # blkid merges case-insensitively, keeping lower case
    assert len(report.problems) == 1 and "'CONFIG-2' in the Joliet one" in report.problems[0]


def test_blank_joliet_label(iso_image):
    report = inspect(set_label(iso_image, "", joliet=True))
    assert report.label is None
    assert any("volume label is None" in p for p in report.problems)


def test_same_label_in_both_is_valid(iso_image):
    both = set_label(set_label(iso_image, "config-2", joliet=True), "config-2", joliet=False)
    assert validate(both) == []


@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_deep_json_in_the_image_is_a_problem_not_a_crash(depth):
    meta = f'{{"uuid": "{UUID}", "x": ' + "[" * depth + "]" * depth + "}"
    files = tree(**{f"openstack/{v}/meta_data.json": meta.encode()
                    for v in (*layout.OPENSTACK_VERSIONS, "latest")})
    problems = validate(iso9660.write_iso(files))
    assert ("openstack/latest/meta_data.json: meta_data nests arrays and objects deeper than "
            "64 levels; flatten it") in problems


def test_text_read_back_is_checked_like_build_checks_it():
    meta = json.dumps({"uuid": UUID, "hostname": "\ud800", "name": "a\x00b"}).encode()
    report = inspect(iso9660.write_iso(tree(**{"openstack/latest/meta_data.json": meta,
                                               "openstack/2020-10-14/meta_data.json": meta})))
    assert any("meta_data.hostname is not valid Unicode text" in p for p in report.problems)
    assert report.hostname is None or isinstance(report.hostname, str)
    json.dumps(report.as_dict())


# -- memory: a drive is read for its JSON documents, not for its user_data ---------------------

BIG_USER_DATA = 8 * 1024 * 1024


@pytest.fixture(scope="module", params=[ISO9660, VFAT])
def big_drive(request):
    """A drive with 8 MiB of user_data (about twenty copies of it on ISO9660, one on vfat)."""
    user_data = "".join(f"#{n:07d}\n" for n in range(BIG_USER_DATA // 9))
    return build_image({"meta_data": {"name": "h1"}, "user_data": user_data},
                       fmt=request.param, node_uuid=UUID)


def test_user_data_is_not_read_into_memory(big_drive):
    report, peak = traced_peak(lambda: inspect(big_drive))
    assert report.valid, report.problems
    assert report.files["openstack/latest/user_data"] > BIG_USER_DATA * 0.99
    # Reading user_data once would take 8 MiB (every version's copy: ~160 MiB on ISO9660);
    # the raw image given is used as it is, not copied.
    assert peak < BIG_USER_DATA / 8, peak


def test_an_encoded_drive_is_decoded_into_one_copy(big_drive):
    wire = pack(big_drive)
    report, peak = traced_peak(lambda: inspect(wire))
    assert report.valid and report.encoding == "base64+gzip"
    assert peak < one_copy(len(big_drive)), (peak, len(big_drive))



def test_a_json_document_over_the_cap_is_a_problem_and_not_parsed(monkeypatch):
    cap = rules.MAX_JSON_DOCUMENT_BYTES
    meta = json.dumps({"uuid": UUID}).encode()
    at_cap = b'{"a": "' + b"x" * (cap - 9) + b'"}'
    parsed = []
    real = rules.loads
    monkeypatch.setattr(rules, "loads", lambda text, field, *a: parsed.append(len(text))
                        or real(text, field, *a))
    files = tree(**{"openstack/latest/meta_data.json": meta,
                    "openstack/latest/vendor_data2.json": at_cap})
    assert validate(iso9660.write_iso(files)) == []
    assert cap in parsed
    parsed.clear()
    files["openstack/latest/vendor_data2.json"] = b" " + at_cap
    assert validate(iso9660.write_iso(files)) == [
        f"openstack/latest/vendor_data2.json: vendor_data is {cap + 1} bytes of JSON, more "
        "than the 4 MiB a metadata document may be (every reader parses it whole); make it "
        "smaller"]
    assert cap + 1 not in parsed
