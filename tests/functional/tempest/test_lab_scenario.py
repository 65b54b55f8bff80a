"""The tempest scenario, run by tempest itself against the local lab (marker lab).

The lab's Ironic runs with ``auth_strategy = noauth``; the plugin reaches it through its
``NoAuthProvider`` (tempest's own auth providers all need keystone). The lab's node disk is a
file on this host, so the scenario also checks the config-2 partition byte for byte and, after
undeploy with automated cleaning, that its bytes are zeros.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool, skip_or_fail

pytestmark = pytest.mark.lab

SCENARIO = "ironic_configdrive_tempest.tests.scenario.test_configdrive"


def _tempest_exe() -> str:
    try:
        import tempest  # noqa: F401
    except ImportError:
        skip_or_fail("tempest is not installed (pip install -e .[tempest])")
    exe = shutil.which("tempest", path=str(Path(sys.executable).parent))
    return exe or require_tool("tempest")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    require_root()
    for tool in ("losetup", "ip", "sgdisk", "sfdisk", "qemu-img"):
        require_tool(tool)
    from ironic_configdrive_lab import cli, up_cmd
    from ironic_configdrive_lab.workdir import Workdir

    workdir = Workdir.at(tmp_path_factory.mktemp("tempest-lab"))
    try:
        assert cli.main(["up", "--workdir", str(workdir.root)]) == 0
        yield workdir.disk, workdir.load_state()
    finally:
        up_cmd.down(workdir)


def run_tempest(tmp_path: Path, conf: str, regex: str) -> None:
    """``tempest init`` a workspace under ``tmp_path``, append ``conf`` to its tempest.conf,
    ``tempest run --regex REGEX``; one test must pass. The shell's ``OS_*`` variables are
    not passed on (the lab's ``status`` exports some for the ``baremetal`` client)."""
    exe = _tempest_exe()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    env["HOME"] = str(tmp_path)
    workspace = tmp_path / "ws"
    subprocess.run([exe, "init", str(workspace)], check=True, capture_output=True, env=env,
                   timeout=120)
    with open(workspace / "etc" / "tempest.conf", "a") as handle:
        handle.write(conf)
    result = subprocess.run([exe, "run", "--regex", regex], cwd=workspace, env=env,
                            capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " - Passed: 1" in output and " - Failed: 0" in output, output[-3000:]


def test_scenario_passes_against_lab(lab: tuple[Path, dict[str, str]],
                                     tmp_path: Path) -> None:
    disk, state = lab
    run_tempest(tmp_path, (
        "\n[ironic_configdrive]\n"
        "enabled = True\n"
        "auth = noauth\n"
        f"endpoint = {state['api_url']}\n"
        "node = lab-node\n"
        f"image_source = {state['image_url']}\n"
        f"image_checksum = {state['image_sha256']}\n"
        "image_disk_format = raw\n"
        "exposure = partition\n"
        f"disk_image = {disk}\n"
        "deploy_timeout = 600\n"
        "undeploy_timeout = 600\n"), SCENARIO)
