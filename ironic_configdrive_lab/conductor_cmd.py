"""What the lab's profile changes in its commands, and ``conductor stop|start``.

``ironic-configdrive-lab conductor stop --workdir DIR N`` stops conductor N and its HTTP
server the way a host failure would: SIGKILL to both process groups, so the conductor neither
deregisters nor releases its locks and the others notice through missed heartbeats
(``--graceful`` sends SIGTERM instead: Ironic deregisters at once). ``--wait`` then waits until
another conductor holds the node and reports how long that took. ``conductor start`` starts
both again and waits until Ironic reports the conductor alive.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ironic_configdrive_lab import conductors, http, ironic, mariadb, process, profile
from ironic_configdrive_lab.conductors import Conductors
from ironic_configdrive_lab.ironic_conf import JSON_RPC_PORT
from ironic_configdrive_lab.profile import Profile
from ironic_configdrive_lab.progress import Progress
from ironic_configdrive_lab.workdir import LabError, Workdir

ACTIONS = ("stop", "start")
#: How long a conductor may take to re-serve virtual media after it took the node over.
RESERVE_TIMEOUT = 60.0


# -- a host failure under a deployed node -----------------------------------------------------

def host_failure(workdir: Workdir) -> dict[str, Any]:
    """The holder's host fails (conductor and HTTP server killed), another conductor takes
    the node over and, for virtual media, serves the drive again from its own HTTP root; the
    host comes back, the node returns to it and it serves the drive again. Verified."""
    from ironic_configdrive_lab import verify

    lab = Conductors(workdir)
    state = workdir.load_state()
    deployed = state.get("deployed") or {}
    first = lab.holder()
    if first is None:
        raise LabError("no conductor holds the node; deploy first")
    lab.stop(first)
    second, seconds = lab.wait_for_takeover(first)
    checks = [f"conductor-{first} killed; conductor-{second} holds the node after "
              f"{seconds:.1f} s"]
    media, sha = deployed.get("media"), str(deployed.get("sha256"))

    def served_by(index: int) -> None:
        http_url = str(workdir.load_state()["conductors"][lab.host(index).name]["http_url"])
        deadline = time.monotonic() + RESERVE_TIMEOUT
        while not verify.media_served_by(workdir, str(media), http_url, sha):
            if time.monotonic() > deadline:
                raise LabError(f"the BMC's media in {media} is not served by "
                               f"conductor-{index} {RESERVE_TIMEOUT:.0f} s after it took "
                               "the node over")
            time.sleep(0.5)
        checks.append(f"the BMC's media in {media} is served by conductor-{index}'s HTTP "
                      f"root and hashes to the stored sha256 {sha}")

    if media:
        served_by(second)
    lab.start(first)
    lab.wait_for_holder(lambda index: index == first)
    checks.append(f"conductor-{first} back; the node returned to it")
    if media:
        served_by(first)
    return {"checks": checks}


# -- up / down ----------------------------------------------------------------------------

def start_ironic(workdir: Workdir, lab_profile: Profile, *, api_port: int, http_url: str,
                 debug: bool, configdrive: dict[str, str],
                 say: Callable[[str], None],
                 extra: dict[str, dict[str, str]] | None = None) -> str:
    """Ironic as the profile wants it; the API's URL. ``extra``: whole sections to add to
    every conductor's configuration."""
    workdir.update_state(profile=lab_profile.to_state())
    if lab_profile.multi:
        return conductors.start_all(workdir, lab_profile, api_port=api_port, debug=debug,
                                    configdrive=configdrive, say=say, extra=extra)
    api_url = f"http://127.0.0.1:{api_port}"
    conf = ironic.write_conf(workdir, api_port=api_port, http_url=http_url, debug=debug,
                             configdrive=configdrive, extra=extra)
    ironic.create_schema(workdir, conf)
    ironic.start(workdir, conf, api_url)
    return api_url


def core_processes(state: dict[str, Any]) -> list[str]:
    """The profile's processes that must run for the lab to count as up (not conductors:
    a conductor may be stopped on purpose)."""
    lab_profile = Profile.of(state)
    return [lab_profile.api_name] + ([mariadb.NAME] if lab_profile.multi else [])


def start_stopped(workdir: Workdir, say: Callable[[str], None]) -> list[str]:
    """``up`` on a lab that runs: start the conductors stopped with ``conductor stop``."""
    if not Profile.of(workdir.load_state()).multi:
        return []
    lab = Conductors(workdir)
    started = []
    for host in lab.hosts:
        if lab.state(host.index) != conductors.RUNNING:
            seconds = lab.start(host.index)
            say(f"{host.name} was stopped: started again, alive after {seconds:.1f} s")
            started.append(host.name)
    return started


