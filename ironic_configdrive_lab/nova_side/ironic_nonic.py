"""Nova's ironic virt driver for servers created with ``--nic none`` and a config drive.

Nova 34's ``IronicDriver._get_network_metadata`` hands the instance's network info to
``netutils.get_network_metadata``, which returns ``None`` when there is none (``--nic none``),
and then iterates over ``None['links']``: the config drive, hence the build, fails with a
``TypeError``. Neutron is never asked for that network info (``allocate_for_instance`` returns
an empty list for ``none`` before calling it), so the lab's Neutron stand-in cannot help.

The lab's nova-compute runs this subclass instead (``[DEFAULT]compute_driver``, registered
by ``nova_compute.py`` next to this file): with no network info it gives the config drive no
network metadata, as Nova's libvirt driver does for a server without ports; with network
info it is upstream's method unchanged.
Nothing in Nova's installed files is edited.
"""

from __future__ import annotations

from typing import Any

from nova.virt.ironic import driver


class IronicDriver(driver.IronicDriver):
    def _get_network_metadata(self, node: Any, network_info: Any) -> Any:
        if not network_info:
            return None
        return super()._get_network_metadata(node, network_info)
