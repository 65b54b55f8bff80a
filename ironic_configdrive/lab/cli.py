"""``ironic-configdrive-lab up|deploy|update|undeploy|status|down|run|conductor --workdir DIR``.

``up`` attaches ``DIR/disk.img`` as a loop disk, creates the node's veth, makes and serves
the instance image, starts Ironic (sqlite, noauth, no RPC; or with ``--conductors N`` an API
and N conductors on MariaDB, see :mod:`.profile`) and enrolls ``lab-node`` with the
``configdrive`` deploy interface, then starts the power watcher that runs the agent whenever
Ironic powers the node on for its ramdisk. The store is a real Swift (default, TempAuth) or
the http store (``--store http``); a sushy-tools Redfish emulator is the node's BMC for
virtual media. ``deploy`` drives ``baremetal node deploy`` (or ``rebuild`` on an active node)
and verifies the disk, the BMC and the store; ``undeploy`` tears down with automated cleaning
and verifies the erase, the ejection and the empty store; ``down`` stops everything by pid
and detaches the disk. ``run`` does all of it and prints a summary. ``conductor stop|start``
plays a conductor's host failing and coming back (:mod:`.conductor_cmd`). Needs root (loop
devices, veth).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ironic_configdrive.lab import (
    agent,
    bmc,
    conductor_cmd,
    disk,
    guest,
    http,
    images,
    ironic,
    mariadb,
    network,
    objectstore,
    ports,
    process,
    verify,
)
from ironic_configdrive.lab.client import Client, cli_environment
from ironic_configdrive.lab.profile import Profile
from ironic_configdrive.lab.progress import Progress
from ironic_configdrive.lab.workdir import LabError, Workdir

NODE_NAME = "lab-node"
POWER = "power"
#: Single-process services, stopped in this order (Swift's processes are tracked apart;
#: the multi-conductor profile's in :func:`conductor_cmd.stop_order`).
SERVICES = (POWER, agent.NAME, ironic.NAME, bmc.NAME, http.NAME)
STORES = ("swift", "http")
EXPOSURES = ("partition", "virtual_media")
DEPLOY_TIMEOUT = 600.0
WAIT_STATES = frozenset({"wait call-back", "clean wait"})
STABLE_STATES = {"deploy failed", "clean failed", "available", "active", "manageable"}
CLEAN_TIMEOUT = 600.0


# -- up -----------------------------------------------------------------------------------

def up(workdir: Workdir, *, debug: bool, store: str = "swift",
       conductors: int = 1) -> dict[str, Any]:
    progress = Progress("up")
    lab_profile = Profile(conductors)
    workdir.create()
    state = workdir.load_state()
    if state.get("up") and state.get("store", "http") == store \
            and Profile.of(state) == lab_profile and _all_running(workdir, state) \
            and Client(state["api_url"]).answers():
        conductor_cmd.start_stopped(workdir, progress.say)
        progress.say(f"already up: Ironic at {state['api_url']}, disk {state['disk']}, "
                     f"{store} store, {conductors} conductor(s)")
        return workdir.load_state()
    if state or any(process.running_pid(workdir, name) for name in _stop_order(workdir)) \
            or objectstore.running(workdir):
        progress.say("leftovers of an earlier run (or another store or profile) found: "
                     "cleaning them up first")
        down(workdir, quiet=True)
    try:
        return _up(workdir, progress, debug=debug, store=store, lab_profile=lab_profile)
    except BaseException:
        progress.say("failed: stopping what was started")
        down(workdir, quiet=True)
        raise


def _all_running(workdir: Workdir, state: dict[str, Any]) -> bool:
    if any(process.running_pid(workdir, name) is None
           for name in (*conductor_cmd.core_processes(state), http.NAME, bmc.NAME, POWER)):
        return False
    return state.get("store") != "swift" or \
        len(objectstore.running(workdir)) == len(objectstore.swift.PROCESSES)


def _stop_order(workdir: Workdir) -> list[str]:
    """Every process the lab may run, either profile, in stop order (the database last)."""
    return [POWER, agent.NAME, *conductor_cmd.stop_order(workdir), bmc.NAME, http.NAME,
            mariadb.NAME]


def _up(workdir: Workdir, progress: Progress, *, debug: bool, store: str,
        lab_profile: Profile) -> dict[str, Any]:
    with progress.phase("disk"):
        disk.ensure_image(workdir)
        device = disk.attach(workdir)
        workdir.update_state(disk=device)
        progress.say(f"node disk {workdir.disk} attached as {device}")
    with progress.phase("network"):
        iface = network.create(workdir)
        workdir.update_state(interface=iface, mac=network.mac(workdir))
        progress.say(f"node NIC {iface} with MAC {network.mac(workdir)}")
    with progress.phase("image"):
        image = images.make(workdir)
        progress.say(f"instance image {image.path} ({image.size} bytes, sha256 "
                     f"{image.sha256[:16]}...)")
    with progress.phase("http"):
        http_url = http.start(workdir, ports.free_port())
        workdir.update_state(http_url=http_url)
    configdrive: dict[str, str] = {"store": "http"}
    if store == "swift":
        with progress.phase("swift"):
            settings = objectstore.start(workdir, debug=debug)
            workdir.update_state(store="swift", swift=settings)
            configdrive = objectstore.conf_options(settings)
            progress.say(f"Swift at {settings['auth_url']} (TempAuth user "
                         f"{settings['user']}), container {settings['container']}")
    else:
        workdir.update_state(store="http", swift=None)
    with progress.phase("redfish"):
        driver_info = bmc.start(workdir, network.mac(workdir))
        workdir.update_state(redfish=driver_info)
        progress.say(f"Redfish emulator at {driver_info['redfish_address']}, system "
                     f"{driver_info['redfish_system_id']}")
    with progress.phase("ironic"):
        api_url = conductor_cmd.start_ironic(workdir, lab_profile, api_port=ports.free_port(),
                                             http_url=http_url, debug=debug,
                                             configdrive=configdrive, say=progress.say)
        workdir.update_state(api_url=api_url)
        progress.say(f"Ironic API at {api_url}")
    with progress.phase("agent config"):
        agent.write_shims(workdir)
        agent.write_conf(workdir, api_url=api_url, port=ports.free_port(), debug=debug)
    with progress.phase("enroll"):
        node = _enroll(Client(api_url), workdir, driver_info)
        workdir.update_state(node_uuid=node["uuid"])
        progress.say(f"node {NODE_NAME} {node['uuid']}: {node['provision_state']}, deploy "
                     f"interface {node['deploy_interface']}")
    with progress.phase("power"):
        process.spawn(workdir, POWER, [sys.executable, "-m", "ironic_configdrive.lab.power",
                                       str(workdir.root)])
    state = workdir.update_state(up=True, image_url=image.url(http_url),
                                 image_sha256=image.sha256)
    progress.say("lab is up in " + f"{sum(progress.times.values()):.1f} s")
    return state


def _cli_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _enroll(client: Client, workdir: Workdir, driver_info: dict[str, Any]) -> dict[str, Any]:
    node = client.node(NODE_NAME)
    if node is None:
        client.baremetal(
            "node", "create", "--driver", "lab-hardware", "--name", NODE_NAME,
            "--management-interface", "noop",
            "--deploy-interface", "configdrive",
            # Power off through Ironic (fake power), never through the agent's host poweroff.
            "--driver-info", "deploy_forces_oob_reboot=True",
            "--no-automated-clean")
        node = client.node(NODE_NAME)
    assert node is not None
    # The emulator's port changes with every `up`: point the node at this one.
    client.baremetal("node", "set", NODE_NAME, *[
        arg for key, value in driver_info.items()
        for arg in ("--driver-info", f"{key}={_cli_value(value)}")])
    if not client.has_port(network.mac(workdir)):
        client.baremetal("port", "create", network.mac(workdir), "--node", node["uuid"])
    if node["provision_state"] in WAIT_STATES:
        # An earlier lab went down while Ironic waited for its agent, which is gone now.
        client.baremetal("node", "abort", NODE_NAME)
        node = client.wait_for(NODE_NAME, STABLE_STATES, timeout=60)
    if node["provision_state"] == "enroll":
        client.baremetal("node", "manage", NODE_NAME, "--wait", "60")
        node = client.node(NODE_NAME)
    assert node is not None
    if node["provision_state"] == "manageable":
        client.baremetal("node", "provide", NODE_NAME, "--wait", "60")
        # From now on every undeploy cleans (erase_configdrive, metadata erase).
        client.baremetal("node", "set", NODE_NAME, "--automated-clean")
        node = client.node(NODE_NAME)
    assert node is not None
    return node


# -- deploy / undeploy --------------------------------------------------------------------

def _client(workdir: Workdir) -> tuple[Client, dict[str, Any]]:
    state = workdir.load_state()
    if not state.get("up") \
            or process.running_pid(workdir, Profile.of(state).api_name) is None:
        raise LabError(f"the lab in {workdir.root} is not up; run `up --workdir "
                       f"{workdir.root}` first")
    return Client(state["api_url"]), state


def _printer(progress: Progress) -> Callable[[dict[str, Any]], None]:
    def show(node: dict[str, Any]) -> None:
        step = node.get("deploy_step") or node.get("clean_step") or {}
        extra = f" step {step.get('interface')}.{step.get('step')}" if step else ""
        progress.say(f"node {node['provision_state']} ({node['power_state']}){extra}")
    return show


def config_drive_arg(value: str) -> str:
    """JSON text or a file: JSON files are passed as JSON, anything else as the file."""
    path = Path(value)
    if not value.lstrip().startswith("{") and path.is_file():
        text = path.read_text(errors="replace").strip()
        if text.startswith("{"):
            json.loads(text)
            return text
        return str(path)
    try:
        json.loads(value)
    except ValueError:
        raise LabError("--config-drive must be JSON or an existing file") from None
    return value


def _expected_guest(drive: str) -> dict[str, Any]:
    """What a guest should read, when the drive is given as JSON (else nothing to compare)."""
    try:
        data = json.loads(drive)
    except ValueError:
        return {}
    meta = data.get("meta_data") or {} if isinstance(data, dict) else {}
    keys = meta.get("public_keys") or {}
    # Compare by key type and body only: the comment is free text.
    return {"hostname": meta.get("name"),
            "keys": [guest.key_digest(k) for k in
                     (keys.values() if isinstance(keys, dict) else keys)]}


def deploy(workdir: Workdir, *, config_drive: str, exposure: str) -> dict[str, Any]:
    client, state = _client(workdir)
    progress = Progress("deploy")
    if exposure not in EXPOSURES:
        raise LabError(f"unknown exposure {exposure!r}; use one of {', '.join(EXPOSURES)}")
    drive = config_drive_arg(config_drive)
    workdir.update_state(expected_guest=_expected_guest(drive))
    with progress.phase("configure"):
        client.baremetal("node", "set", NODE_NAME,
                         "--instance-info", f"image_source={state['image_url']}",
                         "--instance-info", f"image_checksum={state['image_sha256']}",
                         "--instance-info", "image_disk_format=raw",
                         "--instance-info", f"configdrive_exposure={exposure}")
    with progress.phase("deploy"):
        current = (client.node(NODE_NAME) or {}).get("provision_state")
        # An active node is rebuilt: same flow, the previous config drive is replaced.
        action = "rebuild" if current == "active" else "deploy"
        progress.say(f"baremetal node {action} (from {current})")
        client.baremetal("node", action, NODE_NAME, "--config-drive", drive)
        node = client.wait_for(NODE_NAME, {"active"}, timeout=DEPLOY_TIMEOUT,
                               on_change=_printer(progress))
    with progress.phase("verify"):
        result = verify.deployed(workdir, node, exposure)
        for line in result["checks"]:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=result, deploy_times=progress.times)
    return {"times": progress.times, **result}


def update(workdir: Workdir, *, config_drive: str) -> dict[str, Any]:
    """Replace the config drive of the ACTIVE node with the update_configdrive service step."""
    client, state = _client(workdir)
    progress = Progress("update")
    deployed = state.get("deployed") or {}
    node = client.node(NODE_NAME) or {}
    if node.get("provision_state") != "active" or not deployed:
        raise LabError(f"update needs the node deployed (active), not "
                       f"{node.get('provision_state')!r}; run `deploy` first")
    drive = config_drive_arg(config_drive)
    workdir.update_state(expected_guest=_expected_guest(drive))
    step = {"interface": "deploy", "step": "update_configdrive",
            "args": {"configdrive": json.loads(drive) if drive.lstrip().startswith("{")
                     else drive}}
    with progress.phase("service"):
        progress.say("baremetal node service --service-steps update_configdrive")
        # On stdin: the drive must not show in any process list.
        client.baremetal("node", "service", NODE_NAME, "--service-steps", "-",
                         stdin=json.dumps([step]))
        node = client.wait_for(NODE_NAME, {"active"}, timeout=DEPLOY_TIMEOUT,
                               on_change=_printer(progress))
    with progress.phase("verify"):
        result = verify.deployed(workdir, node, deployed.get("exposure") or "partition")
        result["checks"] += verify.replaced(workdir, state, deployed, result)
        for line in result["checks"]:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=result)
    return {"times": progress.times, **result}


def undeploy(workdir: Workdir) -> dict[str, Any]:
    client, state = _client(workdir)
    progress = Progress("undeploy")
    node = client.node(NODE_NAME) or {}
    with progress.phase("undeploy+clean"):
        if node.get("provision_state") in ("clean failed", "clean wait"):
            # Retry the cleaning a previous undeploy could not finish.
            if node["provision_state"] == "clean wait":
                client.baremetal("node", "abort", NODE_NAME)
                client.wait_for(NODE_NAME, {"clean failed"}, timeout=60)
            client.baremetal("node", "maintenance", "unset", NODE_NAME)
            client.baremetal("node", "manage", NODE_NAME, "--wait", "60")
            client.baremetal("node", "provide", NODE_NAME)
        else:
            client.baremetal("node", "undeploy", NODE_NAME)
        node = client.wait_for(NODE_NAME, {"available"}, timeout=CLEAN_TIMEOUT,
                               on_change=_printer(progress))
    with progress.phase("verify"):
        checks = verify.undeployed(workdir, state, node)
        for line in checks:
            progress.say(f"verified: {line}")
    workdir.update_state(deployed=None)
    return {"times": progress.times, "checks": checks}


# -- the whole story ----------------------------------------------------------------------

EXAMPLE_DRIVE: dict[str, Any] = {
    "meta_data": {"name": "lab-instance", "hostname": "lab-instance",
                  "public_keys": {"lab": "ssh-ed25519 "
                                         "AAAAC3NzaC1lZDI1NTE5AAAAIH2vbGFiLWV4YW1wbGUta2V5 "
                                         "lab@example"}},
    "user_data": "#cloud-config\nhostname: lab-instance\n",
}


def run(workdir: Workdir, *, config_drive: str | None, exposure: str | None,
        debug: bool, store: str = "swift", conductors: int = 1) -> dict[str, Any]:
    """up -> deploy -> verify -> undeploy -> verify -> down, with a summary at the end.

    Without ``exposure``: a partition deploy, a rebuild with another drive, an undeploy, then
    a virtual media deploy and its undeploy, all on one lab; with several conductors, the
    virtual media deploy's host fails and comes back in between (:func:`conductor_cmd.
    host_failure`).
    """
    # A JSON file is read, so the later phases can rename the instance in it.
    drive = config_drive_arg(config_drive) if config_drive else json.dumps(EXAMPLE_DRIVE)
    summary: dict[str, Any] = {"phases": {}, "verified": []}

    def timed(name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        mark = time.monotonic()
        result = action()
        summary["phases"][name] = time.monotonic() - mark
        summary["verified"] += [f"{name}: {line}" for line in result.get("checks", [])]
        return result

    plan: list[tuple[str, str, str]] = [(exposure or "partition", "deploy", drive)]
    if exposure is None:
        # An update must change the drive: only a JSON drive can be renamed.
        updates = _renamed(drive, "lab-updated") != drive
        if updates:
            plan.append(("partition", "update", _renamed(drive, "lab-updated")))
        plan.append(("partition", "rebuild", _renamed(drive, "lab-rebuilt")))
        plan.append(("virtual_media", "deploy", _renamed(drive, "lab-vmedia")))
        if conductors > 1:
            plan.append(("virtual_media", "host failure", drive))
        if updates:
            plan.append(("virtual_media", "update", _renamed(drive, "lab-vmedia-updated")))
    failed = True
    try:
        timed("up", lambda: up(workdir, debug=debug, store=store, conductors=conductors))
        for mechanism, action, text in plan:
            if action == "deploy" and workdir.load_state().get("deployed"):
                timed("undeploy+clean+verify", lambda: undeploy(workdir))
            if action == "update":
                timed(f"update {mechanism}+verify",
                      functools.partial(update, workdir, config_drive=text))
                continue
            if action == "host failure":
                timed(f"host failure, takeover {mechanism}+verify",
                      functools.partial(conductor_cmd.host_failure, workdir))
                continue
            timed(f"{action} {mechanism}+verify",
                  functools.partial(deploy, workdir, config_drive=text, exposure=mechanism))
        timed(f"undeploy {plan[-1][0]}+clean+verify", lambda: undeploy(workdir))
        failed = False
    finally:
        timed("down", lambda: down(workdir))
        _print_summary(workdir, summary, store=store, failed=failed)
    return summary


def _renamed(drive: str, name: str) -> str:
    """The same drive JSON with another instance name (a rebuild must show the new one)."""
    try:
        data = json.loads(drive)
    except ValueError:
        return drive
    if isinstance(data, dict) and isinstance(data.get("meta_data"), dict):
        data["meta_data"]["name"] = data["meta_data"]["hostname"] = name
        if isinstance(data.get("user_data"), str):
            data["user_data"] = data["user_data"].replace(
                str(json.loads(drive)["meta_data"].get("hostname")), name)
    return json.dumps(data)


def _print_summary(workdir: Workdir, summary: dict[str, Any], *, store: str,
                   failed: bool) -> None:
    print(f"\nSummary ({store} store){' - FAILED, see the error below' if failed else ''}")
    for name, seconds in summary["phases"].items():
        print(f"  {name:<36} {seconds:6.1f} s")
    print(f"  {'total':<36} {sum(summary['phases'].values()):6.1f} s")
    print("Verified")
    for line in summary["verified"]:
        print(f"  - {line}")
    print(f"Disk kept for inspection: {workdir.disk}; logs in {workdir.logs}")


# -- status / down ------------------------------------------------------------------------

def status(workdir: Workdir) -> dict[str, Any]:
    state = workdir.load_state()
    lab_profile = Profile.of(state)
    names = [POWER, agent.NAME, *conductor_cmd.processes(workdir, state), bmc.NAME, http.NAME]
    result: dict[str, Any] = {
        "workdir": str(workdir.root),
        "processes": {name: process.running_pid(workdir, name) for name in names},
        "swift": objectstore.running(workdir),
        "store": state.get("store"),
        "disk": {"file": str(workdir.disk),
                 "loop": disk.backing_devices(workdir.disk) if workdir.disk.exists() else []},
        "interface": network.names(workdir)[0] if network.exists(network.names(workdir)[0])
        else None,
        "api_url": state.get("api_url"),
        "api_answers": False,
        "node": None,
    }
    node = None
    if state.get("api_url") and result["processes"].get(lab_profile.api_name):
        client = Client(state["api_url"])
        result["api_answers"] = client.answers()
        if result["api_answers"]:
            node = client.node(NODE_NAME)
            if node is not None:
                result["node"] = {k: node.get(k) for k in (
                    "uuid", "name", "provision_state", "power_state", "deploy_interface",
                    "driver", "management_interface", "last_error", "conductor")}
    result.update(conductor_cmd.status(workdir, state, node))
    return result


def status_exports(result: dict[str, Any]) -> str:
    """The lines a person pastes into a shell to drive the lab with ``baremetal``."""
    if not result.get("api_url"):
        return "# the lab is not up: no API to point the baremetal CLI at"
    lines = ["# to use the baremetal CLI against the lab:"]
    lines += [f"export {key}={value}" for key, value in cli_environment(result["api_url"]).items()]
    return "\n".join(lines)


def down(workdir: Workdir, *, quiet: bool = False) -> dict[str, Any]:
    progress = Progress("down")
    say = (lambda text: None) if quiet else progress.say
    # The power watcher first (it would start the agent again), then Ironic's processes
    # together (each takes seconds to shut down), then the rest; the database last.
    stopped = [name for name in (POWER, agent.NAME) if process.stop(workdir, name)]
    stopped += process.stop_many(workdir, conductor_cmd.stop_order(workdir))
    stopped += process.stop_many(workdir, [bmc.NAME, http.NAME])
    bmc.forget_state(workdir)
    stopped += [f"swift {name}" for name in objectstore.stop(workdir)]
    # Last: the conductors deregister in it when they stop.
    stopped += [mariadb.NAME] if mariadb.stop(workdir) else []
    say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    detached = disk.detach(workdir)
    say(f"detached: {', '.join(detached) or 'no loop device'}")
    removed = network.delete(workdir)
    say(f"network: {'removed ' + network.names(workdir)[0] if removed else 'none'}")
    state = workdir.load_state() if workdir.root.exists() else {}
    if state:
        state.pop("up", None)
        state.pop("disk", None)
        workdir.save_state(state)
    return {"stopped": stopped, "detached": detached, "interface_removed": removed}


# -- entry point --------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ironic-configdrive-lab",
        description="A local bare-metal lab on loopback: real Ironic, a real agent on a loop "
                    "disk, config drives deployed end to end.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start the lab and enroll its node"),
                       ("deploy", "deploy the node with a config drive and verify it"),
                       ("update", "replace the active node's config drive (service step "
                                  "update_configdrive) and verify it"),
                       ("undeploy", "tear down with automated cleaning and verify"),
                       ("status", "what runs and the node's state"),
                       ("down", "stop everything the lab started and detach its disk"),
                       ("run", "up, deploy, verify, undeploy, verify, down; print a "
                               "summary"),
                       ("conductor", "stop or start conductor N and its HTTP server, as its "
                                     "host failing and coming back (--conductors >= 2)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--workdir", required=True, help="the lab's directory")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
        if name in ("up", "run"):
            cmd.add_argument("--debug", action="store_true", help="services log at DEBUG")
            cmd.add_argument("--store", default="swift", choices=STORES,
                             help="where Ironic keeps config drives (default: a real Swift "
                                  "under DIR/swift)")
            cmd.add_argument("--conductors", type=int, default=1,
                             help="1 (default): one Ironic process on sqlite; N >= 2: "
                                  "ironic-api and N conductors (json-rpc) on MariaDB")
        if name == "conductor":
            conductor_cmd.add_arguments(cmd)
        if name in ("deploy", "update", "run"):
            cmd.add_argument("--config-drive", required=name != "run",
                             help="config drive JSON ({meta_data, user_data, ...}) or a file")
        if name in ("deploy", "run"):
            cmd.add_argument("--exposure", default="partition" if name == "deploy" else None,
                             choices=EXPOSURES,
                             help="how the node sees the drive" + (
                                 "" if name == "deploy" else " (default for run: partition, "
                                 "a rebuild, then virtual_media)"))
    return parser


def _public(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without the Swift key (it lives in DIR/state.json and DIR/etc only)."""
    swift = result.get("swift")
    if isinstance(swift, dict) and "key" in swift:
        return {**result, "swift": {**swift, "key": "***"}}
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workdir = Workdir.at(args.workdir)
    try:
        if args.command == "up":
            result: dict[str, Any] = up(workdir, debug=args.debug, store=args.store,
                                        conductors=args.conductors)
        elif args.command == "deploy":
            result = deploy(workdir, config_drive=args.config_drive, exposure=args.exposure)
        elif args.command == "update":
            result = update(workdir, config_drive=args.config_drive)
        elif args.command == "undeploy":
            result = undeploy(workdir)
        elif args.command == "status":
            result = status(workdir)
            if not args.json:
                for key, value in result.items():
                    print(f"{key}: {value}")
                print(status_exports(result))
        elif args.command == "run":
            result = run(workdir, config_drive=args.config_drive, exposure=args.exposure,
                         debug=args.debug, store=args.store, conductors=args.conductors)
        elif args.command == "conductor":
            result = conductor_cmd.conductor(workdir, args.action, args.index,
                                             graceful=args.graceful, wait=args.wait)
        else:
            result = down(workdir)
    except LabError as exc:
        print(f"ironic-configdrive-lab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_public(result), indent=2, default=str))
    return 0
