"""Network data built from a node's ports and portgroups, and written into every version."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import json
import types
from typing import Any

import pytest
from ironic.common import exception

from ironic_configdrive import network_repair
from ironic_configdrive.image import build_image, errors, formats, read_tree
from ironic_configdrive.network_repair import Attachment

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
MAC1, MAC2, MAC3 = "52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"
SUBNET = {"id": "subnet-1", "network_id": "net-1", "type": "ipv4", "link": "neutron-name",
          "ip_address": "10.0.0.5", "netmask": "255.255.255.0",
          "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}]}
DNS = {"type": "dns", "address": "10.0.0.2"}


def port(id_: int, mac: str, *, vif: str | None = None, legacy_vif: str | None = None,
         portgroup_id: int | None = None, extra: dict[str, Any] | None = None) -> Any:
    return types.SimpleNamespace(
        id=id_, uuid=f"port-{id_}", address=mac, portgroup_id=portgroup_id,
        internal_info={"tenant_vif_port_id": vif} if vif else {},
        extra={**(extra or {}), **({"vif_port_id": legacy_vif} if legacy_vif else {})})


def portgroup(id_: int, mac: str | None, *, vif: str, mode: str | None = "802.3ad",
              properties: dict[str, Any] | None = None) -> Any:
    return types.SimpleNamespace(id=id_, uuid=f"pg-{id_}", address=mac, mode=mode,
                                 properties=properties or {}, extra={},
                                 internal_info={"tenant_vif_port_id": vif})


def neutron(mtu: int | None = 9000) -> network_repair.VifDetails:
    return lambda attachment: {"mtu": mtu, "networks": [SUBNET], "services": [DNS]}


def build(ports: list[Any], portgroups: list[Any] = [],  # noqa: B006
          mtu: int | None = 9000) -> dict[str, Any]:
    return network_repair.assemble(network_repair.attachments(ports, portgroups),
                                   neutron(mtu))


def test_plain_port_is_a_phy_link_with_neutrons_network_and_dns() -> None:
    data = build([port(1, MAC1, vif="vif-a"), port(2, MAC2)])
    assert data == {
        "links": [{"id": "iface0", "type": "phy", "ethernet_mac_address": MAC1, "mtu": 9000,
                   "vif_id": "vif-a"}],
        "networks": [{**SUBNET, "link": "iface0"}],
        "services": [DNS],
    }
    assert not network_repair.is_invalid(data)


def test_legacy_vif_in_extra_counts() -> None:
    [attachment] = network_repair.attachments([port(1, MAC1, legacy_vif="vif-old")], [])
    assert attachment.vif_id == "vif-old"


def test_portgroup_is_a_bond_over_its_member_ports() -> None:
    group = portgroup(7, MAC3, vif="vif-bond",
                      properties={"miimon": 100, "xmit_hash_policy": "layer3+4", "x": 1})
    data = build([port(1, MAC1, portgroup_id=7), port(2, MAC2, portgroup_id=7),
                  port(3, "52:54:00:00:00:09")], [group])
    assert data["links"] == [
        {"id": "iface0", "type": "phy", "ethernet_mac_address": MAC1, "mtu": 9000},
        {"id": "iface1", "type": "phy", "ethernet_mac_address": MAC2, "mtu": 9000},
        {"id": "iface2", "type": "bond", "ethernet_mac_address": MAC3,
         "bond_links": ["iface0", "iface1"], "bond_mode": "802.3ad", "bond_miimon": 100,
         "bond_xmit_hash_policy": "layer3+4", "mtu": 9000, "vif_id": "vif-bond"},
    ]
    assert data["networks"] == [{**SUBNET, "link": "iface2"}]
    # Every link has an MTU, so upstream's own check accepts what we built.
    assert not network_repair.is_invalid(data)


def test_bond_without_address_takes_its_first_members() -> None:
    data = build([port(1, MAC1, portgroup_id=7)], [portgroup(7, None, vif="v", mode=None)])
    bond = data["links"][-1]
    assert bond["ethernet_mac_address"] == MAC1 and "bond_mode" not in bond


def test_vlans_ironic_lists_become_vlan_links_on_their_parent() -> None:
    switchport = {"switchport": {"allowed_vlans": [100, 200, "bad", 0, True]}}
    data = build([port(1, MAC1, vif="vif-a", extra=switchport)])
    assert data["links"][1:] == [
        {"id": "iface1", "type": "vlan", "vlan_link": "iface0", "vlan_id": 100,
         "vlan_mac_address": MAC1, "mtu": 9000},
        {"id": "iface2", "type": "vlan", "vlan_link": "iface0", "vlan_id": 200,
         "vlan_mac_address": MAC1, "mtu": 9000},
    ]


def test_mtu_is_neutrons_and_a_missing_one_stays_invalid_upstreams_way() -> None:
    assert build([port(1, MAC1, vif="v")], mtu=1450)["links"][0]["mtu"] == 1450
    assert network_repair.is_invalid(build([port(1, MAC1, vif="v")], mtu=None))


def test_dns_servers_are_listed_once_for_several_vifs() -> None:
    data = build([port(1, MAC1, vif="a"), port(2, MAC2, vif="b")])
    assert data["services"] == [DNS]
    assert [n["link"] for n in data["networks"]] == ["iface0", "iface1"]


def test_no_ports_or_no_vifs_build_nothing() -> None:
    task = types.SimpleNamespace(node=types.SimpleNamespace(uuid=NODE), ports=[],
                                 portgroups=[])
    assert network_repair.build_for(task, neutron()) is None
    task.ports = [port(1, MAC1)]
    assert network_repair.build_for(task, neutron()) is None


def test_neutron_failure_names_the_node() -> None:
    def failing(attachment: Attachment) -> dict[str, Any]:
        raise exception.NetworkError("Unable to get port info for vif-a")

    task = types.SimpleNamespace(node=types.SimpleNamespace(uuid=NODE),
                                 ports=[port(1, MAC1, vif="vif-a")], portgroups=[])
    with pytest.raises(network_repair.NetworkRepairError, match=NODE) as caught:
        network_repair.build_for(task, failing)
    assert "NetworkError" in caught.value.message


class _Record(dict[str, Any]):
    def __getattr__(self, name: str) -> Any:
        return self[name]


class FakeNeutronClient:
    """What Ironic's get_neutron_port_data reads from its Neutron client."""

    def get_port(self, vif_id: str) -> _Record:
        return _Record(id=vif_id, name="", network_id="net-1", mac_address="fa:16:3e:0:0:1",
                       fixed_ips=[{"subnet_id": "subnet-1", "ip_address": "10.0.0.5"}])

    def get_network(self, network_id: str) -> _Record:
        return _Record(id=network_id, mtu=1500)

    def get_subnet(self, subnet_id: str) -> _Record:
        return _Record(id=subnet_id, cidr="10.0.0.0/24", ip_version=4, gateway_ip="10.0.0.1",
                       host_routes=[], dns_nameservers=["10.0.0.2"])


