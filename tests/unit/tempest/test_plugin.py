"""The tempest plugin: entry point, options, and discovery and skipping by tempest itself.

tempest is an optional dependency (the ``tempest`` extra); without it these tests skip
locally and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import require_tool, skip_or_fail

try:
    import tempest  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_TEMPEST = False
else:
    HAVE_TEMPEST = True

SCENARIO_ID = ("ironic_configdrive_tempest.tests.scenario.test_configdrive."
               "ConfigDriveDeployTest.test_deploy_with_configdrive_and_undeploy")
ENTRY_POINT = "ironic_configdrive_tempest.plugin:ConfigDriveTempestPlugin"


@pytest.fixture(autouse=True)
def _need_tempest() -> None:
    if not HAVE_TEMPEST:
        skip_or_fail("tempest is not installed (pip install -e .[tempest])")


# -- the plugin as tempest loads it -----------------------------------------------------------

def test_entry_point_registered() -> None:
    found = [ep for ep in metadata.entry_points(group="tempest.test_plugins")
             if ep.name == "ironic_configdrive_tests"]
    assert [ep.value for ep in found] == [ENTRY_POINT]
    from ironic_configdrive_tempest.plugin import ConfigDriveTempestPlugin

    assert found[0].load() is ConfigDriveTempestPlugin


def test_load_tests_points_at_scenario() -> None:
    from ironic_configdrive_tempest.plugin import ConfigDriveTempestPlugin

    test_dir, top_level = ConfigDriveTempestPlugin().load_tests()
    assert Path(test_dir, "scenario", "test_configdrive.py").is_file()
    assert Path(top_level, "ironic_configdrive_tempest", "plugin.py").is_file()


def test_register_opts_defaults_skip_the_scenario() -> None:
    from oslo_config import cfg

    from ironic_configdrive_tempest.plugin import ConfigDriveTempestPlugin

    conf = cfg.ConfigOpts()
    plugin = ConfigDriveTempestPlugin()
    plugin.register_opts(conf)
    conf([], project="tempest-test", default_config_files=[])
    group = conf.ironic_configdrive
    assert group.enabled is False
    assert group.auth == "keystone"
    assert group.node is None and group.disk_image is None
    assert group.api_microversion == "latest"
    [(name, opts)] = plugin.get_opt_lists()
    assert name == "ironic_configdrive"
    assert {opt.name for opt in opts} >= {"enabled", "auth", "endpoint", "node",
                                          "image_source", "exposure", "disk_image"}


def _tempest(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("tempest", path=str(Path(sys.executable).parent)) or \
        require_tool("tempest")
    # HOME: tempest keeps its workspace registry in ~/.tempest; keep it in the test's tmp.
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HOME": str(home)})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_TEMPEST:
        skip_or_fail("tempest is not installed (pip install -e .[tempest])")
    root = tmp_path_factory.mktemp("tempest") / "ws"
    result = _tempest("init", str(root), cwd=root.parent, home=root.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "etc" / "tempest.conf").is_file()
    return root


def test_tempest_lists_scenario(workspace: Path) -> None:
    result = _tempest("run", "--list-tests", "--regex", "ironic_configdrive", cwd=workspace,
                      home=workspace.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = [line for line in result.stdout.splitlines() if line.startswith(SCENARIO_ID)]
    assert listed == [f"{SCENARIO_ID}[id-5b0b8d3e-8d7e-4a53-9d2c-1c4f0f6a7c21,slow]"]


def test_scenario_skips_on_unconfigured_cloud(workspace: Path) -> None:
    result = _tempest("run", "--regex", "ironic_configdrive", cwd=workspace,
                      home=workspace.parent)
    output = result.stdout + result.stderr
    # tempest exits 1 when nothing passed; what matters is the skip and its reason.
    assert "SKIPPED: [ironic_configdrive]enabled is False" in output, output[-3000:]
    # The Nova variant has a switch of its own.
    assert "SKIPPED: [ironic_configdrive]nova is False" in output, output[-3000:]
    assert " - Skipped: 2" in output and " - Failed: 0" in output
