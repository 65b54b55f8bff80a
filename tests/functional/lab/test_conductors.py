"""Two Ironic conductors on MariaDB (marker lab): the host of the conductor holding a deployed
node fails, the other conductor takes the node over and undeploys it, the host comes back.

``up --conductors 2 --store http`` starts MariaDB, ``ironic-api`` and two conductors
(json-rpc), each with its own HTTP root and server; the deploy goes through the partition
exposure. Phase timings are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ironic_configdrive_lab import (
    cli,
    disk,
    mariadb,
    network,
    node_cmd,
    objectstore,
    process,
    status_cmd,
    up_cmd,
)
from ironic_configdrive_lab.conductors import RUNNING, STOPPED, Conductors
from ironic_configdrive_lab.workdir import Workdir
from tests.conftest import skip_or_fail
from tests.functional.lab.test_lab import CONFIG_DRIVE, _require_lab

pytestmark = pytest.mark.lab


def _require_conductors() -> None:
    _require_lab()
    missing = mariadb.missing_tools()
    if missing:
        skip_or_fail(f"{', '.join(missing)} missing: {mariadb.PACKAGE_HINT}")
    for tool in ("ironic-api", "ironic-conductor"):
        if not Path(sys.executable).with_name(tool).exists():
            skip_or_fail(f"{tool} missing: install the lab extra")
    try:
        import pymysql  # noqa: F401
    except ImportError:
        skip_or_fail("PyMySQL missing: install the lab extra")


def _leftovers(workdir: Workdir) -> list[str]:
    found = [path.stem for path in workdir.pids.glob("*.pid")
             if process.pid_from_file(path) is not None]
    found += [f"swift {name}" for name in objectstore.running(workdir)]
    if workdir.disk.exists():
        found += disk.backing_devices(workdir.disk)
    if network.exists(network.names(workdir)[0]):
        found.append(network.names(workdir)[0])
    ps = subprocess.run(["pgrep", "-fa", str(workdir.root)], capture_output=True, text=True)
    found += [f"process {line}" for line in ps.stdout.splitlines()]
    return found


class Timings:
    def __init__(self, title: str = "two conductors, http store, partition exposure") -> None:
        self.title = title
        self.times: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        mark = time.monotonic()
        try:
            yield
        finally:
            self.times[name] = time.monotonic() - mark
            print(f"[{self.title}] {name}: {self.times[name]:.1f} s", flush=True)

    def report(self) -> None:
        print(f"\nPhase timings ({self.title})")
        for name, seconds in self.times.items():
            print(f"  {name:<40} {seconds:6.1f} s")
        print(f"  {'total':<40} {sum(self.times.values()):6.1f} s", flush=True)


def test_survivor_takes_over_and_undeploys(tmp_path: Path) -> None:
    _require_conductors()
    workdir = Workdir.at(tmp_path / "lab")
    timings = Timings()
    try:
        with timings.phase("up --conductors 2"):
            assert cli.main(["up", "--workdir", str(workdir.root), "--conductors", "2",
                             "--store", "http"]) == 0, process.log_tail(workdir, "ironic-api")
        lab = Conductors(workdir)
        status = status_cmd.status(workdir)
        assert status["profile"] == {"conductors": 2, "database": "mariadb",
                                     "rpc_transport": "json-rpc"}
        assert [(c["host"], c["state"], c["alive"]) for c in status["conductors"]] == [
            ("127.0.0.2", RUNNING, True), ("127.0.0.3", RUNNING, True)]
        assert status["redfish"]["endpoint"].startswith("http://127.0.0.1:")
        assert [root["name"] for root in status["http_roots"]] == [
            "http", "conductor-1", "conductor-2"]
        keys = {host.key_file.read_bytes() for host in lab.hosts}
        assert keys == {(workdir.etc / "configdrive.key").read_bytes()}

        with timings.phase("deploy (partition) + verify"):
            result = node_cmd.deploy(workdir, config_drive=json.dumps(CONFIG_DRIVE),
                                exposure="partition")
        first = lab.holder()
        assert first in (1, 2)
        assert result["conductor"] == f"conductor-{first}"
        assert result["stored"]["store"] == "http"
        # The http store is host-local: the drive sits in the deploying conductor's root.
        assert (lab.host(first).http_root / result["stored"]["location"]).is_file()
        assert status_cmd.status(workdir)["node_conductor"] == f"conductor-{first}"

        with timings.phase(f"stop conductor-{first} (SIGKILL)"):
            assert lab.stop(first) == [f"conductor-{first}", f"http-{first}"]
        assert lab.state(first) == STOPPED
        with timings.phase("takeover (node shows the survivor)"):
            second, seconds = lab.wait_for_takeover(first, timeout=60)
        print(f"[two conductors] takeover: conductor-{first} -> conductor-{second} in "
              f"{seconds:.1f} s", flush=True)
        assert second != first and lab.running(second)

        with timings.phase(f"undeploy + clean + verify on conductor-{second}"):
            undeployed = node_cmd.undeploy(workdir)
        for line in undeployed["checks"]:
            print(f"[two conductors] verified: {line}", flush=True)
        assert any("reads zeros" in line for line in undeployed["checks"])
        status = status_cmd.status(workdir)
        assert status["node"]["provision_state"] == "available"
        assert status["node_conductor"] == f"conductor-{second}"
        assert not (lab.host(second).http_root / result["stored"]["location"]).exists()

        with timings.phase(f"start conductor-{first}"):
            lab.start(first)
        status = status_cmd.status(workdir)
        assert [(c["state"], c["alive"]) for c in status["conductors"]] == [
            (RUNNING, True), (RUNNING, True)]

        with timings.phase("down"):
            up_cmd.down(workdir)
        assert _leftovers(workdir) == []
    finally:
        up_cmd.down(workdir, quiet=True)
        timings.report()
    assert _leftovers(workdir) == []
