"""Hardware types that accept the ``configdrive`` deploy interface.

Ironic's driver factory accepts an interface for a node only if its class is listed *by
identity* in the hardware type's ``supported_<type>_interfaces`` (``fake-hardware`` alone
accepts anything); a subclass of ``AgentDeploy`` is not accepted by ``ipmi``, ``redfish``, ...
These variants add :class:`~ironic_configdrive.deploy.ConfigDriveDeploy` at the end of the
list, so ``direct`` stays the default deploy interface and ``configdrive`` is chosen per node:

    [DEFAULT]
    enabled_hardware_types = redfish-configdrive,ipmi-configdrive
    enabled_deploy_interfaces = direct,configdrive

    baremetal node set NODE --driver redfish-configdrive --deploy-interface configdrive
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ironic.drivers import generic, ipmi, redfish

from ironic_configdrive.deploy import ConfigDriveDeploy


class _WithConfigDrive:
    @property
    def supported_deploy_interfaces(self) -> Sequence[type[Any]]:
        base: Sequence[type[Any]] = super().supported_deploy_interfaces  # type: ignore[misc]
        return [*base, ConfigDriveDeploy]


class RedfishConfigDriveHardware(_WithConfigDrive, redfish.RedfishHardware):
    """``redfish`` plus the configdrive deploy interface."""


class IPMIConfigDriveHardware(_WithConfigDrive, ipmi.IPMIHardware):
    """``ipmi`` plus the configdrive deploy interface."""


class ManualManagementConfigDriveHardware(_WithConfigDrive,
                                          generic.ManualManagementHardware):
    """``manual-management`` plus the configdrive deploy interface."""
