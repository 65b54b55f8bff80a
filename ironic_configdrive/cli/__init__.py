"""``ironic-configdrive``: build, inspect, validate, write and remove config drives.

Human output by default, ``--json`` for machines. Exit codes: 0 success, 1 the operation
failed or found problems, 2 usage errors and unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from . import disk, image_commands
from .common import CommandError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ironic-configdrive",
        description="Build, inspect, validate, write and remove OpenStack config drives.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    image_commands.register(subparsers)
    disk.register(subparsers)
    return parser


def _version() -> str:
    try:
        return metadata.version("ironic-configdrive")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"ironic-configdrive {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ironic-configdrive {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
