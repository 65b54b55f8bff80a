"""Our drives as their consumers and upstream's tools see them.

Files are extracted with independent tools (xorriso for ISO9660, mtools for FAT), then read by
Debian's cloud-init and by glean; openstacksdk's genisoimage drives go through our decoder.
"""

import argparse
import json
import os
import subprocess

import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    build_image,
    inspect,
    read_tree,
    unpack,
    validate,
)
from tests.conftest import require_root, require_tool, skip_or_fail

pytestmark = pytest.mark.interop

UUID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MAC = "52:54:00:aa:bb:cc"
CONFIGDRIVE = {
    "meta_data": {
        "name": "glean-host",
        "public_keys": {"ops": "ssh-ed25519 AAAATEST ops@x"},
        "files": [{"path": "/etc/motd", "contents": "hello\n"}],
    },
    "user_data": "#cloud-config\nhostname: ud-host\n",
    "network_data": {
        "links": [{"id": "p0", "type": "phy", "ethernet_mac_address": MAC, "mtu": 9000}],
        "networks": [
            {
                "id": "n0",
                "type": "ipv4",
                "link": "p0",
                "ip_address": "192.0.2.7",
                "netmask": "255.255.255.0",
                "gateway": "192.0.2.1",
                "routes": [],
                "network_id": "n0",
            }
        ],
        "services": [{"type": "dns", "address": "192.0.2.53"}],
    },
    "vendor_data": {"vendor": True},
}
SYSTEM_PYTHON = "/usr/bin/python3"


def extract(image: bytes, fmt: str, tmp_path) -> str:
    """Unpack an image with a tool that shares no code with us."""
    path = tmp_path / f"drive.{fmt}"
    path.write_bytes(image)
    root = tmp_path / "root"
    root.mkdir()
    if fmt == ISO9660:
        require_tool("xorriso")
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", str(path), "-extract", "/", str(root)],
            check=True,
            capture_output=True,
        )
    else:
        require_tool("mcopy")
        subprocess.run(
            ["mcopy", "-s", "-n", "-i", str(path), "::*", str(root)],
            check=True,
            capture_output=True,
            env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
        )
    return str(root)


CLOUD_INIT_READER = """
import json, sys
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
from cloudinit.sources.helpers import openstack
found = read_config_drive(sys.argv[1])
net = openstack.convert_net_json(found["networkdata"], known_macs={sys.argv[2]: "eth0"})
print(json.dumps({
    "uuid": found["metadata"]["uuid"], "hostname": found["metadata"].get("hostname"),
    "version": found["version"], "userdata": found["userdata"].decode(),
    "files": {k: v.decode() for k, v in found["files"].items()},
    "vendordata2": found["vendordata2"], "keys": found["metadata"].get("public_keys"),
    "net": net,
}))
"""


def cloud_init_read(directory: str) -> dict:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True)
    if probe.returncode != 0:
        skip_or_fail("Debian's cloud-init is not installed (bindep.txt: cloud-init)")
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", CLOUD_INIT_READER, directory, MAC],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


DRIVES = [(ISO9660, 512), (VFAT, 512), (VFAT, 4096)]


@pytest.mark.parametrize("fmt,sector_size", DRIVES)
def test_cloud_init_reads_our_drive(fmt, sector_size, tmp_path):
    image = build_image(CONFIGDRIVE, fmt=fmt, sector_size=sector_size, node_uuid=UUID)
    found = cloud_init_read(extract(image, fmt, tmp_path))
    assert found["uuid"] == UUID
    assert found["hostname"] == "glean-host"
    assert found["version"] == 2
    assert found["userdata"] == CONFIGDRIVE["user_data"]
    assert found["files"] == {"/etc/motd": "hello\n"}
    assert found["vendordata2"] == {"vendor": True}
    assert found["keys"] == {"ops": "ssh-ed25519 AAAATEST ops@x"}
    physical = [c for c in found["net"]["config"] if c["type"] == "physical"][0]
    assert physical["mac_address"] == MAC and physical["mtu"] == 9000
    assert physical["subnets"][0]["address"] == "192.0.2.7"


