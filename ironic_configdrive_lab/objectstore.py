"""The lab's Swift: started by ``up`` under ``DIR/swift``, stopped by ``down`` by pid.

Ironic reaches it with TempAuth (v1) credentials (``[configdrive]swift_auth_url``,
``swift_user``, ``swift_key``), as a deployment without Keystone would.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ironic_configdrive_lab import process, swift
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME = "swift"
CONTAINER = "lab-configdrive"


def start(workdir: Workdir, *, debug: bool = False) -> dict[str, str]:
    """Start Swift; its connection settings (kept in the lab's state, key included)."""
    missing = swift.missing_tools()
    if missing:
        raise LabError(f"the Swift store needs {', '.join(missing)} (pip install swift; "
                       "apt-get install memcached), or run the lab with --store http")
    server = swift.SwiftServer(workdir.root / NAME, pid_dir=workdir.pids,
                               log_level="DEBUG" if debug else "INFO")
    try:
        server.start()
    except swift.SwiftServerError as exc:
        raise LabError(f"Swift did not start under {workdir.root / NAME}: {exc}") from None
    server.release()
    return {"auth_url": server.auth_url, "user": server.user, "key": server.key,
            "container": CONTAINER}


def stop(workdir: Workdir) -> list[str]:
    return swift.stop_recorded(workdir.pids)


@contextlib.contextmanager
def proxy_down(workdir: Workdir) -> Iterator[None]:
    """Swift's proxy killed while the block runs (connections refused, as in an outage),
    then started again with the same command line, configuration and port."""
    path = swift.pid_files(workdir.pids)["proxy"]
    pid = process.pid_from_file(path)
    if pid is None:
        raise LabError("the lab's Swift proxy is not running")
    proc = Path(f"/proc/{pid}")
    argv = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    env = dict(item.split(b"=", 1) for item in
               proc.joinpath("environ").read_bytes().split(b"\0") if b"=" in item)
    cwd = os.readlink(proc / "cwd")
    process.stop_pid_file(path, hard=True)
    try:
        yield
    finally:
        with open(workdir.root / NAME / "log" / "proxy.log", "ab") as log:
            started = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,  # noqa: S603
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        process.record_pid(path, started.pid)
        _wait_answers(str(workdir.load_state()["swift"]["auth_url"]), started)


def _wait_answers(url: str, started: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.poll() is not None:
            raise LabError("the Swift proxy exited when started again; see its log")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise LabError(f"the Swift proxy did not answer at {url} within {timeout:.0f} s")


def running(workdir: Workdir) -> dict[str, int]:
    return swift.running_recorded(workdir.pids)


def list_objects(settings: dict[str, str]) -> list[str]:
    """Object names in the lab's container (none when it does not exist)."""
    from swiftclient import client as swift_client

    conn = swift_client.Connection(authurl=settings["auth_url"], user=settings["user"],
                                   key=settings["key"], retries=1)
    try:
        _headers, listing = conn.get_container(settings["container"], full_listing=True)
    except swift_client.ClientException as exc:
        if exc.http_status == 404:
            return []
        raise LabError(f"listing Swift container {settings['container']} at "
                       f"{settings['auth_url']} failed: HTTP {exc.http_status}") from None
    except Exception as exc:  # connection errors: name the service, not a traceback
        raise LabError(f"Swift at {settings['auth_url']} unreachable: "
                       f"{type(exc).__name__}") from None
    finally:
        conn.close()
    return [str(item["name"]) for item in listing]


def conf_options(settings: dict[str, Any]) -> dict[str, str]:
    """The ``[configdrive]`` options that point Ironic at this Swift."""
    return {"store": "swift", "swift_container": settings["container"],
            "swift_auth_url": settings["auth_url"], "swift_user": settings["user"],
            "swift_key": settings["key"]}
