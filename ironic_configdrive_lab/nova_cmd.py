"""A server's life through Nova on the Nova profile, each step verified on the real things.

Nova is driven with the ``openstack`` CLI of the Nova venv, as a person types it
(:mod:`.openstack_env`): ``server create --config-drive true --user-data FILE --key-name K
--nic none --wait``, ``server rebuild --user-data FILE --wait`` (compute API 2.57),
``server delete --wait``. After each, what the lab checks itself (:mod:`.verify`): the node's
disk holds one config-2 partition written by our deploy interface with the stored drive's
bytes, Debian's cloud-init and glean read what Nova put in it, the store holds the drive;
neither ``server show`` nor Ironic's API carry the drive's contents; after a rebuild the
previous object is gone; after a delete cleaning zeroed the partition and the store is empty.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab import (
    guest,
    keystone,
    nova,
    nova_profile,
    openstack_env,
    verify,
)
from ironic_configdrive_lab.client import Client
from ironic_configdrive_lab.names import CLEAN_TIMEOUT, NODE_NAME
from ironic_configdrive_lab.workdir import LabError, Workdir

KEY_NAME: Final = "lab-key"
#: gzip's magic bytes in base64: how Nova hands a config drive to Ironic.
GZIP_BASE64: Final = "H4sI"


def _state(workdir: Workdir) -> dict[str, Any]:
    state = workdir.load_state()
    if not state.get("up") or not state.get("with_nova"):
        raise LabError(f"the lab in {workdir.root} does not run the Nova profile; run `up "
                       f"--with-nova --workdir {workdir.root}` first")
    return state


@contextlib.contextmanager
def _secret_file(workdir: Workdir, text: str) -> Iterator[Path]:
    """``text`` in a mode 0600 file under the workdir (user data: on no command line),
    removed afterwards."""
    path = workdir.root / f"user-data.{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def ensure_keypair(workdir: Workdir, public_key: str) -> str:
    """The keypair :data:`KEY_NAME` holding ``public_key`` (replaced if it holds another)."""
    listed = openstack_env.openstack(workdir, "keypair", "list")
    found = next((item for item in listed if item.get("Name") == KEY_NAME), None)
    if found is not None:
        shown = openstack_env.openstack(workdir, "keypair", "show", "--public-key", KEY_NAME,
                                        parse=False)
        if guest.key_digest(shown) == guest.key_digest(public_key):
            return KEY_NAME
        openstack_env.openstack(workdir, "keypair", "delete", KEY_NAME, parse=False)
    path = workdir.root / "lab-key.pub"
    path.write_text(public_key.strip() + "\n")
    openstack_env.openstack(workdir, "keypair", "create", "--public-key", str(path), KEY_NAME)
    return KEY_NAME


def _expect(workdir: Workdir, *, server_id: str, name: str, user_data: str,
            public_key: str) -> None:
    key = guest.key_digest(public_key)
    workdir.update_state(expected_guest={
        "hostname": name, "keys": [key],
        "cloud_init": {"uuid": server_id, "hostname": f"{name}.{nova.DHCP_DOMAIN}",
                       "keys": [key],
                       "userdata_sha256": hashlib.sha256(user_data.encode()).hexdigest()}})


def _fault(workdir: Workdir, name: str) -> str:
    """Nova's message for a failed server (the CLI says only "Error creating server")."""
    try:
        fault = openstack_env.openstack(workdir, "server", "show", name).get("fault") or {}
    except LabError as exc:
        return f"unknown ({exc})"
    return str(fault.get("message") if isinstance(fault, dict) else fault)


def _node(state: dict[str, Any]) -> dict[str, Any]:
    node = Client(state["api_url"]).node(NODE_NAME)
    if node is None:
        raise LabError(f"Ironic has no node {NODE_NAME}")
    return node


def _no_contents(workdir: Workdir, state: dict[str, Any], server: dict[str, Any],
                 *, user_data: str, public_key: str) -> list[str]:
    """Neither ``server show`` nor Ironic's node carry the drive (nor its key or user data,
    in Ironic's case)."""
    shown = json.dumps(openstack_env.openstack(workdir, "server", "show", server["id"]))
    if GZIP_BASE64 in shown:
        raise LabError("`openstack server show` carries a gzipped, base64-encoded blob")
    node_text = json.dumps(_node(state))
    secrets = {"a gzipped, base64-encoded blob": GZIP_BASE64,
               "the SSH key": public_key.split()[1],
               "the user data": user_data.strip(),
               "the user data in base64": base64.b64encode(user_data.encode()).decode()}
    for what, text in secrets.items():
        if text in node_text:
            raise LabError(f"Ironic's API shows {what} in node {NODE_NAME}")
    return ["`openstack server show` carries no drive; Ironic's node shows no drive, key or "
            "user data"]


def _one_config2(device: str) -> str:
    """Exactly one partition of ``device`` carries the config-2 label (blkid's view)."""
    found = subprocess.run(["blkid", "-t", "LABEL=config-2", "-o", "device"],
                           capture_output=True, text=True, check=False).stdout.split()
    mine = [path for path in found if path.startswith(f"{device}p")]
    if len(mine) != 1:
        raise LabError(f"{device} carries {len(mine)} config-2 partitions ({mine}), not one")
    return mine[0]