@pytest.mark.parametrize("fmt,sector_size", DRIVES)
def test_glean_reads_our_drive(fmt, sector_size, tmp_path, capsys):
    from glean import cmd as glean

    image = build_image(CONFIGDRIVE, fmt=fmt, sector_size=sector_size, node_uuid=UUID)
    root = tmp_path / "guest"
    (root / "mnt").mkdir(parents=True)
    (root / "root").mkdir()
    os.rename(extract(image, fmt, tmp_path), root / "mnt" / "config")
    args = argparse.Namespace(root=str(root), noop=True)
    network = glean.get_network_info(args)
    interfaces = glean.get_config_drive_interfaces(network)
    assert interfaces["n0"]["mac_address"] == MAC
    assert interfaces["n0"]["ip_address"] == "192.0.2.7"
    assert glean.get_dns_from_config_drive(network) == ["192.0.2.53"]
    with open(root / "mnt/config/openstack/latest/meta_data.json") as handle:
        meta_data = json.load(handle)
    assert meta_data["name"] == "glean-host"
    glean.write_ssh_keys(args, meta_data)
    assert "ssh-ed25519 AAAATEST ops@x" in capsys.readouterr().out


def sdk_drive(**kwargs) -> str:
    require_tool("genisoimage")
    from openstack.baremetal import configdrive as sdk

    return sdk.build(**kwargs)


def test_openstacksdk_drives_are_accepted():
    packed = sdk_drive(
        metadata={"uuid": UUID, "name": "sdk"},
        user_data=b"#!/bin/sh\n",
        network_data={"links": []},
        vendor_data={"x": 1},
    )
    assert validate(packed) == []
    report = inspect(packed)
    assert report.format == ISO9660 and report.encoding == "base64+gzip"
    assert report.openstack_versions == ["2012-08-10", "latest"]
    assert report.cloud_init_version == "2012-08-10" and report.hostname == "sdk"
    tree = read_tree(unpack(packed))
    assert json.loads(tree["openstack/latest/meta_data.json"]) == {"uuid": UUID, "name": "sdk"}
    assert tree["openstack/latest/user_data"] == b"#!/bin/sh\n"
    assert json.loads(tree["openstack/2012-08-10/vendor_data2.json"]) == {"x": 1}


def test_openstacksdk_drive_without_uuid_is_flagged():
    assert any("uuid" in p for p in validate(sdk_drive(metadata={"name": "x"})))


@pytest.mark.parametrize(
    "fmt,sector_size,label",
    [(ISO9660, 512, "config-2"), (VFAT, 512, "CONFIG-2"), (VFAT, 4096, "CONFIG-2")],
)
def test_blkid_sees_type_and_label(fmt, sector_size, label, tmp_path):
    require_tool("blkid")
    path = tmp_path / "drive"
    path.write_bytes(build_image(CONFIGDRIVE, fmt=fmt, sector_size=sector_size, node_uuid=UUID))
    out = subprocess.run(
        ["blkid", "-p", "-o", "export", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert f"TYPE={fmt}" in out.splitlines() and f"LABEL={label}" in out.splitlines()


@pytest.mark.loopdev
@pytest.mark.parametrize("fmt", [ISO9660, VFAT])
def test_cloud_init_finds_our_drive_on_a_block_device(fmt, tmp_path):
    """cloud-init's own device discovery (blkid by TYPE and LABEL) picks our drive."""
    require_root()
    require_tool("losetup")
    path = tmp_path / "drive.img"
    path.write_bytes(build_image(CONFIGDRIVE, fmt=fmt, node_uuid=UUID))
    device = subprocess.run(
        ["losetup", "-f", "--show", "-r", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        code = (
            "import json; from cloudinit.sources.DataSourceConfigDrive import "
            "find_candidate_devs; print(json.dumps(find_candidate_devs()))"
        )
        out = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True)
        if out.returncode != 0 and "No module named" in out.stderr:
            skip_or_fail("Debian's cloud-init is not installed (bindep.txt: cloud-init)")
        assert device in json.loads(out.stdout), out.stdout
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
