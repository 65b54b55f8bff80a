"""The lab plays the node's power: it watches Ironic and runs the agent accordingly.

fake-hardware's power interface only records the power state in Ironic's database. This
watcher polls the node through the API: when Ironic powers the node on to run the ramdisk
(deploy or cleaning), it starts the agent; when the node is powered off or leaves the
ramdisk states, it stops it. Run as its own process by ``up``:
``python -m ironic_configdrive_lab.power WORKDIR``.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from types import FrameType
from typing import Any

import requests

from ironic_configdrive_lab import agent
from ironic_configdrive_lab.workdir import Workdir

NAME = "power"
POLL_INTERVAL = 0.5
RESTART_DELAY = 5.0
#: Provision states in which a powered-on node runs the agent ramdisk.
RAMDISK_STATES = frozenset({
    "deploying", "wait call-back", "cleaning", "clean wait", "inspecting", "inspect wait",
    "servicing", "service wait", "rescuing", "rescue wait",
})
#: Deploy steps after which a power-on boots the instance, not the ramdisk.
INSTANCE_STEPS = frozenset({"boot_instance", "switch_to_tenant_network"})

LOG = logging.getLogger("ironic_configdrive_lab.power")


def wants_agent(node: dict[str, Any]) -> bool:
    if node.get("power_state") != "power on":
        return False
    if node.get("provision_state") not in RAMDISK_STATES:
        return False
    step = (node.get("deploy_step") or {}).get("step")
    return step not in INSTANCE_STEPS


def _node(api_url: str, node: str) -> dict[str, Any] | None:
    try:
        response = requests.get(f"{api_url}/v1/nodes/{node}",
                                headers={"X-OpenStack-Ironic-API-Version": "latest"},
                                timeout=5)
    except requests.RequestException as exc:
        LOG.warning("Ironic API unreachable: %s", exc)
        return None
    if not response.ok:
        return None
    data = response.json()
    return data if isinstance(data, dict) else None


def watch(workdir: Workdir) -> None:
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    last_power: str | None = None
    last_start = 0.0
    try:
        while not stopping:
            state = workdir.load_state()
            node = _node(state["api_url"], state["node_uuid"])
            if node is not None:
                power = node.get("power_state")
                running = agent.running(workdir)
                want = wants_agent(node)
                # A power-off/on cycle between two polls is a reboot: restart the ramdisk.
                rebooted = last_power == "power off" and power == "power on"
                if running and (not want or rebooted):
                    LOG.info("node %s %s/%s: stopping the agent", node.get("uuid"),
                             power, node.get("provision_state"))
                    agent.stop(workdir)
                    running = False
                # A crashing agent is restarted like a node rebooting, not in a tight loop.
                if want and not running and time.monotonic() - last_start > RESTART_DELAY:
                    last_start = time.monotonic()
                    LOG.info("node %s %s/%s: starting the agent", node.get("uuid"), power,
                             node.get("provision_state"))
                    agent.start(workdir, conf_path=workdir.etc / "agent.conf",
                                disk=state["disk"], interface=state["interface"])
                last_power = power
            time.sleep(POLL_INTERVAL)
    finally:
        agent.stop(workdir)


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")
    watch(Workdir.at(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
