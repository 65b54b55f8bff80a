"""Names and limits the lab's commands share: the node, its services, stores, exposures."""

from __future__ import annotations

from typing import Final

from ironic_configdrive_lab import agent, bmc, http, ironic

NODE_NAME: Final = "lab-node"
POWER: Final = "power"
#: Single-process services, stopped in this order (Swift's processes are tracked apart;
#: the multi-conductor profile's in :func:`conductor_cmd.stop_order`).
SERVICES: Final = (POWER, agent.NAME, ironic.NAME, bmc.NAME, http.NAME)
STORES: Final = ("swift", "http")
EXPOSURES: Final = ("partition", "virtual_media")
DEPLOY_TIMEOUT: Final = 600.0
CLEAN_TIMEOUT: Final = 600.0
WAIT_STATES: Final = frozenset({"wait call-back", "clean wait"})
STABLE_STATES: Final = frozenset({"deploy failed", "clean failed", "available", "active",
                                  "manageable"})
