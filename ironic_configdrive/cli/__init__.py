"""``ironic-configdrive``: build, inspect, validate, write and remove config drives.

Human output by default, ``--json`` for machines. Exit codes: 0 success, 1 the operation
failed or found problems, 2 usage errors and unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import disk, image_commands
from .common import run_command

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ironic-configdrive",
        description="Build, inspect, validate, write and remove OpenStack config drives.")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show the installed version and exit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    image_commands.register(subparsers)
    disk.register(subparsers)
    return parser


class _Version(argparse.Action):
    """``--version``, looked up only when asked: importlib.metadata costs ~20 ms of start-up,
    which every ``write`` on an agent would pay."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from importlib import metadata

        try:
            version = metadata.version("ironic-configdrive")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            version = "unknown (not installed)"
        print(f"{parser.prog} {version}")  # on stdout, as argparse's own version action
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("ironic-configdrive", build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
