"""``ironic-configdrive-keys``: key-encryption key files and the rotation of nodes' records.

```
ironic-configdrive-keys generate PATH
ironic-configdrive-keys [--config-file F]... [--config-dir D] status [--json]
ironic-configdrive-keys [--config-file F]... [--config-dir D] rewrap [--dry-run] [--json]
```

``status`` and ``rewrap`` read Ironic's configuration (``[database]``, ``[configdrive]``) like
``ironic-dbsync``, and the nodes through Ironic's objects. ``rewrap`` takes each node's lock
as a conductor would (exclusive, without waiting: a locked node is skipped and counted), so
it is safe next to running conductors; run it again until nothing is left on old keys.
Only fingerprints are printed, never key material. Ironic is imported only by these two
commands: the rest of the CLI works with the ``[agent]`` extra alone.

Exit codes: 0 done (``rewrap``: no node left on a retired or unknown key), 1 nodes left
(locked, unknown key, unreadable record), 2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any, Final

from ironic_configdrive import keys, records
from ironic_configdrive.image.errors import ConfigDriveError

from .common import CommandError, run_command

PROG: Final = "ironic-configdrive-keys"
PURPOSE: Final = "config drive key rotation"


@dataclasses.dataclass
class Report:
    """What ``status`` found or ``rewrap`` did and left: counts and fingerprints only."""

    current: str
    retired: list[str]
    #: Nodes per fingerprint of the KEKs their records use (after a rewrap, what is left).
    nodes_by_key: dict[str, int] = dataclasses.field(default_factory=dict)
    nodes: int = 0
    rewrapped: int = 0
    locked: int = 0
    failed: int = 0
    #: Nodes with a key wrapped by anything but the current KEK.
    on_old_keys: int = 0
    dry_run: bool = False

    def note(self, fingerprints: set[str]) -> None:
        self.nodes += 1
        for fingerprint in fingerprints:
            self.nodes_by_key[fingerprint] = self.nodes_by_key.get(fingerprint, 0) + 1
        if fingerprints != {self.current}:
            self.on_old_keys += 1

    def to_dict(self) -> dict[str, Any]:
        return {"current_key": self.current, "retired_keys": self.retired,
                "nodes_with_keys": self.nodes, "nodes_by_key": dict(self.nodes_by_key),
                "nodes_on_old_keys": self.on_old_keys, "rewrapped": self.rewrapped,
                "locked": self.locked, "failed": self.failed, "dry_run": self.dry_run}

    def lines(self, command: str) -> list[str]:
        def role(fingerprint: str) -> str:
            if fingerprint == self.current:
                return "current"
            return "retired" if fingerprint in self.retired else "UNKNOWN to this conductor"

        lines = [f"current key: {self.current}",
                 f"retired keys: {', '.join(self.retired) or '-'}",
                 f"nodes with encrypted drives: {self.nodes}"]
        lines += [f"  {fingerprint}  {count:>6} node(s)  {role(fingerprint)}"
                  for fingerprint, count in sorted(self.nodes_by_key.items())]
        if command == "rewrap":
            verb = "would re-wrap" if self.dry_run else "re-wrapped"
            lines.append(f"{verb}: {self.rewrapped}, skipped (locked): {self.locked}, "
                         f"failed: {self.failed}")
        lines.append(f"nodes on old keys: {self.on_old_keys}")
        return lines


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _fingerprints(record: records.DriveRecord | None) -> set[str]:
    return set() if record is None else {keys.fingerprint_of(w) for w in record.wrapped_keys()}


def run(context: Any, *, rewrap: bool, dry_run: bool = False) -> Report:
    """Count every node's wrapped keys per KEK; with ``rewrap``, re-wrap those on retired
    keys with the current one first (under the node's lock; never waiting for it)."""
    from oslo_config import cfg

    settings = cfg.CONF.configdrive
    # Never creates a key: a new one here would wrap nothing any conductor can unwrap.
    ring = keys.load_keyring(settings.key_file, settings.old_key_files, create=False)
    known = ring.by_fingerprint()
    report = Report(current=ring.current.fingerprint,
                    retired=[f for f in known if f != ring.current.fingerprint],
                    dry_run=dry_run)
    for node in records.iter_nodes(context):
        try:
            record = records.load(node)
        except ConfigDriveError as exc:
            report.failed += 1
            _warn(f"node {node.uuid}: unreadable config drive record: {exc.message}")
            continue
        fingerprints = _fingerprints(record)
        if not fingerprints:
            continue
        if rewrap and fingerprints != {ring.current.fingerprint}:
            if dry_run:
                _try_rewrap(node.uuid, record, ring, report)
            else:
                fingerprints = _rewrap(context, node.uuid, fingerprints, ring, report)
        if fingerprints:
            report.note(fingerprints)
    return report


def _try_rewrap(node_uuid: str, record: records.DriveRecord | None, ring: keys.Keyring,
                report: Report) -> None:
    """What a rewrap would do to a copy of the record, in memory only (``--dry-run``)."""
    assert record is not None
    copy = records.DriveRecord.from_dict(record.to_dict())
    copy.forget_stale_keys()
    try:
        copy.map_wrapped_keys(ring.rewrap)
    except ConfigDriveError as exc:
        report.failed += 1
        _warn(f"node {node_uuid}: {exc.message}")
        return
    report.rewrapped += 1


def _rewrap(context: Any, node_uuid: str, fingerprints: set[str], ring: keys.Keyring,
            report: Report) -> set[str]:
    """Re-wrap one node's record under its lock; the fingerprints it uses afterwards."""
    from ironic.common import exception
    from ironic.conductor import task_manager

    from ironic_configdrive import lifecycle

    try:
        with task_manager.acquire(context, node_uuid, shared=False, retry=False,
                                  load_driver=False, purpose=PURPOSE) as task:
            drive = lifecycle.DriveLifecycle(task)
            record = drive.load()  # again, now under the lock
            if record is None:
                return set()
            if drive.rewrap_keys(record, ring):
                report.rewrapped += 1
            return _fingerprints(record)
    except exception.NodeLocked:
        report.locked += 1
    except exception.NodeNotFound:
        return set()
    except ConfigDriveError as exc:
        report.failed += 1
        _warn(exc.message)
    return fingerprints


def _prepare(args: argparse.Namespace) -> Any:
    """Ironic's configuration and objects, as its own commands set them up; a context."""
    try:
        from ironic import objects
        from ironic.common import context as ironic_context
        from ironic.conf import CONF
        from oslo_config import cfg
    except ImportError:
        raise CommandError(f"{args.command} needs Ironic: run it where a conductor runs "
                           "(pip install 'ironic-configdrive[conductor]')", 2) from None
    from ironic_configdrive import conf

    conf.register_opts(CONF)
    argv = [item for path in args.config_file or [] for item in ("--config-file", path)]
    argv += [item for path in args.config_dir or [] for item in ("--config-dir", path)]
    try:
        CONF(argv, project="ironic")
    except cfg.Error as exc:
        raise CommandError(f"cannot read the configuration: {exc}", 2) from None
    objects.register_all()
    return ironic_context.get_admin_context()


def _generate(args: argparse.Namespace) -> int:
    try:
        kek = keys.generate(args.path)
    except ConfigDriveError as exc:
        raise CommandError(exc.message, 1) from None
    print(f"created {args.path}: key fingerprint {kek.fingerprint}; copy it (mode 0600) to "
          "every conductor")
    return 0


def _report(args: argparse.Namespace) -> int:
    context = _prepare(args)
    try:
        report = run(context, rewrap=args.command == "rewrap",
                     dry_run=getattr(args, "dry_run", False))
    except ConfigDriveError as exc:
        raise CommandError(exc.message, 2) from None
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print("\n".join(report.lines(args.command)))
    if args.command == "rewrap":
        return 1 if report.on_old_keys or report.failed else 0
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Create config drive key-encryption key files, show which "
                               "keys the nodes' records use, and re-wrap them with the "
                               "current key after a rotation.")
    parser.add_argument("--config-file", action="append", metavar="PATH",
                        help="Ironic configuration file (repeatable); default: Ironic's "
                             "usual places, e.g. /etc/ironic/ironic.conf")
    parser.add_argument("--config-dir", action="append", metavar="DIR",
                        help="directory of further configuration files (repeatable)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = subparsers.add_parser("generate", help="create a new key file (never "
                                                      "replaces one)")
    generate.add_argument("path")
    generate.set_defaults(handler=_generate)
    status = subparsers.add_parser("status", help="nodes per key fingerprint")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_report)
    rewrap = subparsers.add_parser("rewrap", help="re-wrap every record with the current "
                                                  "key; report what is left on old keys")
    rewrap.add_argument("--dry-run", action="store_true",
                        help="count what would be re-wrapped, change nothing")
    rewrap.add_argument("--json", action="store_true")
    rewrap.set_defaults(handler=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
