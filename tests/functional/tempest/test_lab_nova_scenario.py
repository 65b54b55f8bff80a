"""The tempest plugin's Nova variant, run by tempest itself against the lab's Nova profile
(marker lab).

Nova, Glance and Keystone are real (the lab's Nova profile); tempest logs in as the lab's
Keystone admin (dynamic credentials) and creates a server with a config drive on the lab's
flavor and image. The lab's Ironic stays noauth, reached through the plugin's
``NoAuthProvider``; the node's disk is a file here, so the partition is checked byte for byte
and, after the server's delete and automated cleaning, read back as zeros.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ironic_configdrive_lab import cli, keystone, nova, nova_cmd, up_cmd, verify
from ironic_configdrive_lab.workdir import Workdir
from tests.functional.lab.test_nova import _require_nova
from tests.functional.tempest.test_lab_scenario import run_tempest

pytestmark = pytest.mark.lab

SCENARIO = "ironic_configdrive_tempest.tests.scenario.test_nova_configdrive"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workdir]:
    _require_nova()
    workdir = Workdir.at(tmp_path_factory.mktemp("tempest-nova"))
    try:
        assert cli.main(["up", "--with-nova", "--store", "http",
                         "--workdir", str(workdir.root)]) == 0
        yield workdir
    finally:
        up_cmd.down(workdir)


@pytest.fixture(scope="module")
def lab(workdir: Workdir) -> tuple[Path, dict[str, Any]]:
    state = workdir.load_state()
    state["admin_password"] = keystone.admin_password(workdir)
    return workdir.disk, state


def test_nova_scenario_passes_against_lab(lab: tuple[Path, dict[str, Any]],
                                          tmp_path: Path) -> None:
    disk, state = lab
    nova = state["nova"]
    run_tempest(tmp_path, (
        "\n[auth]\n"
        "admin_username = admin\n"
        f"admin_password = {state['admin_password']}\n"
        "admin_project_name = admin\n"
        "admin_domain_name = Default\n"
        "\n[identity]\n"
        f"uri_v3 = {nova['auth_url']}\n"
        "auth_version = v3\n"
        "region = RegionOne\n"
        "\n[service_available]\n"
        "nova = True\nglance = True\nneutron = False\ncinder = False\nswift = False\n"
        "\n[compute]\n"
        f"flavor_ref = {nova['flavor_id']}\n"
        f"image_ref = {nova['image_id']}\n"
        "\n[compute-feature-enabled]\n"
        "config_drive = True\n"
        "\n[validation]\n"
        "run_validation = False\n"
        "\n[ironic_configdrive]\n"
        "nova = True\n"
        "auth = noauth\n"
        f"endpoint = {state['api_url']}\n"
        "node = lab-node\n"
        f"disk_image = {disk}\n"
        "undeploy_timeout = 600\n"), SCENARIO)


def test_virtual_media_on_the_http_store_through_nova(workdir: Workdir) -> None:
    """The fourth combination (the Swift store's two are in ``tests/functional/lab/
    test_nova.py``): a server whose node the operator set to virtual media, its drive sealed
    in the conductor's HTTP root, inserted at the BMC, ejected and deleted with the server."""
    state = workdir.load_state()
    # tempest's server was just deleted: Nova holds the node until its next resource update
    nova.wait_compute(workdir, state["node_uuid"], {
        "url": state["nova"]["placement_url"],
        "token": keystone.token(workdir, state["nova"]["auth_url"])})
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    nova_cmd.expose_as(workdir, "virtual_media")
    try:
        result = nova_cmd.create(workdir, name="nova-vmedia-http",
                                 user_data="#cloud-config\n", public_key=f"{public} lab@nova")
        assert result["exposure"] == "virtual_media"
        assert result["stored"]["store"] == "http" and result["stored"]["sealed"] is True
        assert any(line.startswith("the BMC reports our media inserted")
                   for line in result["checks"])
        assert any(line.startswith("no config-2 partition on") for line in result["checks"])
        deleted = nova_cmd.delete(workdir, name="nova-vmedia-http")
        assert any(line.endswith("ejected") for line in deleted["checks"])
        assert "no drive file in any HTTP root" in deleted["checks"]
    finally:
        nova_cmd.expose_as(workdir, None)
    for root in verify.http_roots(workdir, workdir.load_state()).values():
        assert [path.name for path in (root / "configdrive").glob("*")
                if path.name != "index.html"] == []
