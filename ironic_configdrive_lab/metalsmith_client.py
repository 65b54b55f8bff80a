"""metalsmith as a second real client of the lab: it builds the config drive itself.

metalsmith (``pip install metalsmith``) reserves a node through Ironic's allocation API and
deploys it with a drive of its own making (meta_data with the hostname and SSH key, user data
from ``--user-name``). Here it runs as a person runs it, its ``metalsmith`` console script
with a ``clouds.yaml`` that points openstacksdk at the lab's noauth Ironic; the disk, the
store and what a guest reads are verified as :mod:`.node_cmd` verifies its own deploys, and
cloud-init (Debian's, system python) also reads the hostname, the key and the user data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab import guest, verify
from ironic_configdrive_lab.client import Client
from ironic_configdrive_lab.names import CLEAN_TIMEOUT, DEPLOY_TIMEOUT, NODE_NAME
from ironic_configdrive_lab.progress import Progress
from ironic_configdrive_lab.workdir import LabError, Workdir

CLOUD: Final = "lab"
#: Given to the node when it has none: metalsmith's allocations pick nodes by resource class.
RESOURCE_CLASS: Final = "lab-baremetal"
SYSTEM_PYTHON: Final = "/usr/bin/python3"

# Runs under Debian's python3, where cloud-init lives; prints what its ConfigDrive datasource
# reads from an extracted drive.
_CLOUD_INIT_READER: Final = """
import json, sys
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
found = read_config_drive(sys.argv[1])
meta = found["metadata"]
print(json.dumps({"uuid": meta.get("uuid"), "hostname": meta.get("hostname"),
                  "keys": list((meta.get("public_keys") or {}).values()),
                  "userdata": (found.get("userdata") or b"").decode()}))
"""


def metalsmith_bin() -> str:
    candidate = Path(sys.executable).with_name("metalsmith")
    found = str(candidate) if candidate.exists() else shutil.which("metalsmith")
    if not found:
        raise LabError("the metalsmith CLI is missing; pip install metalsmith (the [lab] "
                       "extra has it)")
    return found


def clouds_yaml(workdir: Workdir) -> Path:
    """``DIR/etc/metalsmith/clouds.yaml``: cloud ``lab``, no auth, the lab's Ironic."""
    state = workdir.load_state()
    path = workdir.etc / "metalsmith" / "clouds.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: no YAML writer needed.
    path.write_text(json.dumps({"clouds": {CLOUD: {
        "auth_type": "none", "baremetal_endpoint_override": state["api_url"]}}}, indent=2))
    return path


