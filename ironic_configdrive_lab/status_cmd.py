"""``status``: what runs, the node's state, and the ``baremetal`` CLI's environment."""

from __future__ import annotations

from typing import Any

from ironic_configdrive_lab import (
    agent,
    bmc,
    conductor_cmd,
    disk,
    http,
    network,
    nova_profile,
    objectstore,
    process,
)
from ironic_configdrive_lab.client import Client, cli_environment
from ironic_configdrive_lab.names import NODE_NAME, POWER
from ironic_configdrive_lab.profile import Profile
from ironic_configdrive_lab.workdir import Workdir


def status(workdir: Workdir) -> dict[str, Any]:
    state = workdir.load_state()
    lab_profile = Profile.of(state)
    names = [POWER, agent.NAME, *conductor_cmd.processes(workdir, state), bmc.NAME, http.NAME]
    result: dict[str, Any] = {
        "workdir": str(workdir.root),
        "processes": {name: process.running_pid(workdir, name) for name in names},
        "swift": objectstore.running(workdir),
        "store": state.get("store"),
        "disk": {"file": str(workdir.disk),
                 "loop": disk.backing_devices(workdir.disk) if workdir.disk.exists() else []},
        "interface": network.names(workdir)[0] if network.exists(network.names(workdir)[0])
        else None,
        "api_url": state.get("api_url"),
        "api_answers": False,
        "node": None,
    }
    node = None
    if state.get("api_url") and result["processes"].get(lab_profile.api_name):
        client = Client(state["api_url"])
        result["api_answers"] = client.answers()
        if result["api_answers"]:
            node = client.node(NODE_NAME)
            if node is not None:
                result["node"] = {k: node.get(k) for k in (
                    "uuid", "name", "provision_state", "power_state", "deploy_interface",
                    "driver", "management_interface", "last_error", "conductor")}
    result.update(conductor_cmd.status(workdir, state, node))
    if state.get("with_nova"):
        result["nova"] = {"processes": nova_profile.running(workdir),
                          **{key: value for key, value in (state.get("nova") or {}).items()
                             if key.endswith("_url") or key in ("flavor", "image",
                                                                "clouds_yaml")}}
    return result


def status_exports(result: dict[str, Any]) -> str:
    """The lines a person pastes into a shell to drive the lab with ``baremetal``."""
    if not result.get("api_url"):
        return "# the lab is not up: no API to point the baremetal CLI at"
    lines = ["# to use the baremetal CLI against the lab:"]
    lines += [f"export {key}={value}" for key, value in cli_environment(result["api_url"]).items()]
    return "\n".join(lines)
