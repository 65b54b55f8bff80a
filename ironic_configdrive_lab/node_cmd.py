"""``deploy``, ``update`` and ``undeploy``: drive the node through Ironic's API with the
real ``baremetal`` client, then verify the disk, the BMC and the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ironic_configdrive_lab import (
    guest,
    process,
    verify,
)
from ironic_configdrive_lab.client import Client
from ironic_configdrive_lab.names import CLEAN_TIMEOUT, DEPLOY_TIMEOUT, EXPOSURES, NODE_NAME
from ironic_configdrive_lab.profile import Profile
from ironic_configdrive_lab.progress import Progress
from ironic_configdrive_lab.workdir import LabError, Workdir


def _client(workdir: Workdir) -> tuple[Client, dict[str, Any]]:
    state = workdir.load_state()
    if not state.get("up") \
            or process.running_pid(workdir, Profile.of(state).api_name) is None:
        raise LabError(f"the lab in {workdir.root} is not up; run `up --workdir "
                       f"{workdir.root}` first")
    return Client(state["api_url"]), state


def _printer(progress: Progress) -> Callable[[dict[str, Any]], None]:
    def show(node: dict[str, Any]) -> None:
        step = node.get("deploy_step") or node.get("clean_step") or {}
        extra = f" step {step.get('interface')}.{step.get('step')}" if step else ""
        progress.say(f"node {node['provision_state']} ({node['power_state']}){extra}")
    return show


def config_drive_arg(value: str) -> str:
    """JSON text or a file: JSON files are passed as JSON, anything else as the file."""
    path = Path(value)
    if not value.lstrip().startswith("{") and path.is_file():
        text = path.read_text(errors="replace").strip()
        if text.startswith("{"):
            json.loads(text)
            return text
        return str(path)
    try:
        json.loads(value)
    except ValueError:
        raise LabError("--config-drive must be JSON or an existing file") from None
    return value


def _expected_guest(drive: str) -> dict[str, Any]:
    """What a guest should read, when the drive is given as JSON (else nothing to compare)."""
    try:
        data = json.loads(drive)
    except ValueError:
        return {}
    meta = data.get("meta_data") or {} if isinstance(data, dict) else {}
    keys = meta.get("public_keys") or {}
    # Compare by key type and body only: the comment is free text.
    return {"hostname": meta.get("name"),
            "keys": [guest.key_digest(k) for k in
                     (keys.values() if isinstance(keys, dict) else keys)]}


def deploy(workdir: Workdir, *, config_drive: str, exposure: str) -> dict[str, Any]:
    client, state = _client(workdir)
    progress = Progress("deploy")
    if exposure not in EXPOSURES:
        raise LabError(f"unknown exposure {exposure!r}; use one of {', '.join(EXPOSURES)}")
    drive = config_drive_arg(config_drive)
    workdir.update_state(expected_guest=_expected_guest(drive))
    with progress.phase("configure"):
        client.baremetal("node", "set", NODE_NAME,
                         "--instance-info", f"image_source={state['image_url']}",
                         "--instance-info", f"image_checksum={state['image_sha256']}",
                         "--instance-info", "image_disk_format=raw",
                         "--instance-info", f"configdrive_exposure={exposure}")
    with progress.phase("deploy"):
        current = (client.node(NODE_NAME) or {}).get("provision_state")
        # An active node is rebuilt: same flow, the previous config drive is replaced.
        action = "rebuild" if current == "active" else "deploy"
        progress.say(f"baremetal node {action} (from {current})")
        client.baremetal("node", action, NODE_NAME, "--config-drive", drive)
        node = client.wait_for(NODE_NAME, {"active"}, timeout=DEPLOY_TIMEOUT,
                               on_change=_printer(progress))
    with progress.phase("verify"):
        result = verify.deployed(workdir, node, exposure)
        for line in result["checks"]:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=result, deploy_times=progress.times)
    return {"times": progress.times, **result}


def update(workdir: Workdir, *, config_drive: str) -> dict[str, Any]:
    """Replace the config drive of the ACTIVE node with the update_configdrive service step."""
    client, state = _client(workdir)
    progress = Progress("update")
    deployed = state.get("deployed") or {}
    node = client.node(NODE_NAME) or {}
    if node.get("provision_state") != "active" or not deployed:
        raise LabError(f"update needs the node deployed (active), not "
                       f"{node.get('provision_state')!r}; run `deploy` first")
    drive = config_drive_arg(config_drive)
    workdir.update_state(expected_guest=_expected_guest(drive))
    step = {"interface": "deploy", "step": "update_configdrive",
            "args": {"configdrive": json.loads(drive) if drive.lstrip().startswith("{")
                     else drive}}
    with progress.phase("service"):
        progress.say("baremetal node service --service-steps update_configdrive")
        # On stdin: the drive must not show in any process list.
        client.baremetal("node", "service", NODE_NAME, "--service-steps", "-",
                         stdin=json.dumps([step]))
        node = client.wait_for(NODE_NAME, {"active"}, timeout=DEPLOY_TIMEOUT,
                               on_change=_printer(progress))
    with progress.phase("verify"):
        result = verify.deployed(workdir, node, deployed.get("exposure") or "partition")
        result["checks"] += verify.replaced(workdir, state, deployed, result)
        for line in result["checks"]:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=result)
    return {"times": progress.times, **result}


def undeploy(workdir: Workdir) -> dict[str, Any]:
    client, state = _client(workdir)
    progress = Progress("undeploy")
    node = client.node(NODE_NAME) or {}
    with progress.phase("undeploy+clean"):
        if node.get("provision_state") in ("clean failed", "clean wait"):
            # Retry the cleaning a previous undeploy could not finish.
            if node["provision_state"] == "clean wait":
                client.baremetal("node", "abort", NODE_NAME)
                client.wait_for(NODE_NAME, {"clean failed"}, timeout=60)
            client.baremetal("node", "maintenance", "unset", NODE_NAME)
            client.baremetal("node", "manage", NODE_NAME, "--wait", "60")
            client.baremetal("node", "provide", NODE_NAME)
        else:
            client.baremetal("node", "undeploy", NODE_NAME)
        node = client.wait_for(NODE_NAME, {"available"}, timeout=CLEAN_TIMEOUT,
                               on_change=_printer(progress))
    with progress.phase("verify"):
        checks = verify.undeployed(workdir, state, node)
        for line in checks:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=None)
    return {"times": progress.times, "checks": checks}
