"""A real Ironic on loopback with noauth: the single process (API + conductor) on sqlite,
and what both profiles share (binaries, schema creation, waiting for the API).

The multi-conductor profile's ``ironic-api`` and ``ironic-conductor`` processes are started
by :mod:`.conductors`; their configuration comes from :mod:`.ironic_conf`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from ironic_configdrive_lab import ironic_conf, plugins, process
from ironic_configdrive_lab.profile import SINGLE_NAME
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME = SINGLE_NAME
START_TIMEOUT = 120.0
#: Kept for callers of the original module.
INTERFACES = ironic_conf.INTERFACES


def bin_path(name: str) -> str:
    """An Ironic console script next to this interpreter, else the bare name (PATH)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def write_conf(workdir: Workdir, *, api_port: int, http_url: str, debug: bool,
               configdrive: dict[str, str] | None = None,
               extra: dict[str, dict[str, str]] | None = None) -> Path:
    """The single process's ``DIR/etc/ironic.conf``; ``configdrive``: the store's options."""
    conf = ironic_conf.single(workdir, api_port=api_port, http_url=http_url, debug=debug,
                              configdrive=configdrive, extra=extra)
    return ironic_conf.write(conf, workdir.etc / "ironic.conf")


def dbsync(conf_path: Path, log: Path) -> None:
    """``ironic-dbsync create_schema``; its errors go to its ``log_file`` only, so show it."""
    result = subprocess.run([bin_path("ironic-dbsync"), "--config-file", str(conf_path),
                             "create_schema"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        try:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            tail = ""
        raise LabError(f"ironic-dbsync create_schema failed: "
                       f"{(result.stderr.strip() or tail)[-800:]}")


def create_schema(workdir: Workdir, conf_path: Path) -> None:
    """The sqlite schema, once (the database is kept between `down` and `up`)."""
    if (workdir.root / "ironic.sqlite").exists():
        return
    try:
        dbsync(conf_path, workdir.log(NAME))
    except LabError:
        (workdir.root / "ironic.sqlite").unlink(missing_ok=True)
        raise


def env(workdir: Workdir) -> dict[str, str]:
    """The environment of every Ironic process: the lab's hardware type importable."""
    result = plugins.env(workdir)
    result[plugins.SECURE_DELETE_ENV] = "1"
    return result


def wait_until(api_url: str, ready: Callable[[dict[str, Any]], bool], *,
               alive: Callable[[], str | None], what: str,
               timeout: float = START_TIMEOUT) -> None:
    """Poll ``GET /v1/drivers`` until ``ready(body)``; fail early when ``alive()`` names a
    process that exited (with its log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = alive()
        if dead is not None:
            raise LabError(dead)
        try:
            response = requests.get(f"{api_url}/v1/drivers", timeout=2)
            if response.ok and ready(response.json()):
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.3)
    raise LabError(f"{what} not ready at {api_url} within {timeout:.0f} s")


def driver_hosts(body: dict[str, Any], driver: str = "lab-hardware") -> set[str]:
    """The conductor hosts ``GET /v1/drivers`` lists for ``driver``."""
    for item in body.get("drivers") or []:
        if item.get("name") == driver:
            return set(item.get("hosts") or [])
    return set()


def start(workdir: Workdir, conf_path: Path, api_url: str) -> int:
    pid = process.spawn(workdir, NAME, [bin_path("ironic"), "--config-file", str(conf_path)],
                        env=env(workdir))

    def exited() -> str | None:
        if process.running_pid(workdir, NAME) is None:
            return "ironic exited while starting:\n" + process.log_tail(workdir, NAME)
        return None

    # The conductor registers its drivers after the API answers; wait for both.
    wait_until(api_url, lambda body: bool(body.get("drivers")), alive=exited,
               what=f"ironic (see {workdir.log(NAME)})")
    return pid