def stop_order(workdir: Workdir) -> list[str]:
    """Ironic's processes of either profile, in stop order (not the database)."""
    return [ironic.NAME, *conductors.process_names(profile.recorded_hosts(workdir))]


def processes(workdir: Workdir, state: dict[str, Any]) -> list[str]:
    """Ironic's processes of the lab's profile, the database included."""
    lab_profile = Profile.of(state)
    if not lab_profile.multi:
        return [ironic.NAME]
    return [*conductors.process_names(lab_profile.hosts(workdir)), mariadb.NAME]


# -- status -------------------------------------------------------------------------------

def status(workdir: Workdir, state: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any]:
    """The profile, the Redfish endpoint, every HTTP root and every conductor's state."""
    lab_profile = Profile.of(state)
    redfish = state.get("redfish") or {}
    roots = [{"name": http.NAME, "dir": str(workdir.http_root), "url": state.get("http_url"),
              "serves": "the instance image" + (
                  "" if lab_profile.multi else " and the http store")}]
    result: dict[str, Any] = {
        "profile": lab_profile.to_state(),
        "redfish": {"endpoint": redfish.get("redfish_address"),
                    "system": redfish.get("redfish_system_id")},
        "http_roots": roots,
    }
    if lab_profile.multi:
        paths = mariadb.Paths(workdir)
        result["database"] = {"engine": "mariadb", "pid": mariadb.running(workdir),
                              "socket": str(paths.socket), "data": str(paths.data)}
        try:
            described = Conductors(workdir, require_up=False).describe()
        except LabError:
            described = []
        for item in described:
            item["json_rpc"] = f"{item['host']}:{JSON_RPC_PORT}"
            roots.append({"name": item["name"], "dir": item["http_root"],
                          "url": item["http_url"],
                          "serves": f"{item['name']}'s http store and decrypted copies"})
        result["conductors"] = described
    else:
        result["database"] = {"engine": "sqlite", "file": str(workdir.root / "ironic.sqlite")}
        pid = process.running_pid(workdir, ironic.NAME)
        result["conductors"] = [{"name": ironic.NAME, "host": profile.SINGLE_HOST,
                                 "state": conductors.RUNNING if pid else conductors.STOPPED,
                                 "pid": pid, "http_root": str(workdir.http_root),
                                 "http_url": state.get("http_url"),
                                 "log": str(workdir.log(ironic.NAME))}]
    if node is not None:
        hostname = node.get("conductor")
        result["node_conductor"] = next(
            (item["name"] for item in result["conductors"] if item["host"] == hostname), None)
    return result


# -- conductor stop|start -----------------------------------------------------------------

def add_arguments(cmd: argparse.ArgumentParser) -> None:
    """The ``conductor`` subcommand's arguments."""
    cmd.add_argument("action", choices=ACTIONS)
    cmd.add_argument("index", type=int, metavar="N", help="the conductor's number")
    cmd.add_argument("--graceful", action="store_true",
                     help="stop with SIGTERM (Ironic deregisters) instead of SIGKILL (a host "
                          "failure)")
    cmd.add_argument("--wait", action="store_true",
                     help="after stop: wait until another conductor holds the node")


def conductor(workdir: Workdir, action: str, index: int, *, graceful: bool = False,
              wait: bool = False) -> dict[str, Any]:
    if action not in ACTIONS:
        raise LabError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    lab = Conductors(workdir)
    host = lab.host(index)
    progress = Progress(f"conductor {action}")
    result: dict[str, Any] = {"action": action, "conductor": host.name, "host": host.address}
    if action == "start":
        with progress.phase(f"start {host.name}"):
            result["seconds"] = lab.start(index)
            progress.say(f"{host.name} alive at {host.address} (HTTP root {host.http_root})")
        result["state"] = lab.state(index)
        return result
    held = lab.holder()
    signal_name = "SIGTERM" if graceful else "SIGKILL"
    with progress.phase(f"stop {host.name} ({signal_name})"):
        result["stopped"] = lab.stop(index, hard=not graceful)
    progress.say(f"stopped: {', '.join(result['stopped']) or 'nothing was running'}")
    result.update(signal=signal_name, state=lab.state(index),
                  node_conductor_before=_name(lab, held))
    if wait and held == index:
        with progress.phase("takeover"):
            new, seconds = lab.wait_for_takeover(index)
        progress.say(f"the node moved from {host.name} to conductor-{new} in "
                     f"{seconds:.1f} s")
        result.update(node_conductor=_name(lab, new), takeover_seconds=seconds)
    else:
        result["node_conductor"] = _name(lab, lab.holder())
    return result


def _name(lab: Conductors, index: int | None) -> str | None:
    return None if index is None else lab.host(index).name

