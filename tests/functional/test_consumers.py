"""Our drives as their consumers and upstream's tools see them.

Files are extracted with independent tools (xorriso for ISO9660, mtools for FAT), then read by
Debian's cloud-init and by glean; cloudbase-init finds, extracts and parses them itself;
openstacksdk's genisoimage drives go through our decoder. Each reader's verdict in
``inspect().readers`` (image/readers.py) is checked against what the reader did.
Ignition and Afterburn (Go and Rust) cannot run here: their profile is unit-tested
(tests/unit/image/test_readers.py).
"""

import argparse
import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    build_image,
    inspect,
    iso9660,
    layout,
    read_tree,
    readers,
    unpack,
    validate,
)
from ironic_configdrive.image.formats import ISO_PVD_OFFSET
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
    assert inspect(image).readers["cloud-init"] == []
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
    assert inspect(image).readers["glean"] == []
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


# -- cloud-init and glean against the readers' verdicts ---------------------------------------

def test_without_latest_cloud_init_reads_the_drive_and_glean_does_not(tmp_path):
    from glean import cmd as glean

    files = {path: data for path, data in layout.build_tree(CONFIGDRIVE, node_uuid=UUID).items()
             if not path.startswith("openstack/latest/")}
    image = iso9660.write_iso(files)
    report = inspect(image)
    assert report.readers["cloud-init"] == []
    assert report.readers["glean"] == ["it reads openstack/latest/ only, which is missing"]
    directory = extract(image, ISO9660, tmp_path)
    assert cloud_init_read(directory)["uuid"] == UUID
    root = tmp_path / "guest"
    (root / "mnt").mkdir(parents=True)
    os.rename(directory, root / "mnt" / "config")
    network = glean.get_network_info(argparse.Namespace(root=str(root), noop=True))
    assert not network  # glean found no network_data.json: nothing to configure


def _cloud_init_candidates() -> list:
    code = (
        "import json; from cloudinit.sources.DataSourceConfigDrive import "
        "find_candidate_devs; print(json.dumps(find_candidate_devs()))"
    )
    out = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True)
    if out.returncode != 0 and "No module named" in out.stderr:
        skip_or_fail("Debian's cloud-init is not installed (bindep.txt: cloud-init)")
    return json.loads(out.stdout)


@pytest.mark.loopdev
@pytest.mark.parametrize("label", ["config-2", "Config-2"])
@pytest.mark.parametrize("on_partition", [False, True])
def test_cloud_init_finds_the_devices_its_profile_says(label, on_partition, tmp_path):
    """cloud-init takes a whole device whatever its label, a partition only when labelled
    exactly: its verdict in inspect() (a partition by default) and its discovery agree."""
    require_root()
    require_tool("losetup")
    image = iso9660.write_iso(layout.build_tree(CONFIGDRIVE, node_uuid=UUID), label=label)
    facts = dataclasses.replace(inspect(image).facts(), on_partition=on_partition)
    verdict = not readers.check(readers.PROFILES["cloud-init"], facts)
    assert verdict is (label == "config-2" or not on_partition)
    path = tmp_path / "disk.img"
    offset = 1024 * 1024 if on_partition else 0
    with open(path, "wb") as handle:
        handle.truncate(offset + len(image) + 1024 * 1024)
    if on_partition:
        require_tool("sgdisk")
        subprocess.run(["sgdisk", "-n", f"1:2048:+{len(image) // 512 + 1}", str(path)],
                       check=True, capture_output=True)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(image)
    device = subprocess.run(
        ["losetup", "-f", "--show", "-r", "-P", str(path)], check=True, capture_output=True,
        text=True).stdout.strip()
    try:
        target = f"{device}p1" if on_partition else device
        if on_partition and not os.path.exists(target):
            subprocess.run(["partx", "--add", device], check=False, capture_output=True)
        assert os.path.exists(target), f"no partition device {target}"
        assert (target in _cloud_init_candidates()) is verdict
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


# -- cloudbase-init (PyPI): its own discovery, extraction and parsing --------------------------

