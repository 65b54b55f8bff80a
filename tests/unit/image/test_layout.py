import json

import pytest

from ironic_configdrive.image import errors, layout

UUID = "8d9e4a2c-1f9b-4a51-9b6c-0f6ddc1a2b3c"


def tree_for(**configdrive):
    return layout.build_tree(configdrive, node_uuid=UUID)


def meta(tree, version="latest"):
    return json.loads(tree[f"openstack/{version}/meta_data.json"])


def test_every_version_and_gating():
    tree = tree_for(
        meta_data={"name": "web1"},
        user_data="#cloud-config\n",
        network_data={"links": []},
        vendor_data={"a": 1},
    )
    for version in (*layout.OPENSTACK_VERSIONS, "latest"):
        assert f"openstack/{version}/meta_data.json" in tree
        assert tree[f"openstack/{version}/user_data"] == b"#cloud-config\n"
    assert "openstack/2013-04-04/vendor_data.json" not in tree
    assert "openstack/2013-10-17/vendor_data.json" in tree
    assert "openstack/2013-10-17/network_data.json" not in tree
    assert "openstack/2015-10-15/network_data.json" in tree
    assert "openstack/2016-06-30/vendor_data2.json" not in tree
    assert "openstack/2016-10-06/vendor_data2.json" in tree
    assert json.loads(tree["openstack/latest/vendor_data2.json"]) == {"a": 1}
    assert json.loads(tree["openstack/latest/vendor_data.json"]) == {}
    for version in (*layout.EC2_VERSIONS, "latest"):
        assert tree[f"ec2/{version}/user-data"] == b"#cloud-config\n"
        assert json.loads(tree[f"ec2/{version}/meta-data.json"])["instance-id"] == UUID


def test_ironic_defaults_uuid_name_hostname():
    tree = layout.build_tree({"meta_data": {}}, node_uuid=UUID, node_name="node-7")
    assert meta(tree) == {"uuid": UUID, "name": "node-7", "hostname": "node-7"}
    tree = tree_for(meta_data={"uuid": "given", "name": "n", "hostname": "h"})
    assert meta(tree) == {"uuid": "given", "name": "n", "hostname": "h"}


def test_missing_uuid_without_node_is_an_error():
    with pytest.raises(errors.InvalidInputError, match="uuid"):
        layout.build_tree({"meta_data": {"name": "x"}})


@pytest.mark.parametrize(
    "user_data,expected",
    [
        ("text", b"text"),
        (b"\x00\xffbinary", b"\x00\xffbinary"),
        ({"ignition": {"version": "3.0.0"}}, b'{"ignition": {"version": "3.0.0"}}'),
        ([1, 2], b"[1, 2]"),
    ],
)
def test_user_data_forms(user_data, expected):
    assert tree_for(user_data=user_data)["openstack/latest/user_data"] == expected


def test_no_user_data_means_no_file():
    tree = tree_for()
    assert not any(path.endswith(("user_data", "user-data")) for path in tree)


def test_identical_files_share_one_object_for_dedup():
    tree = tree_for(user_data="x" * 1000)
    objects = {id(tree[f"openstack/{v}/user_data"]) for v in layout.OPENSTACK_VERSIONS}
    assert len(objects) == 1
    assert layout.content_size(tree) < sum(len(v) for v in tree.values())


