"""Helpers shared by the CLI's subcommands: errors with exit codes, safe output files."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any, Final


class CommandError(Exception):
    """A failure reported as one line on stderr with the given exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Run the parsed command's handler: its exit code, or one line on stderr and the
    error's exit code (130 when interrupted)."""
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130


def read_input(path: str, what: str) -> bytes:
    """Read a file (``-`` for stdin); unreadable input is a usage error (exit 2)."""
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CommandError(f"cannot read {what} {path!r}: {exc.strerror}", 2) from None


#: The output name that means standard output, as ``-`` means standard input.
STDOUT: Final = "-"


@contextlib.contextmanager
def atomic_output(path: str, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    Mode 0600 by default: config drives carry passwords, keys and user data. ``-`` writes to
    standard output; an existing directory is a usage error (exit 2) that names a file to give.
    """
    if path == STDOUT:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if os.path.isdir(path):
        raise CommandError(f"{path!r} is a directory; give the name of the file to write, "
                           f"e.g. {os.path.join(path, 'configdrive.iso')!r}", 2)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ironic-configdrive-", dir=directory)
    except OSError as exc:
        raise CommandError(f"cannot write {path!r}: {exc.strerror}", 2) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
