"""cloud-init and glean read the network data we repaired into a Nova-shaped drive.

Nova writes ``{}`` into every version; upstream Ironic's repair patches ``openstack/latest``
only, which glean reads but cloud-init does not (it reads 2018-08-27, the newest version it
knows). Ours writes every version: both readers, run for real, see the ports' network.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import argparse
import json
import os
import random
import types
from pathlib import Path
from typing import Any

import pytest

from ironic_configdrive import network_repair
from ironic_configdrive.image import ISO9660, VFAT, layout, read_tree, write_tree
from tests.functional.test_consumers import MAC, UUID, cloud_init_read, extract

pytestmark = pytest.mark.interop

DNS = "192.0.2.53"
SUBNET = {"id": "subnet-1", "network_id": "net-1", "type": "ipv4", "link": "neutron-name",
          "ip_address": "192.0.2.7", "netmask": "255.255.255.0",
          "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}]}


def nova_tree() -> dict[str, bytes]:
    """Every version up to 2025-04-04 and latest, ``{}`` network data, and a random_seed of
    its own in each version from 2013-04-04, so no two versions' meta_data are equal."""
    meta = {"uuid": UUID, "name": "vm-1", "hostname": "vm-1"}
    tree = layout.build_tree({"meta_data": meta, "user_data": "#cloud-config\n",
                              "network_data": {}}, node_uuid=UUID)
    rng = random.Random(7)
    for version in (*layout.OPENSTACK_VERSIONS[1:], layout.LATEST):
        tree[f"openstack/{version}/meta_data.json"] = json.dumps(
            {**meta, "random_seed": rng.randbytes(8).hex()}).encode()
    return tree


def repaired_network() -> dict[str, Any]:
    port = types.SimpleNamespace(
        id=1, uuid="port-1", address=MAC, portgroup_id=None,
        internal_info={"tenant_vif_port_id": "vif-1"},
        extra={"switchport": {"allowed_vlans": [100]}})
    return network_repair.assemble(
        network_repair.attachments([port], []),
        lambda attachment: {"mtu": 9000, "networks": [SUBNET],
                            "services": [{"type": "dns", "address": DNS}]})


@pytest.mark.parametrize("fmt,sector_size", [(ISO9660, 512), (VFAT, 4096)])
def test_cloud_init_and_glean_read_the_repaired_network(fmt: str, sector_size: int,
                                                        tmp_path: Path) -> None:
    drive = write_tree(nova_tree(), fmt=fmt, sector_size=sector_size)
    repaired = network_repair.repair_image(drive, read_tree(drive), repaired_network())

    extracted = extract(repaired, fmt, tmp_path)
    found = cloud_init_read(extracted)
    assert found["version"] == 2
    config = {entry["type"]: entry for entry in found["net"]["config"]}
    physical, vlan = config["physical"], config["vlan"]
    assert (physical["mac_address"], physical["mtu"]) == (MAC, 9000)
    assert physical["subnets"][0]["address"] == "192.0.2.7"
    assert (vlan["vlan_id"], vlan["vlan_link"]) == (100, physical["name"])
    assert config["nameserver"]["address"] == DNS

    from glean import cmd as glean

    root = tmp_path / "guest"
    (root / "mnt").mkdir(parents=True)
    (root / "root").mkdir()
    os.rename(extracted, root / "mnt" / "config")
    network = glean.get_network_info(argparse.Namespace(root=str(root), noop=True))
    assert network["links"][0]["ethernet_mac_address"] == MAC
    assert glean.get_config_drive_interfaces(network)["subnet-1"]["ip_address"] == "192.0.2.7"
    assert glean.get_dns_from_config_drive(network) == [DNS]