def test_files_go_to_content_with_content_path():
    tree = tree_for(
        meta_data={
            "files": [
                {"path": "/etc/motd", "contents": "hello"},
                {"path": "/etc/bin", "contents": "AAEC", "encoding": "base64"},
            ]
        }
    )
    assert tree["openstack/content/0000"] == b"hello"
    assert tree["openstack/content/0001"] == b"\x00\x01\x02"
    assert meta(tree)["files"] == [
        {"path": "/etc/motd", "content_path": "/content/0000"},
        {"path": "/etc/bin", "content_path": "/content/0001"},
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "/etc/x", "contents": "a", "content_path": "/content/../../etc"},
        {"path": "/etc/x", "contents": "a", "content_path": "../outside"},
        {"path": "/etc/x", "contents": "a", "content_path": "/openstack/latest/meta_data.json"},
        {"path": "/etc/x", "contents": "a", "content_path": "/content/"},
        {"path": "/etc/x", "contents": "a", "content_path": "/content/a\\..\\b"},
        {"path": "/etc/../root/.ssh/authorized_keys", "contents": "a"},
    ],
)
def test_paths_escaping_the_tree_are_refused(entry):
    with pytest.raises(errors.UnsafePathError):
        tree_for(meta_data={"files": [entry]})


@pytest.mark.parametrize(
    "configdrive,match",
    [
        ({"meta_data": [1]}, "meta_data must be a JSON object"),
        ({"meta_data": {"x": float("nan")}}, "meta_data.x is NaN or infinite"),
        ({"meta_data": {"x": object()}}, "meta_data.x is of type object, which JSON cannot hold"),
        ({"user_data": 42}, "user_data must be"),
        ({"network_data": "links"}, "network_data must be a JSON object"),
        ({"bogus": 1}, "unknown config drive key"),
        ({"meta_data": {"files": {"a": 1}}}, "files must be a list"),
        ({"meta_data": {"files": [{"path": "relative", "contents": "x"}]}}, "absolute path"),
        ({"meta_data": {"files": [{"path": "/x"}]}}, "no 'contents'"),
        (
            {"meta_data": {"files": [{"path": "/x", "contents": "!!", "encoding": "base64"}]}},
            "not valid base64",
        ),
    ],
)
def test_invalid_input(configdrive, match):
    with pytest.raises(errors.InvalidInputError, match=match):
        tree_for(**configdrive)


def test_not_a_mapping():
    with pytest.raises(errors.InvalidInputError, match="JSON object"):
        layout.build_tree("meta_data", node_uuid=UUID)  # type: ignore[arg-type]


def test_cloudstack_layout_is_optional():
    configdrive = {
        "meta_data": {
            "name": "h",
            "admin_pass": "s3cret",
            "public_keys": {"k": "ssh-ed25519 AAA"},
        },
        "user_data": "ud",
    }
    assert not any(p.startswith("cloudstack/") for p in tree_for(**configdrive))
    tree = layout.build_tree(configdrive, node_uuid=UUID, cloudstack=True)
    assert tree["cloudstack/metadata/local-hostname.txt"] == b"h"
    assert tree["cloudstack/metadata/vm-id.txt"] == UUID.encode()
    assert tree["cloudstack/metadata/public-keys.txt"] == b"ssh-ed25519 AAA"
    assert tree["cloudstack/password/vm_password.txt"] == b"s3cret"
    assert tree["cloudstack/password/vm-password-md5checksum.txt"] == (
        b"33e1b232a4e6fa0028a6670753749a17"
    )
    assert tree["cloudstack/userdata/user_data.txt"] == b"ud"
    for name in ("availability-zone", "instance-id", "service-offering", "cloud-identifier"):
        assert f"cloudstack/metadata/{name}.txt" in tree


def test_input_is_not_modified():
    configdrive = {"meta_data": {"files": [{"path": "/a", "contents": "x"}]}}
    tree_for(**configdrive)
    assert configdrive == {"meta_data": {"files": [{"path": "/a", "contents": "x"}]}}


def test_ec2_public_keys_and_placement_gating():
    tree = tree_for(
        meta_data={
            "public_keys": {"mykey": "ssh-rsa AAA"},
            "availability_zone": "az1",
            "hostname": "h1",
        }
    )
    latest = json.loads(tree["ec2/latest/meta-data.json"])
    assert latest["public-keys"] == {"0": {"openssh-key": "ssh-rsa AAA"}}
    assert latest["placement"] == {"availability-zone": "az1"}
    assert latest["local-hostname"] == "h1"
    assert "placement" not in json.loads(tree["ec2/2007-12-15/meta-data.json"])