def test_neutron_details_come_from_ironics_own_generator(monkeypatch: Any) -> None:
    from ironic.common import neutron as ironic_neutron

    monkeypatch.setattr(ironic_neutron, "get_client", lambda context: FakeNeutronClient())
    task = types.SimpleNamespace(context=None, node=types.SimpleNamespace(uuid=NODE),
                                 ports=[port(1, MAC1, vif="vif-a")], portgroups=[])
    data = network_repair.build_for(task)
    assert data is not None
    assert data["links"] == [{"id": "iface0", "type": "phy", "ethernet_mac_address": MAC1,
                              "mtu": 1500, "vif_id": "vif-a"}]
    [network] = data["networks"]
    assert (network["link"], network["ip_address"], network["netmask"]) == (
        "iface0", "10.0.0.5", "255.255.255.0")
    assert data["services"] == [DNS]


@pytest.mark.parametrize("document,invalid", [
    ({}, True), (None, True), ({"links": [], "networks": [], "services": []}, True),
    ({"links": [{"id": "a", "mtu": None}]}, True),
    ({"links": [{"id": "a", "mtu": 1500}]}, False), ({"services": [DNS]}, False),
])
def test_invalid_is_upstreams_judgement(document: Any, invalid: bool) -> None:
    assert network_repair.is_invalid(document) is invalid


