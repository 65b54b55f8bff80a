"""The multi-conductor profile's Ironic: ``ironic-api`` and N ``ironic-conductor`` processes,
each conductor with the HTTP server of the host it stands for (see :mod:`.profile`).

:func:`start_all` brings them up (after :mod:`.mariadb`); :class:`Conductors` is the Python
API tests use to play host failures::

    lab = Conductors(workdir)
    first = lab.holder()              # the conductor that holds the node
    lab.stop(first)                   # SIGKILL conductor and its HTTP server: a host failure
    second, seconds = lab.wait_for_takeover(first)
    lab.start(first)                  # back, registered and alive

A stop is a hard stop by default (SIGKILL to the conductor's and its HTTP server's process
groups): the conductor neither deregisters nor releases its locks, as when a host dies, and
the others find out through the missed heartbeats. ``hard=False`` sends SIGTERM: Ironic then
deregisters at once and waits up to ``[conductor]graceful_shutdown_timeout`` for its tasks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import requests

from ironic_configdrive_lab import http, ironic, ironic_conf, mariadb, ports, process
from ironic_configdrive_lab.client import API_VERSION, Client
from ironic_configdrive_lab.profile import API_NAME, ConductorHost, Profile
from ironic_configdrive_lab.workdir import LabError, Workdir

START_TIMEOUT = 120.0
TAKEOVER_TIMEOUT = 60.0
RUNNING, STOPPED = "running", "stopped"


def _key(workdir: Workdir, hosts: list[ConductorHost]) -> None:
    """One key-encryption key, copied to every host (a drive sealed on one conductor must be
    opened by any other)."""
    from ironic_configdrive import keys

    source = workdir.etc / "configdrive.key"
    keys.load_kek(str(source))  # creates it (mode 0600) if missing
    for host in hosts:
        if not host.key_file.exists() or host.key_file.read_bytes() != source.read_bytes():
            host.key_file.unlink(missing_ok=True)
            fd = os.open(host.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(source.read_bytes())


def _check_rpc_address(host: ConductorHost) -> None:
    if not ports.is_free(host.address, ironic_conf.JSON_RPC_PORT):
        raise LabError(f"{host.address}:{ironic_conf.JSON_RPC_PORT} is in use: {host.name}'s "
                       "json-rpc server needs it (another multi-conductor lab may be up; "
                       "`down` it first)")


def start_all(workdir: Workdir, profile: Profile, *, api_port: int, debug: bool,
              configdrive: dict[str, str] | None, say: Callable[[str], None],
              extra: dict[str, dict[str, str]] | None = None) -> str:
    """MariaDB, the conductors with their HTTP servers, then the API; the API's URL.

    Each conductor gets its own HTTP root and URL; the instance image stays on the lab's
    common ``http`` server (``DIR/http``), reachable whichever conductor deploys.
    """
    hosts = profile.hosts(workdir)
    for host in hosts:
        _check_rpc_address(host)
        host.create()
    _key(workdir, hosts)
    database = mariadb.start(workdir)
    say(f"MariaDB on 127.0.0.1 and {mariadb.Paths(workdir).socket} "
        f"(data {mariadb.Paths(workdir).data})")
    api_url = f"http://127.0.0.1:{api_port}"
    api_conf = ironic_conf.write(
        ironic_conf.api(workdir, api_port=api_port, database=database, debug=debug),
        workdir.etc / f"{API_NAME}.conf")
    if not mariadb.has_schema(workdir):
        ironic.dbsync(api_conf, workdir.log(API_NAME))
    recorded: dict[str, Any] = {}
    for host in hosts:
        http_port = ports.free_port(host.address)
        host_url = f"http://{host.address}:{http_port}"
        ironic_conf.write(ironic_conf.conductor(
            host, api_port=api_port, database=database, http_url=host_url, debug=debug,
            configdrive=configdrive, extra=extra), host.conf)
        recorded[host.name] = {"host": host.address, "http_port": http_port,
                               "http_url": host_url, "http_root": str(host.http_root),
                               "conf": str(host.conf), "log": str(host.log)}
    workdir.update_state(conductors=recorded, api_url=api_url)
    # All at once: each takes seconds to load its drivers; the machine has cores to spare.
    for host in hosts:
        _spawn_host(workdir, host, recorded[host.name]["http_port"])
    process.spawn(workdir, API_NAME, [ironic.bin_path("ironic-api"), "--config-file",
                                      str(api_conf)], env=ironic.env(workdir))
    wanted = {host.address for host in hosts}
    ironic.wait_until(api_url, lambda body: ironic.driver_hosts(body) >= wanted,
                      alive=lambda: _exited(workdir, hosts), timeout=START_TIMEOUT,
                      what=f"ironic-api with conductors {', '.join(sorted(wanted))}")
    for host in hosts:
        say(f"{host.name}: host {host.address}, json-rpc {host.address}:"
            f"{ironic_conf.JSON_RPC_PORT}, HTTP root {host.http_root} at "
            f"{recorded[host.name]['http_url']}, log {host.log}")
    return api_url


def _spawn_host(workdir: Workdir, host: ConductorHost, http_port: int) -> None:
    _check_rpc_address(host)
    if not ports.is_free(host.address, http_port):
        raise LabError(f"{host.address}:{http_port} is in use: {host.http_name} cannot serve "
                       f"{host.http_root} at the URL in {host.conf}; `up` again after `down`")
    http.start(workdir, http_port, name=host.http_name, root=host.http_root,
               host=host.address)
    process.spawn(workdir, host.name, [ironic.bin_path("ironic-conductor"), "--config-file",
                                       str(host.conf)], env=ironic.env(workdir))


def _exited(workdir: Workdir, hosts: list[ConductorHost]) -> str | None:
    for name in [API_NAME, *(host.name for host in hosts)]:
        if process.running_pid(workdir, name) is None:
            return f"{name} exited while starting:\n" + process.log_tail(workdir, name)
    return None


def process_names(hosts: list[ConductorHost]) -> list[str]:
    """Every process of the profile in stop order (API, conductors, their HTTP servers)."""
    return [API_NAME, *(host.name for host in hosts), *(host.http_name for host in hosts)]


class Conductors:
    """The running multi-conductor lab in ``workdir``, for tests and the CLI."""

    def __init__(self, workdir: Workdir, *, require_up: bool = True) -> None:
        """``require_up=False``: describe a lab that is down too (``status``)."""
        self.workdir = workdir
        state = workdir.load_state()
        self.profile = Profile.of(state)
        api_up = process.running_pid(workdir, API_NAME) is not None \
            and mariadb.running(workdir) is not None
        if not self.profile.multi or not state.get("api_url") \
                or (require_up and not (state.get("up") and api_up)):
            raise LabError(f"the lab in {workdir.root} is not up with several conductors; run "
                           f"`up --workdir {workdir.root} --conductors 2` first")
        self.api_url: str = state["api_url"]
        self.node_uuid: str | None = state.get("node_uuid")
        self.recorded: dict[str, dict[str, Any]] = state.get("conductors") or {}
        self.client = Client(self.api_url)

    @property
    def hosts(self) -> list[ConductorHost]:
        return self.profile.hosts(self.workdir)

    def host(self, index: int) -> ConductorHost:
        return self.profile.host(self.workdir, index)

    def index_of(self, hostname: str | None) -> int | None:
        """The conductor number of an Ironic conductor hostname (its address)."""
        return next((h.index for h in self.hosts if h.address == hostname), None)

    # -- what runs ------------------------------------------------------------------------

    def running(self, index: int) -> bool:
        """The conductor's process (and so its host) runs."""
        return process.running_pid(self.workdir, self.host(index).name) is not None

    def state(self, index: int) -> str:
        host = self.host(index)
        up = [process.running_pid(self.workdir, name) is not None
              for name in (host.name, host.http_name)]
        return RUNNING if all(up) else STOPPED if not any(up) else "partly running"

    def alive(self) -> dict[str, bool]:
        """Ironic's view: ``{hostname: alive}`` from ``GET /v1/conductors``."""
        try:
            response = requests.get(f"{self.api_url}/v1/conductors", params={"detail": "True"},
                                    headers={"X-OpenStack-Ironic-API-Version": API_VERSION},
                                    timeout=10)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise LabError(f"Ironic API at {self.api_url}: listing conductors failed: "
                           f"{exc}") from None
        return {item["hostname"]: bool(item.get("alive"))
                for item in response.json().get("conductors") or []}

    def holder(self) -> int | None:
        """The conductor the node's ``conductor`` field names (``node show -c conductor``)."""
        if self.node_uuid is None:
            raise LabError("the lab has no node enrolled")
        node = self.client.node(self.node_uuid) or {}
        return self.index_of(node.get("conductor"))

    # -- host failures ----------------------------------------------------------------------

    def stop(self, index: int, *, hard: bool = True) -> list[str]:
        """Stop conductor ``index`` and its HTTP server: SIGKILL (``hard``) or SIGTERM."""
        host = self.host(index)
        return [name for name in (host.name, host.http_name)
                if process.stop(self.workdir, name, hard=hard)]

    def start(self, index: int, *, timeout: float = START_TIMEOUT) -> float:
        """Start conductor ``index`` and its HTTP server again; seconds until Ironic reports
        it alive. A running one is left alone."""
        host = self.host(index)
        mark = time.monotonic()
        if self.state(index) == RUNNING:
            return 0.0
        self.stop(index)  # a half-running host: start both afresh
        recorded = self.recorded.get(host.name) or {}
        if not recorded.get("http_port"):
            raise LabError(f"{host.name} has no recorded HTTP port; run `up` again")
        _spawn_host(self.workdir, host, int(recorded["http_port"]))
        self.wait_alive(index, timeout=timeout)
        return time.monotonic() - mark

    def wait_alive(self, index: int, *, timeout: float = START_TIMEOUT) -> None:
        host = self.host(index)
        deadline = time.monotonic() + timeout
        while not self.alive().get(host.address):
            if not self.running(index):
                raise LabError(f"{host.name} exited while starting:\n"
                               + process.log_tail(self.workdir, host.name))
            if time.monotonic() > deadline:
                raise LabError(f"{host.name} not alive in Ironic after {timeout:.0f} s; see "
                               f"{host.log}")
            time.sleep(0.3)

    def wait_for_holder(self, accept: Callable[[int | None], bool], *,
                        timeout: float = TAKEOVER_TIMEOUT) -> tuple[int | None, float]:
        """Poll the node's conductor until ``accept(index)``; (index, seconds waited)."""
        mark = time.monotonic()
        while True:
            index = self.holder()
            if accept(index):
                return index, time.monotonic() - mark
            if time.monotonic() - mark > timeout:
                raise LabError(f"the node still shows conductor {index} after {timeout:.0f} s")
            time.sleep(0.2)

    def wait_for_takeover(self, previous: int, *,
                          timeout: float = TAKEOVER_TIMEOUT) -> tuple[int, float]:
        """Wait until another live conductor than ``previous`` holds the node."""
        index, seconds = self.wait_for_holder(
            lambda i: i is not None and i != previous and self.running(i), timeout=timeout)
        assert index is not None
        return index, seconds

    def describe(self) -> list[dict[str, Any]]:
        """Each conductor: name, host, state, HTTP root directory and URL, log."""
        try:
            alive = self.alive() if self.client.answers() else {}
        except LabError:
            alive = {}
        return [{"name": host.name, "index": host.index, "host": host.address,
                 "state": self.state(host.index), "alive": alive.get(host.address),
                 "pid": process.running_pid(self.workdir, host.name),
                 "http_root": str(host.http_root),
                 "http_url": (self.recorded.get(host.name) or {}).get("http_url"),
                 "conf": str(host.conf), "log": str(host.log)} for host in self.hosts]

