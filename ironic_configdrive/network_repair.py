"""Repair a config drive's network data from the node's ports and portgroups, in pure Python.

Nova sends ``network_data.json`` as ``{}`` (or with null MTUs) in some cases. Since Ironic 30,
``do_node_deploy`` then rebuilds it from the node's VIFs and repacks the ISO with an external
``mkisofs``, patching ``openstack/latest`` only, and before any deploy interface sees the
drive. For nodes with our interface this module does that job instead, when the drive is
taken over (:meth:`~ironic_configdrive.lifecycle.DriveLifecycle.take_over`):

* the same judgement of "invalid" as upstream (``is_invalid_network_metadata``, which honours
  ``[conductor]disable_metadata_mtu_check``), applied to every version directory;
* ``network_data`` built from the VIFs of the node's ports and portgroups: a port is a
  ``phy`` link, a portgroup a ``bond`` link (``bond_mode``, ``bond_miimon``,
  ``bond_xmit_hash_policy`` from the portgroup) over ``phy`` links of its member ports, and
  ``vlan`` links for the VLANs the port or portgroup lists in
  ``extra['switchport']['allowed_vlans']`` (where Ironic 39's ironic-networking interface
  keeps them); the VIF's MTU, addresses, routes and DNS servers come from Neutron through
  Ironic's own per-VIF generator (``ironic.common.neutron.get_neutron_port_data``);
* written in the drive's own format (ISO9660 or FAT, by the image core) into every
  ``openstack/<version>/`` carrying a ``network_data.json``, or, for the JSON form, into
  ``network_data`` before the build. An image whose ``latest`` is valid while older
  versions are not (upstream's patch of ``latest`` alone) gets ``latest``'s everywhere:
  what the user gave is never replaced.

Upstream's check is kept away from our nodes by :func:`hide_metadata_capability`, which the
deploy interface's ``switch_interface`` applies: it is the only hook Ironic calls in
``start_deploy`` before ``do_node_deploy`` looks at ``task.driver.network.capabilities``.

Upstream's own assembly (``generate_instance_network_data``) is not reused: its bond
members carry no MTU, so its own check rejects every bond it builds; it renames
``bond_links`` of the first link only; it knows no bond mode and no VLAN.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ironic.common import exception, neutron
from ironic.conductor import configdrive_utils
from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions as sdk_exceptions
from oslo_config import cfg

from ironic_configdrive.image import build, formats, layout
from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.masking import scrub

LOG = logging.getLogger(__name__)
#: The [configdrive] options are registered by the deploy interface (conf.register_opts).
CONF = cfg.CONF

#: The network interface capability under which Ironic checks network data.
METADATA_CAPABILITY: Final = "metadata"
#: Where Ironic keeps a port's (or portgroup's) VIF, newest first.
_VIF_KEYS: Final = (("internal_info", "tenant_vif_port_id"), ("extra", "vif_port_id"))
#: Portgroup properties that network_data.json carries, under their network_data names.
_BOND_PROPERTIES: Final = {"miimon": "bond_miimon",
                           "xmit_hash_policy": "bond_xmit_hash_policy"}
_NETWORK_FILE: Final = "network_data.json"
#: What asking Neutron may raise: Ironic's NetworkError and configuration errors, the
#: session's and the SDK's own.
_NEUTRON_FAILURES: Final = (exception.IronicException, ksa_exceptions.ClientException,
                            sdk_exceptions.SDKException)

#: Per VIF, what Neutron knows: ``{"mtu", "networks", "services"}`` (networks' ``link`` is
#: rewritten to the link built here).
VifDetails = Callable[["Attachment"], Mapping[str, Any]]


class NetworkRepairError(ConfigDriveError):
    """The node's network data could not be built (the drive is then kept as given)."""

    category = "network_data"
    message_template = "could not build network data for node {node}: {reason}"


