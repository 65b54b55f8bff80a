"""A real Swift on loopback for the lab and the tests: rings, servers, proxy, memcached.

``SwiftServer(workdir)`` builds three one-device rings, starts memcached and the account,
container, object and proxy servers (``workers = 0``, ``mount_check = false``, ``-v`` so
their logs land in ``workdir/log/*.log``), waits until a full round trip works, and stops
everything by PID. Only loopback, free ports picked at start, every file under ``workdir``.
The proxy runs ``tempurl`` + ``tempauth``; callers may add proxy middleware (the tests add a
fault injector) with ``middleware=`` and make it importable with ``pythonpath=``.

With ``pid_dir`` every process is also recorded there (pid and start time, see
:mod:`ironic_configdrive_lab.process`), so another process can stop the cluster later with
:func:`stop_recorded`: that is how ``ironic-configdrive-lab down`` stops the lab's Swift.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from ironic_configdrive_lab import process
from ironic_configdrive_lab.ports import free_port  # tests/fixtures import it from here

BIN_DIR = Path(sys.executable).parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
#: Start order; stopped in reverse.
PROCESSES = ("memcached", "account", "container", "object", "proxy")
PID_PREFIX = "swift-"

#: A proxy middleware: its filter name and the options of its ``[filter:NAME]`` section.
Middleware = tuple[str, Mapping[str, str]]


class SwiftServerError(RuntimeError):
    """Swift could not start; the message carries the tail of its logs."""


def _find(tool: str) -> str | None:
    candidate = BIN_DIR / tool
    if candidate.exists():
        return str(candidate)
    return shutil.which(tool)


def missing_tools() -> list[str]:
    """Programs the server needs that are not installed (empty when it can run)."""
    tools = ["swift-ring-builder", "swift-proxy-server", "swift-account-server",
             "swift-container-server", "swift-object-server", "memcached"]
    return [t for t in tools if _find(t) is None]


def pid_files(pid_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Where a server started with ``pid_dir`` records each of its processes."""
    return {name: Path(pid_dir) / f"{PID_PREFIX}{name}.pid" for name in PROCESSES}


def running_recorded(pid_dir: str | os.PathLike[str]) -> dict[str, int]:
    """The recorded Swift processes that still run, by name."""
    found = {name: process.pid_from_file(path) for name, path in pid_files(pid_dir).items()}
    return {name: pid for name, pid in found.items() if pid is not None}


def stop_recorded(pid_dir: str | os.PathLike[str]) -> list[str]:
    """Stop, from any process, a server started with ``pid_dir``; names of those stopped."""
    stopped = []
    for name, path in reversed(list(pid_files(pid_dir).items())):
        if process.stop_pid_file(path, grace=STOP_TIMEOUT):
            stopped.append(name)
    return stopped