def test_every_version_nova_34_writes():
    # nova/api/metadata/base.py, OPENSTACK_VERSIONS (Nova 34, 2026.2)
    assert layout.OPENSTACK_VERSIONS == (
        "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
        "2017-02-22", "2018-08-27", "2020-10-14", "2025-04-04")  # fmt: skip
    tree = tree_for(network_data={"links": []}, vendor_data={"a": 1})
    for name in ("meta_data.json", "vendor_data.json", "network_data.json",
                 "vendor_data2.json"):
        assert f"openstack/2025-04-04/{name}" in tree
    assert (layout.VENDOR_DATA_SINCE, layout.NETWORK_DATA_SINCE, layout.VENDOR_DATA2_SINCE) == (
        "2013-10-17", "2015-10-15", "2016-10-06")


NIC_VLAN = {"type": "nic", "bus": "pci", "address": "0:0:1", "mac": "52:54:00:00:00:01",
            "vlan": 42}
NIC_TAGGED = {"type": "nic", "bus": "pci", "address": "0:0:2", "mac": "52:54:00:00:00:02",
              "tags": ["db"], "vf_trusted": True}
SHARE = {"type": "share", "bus": "none", "address": "none", "share_id": "s1", "tag": "data"}
DISK = {"type": "disk", "bus": "scsi", "address": "0:0:0:0", "serial": "d1"}
GATED_META = {"name": "n", "random_seed": "c2VlZA==", "project_id": "p1",
              "devices": [NIC_VLAN, NIC_TAGGED, SHARE, DISK], "dedicated_cpus": [2, 3]}


@pytest.mark.parametrize("version,keys", [
    ("2012-08-10", {"uuid", "name", "hostname"}),
    ("2013-04-04", {"uuid", "name", "hostname", "random_seed"}),
    ("2015-10-15", {"uuid", "name", "hostname", "random_seed", "project_id"}),
    ("2016-06-30", {"uuid", "name", "hostname", "random_seed", "project_id", "devices"}),
    ("2020-10-14", set(GATED_META) | {"uuid", "hostname"}),
    ("latest", set(GATED_META) | {"uuid", "hostname"}),
])
def test_meta_data_keys_appear_from_the_version_nova_adds_them(version, keys):
    assert set(meta(tree_for(meta_data=GATED_META), version)) == keys


@pytest.mark.parametrize("version,devices", [
    # A NIC with only a VLAN is not listed before VLANs are (Nova lists a NIC for its tags,
    # vlan or vf_trusted); shares come with 2025-04-04.
    ("2016-06-30", [{k: v for k, v in NIC_TAGGED.items() if k != "vf_trusted"}, DISK]),
    ("2017-02-22", [NIC_VLAN, {k: v for k, v in NIC_TAGGED.items() if k != "vf_trusted"},
                    DISK]),
    ("2018-08-27", [NIC_VLAN, NIC_TAGGED, DISK]),
    ("2020-10-14", [NIC_VLAN, NIC_TAGGED, DISK]),
    ("2025-04-04", [NIC_VLAN, NIC_TAGGED, SHARE, DISK]),
    ("latest", [NIC_VLAN, NIC_TAGGED, SHARE, DISK]),
])
def test_device_fields_appear_from_the_version_nova_adds_them(version, devices):
    assert meta(tree_for(meta_data=GATED_META), version)["devices"] == devices


def test_versions_showing_the_same_meta_data_share_its_bytes():
    tree = tree_for(meta_data=GATED_META)
    same = {id(tree[f"openstack/{v}/meta_data.json"]) for v in ("2025-04-04", "latest")}
    assert len(same) == 1
    plain = tree_for(meta_data={"name": "n"})
    assert len({id(plain[f"openstack/{v}/meta_data.json"])
                for v in (*layout.OPENSTACK_VERSIONS, "latest")}) == 1