@dataclasses.dataclass(frozen=True)
class Member:
    """A physical port of a bond."""

    uuid: str
    address: str | None


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A port or portgroup with a VIF: what its link in network_data.json is made of."""

    kind: str  # "port" or "portgroup"
    id: int
    uuid: str
    address: str | None
    vif_id: str
    members: tuple[Member, ...] = ()
    bond_mode: str | None = None
    bond_properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    vlans: tuple[int, ...] = ()


def vif_of(obj: Any) -> str | None:
    """The VIF (Neutron port id) attached to an Ironic port or portgroup, if any."""
    for field, key in _VIF_KEYS:
        value = (getattr(obj, field, None) or {}).get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _vlans(obj: Any) -> tuple[int, ...]:
    switchport = (getattr(obj, "extra", None) or {}).get("switchport")
    allowed = switchport.get("allowed_vlans") if isinstance(switchport, Mapping) else None
    if not isinstance(allowed, list):
        return ()
    return tuple(vlan for vlan in allowed if isinstance(vlan, int)
                 and not isinstance(vlan, bool) and 1 <= vlan <= 4094)


def attachments(ports: Iterable[Any], portgroups: Iterable[Any]) -> list[Attachment]:
    """The node's ports and portgroups that carry a VIF, portgroups first, each in id order."""
    ports = sorted(ports, key=lambda port: port.id)
    found = []
    for group in sorted(portgroups, key=lambda group: group.id):
        vif = vif_of(group)
        if vif is None:
            continue
        members = tuple(Member(port.uuid, port.address) for port in ports
                        if port.portgroup_id == group.id)
        properties = {name: (group.properties or {})[key]
                      for key, name in _BOND_PROPERTIES.items()
                      if (group.properties or {}).get(key) is not None}
        found.append(Attachment(kind="portgroup", id=group.id, uuid=group.uuid,
                                address=group.address, vif_id=vif, members=members,
                                bond_mode=group.mode, bond_properties=properties,
                                vlans=_vlans(group)))
    for port in ports:
        vif = vif_of(port)
        if vif is not None:
            found.append(Attachment(kind="port", id=port.id, uuid=port.uuid,
                                    address=port.address, vif_id=vif, vlans=_vlans(port)))
    return found


def assemble(found: Iterable[Attachment], details: VifDetails) -> dict[str, Any]:
    """network_data.json for ``found``: links named ``iface0``, ``iface1``, ... in order."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []

    def add(link: dict[str, Any]) -> str:
        link["id"] = f"iface{len(links)}"
        links.append(link)
        return str(link["id"])

    for attachment in found:
        known = details(attachment)
        mtu = known.get("mtu")
        if attachment.kind == "portgroup":
            members = [add({"type": "phy", "ethernet_mac_address": member.address,
                            "mtu": mtu}) for member in attachment.members]
            address = attachment.address or (attachment.members[0].address
                                             if attachment.members else None)
            bond: dict[str, Any] = {"type": "bond", "ethernet_mac_address": address,
                                    "bond_links": members, "mtu": mtu,
                                    "vif_id": attachment.vif_id}
            if attachment.bond_mode:
                bond["bond_mode"] = attachment.bond_mode
            bond.update(attachment.bond_properties)
            parent = add(bond)
        else:
            parent = add({"type": "phy", "ethernet_mac_address": attachment.address,
                          "mtu": mtu, "vif_id": attachment.vif_id})
        for vlan in attachment.vlans:
            add({"type": "vlan", "vlan_link": parent, "vlan_id": vlan,
                 "vlan_mac_address": attachment.address, "mtu": mtu})
        for network in known.get("networks", ()):
            networks.append({**network, "link": parent})
        for service in known.get("services", ()):
            if service not in services:
                services.append(dict(service))
    return {"links": links, "networks": networks, "services": services}


def is_invalid(network_data: Any) -> bool:
    """Upstream's judgement (``{}``, nothing in links/networks/services, a null MTU)."""
    return bool(configdrive_utils.is_invalid_network_metadata(network_data))


def image_needs_repair(files: Mapping[str, bytes]) -> bool:
    """Whether any ``openstack/<version>/network_data.json`` of a drive is invalid."""
    for path in files:  # by name: a lazy tree reads only the network documents
        if path.startswith("openstack/") and path.endswith("/" + _NETWORK_FILE):
            try:
                document = json.loads(files[path])
            except (ValueError, RecursionError):
                return True
            if is_invalid(document):
                return True
    return False


def valid_latest(files: Mapping[str, bytes]) -> dict[str, Any] | None:
    """The drive's own ``openstack/latest/network_data.json`` when it is valid, else None."""
    try:
        document = json.loads(files[f"openstack/{layout.LATEST}/{_NETWORK_FILE}"])
    except (KeyError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) and not is_invalid(document) else None


def repair_image(image: bytes, paths: Iterable[str], network_data: Mapping[str, Any],
                 *, cap: int = formats.MAX_IMAGE_SIZE) -> bytes:
    """``image`` (whose file names are ``paths``) with ``network_data`` in every version
    directory carrying network data, in the image's own format."""
    return build.replace_files(image, layout.network_data_files(paths, network_data), cap=cap)