class SwiftServer:
    """One Swift cluster (one replica, one device per ring) under ``workdir``."""

    user = "test:tester"
    key = "testing"
    account = "AUTH_test"
    #: A second account's user, for "other users cannot read it" checks.
    other_user = "other:reader"
    other_key = "reading"

    def __init__(self, workdir: str | os.PathLike[str], *,
                 middleware: Sequence[Middleware] = (), pythonpath: Sequence[str] = (),
                 pid_dir: str | os.PathLike[str] | None = None,
                 log_level: str = "INFO") -> None:
        self.workdir = Path(workdir)
        self.log_level = log_level
        self.conf_dir = self.workdir / "etc"
        self.devices = self.workdir / "srv"
        self.log_dir = self.workdir / "log"
        self.run_dir = self.workdir / "run"
        self.middleware = list(middleware)
        self.pythonpath = list(pythonpath)
        self.pid_dir = Path(pid_dir) if pid_dir is not None else None
        self.ports: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    # -- public properties -------------------------------------------------------------
    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def auth_url(self) -> str:
        return f"{self.proxy_url}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.proxy_url}/v1/{self.account}"

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs.values())

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> SwiftServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        missing = missing_tools()
        if missing:
            raise SwiftServerError(f"missing programs: {', '.join(missing)} (install swift "
                                   "from PyPI and the memcached Debian package)")
        for d in (self.conf_dir, self.devices / "d1", self.log_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        for name in PROCESSES:
            self.ports[name] = free_port()
        try:
            self._write_configs()
            self._build_rings()
            self._spawn_memcached()
            for server in ("account", "container", "object", "proxy"):
                self._spawn(server, [_find(f"swift-{server}-server") or "",
                                     str(self.conf_dir / f"{server}-server.conf"), "-v"])
            self._wait_ready()
        except Exception as exc:
            tail = self.log_tail()
            self.stop()
            raise SwiftServerError(f"Swift did not start under {self.workdir}: {exc}\n"
                                   f"{tail}") from exc
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process this instance started, by PID (process group), then reap."""
        for name, proc in reversed(list(self._procs.items())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)
            del self._procs[name]
            if self.pid_dir is not None:
                pid_files(self.pid_dir)[name].unlink(missing_ok=True)
        for f in self._logs:
            f.close()
        self._logs.clear()

    def release(self) -> None:
        """Leave the processes running (tracked by their pid files) and let this object go.

        For a caller that exits while Swift runs on, e.g. ``ironic-configdrive-lab up``;
        :func:`stop_recorded` stops them later.
        """
        if self.pid_dir is None:
            raise SwiftServerError("release() needs pid_dir: nothing could stop Swift later")
        self._procs.clear()
        for f in self._logs:
            f.close()
        self._logs.clear()

    # -- helpers -----------------------------------------------------------------------
    def connection(self, *, user: str | None = None, key: str | None = None,
                   retries: int = 0, starting_backoff: float = 0.05) -> Any:
        """A python-swiftclient Connection authenticated through tempauth."""
        from swiftclient import client as swift_client

        return swift_client.Connection(
            authurl=self.auth_url, user=user or self.user, key=key or self.key,
            retries=retries, starting_backoff=starting_backoff, max_backoff=0.5)

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for log in sorted(self.log_dir.glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    # -- internals ---------------------------------------------------------------------
    def _write_configs(self) -> None:
        c = self.conf_dir
        (c / "swift.conf").write_text(
            "[swift-hash]\n"
            f"swift_hash_path_suffix = {uuid.uuid4().hex}\n"
            f"swift_hash_path_prefix = {uuid.uuid4().hex}\n"
            "[storage-policy:0]\nname = gold\ndefault = yes\n", encoding="utf-8")
        common = (f"[DEFAULT]\nbind_ip = 127.0.0.1\nworkers = 0\nswift_dir = {c}\n"
                  f"devices = {self.devices}\nmount_check = false\ndisable_fallocate = true\n"
                  f"log_level = {self.log_level}\n")
        for server in ("account", "container", "object"):
            (c / f"{server}-server.conf").write_text(
                common + f"bind_port = {self.ports[server]}\nlog_name = {server}\n"
                f"[pipeline:main]\npipeline = {server}-server\n"
                f"[app:{server}-server]\nuse = egg:swift#{server}\n"
                # The proxy's access log obscures temp URL signatures; a backend server's
                # would quote them in clear (in the Referer the proxy passes on).
                "log_requests = false\n"
                + (f"[{server}-replicator]\n[{server}-auditor]\n[{server}-updater]\n"
                   if server != "account" else "[account-replicator]\n[account-auditor]\n"),
                encoding="utf-8")
        extra_names = "".join(f"{name} " for name, _ in self.middleware)
        extra_sections = "".join(
            f"[filter:{name}]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())
            for name, options in self.middleware)
        (c / "proxy-server.conf").write_text(
            f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {self.ports['proxy']}\n"
            f"workers = 0\nswift_dir = {c}\nlog_name = proxy\n"
            f"log_level = {self.log_level}\n"
            "[pipeline:main]\n"
            "pipeline = catch_errors gatekeeper healthcheck proxy-logging cache "
            f"listing_formats tempurl tempauth {extra_names}proxy-logging proxy-server\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
            "[filter:catch_errors]\nuse = egg:swift#catch_errors\n"
            "[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n"
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n"
            "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n"
            "[filter:listing_formats]\nuse = egg:swift#listing_formats\n"
            "[filter:cache]\nuse = egg:swift#memcache\n"
            f"memcache_servers = 127.0.0.1:{self.ports['memcached']}\n"
            "[filter:tempurl]\nuse = egg:swift#tempurl\n"
            "[filter:tempauth]\nuse = egg:swift#tempauth\n"
            f"user_test_tester = {self.key} .admin\n"
            f"user_other_reader = {self.other_key} .admin\n"
            + extra_sections, encoding="utf-8")

    def _build_rings(self) -> None:
        builder = _find("swift-ring-builder") or ""
        for ring in ("account", "container", "object"):
            path = str(self.conf_dir / f"{ring}.builder")
            dev = f"r1z1-127.0.0.1:{self.ports[ring]}/d1"
            for args in (["create", "8", "1", "1"], ["add", dev, "100"], ["rebalance"]):
                res = subprocess.run([builder, path, *args], capture_output=True, text=True,
                                     check=False)
                # rebalance exits 1 with a warning on tiny rings; the ring file is what counts
                if res.returncode not in (0, 1):
                    raise SwiftServerError(f"swift-ring-builder {ring} {args[0]} failed: "
                                           f"{res.stdout}{res.stderr}")
            if not (self.conf_dir / f"{ring}.ring.gz").exists():
                raise SwiftServerError(f"swift-ring-builder wrote no {ring}.ring.gz")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (*self.pythonpath, env.get("PYTHONPATH", "")) if p)
        self._procs[name] = proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.workdir, env=env, start_new_session=True)
        if self.pid_dir is not None:
            process.record_pid(pid_files(self.pid_dir)[name], proc.pid)

    def _spawn_memcached(self) -> None:
        argv = [_find("memcached") or "", "-l", "127.0.0.1", "-p", str(self.ports["memcached"]),
                "-U", "0", "-m", "16"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        self._spawn("memcached", argv)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last: str = "not tried"
        while time.monotonic() < deadline:
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise SwiftServerError(f"exited early: {', '.join(dead)}")
            try:
                self._round_trip()
                return
            except Exception as exc:  # keep polling until the deadline
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)
        raise SwiftServerError(f"not ready after {READY_TIMEOUT:.0f}s: {last}")

    def _round_trip(self) -> None:
        """Auth, container and object PUT/GET/DELETE: proves every server answers."""
        auth = requests.get(self.auth_url, headers={"X-Auth-User": self.user,
                                                     "X-Auth-Key": self.key}, timeout=5)
        auth.raise_for_status()
        token = {"X-Auth-Token": auth.headers["X-Auth-Token"]}
        base = f"{self.storage_url}/readiness"
        for method, url, data in (("PUT", base, None), ("PUT", f"{base}/probe", b"ok"),
                                  ("GET", f"{base}/probe", None),
                                  ("DELETE", f"{base}/probe", None), ("DELETE", base, None)):
            resp = requests.request(method, url, headers=token, data=data, timeout=5)
            resp.raise_for_status()