NOVA_LIKE = {"meta_data": {"name": "n", "project_id": "p"}, "user_data": "#cloud-config\n",
             "network_data": {}}
REPAIRED = {"links": [{"id": "iface0", "type": "phy", "ethernet_mac_address": MAC1,
                       "mtu": 1500}], "networks": [], "services": [DNS]}


@pytest.mark.parametrize("fmt,sector_size", [
    (formats.ISO9660, 512), (formats.VFAT, 512), (formats.VFAT, 4096)])
def test_image_is_repaired_in_every_version_and_its_own_format(fmt: str,
                                                               sector_size: int) -> None:
    image = build_image(NOVA_LIKE, fmt=fmt, sector_size=sector_size, node_uuid=NODE)
    files = read_tree(image)
    assert network_repair.image_needs_repair(files)
    repaired = network_repair.repair_image(image, files, REPAIRED)
    assert formats.detect_format(repaired[: formats.SNIFF_SIZE]) == fmt
    if fmt == formats.VFAT:
        assert formats.fat_sector_size(repaired) == sector_size
    after = read_tree(repaired)
    network = [path for path in after if path.endswith("/network_data.json")]
    assert network == [path for path in files if path.endswith("/network_data.json")]
    assert network and all(json.loads(after[path]) == REPAIRED for path in network)
    assert not network_repair.image_needs_repair(after)
    assert {p: d for p, d in after.items() if p not in network} == {
        p: d for p, d in files.items() if p not in network}


def test_iso_from_nova_gets_every_dated_version_repaired() -> None:
    image = build_image(NOVA_LIKE, node_uuid=NODE)
    after = read_tree(network_repair.repair_image(image, read_tree(image), REPAIRED))
    for version in ("2015-10-15", "2018-08-27", "2020-10-14", "2025-04-04", "latest"):
        assert json.loads(after[f"openstack/{version}/network_data.json"]) == REPAIRED
    assert "openstack/2013-10-17/network_data.json" not in after


def test_a_broken_network_data_file_needs_repair() -> None:
    assert network_repair.image_needs_repair(
        {"openstack/latest/network_data.json": b"{not json"})
    assert not network_repair.image_needs_repair({"openstack/latest/meta_data.json": b"{}"})


def test_network_data_that_breaks_the_rules_is_refused() -> None:
    files = {"openstack/latest/network_data.json": b"{}"}
    with pytest.raises(errors.InvalidInputError, match="network_data.links"):
        network_repair.repair_image(build_image({}, node_uuid=NODE), files, {"links": {}})


class _Network:
    capabilities = ["metadata", "other"]

    def add_provisioning_network(self, task: Any) -> str:
        return "added"


def test_upstreams_check_sees_no_metadata_capability_and_the_rest_is_unchanged() -> None:
    network = _Network()
    task = types.SimpleNamespace(driver=types.SimpleNamespace(network=network))
    assert network_repair.applies(task)
    network_repair.hide_metadata_capability(task)
    network_repair.hide_metadata_capability(task)  # idempotent
    assert "metadata" not in task.driver.network.capabilities
    assert task.driver.network.capabilities == ["other"]
    assert task.driver.network.add_provisioning_network(task) == "added"
    assert network_repair.applies(task)  # our repair still sees the real interface
    assert _Network.capabilities == ["metadata", "other"]  # shared instance untouched


def test_noop_network_interface_gets_no_repair() -> None:
    task = types.SimpleNamespace(driver=types.SimpleNamespace(
        network=types.SimpleNamespace(capabilities=[])))
    network_repair.hide_metadata_capability(task)
    assert not network_repair.applies(task)


def test_valid_latest_is_the_drives_own_when_valid() -> None:
    latest = "openstack/latest/network_data.json"
    assert network_repair.valid_latest({latest: json.dumps(REPAIRED).encode()}) == REPAIRED
    for bad in (b"{}", b"[1]", b"{not json", b'{"links": [{"id": "a", "mtu": null}]}'):
        assert network_repair.valid_latest({latest: bad}) is None
    assert network_repair.valid_latest({}) is None