def _by_our_interface(node: dict[str, Any], result: dict[str, Any]) -> str:
    """The drive is exposed by our interface: the node's deploy interface and its record say
    so, and the record names the partition (or the media) verified (upstream keeps none)."""
    exposure = result["exposure"]
    record = (node.get("driver_internal_info") or {}).get("configdrive") or {}
    exposures = [item.get("record") or {} for item in record.get("exposures") or []
                 if item.get("mechanism") == exposure]
    where = "partition" if exposure == "partition" else "device"
    verified = result.get("partition") if exposure == "partition" else result.get("media")
    if node.get("deploy_interface") != "configdrive" or record.get("passthrough") \
            or not exposures or exposures[0].get(where) != verified:
        raise LabError(f"the config drive ({exposure} {verified}) was not exposed by the "
                       f"configdrive deploy interface (deploy interface "
                       f"{node.get('deploy_interface')}, record {sorted(record)})")
    return (f"exposed by the configdrive deploy interface ({exposure} {verified} in its "
            "record, not Ironic's passthrough)")


def expose_as(workdir: Workdir, exposure: str | None) -> None:
    """The operator's choice for the node (``driver_info/configdrive_exposure``; ``None``:
    the conductor's default, a partition). Nova has no say in it."""
    client = Client(_state(workdir)["api_url"])
    if exposure is None:
        client.baremetal("node", "unset", NODE_NAME, "--driver-info", "configdrive_exposure")
    else:
        client.baremetal("node", "set", NODE_NAME, "--driver-info",
                         f"configdrive_exposure={exposure}")


def _verify_active(workdir: Workdir, server: dict[str, Any], *, user_data: str,
                   public_key: str) -> dict[str, Any]:
    state = _state(workdir)
    if server.get("status") != "ACTIVE":
        raise LabError(f"server {server.get('name')} is {server.get('status')}: "
                       f"{server.get('fault')}")
    node = _node(state)
    if node.get("instance_uuid") != server["id"]:
        raise LabError(f"node {NODE_NAME} carries instance {node.get('instance_uuid')}, "
                       f"not server {server['id']}")
    # As the node's record says (Ironic's API masks driver_info's configdrive_exposure).
    record = (node.get("driver_internal_info") or {}).get("configdrive") or {}
    exposure = next((str(item.get("mechanism")) for item in record.get("exposures") or []),
                    "partition")
    result = verify.deployed(workdir, node, exposure)
    if exposure == "partition":
        partition = _one_config2(state["disk"])
        result["checks"].append(f"blkid finds one config-2 partition on {state['disk']}: "
                                f"{partition}")
    result["checks"].append(_by_our_interface(node, result))
    result["checks"] += _no_contents(workdir, state, server, user_data=user_data,
                                     public_key=public_key)
    result["server"] = server["id"]
    return result


def create(workdir: Workdir, *, name: str, user_data: str, public_key: str) -> dict[str, Any]:
    """``openstack server create ... --config-drive true --nic none --wait``, verified."""
    _state(workdir)
    key_name = ensure_keypair(workdir, public_key)
    with _secret_file(workdir, user_data) as path:
        try:
            server = openstack_env.openstack(
                workdir, "server", "create", "--flavor", nova_profile.FLAVOR, "--image",
                nova_profile.IMAGE, "--config-drive", "true", "--user-data", str(path),
                "--key-name", key_name, "--nic", "none", "--wait", name)
        except LabError as exc:
            raise LabError(f"{exc}; Nova's fault: {_fault(workdir, name)}") from None
    _expect(workdir, server_id=server["id"], name=name, user_data=user_data,
            public_key=public_key)
    result = _verify_active(workdir, server, user_data=user_data, public_key=public_key)
    workdir.update_state(deployed=result)
    return result


def rebuild(workdir: Workdir, *, name: str, user_data: str,
            public_key: str) -> dict[str, Any]:
    """``openstack server rebuild --user-data FILE --wait``: the new drive on the disk and
    the previous stored object gone."""
    state = _state(workdir)
    before = state.get("deployed") or {}
    with _secret_file(workdir, user_data) as path:
        openstack_env.openstack(workdir, "server", "rebuild", "--image", nova_profile.IMAGE,
                                "--user-data", str(path), "--wait", name)
    # What `rebuild --wait` prints is the server as it was when the rebuild started.
    server = openstack_env.openstack(workdir, "server", "show", name)
    _expect(workdir, server_id=server["id"], name=name, user_data=user_data,
            public_key=public_key)
    result = _verify_active(workdir, server, user_data=user_data, public_key=public_key)
    result["checks"] += verify.replaced(workdir, _state(workdir), before, result)
    workdir.update_state(deployed=result)
    return result


def delete(workdir: Workdir, *, name: str) -> dict[str, Any]:
    """``openstack server delete --wait``; cleaning zeroes the partition and empties the
    store; then waits until Nova may schedule on the node again."""
    state = _state(workdir)
    openstack_env.openstack(workdir, "server", "delete", "--wait", name, parse=False)
    node = Client(state["api_url"]).wait_for(NODE_NAME, {"available"},
                                             timeout=CLEAN_TIMEOUT)
    checks = verify.undeployed(workdir, state, node)
    left = [str(path) for root in verify.http_roots(workdir, state).values()
            for path in (root / "configdrive").glob("*") if path.name != "index.html"]
    if left:
        raise LabError(f"the HTTP root still holds {len(left)} drive file(s): {left}")
    checks.append("no drive file in any HTTP root")
    mark = time.monotonic()
    nova.wait_compute(workdir, state["node_uuid"], {
        "url": state["nova"]["placement_url"],
        "token": keystone.token(workdir, state["nova"]["auth_url"])})
    checks.append(f"Nova may schedule on the node again after {time.monotonic() - mark:.1f} "
                  "s (its next resource update)")
    workdir.update_state(deployed=None)
    return {"checks": checks}
