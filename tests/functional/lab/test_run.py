"""The README's main job as a user runs it: ``ironic-configdrive-lab run`` (marker lab).

The short form (one partition deploy, http store) keeps the suite quick; the default form
(Swift, partition, rebuild, virtual media) is what tests/functional/lab/test_lab.py covers
step by step.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ironic_configdrive_lab import disk, names, network, objectstore, process, up_cmd
from ironic_configdrive_lab.workdir import Workdir
from tests.functional.lab.test_lab import _require_lab

pytestmark = pytest.mark.lab


def test_run_prints_a_summary_and_leaves_nothing_behind(tmp_path: Path) -> None:
    _require_lab()
    workdir = Workdir.at(tmp_path / "lab")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ironic_configdrive_lab", "run", "--workdir",
             str(workdir.root), "--store", "http", "--exposure", "partition"],
            capture_output=True, text=True, timeout=900, check=False)
    finally:
        up_cmd.down(workdir, quiet=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("\nSummary (http store)\n", 1)[1]
    for phase in ("up", "deploy partition+verify", "undeploy partition+clean+verify",
                  "down", "total"):
        assert f"  {phase} " in summary
    assert "glean reads hostname 'lab-instance'" in summary
    assert "stored config drive deleted from the http store" in summary
    assert "reads zeros" in summary
    # Everything stopped, detached and removed by the run itself.
    assert not any(process.running_pid(workdir, name) for name in names.SERVICES)
    assert objectstore.running(workdir) == {}
    assert disk.backing_devices(workdir.disk) == []
    assert not network.exists(network.names(workdir)[0])
    assert workdir.disk.exists()


def test_run_with_two_conductors_survives_a_host_failure(tmp_path: Path) -> None:
    from tests.functional.lab.test_conductors import _require_conductors

    _require_conductors()
    workdir = Workdir.at(tmp_path / "lab")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ironic_configdrive_lab", "run", "--workdir",
             str(workdir.root), "--conductors", "2"],
            capture_output=True, text=True, timeout=1200, check=False)
    finally:
        up_cmd.down(workdir, quiet=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("\nSummary (swift store)\n", 1)[1]
    assert "  host failure, takeover virtual_media+verify " in summary
    for check in ("holds the node after", "served by conductor-", "the node returned to it"):
        assert check in summary, check
    assert summary.count("is served by conductor-") == 2  # the survivor, then the returner
    assert "Swift container lab-configdrive is empty" in summary
    assert objectstore.running(workdir) == {}
    assert disk.backing_devices(workdir.disk) == []