def environment(workdir: Workdir) -> dict[str, str]:
    """The caller's environment without its ``OS_*`` settings, plus the lab's cloud."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds_yaml(workdir)), OS_CLOUD=CLOUD)
    return env


def run(workdir: Workdir, *args: str, timeout: float) -> str:
    """``metalsmith ARGS`` against the lab; its output, or a LabError with its message."""
    result = subprocess.run([metalsmith_bin(), *args], capture_output=True, text=True,
                            env=environment(workdir), timeout=timeout, check=False)
    if result.returncode != 0:
        # Without --debug metalsmith prints Ironic's and its own message, no drive contents.
        command = next(arg for arg in args if not arg.startswith("-"))
        raise LabError(f"metalsmith {command} failed (exit {result.returncode}): "
                       f"{result.stderr.strip()[-1500:]}")
    return result.stdout


def prepare_node(client: Client) -> str:
    """What a metalsmith reservation needs of the node: a resource class and a power state.

    Ironic's allocations only pick available nodes with both. Returns the resource class.
    """
    node = client.node(NODE_NAME) or {}
    if node.get("provision_state") != "available":
        raise LabError(f"metalsmith deploys available nodes only; {NODE_NAME} is "
                       f"{node.get('provision_state')!r}: undeploy it first")
    resource_class = node.get("resource_class") or RESOURCE_CLASS
    if not node.get("resource_class"):
        client.baremetal("node", "set", NODE_NAME, "--resource-class", resource_class)
    if node.get("power_state") is None:
        # fake power only records it; the lab's power watcher runs no agent for it.
        client.baremetal("node", "power", "off", NODE_NAME)
    return resource_class


def cloud_init_view(root: Path) -> dict[str, Any]:
    """What cloud-init's ConfigDrive datasource reads from the drive extracted under ``root``."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        raise LabError("Debian's cloud-init is not installed (apt-get install cloud-init; "
                       "bindep.txt lists it)")
    result = subprocess.run([SYSTEM_PYTHON, "-c", _CLOUD_INIT_READER,
                             str(root / "mnt" / "config")],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabError(f"cloud-init could not read the drive extracted to {root}: "
                       f"{result.stderr.strip().splitlines()[-1:]}")
    view: dict[str, Any] = json.loads(result.stdout)
    return view


def _verify_cloud_init(workdir: Workdir, device: str, deployed: dict[str, Any],
                       node: dict[str, Any], hostname: str, key: str,
                       user_name: str) -> list[str]:
    from agent_ext.disk import config_drive_status

    start = deployed["range"][0]
    root = guest.extract(workdir, device, start, int(config_drive_status(device).size or 0))
    try:
        view = cloud_init_view(root)
    finally:
        guest.discard(workdir)  # keys and user data in clear
    if view["uuid"] != node["uuid"]:
        raise LabError(f"cloud-init reads instance uuid {view['uuid']!r}, metalsmith sets the "
                       f"node's {node['uuid']!r}")
    if view["hostname"] != hostname:
        raise LabError(f"cloud-init reads hostname {view['hostname']!r}, metalsmith was "
                       f"given {hostname!r}")
    wanted = guest.key_digest(key)
    if [guest.key_digest(k) for k in view["keys"]] != [wanted]:
        raise LabError(f"cloud-init reads {len(view['keys'])} SSH key(s), not the one "
                       "metalsmith was given")
    if user_name not in _users_with_key(str(view["userdata"]), wanted):
        raise LabError(f"cloud-init's user data does not create user {user_name!r} with the "
                       "SSH key")
    return [f"cloud-init reads instance uuid {view['uuid']}, hostname {view['hostname']!r}, "
            f"the SSH key and user data creating user {user_name!r} with it"]


def _users_with_key(user_data: str, key_digest: str) -> list[str]:
    """The users metalsmith's ``--user-name`` user data creates with the key.

    That user data is ``#cloud-config`` and a JSON document (JSON is YAML).
    """
    header, _, body = user_data.partition("\n")
    if header.strip() != "#cloud-config":
        return []
    try:
        users = json.loads(body).get("users") or []
    except (ValueError, AttributeError):
        return []
    return [str(user.get("name")) for user in users if isinstance(user, dict)
            and key_digest in [guest.key_digest(k) for k in user.get("ssh_authorized_keys")
                               or []]]


def deploy(workdir: Workdir, *, hostname: str, ssh_public_key: Path,
           user_name: str) -> dict[str, Any]:
    """``metalsmith deploy`` of the lab's node with its image, then the lab's checks."""
    state = workdir.load_state()
    client = Client(state["api_url"])
    progress = Progress("metalsmith")
    key = ssh_public_key.read_text().strip()
    with progress.phase("prepare"):
        resource_class = prepare_node(client)
    # glean names the host after meta_data "name" (metalsmith: the node's name), cloud-init
    # after "hostname" (metalsmith: --hostname).
    workdir.update_state(expected_guest={"hostname": NODE_NAME,
                                         "keys": [guest.key_digest(key)]})
    with progress.phase("deploy"):
        progress.say(f"metalsmith deploy --resource-class {resource_class} --hostname "
                     f"{hostname} --user-name {user_name}")
        # --quiet: metalsmith's report of an instance asks Neutron for its ports, and the lab
        # has no Neutron (openstacksdk fails with an empty AssertionError, exit 1, after the
        # deploy itself succeeded).
        run(workdir, "--quiet", "deploy", "--resource-class", resource_class,
            "--candidate", NODE_NAME,
            "--image", state["image_url"], "--image-checksum", state["image_sha256"],
            "--hostname", hostname, "--ssh-public-key", str(ssh_public_key),
            "--user-name", user_name, "--passwordless-sudo", "--wait", str(int(DEPLOY_TIMEOUT)),
            timeout=DEPLOY_TIMEOUT + 60)
        node = client.node(NODE_NAME) or {}
    with progress.phase("verify"):
        if node.get("provision_state") != "active":
            raise LabError(f"metalsmith returned with {NODE_NAME} "
                           f"{node.get('provision_state')!r}: {node.get('last_error')}")
        result = verify.deployed(workdir, node, "partition")
        result["checks"] += _verify_cloud_init(workdir, state["disk"], result, node,
                                               hostname, key, user_name)
        for line in result["checks"]:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=result)
    return {"times": progress.times, "node": node, **result}


def undeploy(workdir: Workdir, hostname: str) -> dict[str, Any]:
    """``metalsmith undeploy`` (teardown, automated cleaning), then the lab's checks."""
    state = workdir.load_state()
    client = Client(state["api_url"])
    progress = Progress("metalsmith")
    with progress.phase("undeploy+clean"):
        run(workdir, "undeploy", hostname, "--wait", str(int(CLEAN_TIMEOUT)),
            timeout=CLEAN_TIMEOUT + 60)
        node = client.node(NODE_NAME) or {}
    with progress.phase("verify"):
        if node.get("provision_state") != "available":
            raise LabError(f"metalsmith returned with {NODE_NAME} "
                           f"{node.get('provision_state')!r}: {node.get('last_error')}")
        checks = verify.undeployed(workdir, state, node)
        if node.get("instance_uuid") or node.get("allocation_uuid"):
            raise LabError(f"{NODE_NAME} is still reserved after metalsmith's undeploy")
        checks.append("the node is available with no allocation")
        for line in checks:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=None)
    return {"times": progress.times, "checks": checks}
