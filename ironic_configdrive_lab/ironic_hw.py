"""The lab's Ironic hardware type: fake-hardware that can also "boot from disk".

fake-hardware's only management interface (``fake``) supports PXE as boot device, so the
direct deploy's ``prepare_instance_boot`` (which sets the boot device to disk) fails on it.
This type adds Ironic's ``noop`` management interface (PXE and disk, nothing done), which is
what a node whose BMC the lab plays needs. Registered only for the lab's own Ironic (see
:func:`ironic_configdrive_lab.plugins.write`), never in the installed package.
"""

from __future__ import annotations

from typing import Any

from ironic.drivers import fake_hardware
from ironic.drivers.modules import noop_mgmt

NAME = "lab-hardware"


class LabHardware(fake_hardware.FakeHardware):
    @property
    def supported_management_interfaces(self) -> list[Any]:
        return [noop_mgmt.NoopManagement, *super().supported_management_interfaces]
