"""Which Ironic the lab runs: one process on sqlite, or an API and N conductors on MariaDB.

``--conductors 1`` (the default) is the original lab: a single ``ironic`` process (API and
conductor) with sqlite and no RPC. ``--conductors N`` (N >= 2) runs ``ironic-api`` and N
``ironic-conductor`` processes with ``rpc_transport = json-rpc`` on one MariaDB. Each conductor
stands for a host: its own loopback address (conductor-1 is 127.0.0.2, conductor-2 is
127.0.0.3, ...) used as ``[DEFAULT]host`` and ``[json_rpc]host_ip``, its own directory
``DIR/conductor-N`` (HTTP root, lock path, a copy of the key-encryption key), its own lab
HTTP server ``http-N`` on its address, and its own log ``DIR/logs/conductor-N.log``.

Pure data: no processes here. The profile is recorded in ``state.json`` by ``up``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ironic_configdrive_lab.workdir import LabError, Workdir

MAX_CONDUCTORS = 8
#: Process names (pid and log files) of the multi-conductor profile.
API_NAME = "ironic-api"
SINGLE_NAME = "ironic"
#: The single-process Ironic's [DEFAULT]host.
SINGLE_HOST = "lab-conductor"


@dataclass(frozen=True)
class ConductorHost:
    """One conductor of the multi-conductor profile and the host it stands for."""

    index: int
    workdir: Workdir

    @property
    def name(self) -> str:
        return f"conductor-{self.index}"

    @property
    def http_name(self) -> str:
        """Its HTTP server's process name."""
        return f"http-{self.index}"

    @property
    def address(self) -> str:
        """Its loopback address: ``[DEFAULT]host``, ``[json_rpc]host_ip``, its HTTP server."""
        return f"127.0.0.{self.index + 1}"

    @property
    def root(self) -> Path:
        return self.workdir.root / self.name

    @property
    def http_root(self) -> Path:
        return self.root / "http"

    @property
    def lock_path(self) -> Path:
        return self.root / "locks"

    @property
    def key_file(self) -> Path:
        """This host's copy of the key-encryption key (the same bytes on every conductor)."""
        return self.root / "configdrive.key"

    @property
    def conf(self) -> Path:
        return self.workdir.etc / f"{self.name}.conf"

    @property
    def log(self) -> Path:
        return self.workdir.log(self.name)

    def create(self) -> None:
        for directory in (self.root, self.http_root, self.lock_path):
            directory.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Profile:
    conductors: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.conductors <= MAX_CONDUCTORS:
            raise LabError(f"--conductors must be between 1 and {MAX_CONDUCTORS}, not "
                           f"{self.conductors}")

    @classmethod
    def of(cls, state: dict[str, Any]) -> Profile:
        """The profile recorded in a lab's state (a lab from before profiles: single)."""
        return cls(int((state.get("profile") or {}).get("conductors", 1)))

    @property
    def multi(self) -> bool:
        return self.conductors > 1

    @property
    def database(self) -> str:
        return "mariadb" if self.multi else "sqlite"

    @property
    def api_name(self) -> str:
        """The process that answers the Ironic API."""
        return API_NAME if self.multi else SINGLE_NAME

    def hosts(self, workdir: Workdir) -> list[ConductorHost]:
        return [ConductorHost(index, workdir) for index in range(1, self.conductors + 1)] \
            if self.multi else []

    def host(self, workdir: Workdir, index: int) -> ConductorHost:
        if not self.multi:
            raise LabError(f"the lab in {workdir.root} runs a single Ironic process; bring "
                           "it up with `up --conductors 2` to stop and start conductors")
        if not 1 <= index <= self.conductors:
            raise LabError(f"no conductor {index}: the lab runs conductors 1 to "
                           f"{self.conductors}")
        return ConductorHost(index, workdir)

    def to_state(self) -> dict[str, Any]:
        return {"conductors": self.conductors, "database": self.database,
                "rpc_transport": "json-rpc" if self.multi else "none"}


def recorded_hosts(workdir: Workdir) -> list[ConductorHost]:
    """Every conductor host with a pid file or in the state: what ``down`` must stop.

    Found from the pid files as well, so a lab whose state was lost still goes down fully.
    """
    indexes = set()
    for pattern in ("conductor-*.pid", "http-*.pid"):
        for path in workdir.pids.glob(pattern):
            suffix = path.stem.rsplit("-", 1)[1]
            if suffix.isdigit():
                indexes.add(int(suffix))
    try:
        state = workdir.load_state() if workdir.state_file.exists() else {}
    except LabError:
        state = {}
    indexes.update(host.index for host in Profile.of(state).hosts(workdir))
    return [ConductorHost(index, workdir) for index in sorted(indexes)]