#: Runs in a child process (cloudbase-init registers its options on oslo.config's global
#: CONF, which Ironic's tests share). Only what needs Windows is replaced:
#: cloudbaseinit.utils.windows.disk (Win32 raw device I/O; imports ctypes.windll) by a file
#: read the same way (sector-aligned seeks, reads sliced by ``skip``), and the Windows disk
#: enumeration by the image's path. Discovery (CD001, the volume size, the label), bsdtar,
#: mtools and the metadata parsing are cloudbase-init's own.
CLOUDBASE_INIT_READER = r"""
import json, os, sys, types

image_path, tools, kind = sys.argv[1:4]


class RawDevice:
    sector_size = 512

    def __init__(self, path):
        self._path = path
        self.fixed = True

    def __enter__(self):
        self._file = open(self._path, "rb")
        return self

    def __exit__(self, *exc):
        self._file.close()

    @property
    def size(self):
        return os.path.getsize(self._path)

    def seek(self, offset):
        aligned = offset - offset % self.sector_size
        self._file.seek(aligned)
        return aligned

    def read(self, size, skip=0):
        total = size + skip
        safe = -(-total // self.sector_size) * self.sector_size
        return self._file.read(safe)[skip:total]

    def partitions(self):
        return [RawDevice(self._path)]


disk = types.ModuleType("cloudbaseinit.utils.windows.disk")
disk.Disk = RawDevice
sys.modules[disk.__name__] = disk

from cloudbaseinit import conf
conf.CONF([], project="cloudbase-init")
conf.CONF.set_override("bsdtar_path", os.path.join(tools, "bsdtar"))
conf.CONF.set_override("mtools_path", tools)
from cloudbaseinit.metadata.services import configdrive
from cloudbaseinit.metadata.services.osconfigdrive import windows

manager = windows.WindowsConfigDriveManager()
if kind == "size":
    with RawDevice(image_path) as device:
        print(json.dumps({"iso_size": manager._get_iso_file_size(device)}))
    sys.exit(0)
manager._osutils.get_physical_disks = lambda: [image_path]
location = "partition" if kind == "iso" else "hdd"
service = configdrive.ConfigDriveService()
found = manager.get_config_drive_files(
    drive_label=service._drive_label, metadata_file=service._metadata_file,
    searched_types=[kind], searched_locations=[location])
result = {"found": found}
if found:
    service._metadata_path = manager.target_path
    network = service.get_network_details_v2()
    result.update(
        instance_id=service.get_instance_id(), hostname=service.get_host_name(),
        keys=service.get_public_keys(), user_data=service.get_user_data().decode(),
        links=[link.mac_address for link in network.links],
        addresses=[net.address_cidr for net in network.networks],
        dns=[s.addresses for s in network.services])
print(json.dumps(result))
"""


def cloudbase_init_run(path, kind: str, tmp_path) -> dict:
    try:
        import cloudbaseinit  # noqa: F401
    except ImportError:
        skip_or_fail("cloudbase-init is not installed (pip install cloudbase-init; it is in "
                     "the test extra)")
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    # cloudbase-init runs bsdtar at bsdtar_path and mtools as <mtools_path>/mlabel.exe; mtools
    # picks its command from argv[0], hence scripts rather than links.
    for name, target in (("bsdtar", "bsdtar"), ("mlabel.exe", "mlabel"),
                         ("mcopy.exe", "mcopy")):
        require_tool(target)
        (tools / name).write_text(f'#!/bin/sh\nexec {shutil.which(target)} "$@"\n')
        (tools / name).chmod(0o755)
    out = subprocess.run(
        [sys.executable, "-c", CLOUDBASE_INIT_READER, str(path), str(tools), kind],
        capture_output=True, text=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("fmt,sector_size", DRIVES)
def test_cloudbase_init_finds_and_reads_our_drive(fmt, sector_size, tmp_path):
    image = build_image(CONFIGDRIVE, fmt=fmt, sector_size=sector_size, node_uuid=UUID)
    assert inspect(image).readers["cloudbase-init"] == []
    path = tmp_path / "disk.img"
    path.write_bytes(image)
    found = cloudbase_init_run(path, "iso" if fmt == ISO9660 else "vfat", tmp_path)
    assert found["found"] is True
    assert found["instance_id"] == UUID and found["hostname"] == "glean-host"
    assert found["keys"] == ["ssh-ed25519 AAAATEST ops@x"]
    assert found["user_data"] == CONFIGDRIVE["user_data"]
    assert found["links"] == [MAC] and found["addresses"] == ["192.0.2.7/24"]
    assert found["dns"] == [["192.0.2.53"]]


@pytest.mark.parametrize("label", ["CONFIG-2", "Config-2"])
def test_cloudbase_init_reads_an_iso_partition_labelled_in_another_case(label, tmp_path):
    """On a partition it finds the ISO by CD001 alone; the profile's case-insensitive label
    (what it compares on a CD) passes these labels too, and Ignition's does not."""
    files = layout.build_tree(CONFIGDRIVE, node_uuid=UUID)
    image = iso9660.write_iso(files, label=label)
    report = inspect(image)
    assert report.readers["cloudbase-init"] == [] and report.readers["ignition"] != []
    path = tmp_path / "disk.img"
    path.write_bytes(image)
    assert cloudbase_init_run(path, "iso", tmp_path)["instance_id"] == UUID


def test_cloudbase_init_reads_the_iso_volume_size_as_16_bits(tmp_path):
    """Its profile's block limit, shown on its own code: a volume of 70000 blocks (a 137 MB
    ISO, beyond our 64 MiB cap, so only the descriptor is patched) is taken for 4464."""
    image = bytearray(build_image(CONFIGDRIVE, node_uuid=UUID))
    struct.pack_into("<I", image, ISO_PVD_OFFSET + 80, 70000)
    struct.pack_into(">I", image, ISO_PVD_OFFSET + 84, 70000)
    path = tmp_path / "disk.img"
    path.write_bytes(image)
    assert cloudbase_init_run(path, "size", tmp_path)["iso_size"] == (70000 - 65536) * 2048
    assert any("16 bits" in text for text in inspect(bytes(image)).readers["cloudbase-init"])
    path.write_bytes(build_image(CONFIGDRIVE, node_uuid=UUID))
    assert cloudbase_init_run(path, "size", tmp_path)["iso_size"] == (
        inspect(path.read_bytes()).iso_blocks * 2048)
