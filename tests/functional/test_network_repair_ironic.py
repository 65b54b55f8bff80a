"""Network data repair inside Ironic: a Nova 34 drive with ``{}`` network data on a node whose
network interface is ``flat``, deployed through Ironic's own ``start_deploy`` /
``do_node_deploy`` on its DB test base.

Ironic 39 would check the drive in ``do_node_deploy`` and repack it with ``mkisofs``,
patching ``openstack/latest`` only. With our interface its check is skipped (the interface's
``switch_interface`` hides the ``metadata`` capability from that task) and the drive is
repaired when ``write_image`` takes it over: in pure Python, in every version directory.
Neutron is a loopback HTTP server (``tests/fixtures/http.py``) answering Ironic's own Neutron
client; the flat interface's port binding (Neutron port updates) and the instance image's
URL check (a HEAD request), neither under test, are replaced.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import json
import random
import subprocess
import types
from typing import Any
from unittest import mock

import fixtures
import futurist
from ironic.common import neutron, states
from ironic.conductor import configdrive_utils, deployments, task_manager
from ironic.drivers.modules import deploy_utils
from ironic.drivers.modules.network import flat
from ironic.tests.unit.objects import utils as obj_utils
from oslo_concurrency import processutils
from oslo_utils import uuidutils

from ironic_configdrive import deploy, image
from ironic_configdrive.image import formats, iso9660, layout
from tests.fixtures import http, nova_drive
from tests.functional.test_deploy_ironic import INSTANCE_INFO, DeployInsideIronicBase

SECRET = "SECRET-userdata-2e5f1a"
MAC_PORT, MAC_M1, MAC_M2, MAC_BOND = ("52:54:00:aa:00:01", "52:54:00:aa:00:02",
                                      "52:54:00:aa:00:03", "52:54:00:aa:00:04")
DNS = {"type": "dns", "address": "10.0.0.2"}


def nova_shaped_drive(node_uuid: str) -> str:
    """gzip+base64 of an ISO shaped as Nova 34 writes it: every version up to 2025-04-04 and
    latest, network_data ``{}``, a fresh random_seed in each version from 2013-04-04."""
    meta = {"uuid": node_uuid, "name": "vm-1", "hostname": "vm-1", "project_id": "p1",
            "public_keys": {"k": "ssh-ed25519 AAAAC3Nza nova"}, "launch_index": 0}
    tree = layout.build_tree({"meta_data": meta, "user_data": f"#cloud-config\n# {SECRET}\n",
                              "network_data": {}}, node_uuid=node_uuid)
    rng = random.Random(4)
    for version in (*layout.OPENSTACK_VERSIONS[1:], layout.LATEST):
        seeded = {**layout.meta_data_for_version(meta, version),
                  "random_seed": rng.randbytes(12).hex()}
        tree[f"openstack/{version}/meta_data.json"] = json.dumps(seeded).encode()
    return image.pack(image.write_tree(tree))


def _neutron_objects(server: http.ObjectServer) -> None:
    def put(path: str, document: dict[str, Any]) -> None:
        server.objects[path] = json.dumps(document).encode()

    put("/", {"versions": [{"id": "v2.0", "status": "CURRENT",
                            "links": [{"rel": "self", "href": server.url("/v2.0/")}]}]})
    for vif, ip in (("vif-port", "10.0.0.5"), ("vif-bond", "10.0.0.6")):
        put(f"/v2.0/ports/{vif}", {"port": {
            "id": vif, "name": "", "network_id": "net-1", "mac_address": "fa:16:3e:0:0:1",
            "fixed_ips": [{"subnet_id": "subnet-1", "ip_address": ip}]}})
    put("/v2.0/networks/net-1", {"network": {"id": "net-1", "mtu": 9000}})
    put("/v2.0/subnets/subnet-1", {"subnet": {
        "id": "subnet-1", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1",
        "host_routes": [], "dns_nameservers": [DNS["address"]]}})


class TestNetworkRepairInsideIronic(DeployInsideIronicBase):
    def setUp(self) -> None:
        super().setUp()
        self.config(enabled_network_interfaces=["flat", "noop"])
        serving = http.serve()
        self.neutron = next(serving)
        self.addCleanup(serving.close)
        _neutron_objects(self.neutron)
        self.config(auth_type="none", endpoint_override=self.neutron.url(""), group="neutron")
        # Where the agent would call back (booting the ramdisk asks for it); never contacted.
        self.config(auth_type="none", endpoint_override="http://127.0.0.1:6385",
                    group="service_catalog")
        # Ironic caches its Neutron session process-wide.
        self.useFixture(fixtures.MockPatchObject(neutron, "_NEUTRON_SESSION", None))
        # The flat interface binds Neutron ports while preparing: not what is tested here.
        for name in ("validate", "add_provisioning_network", "unconfigure_tenant_networks",
                     "remove_provisioning_network", "configure_tenant_networks"):
            self.useFixture(fixtures.MockPatchObject(flat.FlatNetwork, name))
        # Preparing checks the instance image's URL with a HEAD request: no such host here.
        self.useFixture(fixtures.MockPatchObject(
            deploy_utils, "build_instance_info_for_deploy",
            side_effect=lambda task: dict(task.node.instance_info)))
        self.upstream_check = self.useFixture(fixtures.MockPatchObject(
            configdrive_utils, "check_and_fix_configdrive",
            wraps=configdrive_utils.check_and_fix_configdrive)).mock
        self.executed = self.useFixture(fixtures.MockPatchObject(
            processutils, "execute", side_effect=AssertionError("mkisofs run"))).mock
        self.popened = self.useFixture(fixtures.MockPatchObject(
            subprocess, "Popen", side_effect=AssertionError("subprocess started"))).mock

    def _flat_node(self, **kwargs: Any) -> Any:
        node = obj_utils.create_test_node(
            self.context, uuid=uuidutils.generate_uuid(), driver="fake-hardware",
            deploy_interface="configdrive", boot_interface="fake", network_interface="flat",
            instance_info=dict(INSTANCE_INFO), provision_state=states.AVAILABLE, **kwargs)
        group = obj_utils.create_test_portgroup(
            self.context, node_id=node.id, uuid=uuidutils.generate_uuid(), name="bond0",
            address=MAC_BOND, mode="802.3ad", properties={"miimon": 100},
            extra={"vif_port_id": "vif-bond"})
        for index, mac in enumerate((MAC_M1, MAC_M2)):
            obj_utils.create_test_port(self.context, node_id=node.id, portgroup_id=group.id,
                                       uuid=uuidutils.generate_uuid(), address=mac,
                                       name=f"member{index}")
        obj_utils.create_test_port(self.context, node_id=node.id,
                                   uuid=uuidutils.generate_uuid(), address=MAC_PORT,
                                   internal_info={"tenant_vif_port_id": "vif-port"})
        return node

    def _start_deploy(self, node: Any, configdrive: str | dict[str, Any]) -> None:
        """Ironic's own path: start_deploy (switch_interface, validate), then do_node_deploy
        in the worker (here run at once), up to the wait for the agent."""
        executor = futurist.SynchronousExecutor()
        conductor = self.dbapi.register_conductor({"hostname": "conductor-1", "drivers": []},
                                                  update_existing=True)
        manager = types.SimpleNamespace(conductor=conductor, _spawn_worker=executor.submit)
        with task_manager.acquire(self.context, node.uuid) as task:
            deployments.start_deploy(task, manager, configdrive=configdrive)
        node.refresh()
        self.assertEqual(states.DEPLOYWAIT, node.provision_state, node.last_error)

    def _agent_writes(self, node: Any) -> dict[str, bytes]:
        """The files of the drive the agent wrote (see :meth:`_agent_steps`)."""
        return image.read_tree(self._agent_steps(node))

    def _agent_steps(self, node: Any) -> bytes:
        """The agent's steps after it heartbeats: write_image, then write_configdrive."""
        node.set_driver_internal_info("agent_url", self.agent.url)
        node.set_driver_internal_info("agent_secret_token", "agent-token-1")
        node.set_driver_internal_info("is_whole_disk_image", True)
        node.provision_state = states.DEPLOYING
        node.save()
        self.assertEqual(states.DEPLOYWAIT, self._step(node, "write_image", 80))
        self.assertIsNone(self._step(node, "write_configdrive", deploy.WRITE_PRIORITY))
        disk = self.agent.disk
        assert disk is not None
        return disk

    def test_nova_drive_is_repaired_in_every_version_without_mkisofs(self) -> None:
        self.assertIn("metadata", flat.FlatNetwork.capabilities)  # upstream's check applies
        node = self._flat_node()
        self._start_deploy(node, nova_shaped_drive(node.uuid))
        self.upstream_check.assert_not_called()
        files = self._agent_writes(node)

        network_files = sorted(p for p in files if p.endswith("/network_data.json"))
        self.assertEqual(
            [f"openstack/{v}/network_data.json"
             for v in (*layout.OPENSTACK_VERSIONS[3:], layout.LATEST)], network_files)
        documents = {json.loads(files[path]) == json.loads(files[network_files[0]])
                     for path in network_files}
        self.assertEqual({True}, documents)
        repaired = json.loads(files["openstack/latest/network_data.json"])
        links = repaired["links"]
        self.assertEqual(
            [("phy", MAC_M1), ("phy", MAC_M2), ("bond", MAC_BOND), ("phy", MAC_PORT)],
            [(link["type"], link["ethernet_mac_address"]) for link in links])
        bond = links[2]
        self.assertEqual((["iface0", "iface1"], "802.3ad", 100, "vif-bond"),
                         (bond["bond_links"], bond["bond_mode"], bond["bond_miimon"],
                          bond["vif_id"]))
        self.assertEqual({9000}, {link["mtu"] for link in links})
        self.assertEqual([("iface2", "10.0.0.6"), ("iface3", "10.0.0.5")],
                         [(n["link"], n["ip_address"]) for n in repaired["networks"]])
        self.assertEqual([DNS], repaired["services"])
        # Still an ISO (the format it came in), everything else as Nova wrote it.
        self.assertEqual(formats.ISO9660, formats.detect_format(self.agent.disk or b""))
        self.assertIn(SECRET.encode(), files["openstack/2018-08-27/user_data"])
        self.assertEqual([], image.validate(self.agent.disk or b""))
        self.assertEqual(["/", "/v2.0/ports/vif-bond", "/v2.0/networks/net-1",
                          "/v2.0/subnets/subnet-1", "/v2.0/ports/vif-port",
                          "/v2.0/networks/net-1", "/v2.0/subnets/subnet-1"],
                         [r.path for r in self.neutron.requests])
        self.executed.assert_not_called()
        self.popened.assert_not_called()
        self.assertNotIn(SECRET, self.logs.output)
        self.assertIn("rebuilt from its ports (4 links) in every version directory",
                      self.logs.output)

    def test_the_drive_nova_built_in_the_lab_is_repaired_in_every_version(self) -> None:
        """The bytes Nova 34 sent in the lab (its metadata, its genisoimage; see
        ``tests/fixtures/nova_drive.py``), not a drive shaped after them."""
        node = self._flat_node()
        given = image.read_tree(image.unpack(nova_drive.recorded()))
        network_files = sorted(p for p in given if p.endswith("/network_data.json"))
        self.assertIn("openstack/latest/network_data.json", network_files)
        self.assertEqual([{}], [json.loads(d) for d in {given[p] for p in network_files}])
        self._start_deploy(node, nova_drive.recorded())
        self.upstream_check.assert_not_called()
        files = self._agent_writes(node)

        self.assertEqual(sorted(given), sorted(files))
        repaired = [json.loads(files[path]) for path in network_files]
        self.assertEqual(4, len(repaired[0]["links"]))
        self.assertEqual([repaired[0]] * len(network_files), repaired)
        self.assertEqual({}, {path: len(files[path]) for path in given
                              if path not in network_files and files[path] != given[path]})
        self.assertEqual(formats.ISO9660, formats.detect_format(self.agent.disk or b""))
        self.assertEqual([], image.validate(self.agent.disk or b""))
        self.executed.assert_not_called()
        self.popened.assert_not_called()
        user_data = given["openstack/latest/user_data"].decode()
        admin_pass = json.loads(given["openstack/latest/meta_data.json"])["admin_pass"]
        self.assertNotIn(user_data.strip(), self.logs.output)
        self.assertNotIn(admin_pass, self.logs.output)
        self.assertIn("rebuilt from its ports (4 links) in every version directory",
                      self.logs.output)

    def test_json_drive_gets_the_ports_network_data_before_it_is_built(self) -> None:
        node = self._flat_node()
        self._start_deploy(node, {"meta_data": {}, "user_data": SECRET})
        self.upstream_check.assert_not_called()
        files = self._agent_writes(node)
        repaired = json.loads(files["openstack/2025-04-04/network_data.json"])
        self.assertEqual(4, len(repaired["links"]))
        self.assertEqual(repaired, json.loads(files["openstack/latest/network_data.json"]))
        self.executed.assert_not_called()
        self.popened.assert_not_called()

    def test_valid_network_data_is_kept_and_neutron_not_asked(self) -> None:
        node = self._flat_node()
        given = {"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": MAC_PORT,
                            "mtu": 1500}], "networks": [], "services": []}
        drive = image.pack(image.build_image({"network_data": given, "user_data": SECRET},
                                             node_uuid=node.uuid))
        read: list[str] = []
        real = iso9660.IsoFiles.__getitem__

        def spy(files: iso9660.IsoFiles, path: str) -> bytes:
            read.append(path)
            return real(files, path)

        self._start_deploy(node, drive)
        with mock.patch.object(iso9660.IsoFiles, "__getitem__", spy):
            disk = self._agent_steps(node)
        files = image.read_tree(disk)
        # The check for repair, like validation, reads JSON documents only.
        self.assertIn("openstack/latest/network_data.json", read)
        self.assertEqual([], [path for path in read if not path.endswith(".json")])
        self.assertEqual(given, json.loads(files["openstack/latest/network_data.json"]))
        self.assertEqual([], self.neutron.requests)

    def test_valid_latest_is_copied_into_the_older_versions(self) -> None:
        # What upstream's repair leaves: openstack/latest patched, every dated version {}.
        node = self._flat_node()
        given = {"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": MAC_PORT,
                            "mtu": 1500}], "networks": [], "services": [DNS]}
        tree = image.read_tree(image.unpack(nova_shaped_drive(node.uuid)))
        tree["openstack/latest/network_data.json"] = json.dumps(given).encode()
        self._start_deploy(node, image.pack(image.write_tree(tree)))
        files = self._agent_writes(node)
        for version in (*layout.OPENSTACK_VERSIONS[3:], layout.LATEST):
            self.assertEqual(given, json.loads(files[f"openstack/{version}/network_data.json"]))
        self.assertEqual([], self.neutron.requests)
        self.assertIn("rebuilt from its openstack/latest (1 links)", self.logs.output)

    def test_repair_can_be_turned_off(self) -> None:
        self.config(repair_network_data=False, group="configdrive")
        node = self._flat_node()
        self._start_deploy(node, nova_shaped_drive(node.uuid))
        files = self._agent_writes(node)
        self.assertEqual({}, json.loads(files["openstack/latest/network_data.json"]))
        self.upstream_check.assert_not_called()
        self.executed.assert_not_called()

    def test_neutron_failure_keeps_the_drive_and_says_why(self) -> None:
        self.neutron.objects.pop("/v2.0/ports/vif-port")
        node = self._flat_node()
        self._start_deploy(node, nova_shaped_drive(node.uuid))
        files = self._agent_writes(node)
        self.assertEqual({}, json.loads(files["openstack/latest/network_data.json"]))
        self.assertIn(f"Config drive of node {node.uuid} keeps its invalid network data",
                      self.logs.output)
        self.assertIn("NetworkError", self.logs.output)
        self.upstream_check.assert_not_called()
        self.executed.assert_not_called()