# -- Ironic ----------------------------------------------------------------------------------


class _WithoutMetadataCapability:
    """The node's network interface for one task, minus the ``metadata`` capability."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        self.capabilities = [name for name in getattr(wrapped, "capabilities", ())
                             if name != METADATA_CAPABILITY]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _network(task: Any) -> Any:
    network = task.driver.network
    return network.wrapped if isinstance(network, _WithoutMetadataCapability) else network


def hide_metadata_capability(task: Any) -> None:
    """Keep Ironic's ``do_node_deploy`` from checking (and repacking with ``mkisofs``) the
    drive of this task's node: the capability it asks for is hidden from this task's
    driver only, every other use of the network interface is unchanged."""
    network = task.driver.network
    if METADATA_CAPABILITY in getattr(network, "capabilities", ()):
        task.driver.network = _WithoutMetadataCapability(network)


def applies(task: Any) -> bool:
    """Whether the node's network interface gives network data (upstream's condition)."""
    return METADATA_CAPABILITY in getattr(_network(task), "capabilities", ())


def neutron_details(task: Any) -> VifDetails:
    """Per-VIF details from Neutron, through Ironic's own generator."""
    client = neutron.get_client(context=task.context)

    def details(attachment: Attachment) -> Mapping[str, Any]:
        data = neutron.get_neutron_port_data(
            attachment.id, attachment.vif_id, client=client, mac_address=attachment.address,
            iface_type="bond" if attachment.kind == "portgroup" else "phy")
        links = data.get("links") or [{}]
        return {"mtu": links[0].get("mtu"), "networks": data.get("networks", []),
                "services": data.get("services", [])}

    return details


def build_for(task: Any, details: VifDetails | None = None) -> dict[str, Any] | None:
    """network_data.json for ``task.node`` from its ports and portgroups (None: no VIFs).

    :raises NetworkRepairError: Neutron could not tell what a VIF needs.
    """
    found = attachments(task.ports, task.portgroups)
    if not found:
        return None
    try:
        return assemble(found, details or neutron_details(task))
    except _NEUTRON_FAILURES as exc:
        raise NetworkRepairError(node=task.node.uuid,
                                 reason=f"Neutron did not describe its VIFs: "
                                        f"{type(exc).__name__}: {scrub(str(exc))}") from None


# -- the drive being taken over (lifecycle) -------------------------------------------------


def repairs(task: Any) -> bool:
    """Whether invalid network data is repaired for ``task.node``."""
    return bool(CONF.configdrive.repair_network_data) and applies(task)


def _from_ports(task: Any) -> dict[str, Any] | None:
    """network_data.json from the node's ports (None: no VIF, or Neutron failed: logged)."""
    try:
        built = build_for(task)
    except NetworkRepairError as exc:
        LOG.warning("Config drive of node %s keeps its invalid network data: %s",
                    task.node.uuid, exc.message)
        return None
    if built is None:
        LOG.info("Config drive of node %s has invalid network data, and the node has no VIF "
                 "to build it from", task.node.uuid)
    return built


def repaired_json(task: Any, value: Any) -> Any:
    """The JSON form with its network_data rebuilt when it is invalid (else ``value``)."""
    if (not isinstance(value, dict) or not is_invalid(value.get("network_data"))
            or not repairs(task)):
        return value
    built = _from_ports(task)
    if built is None:
        return value
    LOG.info("Network data of the config drive of node %s rebuilt from its ports (%d links)",
             task.node.uuid, len(built["links"]))
    return {**value, "network_data": built}


def repaired_image(task: Any, image: bytes, *, cap: int = formats.MAX_IMAGE_SIZE) -> bytes:
    """A given image with its invalid network data rebuilt in its own format (else
    ``image``): from its own ``latest`` when that one is valid, else from the ports."""
    if not repairs(task):
        return image
    try:
        # Lazily: a drive that needs no repair has only its network documents read.
        with build.open_tree(image) as files:
            if not image_needs_repair(files):
                return image
            own = valid_latest(files)
            targets = list(files)
    except ConfigDriveError:
        return image  # validation says what is wrong with it
    built = own if own is not None else _from_ports(task)
    if built is None:
        return image
    repaired = repair_image(image, targets, built, cap=cap)
    LOG.info("Network data of the config drive of node %s rebuilt from %s (%d links) in "
             "every version directory", task.node.uuid,
             "its openstack/latest" if own is not None else "its ports", len(built["links"]))
    return repaired
