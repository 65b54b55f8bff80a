"""Background processes of the lab: started detached, tracked by pid file, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ironic_configdrive.lab.workdir import LabError, Workdir

STOP_GRACE = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def record_pid(path: Path, pid: int) -> None:
    """Write ``pid`` and its start time: a later reader can tell a reused pid apart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {_start_time(pid)}\n")


def pid_from_file(path: Path) -> int | None:
    """The pid recorded in ``path`` if that very process still runs (not a reused pid)."""
    try:
        pid_text, start = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    # A zombie counts as gone. (Not judged by /proc/PID/cmdline: it reads empty for a
    # moment right after exec.)
    if _start_time(pid) != start or _state(pid) in ("", "Z"):
        return None
    return pid


def running_pid(workdir: Workdir, name: str) -> int | None:
    """The pid recorded for ``name`` if that very process still runs (not a reused pid)."""
    return pid_from_file(workdir.pid_file(name))


def spawn(workdir: Workdir, name: str, argv: Sequence[str], *,
          env: dict[str, str] | None = None) -> int:
    """Start ``argv`` in its own session, output to ``logs/NAME.log``; record its pid."""
    if running_pid(workdir, name) is not None:
        raise LabError(f"{name} already runs for {workdir.root}; run `down` first")
    log = open(workdir.log(name), "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=workdir.root,
                                start_new_session=True)
    except OSError as exc:
        raise LabError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from None
    finally:
        log.close()
    record_pid(workdir.pid_file(name), proc.pid)
    return proc.pid


def stop(workdir: Workdir, name: str, *, grace: float = STOP_GRACE) -> bool:
    """Stop ``name``'s process group by its recorded pid; True if something was running."""
    return stop_pid_file(workdir.pid_file(name), grace=grace)


def stop_pid_file(path: Path, *, grace: float = STOP_GRACE) -> bool:
    """Stop the process group recorded in ``path`` (if still the same process); drop the file.

    The process must lead its own session (started with ``start_new_session``), so the whole
    group goes and nothing else.
    """
    pid = pid_from_file(path)
    path.unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    # Our children are reaped by whoever started them; a zombie counts as gone.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return _state(pid) not in ("", "Z")


def log_tail(workdir: Workdir, name: str, lines: int = 15) -> str:
    try:
        text = workdir.log(name).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
