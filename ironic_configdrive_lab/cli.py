"""``ironic-configdrive-lab up|deploy|update|undeploy|status|down|run|conductor --workdir DIR``:
argument parsing; each command lives in its own module (:mod:`.up_cmd`, :mod:`.node_cmd`,
:mod:`.run_cmd`, :mod:`.status_cmd`, :mod:`.conductor_cmd`).

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
import json
import sys
from typing import Any

from ironic_configdrive_lab import conductor_cmd, openstack_env
from ironic_configdrive_lab.names import EXPOSURES, STORES
from ironic_configdrive_lab.node_cmd import deploy, undeploy, update
from ironic_configdrive_lab.run_cmd import run
from ironic_configdrive_lab.status_cmd import status, status_exports
from ironic_configdrive_lab.up_cmd import down, up
from ironic_configdrive_lab.workdir import LabError, Workdir


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
                                     "host failing and coming back (--conductors >= 2)"),
                       ("env", "print the export lines for the openstack CLI against the "
                               "Nova profile (DIR/clouds.yaml)")):
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
            cmd.add_argument("--with-nova", action="store_true",
                             help="also Keystone, Glance, placement, RabbitMQ and Nova with "
                                  "the ironic driver (the Nova profile; its own venv)")
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
                                        conductors=args.conductors,
                                        with_nova=args.with_nova)
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
        elif args.command == "env":
            lines = openstack_env.exports(workdir)
            result = {"exports": lines}
            if not args.json:
                print("\n".join(lines))
        elif args.command == "run":
            result = run(workdir, config_drive=args.config_drive, exposure=args.exposure,
                         debug=args.debug, store=args.store, conductors=args.conductors,
                         with_nova=args.with_nova)
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
