"""``up`` and ``down``: start the lab (disk, network, image, HTTP, Swift, Redfish, Ironic,
agent configuration, the node, the power watcher) and stop all of it by PID."""

from __future__ import annotations

import sys
from typing import Any

from ironic_configdrive_lab import (
    agent,
    bmc,
    conductor_cmd,
    disk,
    http,
    images,
    mariadb,
    network,
    nova_profile,
    objectstore,
    ports,
    process,
)
from ironic_configdrive_lab.client import Client
from ironic_configdrive_lab.names import NODE_NAME, POWER, STABLE_STATES, WAIT_STATES
from ironic_configdrive_lab.profile import Profile
from ironic_configdrive_lab.progress import Progress
from ironic_configdrive_lab.workdir import Workdir


def up(workdir: Workdir, *, debug: bool, store: str = "swift",
       conductors: int = 1, with_nova: bool = False) -> dict[str, Any]:
    progress = Progress("up")
    lab_profile = Profile(conductors)
    workdir.create()
    state = workdir.load_state()
    if state.get("up") and state.get("store", "http") == store \
            and Profile.of(state) == lab_profile and _all_running(workdir, state) \
            and bool(state.get("with_nova")) == with_nova \
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
        return _up(workdir, progress, debug=debug, store=store, lab_profile=lab_profile,
                   with_nova=with_nova)
    except BaseException:
        progress.say("failed: stopping what was started")
        down(workdir, quiet=True)
        raise


def _all_running(workdir: Workdir, state: dict[str, Any]) -> bool:
    if any(process.running_pid(workdir, name) is None
           for name in (*conductor_cmd.core_processes(state), http.NAME, bmc.NAME, POWER)):
        return False
    if state.get("with_nova") and None in nova_profile.running(workdir).values():
        return False
    return state.get("store") != "swift" or \
        len(objectstore.running(workdir)) == len(objectstore.swift.PROCESSES)


def _stop_order(workdir: Workdir) -> list[str]:
    """Every process the lab may run, either profile, in stop order (the database last)."""
    return [*nova_profile.running(workdir), POWER, agent.NAME,
            *conductor_cmd.stop_order(workdir), bmc.NAME, http.NAME, mariadb.NAME]


def _up(workdir: Workdir, progress: Progress, *, debug: bool, store: str,
        lab_profile: Profile, with_nova: bool) -> dict[str, Any]:
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
    nova_settings: dict[str, Any] = {}
    extra: dict[str, dict[str, str]] = {}
    workdir.update_state(with_nova=True if with_nova else None)
    if with_nova:
        with progress.phase("nova: database, bus, identity, images, placement"):
            nova_settings = nova_profile.start_before_ironic(workdir, debug=debug,
                                                             say=progress.say)
            extra = nova_profile.ironic_sections(workdir, nova_settings)
    with progress.phase("ironic"):
        api_url = conductor_cmd.start_ironic(workdir, lab_profile, api_port=ports.free_port(),
                                             http_url=http_url, debug=debug,
                                             configdrive=configdrive, say=progress.say,
                                             extra=extra)
        workdir.update_state(api_url=api_url)
        progress.say(f"Ironic API at {api_url}")
    with progress.phase("agent config"):
        agent.write_shims(workdir)
        agent.write_conf(workdir, api_url=api_url, port=ports.free_port(), debug=debug)
    with progress.phase("enroll"):
        node = _enroll(Client(api_url), workdir, driver_info,
                       resource_class=nova_profile.RESOURCE_CLASS if with_nova else None)
        workdir.update_state(node_uuid=node["uuid"])
        progress.say(f"node {NODE_NAME} {node['uuid']}: {node['provision_state']}, deploy "
                     f"interface {node['deploy_interface']}")
    with progress.phase("power"):
        process.spawn(workdir, POWER, [sys.executable, "-m", "ironic_configdrive_lab.power",
                                       str(workdir.root)])
    if with_nova:
        with progress.phase("nova: compute services, flavor, image"):
            nova_profile.start_after_enroll(workdir, nova_settings, ironic_url=api_url,
                                            node_uuid=node["uuid"], image=image.path,
                                            debug=debug, say=progress.say)
    state = workdir.update_state(up=True, image_url=image.url(http_url),
                                 image_sha256=image.sha256)
    progress.say("lab is up in " + f"{sum(progress.times.values()):.1f} s")
    return state


def _cli_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _enroll(client: Client, workdir: Workdir, driver_info: dict[str, Any], *,
            resource_class: str | None = None) -> dict[str, Any]:
    """Create (once) and set up the node; ``resource_class``: what Nova schedules on."""
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
        for arg in ("--driver-info", f"{key}={_cli_value(value)}")],
        *(["--resource-class", resource_class] if resource_class else []))
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
    if resource_class and node.get("power_state") is None:
        # Nova keeps a node of unknown power state reserved (never scheduled); the lab's
        # fake power interface knows none until Ironic first sets one.
        client.baremetal("node", "power", "off", NODE_NAME)
        node = client.node(NODE_NAME)
        assert node is not None
    return node


def down(workdir: Workdir, *, quiet: bool = False) -> dict[str, Any]:
    progress = Progress("down")
    say = (lambda text: None) if quiet else progress.say
    # The power watcher first (it would start the agent again), then Ironic's processes
    # together (each takes seconds to shut down), then the rest; the database last.
    # Nova first: nova-compute acts on the node through Ironic.
    stopped = nova_profile.stop(workdir)
    stopped += [name for name in (POWER, agent.NAME) if process.stop(workdir, name)]
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
