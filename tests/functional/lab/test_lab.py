"""The local bare-metal lab, end to end: real Ironic, real agent, loop disk, veth, real Swift,
a Redfish emulator (marker lab).

Slow (tens of seconds per phase): one lab per module (Swift store; the last test switches it
to the http store), brought down in every case.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ironic_configdrive_lab import (
    bmc,
    cli,
    client,
    disk,
    names,
    network,
    node_cmd,
    objectstore,
    process,
    status_cmd,
    up_cmd,
)
from ironic_configdrive_lab.workdir import Workdir
from tests.conftest import require_root, require_tool, skip_or_fail

pytestmark = pytest.mark.lab

CONFIG_DRIVE = {
    "meta_data": {"uuid": "11111111-2222-3333-4444-555555555555", "name": "lab-instance",
                  "hostname": "lab-instance",
                  "public_keys": {"lab": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlab lab@x"}},
    "user_data": "#cloud-config\nhostname: lab-instance\n",
}


def _require_lab() -> None:
    require_root()
    for tool in ("losetup", "ip", "sgdisk", "lshw", "fuser"):
        require_tool(tool)
    for tool in ("ironic", "ironic-dbsync", "ironic-python-agent", "baremetal",
                 "sushy-emulator", "swift-proxy-server", "memcached"):
        if not (Path(sys.executable).with_name(tool).exists() or shutil.which(tool)):
            skip_or_fail(f"{tool} missing: install the conductor and agent extras, "
                         "python-ironicclient, sushy-tools, swift and memcached")


def _leftovers(workdir: Workdir) -> list[str]:
    found = [f"{name} pid" for name in names.SERVICES
             if process.running_pid(workdir, name) is not None]
    found += [f"swift {name} pid" for name in objectstore.running(workdir)]
    if workdir.disk.exists():
        found += disk.backing_devices(workdir.disk)
    if network.exists(network.names(workdir)[0]):
        found.append(network.names(workdir)[0])
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workdir]:
    _require_lab()
    workdir = Workdir.at(tmp_path_factory.mktemp("lab"))
    try:
        assert cli.main(["up", "--workdir", str(workdir.root)]) == 0, \
            process.log_tail(workdir, "ironic")
        yield workdir
    finally:
        up_cmd.down(workdir)
    assert _leftovers(workdir) == []


def _status(workdir: Workdir) -> dict:
    return status_cmd.status(workdir)


def _objects(workdir: Workdir) -> list[str]:
    """The lab's Swift container, listed with swiftclient and the lab's credentials."""
    return objectstore.list_objects(workdir.load_state()["swift"])


def test_up_status(lab: Workdir) -> None:
    status = _status(lab)
    assert all(status["processes"][name] for name in ("ironic", "http", "power", "redfish"))
    assert status["store"] == "swift"
    assert sorted(status["swift"]) == sorted(objectstore.swift.PROCESSES)
    assert status["api_answers"] is True
    assert status["node"]["deploy_interface"] == "configdrive"
    assert status["node"]["provision_state"] == "available"
    [loop] = status["disk"]["loop"]
    assert loop.startswith("/dev/loop")
    assert status["interface"] == network.names(lab)[0]
    # A second `up` finds the lab running and changes nothing.
    pids = dict(status["processes"])
    assert cli.main(["up", "--workdir", str(lab.root)]) == 0
    assert _status(lab)["processes"] == pids
    conf = (lab.etc / "ironic.conf").read_text()
    settings = lab.load_state()["swift"]
    for line in ("store = swift", f"swift_auth_url = {settings['auth_url']}",
                 f"swift_user = {settings['user']}", "swift_container = lab-configdrive"):
        assert line in conf
    node = client.Client(lab.load_state()["api_url"]).node(names.NODE_NAME) or {}
    assert node["driver_info"]["redfish_address"] == lab.load_state()["redfish"][
        "redfish_address"]


def test_deploy_verify_undeploy(lab: Workdir, tmp_path: Path) -> None:
    from agent_ext.disk import config_drive_status

    drive = tmp_path / "drive.json"
    drive.write_text(json.dumps(CONFIG_DRIVE))
    result = node_cmd.deploy(lab, config_drive=str(drive), exposure="partition")
    state = lab.load_state()
    status = config_drive_status(state["disk"])
    assert status.present and status.label == "config-2"
    assert status.sha256 == result["stored"]["sha256"]
    assert result["stored"]["store"] == "swift"
    first_object = result["stored"]["location"].split("/", 1)[1]
    assert _objects(lab) == [first_object]
    assert any("glean reads hostname 'lab-instance'" in line for line in result["checks"])
    node = _status(lab)["node"]
    assert node["provision_state"] == "active"

    # Rebuild with another drive: still exactly one config-2 partition, the new bytes, and
    # the first stored object gone.
    rebuilt_drive = json.loads(json.dumps(CONFIG_DRIVE))
    rebuilt_drive["meta_data"]["name"] = "lab-rebuilt"
    rebuilt = node_cmd.deploy(lab, config_drive=json.dumps(rebuilt_drive), exposure="partition")
    assert any("glean reads hostname 'lab-rebuilt'" in line for line in rebuilt["checks"])
    assert rebuilt["sha256"] != result["sha256"]
    assert config_drive_status(state["disk"]).sha256 == rebuilt["sha256"]
    # Only the new drive is stored: the first object is gone from Swift.
    assert _objects(lab) == [rebuilt["stored"]["location"].split("/", 1)[1]]
    result = rebuilt

    node_cmd.undeploy(lab)
    start, size = result["range"]
    data = disk.read_range(state["disk"], start, size)
    assert data == bytes(len(data))
    assert _objects(lab) == []
    assert not config_drive_status(state["disk"]).present
    assert _status(lab)["node"]["provision_state"] == "available"


def test_virtual_media_deploy_undeploy(lab: Workdir) -> None:
    import hashlib

    from agent_ext.disk import config_drive_status

    drive = json.loads(json.dumps(CONFIG_DRIVE))
    drive["meta_data"]["name"] = "lab-vmedia"
    result = node_cmd.deploy(lab, config_drive=json.dumps(drive), exposure="virtual_media")
    state = lab.load_state()
    assert any("glean reads hostname 'lab-vmedia'" in line for line in result["checks"])
    # Checked here independently of the lab's own verification: the BMC's view.
    slot = bmc.media(lab, state["redfish"]["redfish_address"])[result["media"]]
    assert slot["Inserted"] is True
    obj = result["stored"]["location"].split("/", 1)[1]
    assert obj.endswith(".sealed")  # Swift holds the encrypted drive ...
    # ... and the BMC a decrypted copy the conductor serves from its http root while attached.
    node_uuid = state["node_uuid"]
    assert f"/configdrive/{node_uuid}." in slot["Image"] and slot["Image"].endswith(".iso")
    served = [p for p in (lab.http_root / "configdrive").iterdir() if p.suffix == ".iso"]
    assert len(served) == 1
    assert result["stored"]["sha256"] in {hashlib.sha256(data).hexdigest()
                                          for data in bmc.downloaded(lab)}
    assert not config_drive_status(state["disk"]).present
    assert _objects(lab) == [obj]

    undeployed = node_cmd.undeploy(lab)
    assert f"the BMC reports {result['media']} ejected" in undeployed["checks"]
    slot = bmc.media(lab, state["redfish"]["redfish_address"])[result["media"]]
    assert not slot["Inserted"]
    assert _objects(lab) == []
    assert list((lab.http_root / "configdrive").glob("*.iso")) == []  # the copy is gone
    assert _status(lab)["node"]["provision_state"] == "available"


def test_down_after_crash_then_up_again(lab: Workdir) -> None:
    # Kill everything hard, as a crash would; `down` must still clean up by pid and state.
    for name in ("power", "ironic", "http", "redfish"):
        pid = process.running_pid(lab, name)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
    swift_pids = objectstore.running(lab)
    assert len(swift_pids) == len(objectstore.swift.PROCESSES)
    os.killpg(swift_pids["proxy"], signal.SIGKILL)
    assert cli.main(["down", "--workdir", str(lab.root)]) == 0
    assert _leftovers(lab) == []
    assert subprocess.run(["pgrep", "-f", str(lab.root)], capture_output=True).returncode == 1
    assert cli.main(["up", "--workdir", str(lab.root)]) == 0
    assert _status(lab)["node"]["provision_state"] == "available"
    assert _objects(lab) == []


def test_http_store(lab: Workdir) -> None:
    # Switching the store restarts the lab without Swift; the same node deploys from http.
    assert cli.main(["up", "--workdir", str(lab.root), "--store", "http"]) == 0
    status = _status(lab)
    assert status["store"] == "http" and status["swift"] == {}
    assert "store = http" in (lab.etc / "ironic.conf").read_text()
    result = node_cmd.deploy(lab, config_drive=json.dumps(CONFIG_DRIVE), exposure="partition")
    assert result["stored"]["store"] == "http"
    stored_file = lab.http_root / result["stored"]["location"]
    assert stored_file.is_file()
    node_cmd.undeploy(lab)
    assert not stored_file.exists()
