"""Background processes of the lab: started detached, tracked by pid file, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ironic_configdrive_lab.workdir import LabError, Workdir

STOP_GRACE = 10.0


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


def stop(workdir: Workdir, name: str, *, grace: float = STOP_GRACE,
         hard: bool = False) -> bool:
    """Stop ``name``'s process group by its recorded pid; True if something was running."""
    return stop_pid_file(workdir.pid_file(name), grace=grace, hard=hard)


def stop_pid_file(path: Path, *, grace: float = STOP_GRACE, hard: bool = False) -> bool:
    """Stop the process group recorded in ``path`` (if still the same process); drop the file.

    SIGTERM, then SIGKILL after ``grace`` seconds; ``hard``: SIGKILL at once (a crash).
    The process must lead its own session (started with ``start_new_session``), so the whole
    group goes and nothing else.
    """
    return bool(stop_pid_files([path], grace=grace, hard=hard))


def stop_many(workdir: Workdir, names: Sequence[str], *,
              grace: float = STOP_GRACE) -> list[str]:
    """Stop several processes at once (signalled together, waited for together): the names
    of those that were running, in the given order."""
    stopped = stop_pid_files([workdir.pid_file(name) for name in names], grace=grace)
    return [name for name in names if workdir.pid_file(name) in stopped]


def stop_pid_files(paths: Sequence[Path], *, grace: float = STOP_GRACE,
                   hard: bool = False) -> list[Path]:
    """:func:`stop_pid_file` for several files in parallel; the files whose process ran."""
    pids: dict[Path, int] = {}
    for path in paths:
        pid = pid_from_file(path)
        path.unlink(missing_ok=True)
        if pid is not None:
            pids[path] = pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + (0 if hard else grace)
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids.values()):
        time.sleep(0.1)
    for pid in pids.values():
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for pid in pids.values():
        while _alive(pid):
            time.sleep(0.05)
    return list(pids)


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


def wait_until_ready(workdir: Workdir, name: str, ready: Callable[[], bool], *,
                     where: str, timeout: float, interval: float) -> None:
    """Poll ``ready`` until it is true; fail, with the log's tail, as soon as ``name`` exits,
    or after ``timeout`` seconds naming ``where`` it did not answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid(workdir, name) is None:
            raise LabError(f"{name} exited while starting:\n" + log_tail(workdir, name))
        if ready():
            return
        time.sleep(interval)
    raise LabError(f"{name} did not answer {where} within {timeout:.0f} s; "
                   f"see {workdir.log(name)}")
