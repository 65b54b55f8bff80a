"""metalsmith, a second real client, deploys the lab's node with a config drive of its own
making and undeploys it (marker lab).

metalsmith's CLI reserves the node through Ironic's allocation API and sends a drive it
builds itself (hostname, SSH key, user data creating a user); the lab checks the disk, the
store and what glean and cloud-init read, as after its own deploys. One lab, brought down in
every case.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from ironic_configdrive_lab import cli, metalsmith_client, up_cmd
from ironic_configdrive_lab.workdir import Workdir
from tests.conftest import skip_or_fail
from tests.functional.lab.test_lab import _leftovers, _require_lab

pytestmark = pytest.mark.lab

HOSTNAME = "ms-instance"
USER = "ms-admin"
KEY_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAImetalsmith"
KEY = f"ssh-ed25519 {KEY_BODY} metalsmith@lab"


def _require_metalsmith() -> None:
    try:
        metalsmith_client.metalsmith_bin()
    except Exception as exc:
        skip_or_fail(str(exc))
    probe = subprocess.run([metalsmith_client.SYSTEM_PYTHON, "-c", "import cloudinit"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        skip_or_fail("Debian's cloud-init is not installed (bindep.txt: cloud-init)")
    if not shutil.which("blkid"):
        skip_or_fail("blkid missing (util-linux)")


def _labels(device: str) -> list[str]:
    """The filesystem label of every partition of ``device``, as blkid probes it."""
    name = device.rsplit("/", 1)[1]
    labels = []
    for part in sorted(Path("/sys/block", name).glob(f"{name}p*")):
        probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", f"/dev/{part.name}"],
                               capture_output=True, text=True, check=False)
        labels.append(probe.stdout.strip())
    return labels


def test_metalsmith_deploys_with_its_own_drive_and_undeploys(tmp_path: Path) -> None:
    _require_lab()
    _require_metalsmith()
    workdir = Workdir.at(tmp_path / "lab")
    key_file = tmp_path / "id_ed25519.pub"
    key_file.write_text(KEY + "\n")
    try:
        assert cli.main(["up", "--workdir", str(workdir.root)]) == 0
        state = workdir.load_state()
        deployed = metalsmith_client.deploy(workdir, hostname=HOSTNAME,
                                            ssh_public_key=key_file, user_name=USER)
        node = deployed["node"]
        assert node["provision_state"] == "active"
        # Reserved through an allocation named after the hostname metalsmith was given.
        assert node["allocation_uuid"] and node["instance_uuid"] == node["allocation_uuid"]
        allocation = requests.get(f"{state['api_url']}/v1/allocations/{HOSTNAME}",
                                  headers={"X-OpenStack-Ironic-API-Version": "latest"},
                                  timeout=10).json()
        assert allocation["node_uuid"] == node["uuid"]
        # Our interface stored, wrote and recorded the drive metalsmith sent as JSON.
        record = node["driver_internal_info"]["configdrive"]
        assert [item["mechanism"] for item in record["exposures"]] == ["partition"]
        assert deployed["stored"]["store"] == "swift"
        assert deployed["sha256"] == record["stored"]["sha256"]
        assert [label.lower() for label in _labels(state["disk"])].count("config-2") == 1
        checks = "\n".join(deployed["checks"])
        assert "hashing to the stored sha256" in checks
        assert "glean reads hostname 'lab-node' and 1 SSH key(s)" in checks
        assert (f"cloud-init reads instance uuid {node['uuid']}, hostname '{HOSTNAME}', the "
                f"SSH key and user data creating user '{USER}'") in checks
        assert "stored object present in Swift container" in checks
        # The drive's contents are nowhere in the node's API fields.
        assert KEY_BODY not in json.dumps(node)

        undeployed = metalsmith_client.undeploy(workdir, HOSTNAME)
        checks = "\n".join(undeployed["checks"])
        start, size = deployed["range"]
        assert f"config drive range {start}+{size} of {state['disk']} reads zeros" in checks
        assert "Swift container lab-configdrive is empty" in checks
        assert "the node is available with no allocation" in checks
        assert [label.lower() for label in _labels(state["disk"])].count("config-2") == 0
    finally:
        up_cmd.down(workdir, quiet=True)
    assert _leftovers(workdir) == []
