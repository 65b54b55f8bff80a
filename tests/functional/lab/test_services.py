"""The lab's Swift, Redfish emulator and WSGI server, started here and stopped by pid.

That is how ``ironic-configdrive-lab up`` and ``down`` (separate processes) share them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ironic_configdrive_lab import nova_venv, process, redfish, swift, wsgi
from ironic_configdrive_lab.workdir import Workdir
from tests.conftest import skip_or_fail


def _other_process(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


@pytest.mark.swift
def test_swift_released_then_stopped_by_another_process(tmp_path: Path) -> None:
    missing = swift.missing_tools()
    if missing:
        skip_or_fail(f"Swift needs {', '.join(missing)} (pip install swift; apt-get install "
                     "memcached)")
    server = swift.SwiftServer(tmp_path / "swift", pid_dir=tmp_path / "pids")
    server.start()
    try:
        conn = server.connection()
        conn.put_container("c")
        conn.put_object("c", "o", b"data")
        pids = swift.running_recorded(tmp_path / "pids")
        assert sorted(pids) == sorted(swift.PROCESSES)
        # The starting side lets go; the cluster keeps serving.
        server.release()
        assert server.connection().get_object("c", "o")[1] == b"data"
        stopped = _other_process(
            "from ironic_configdrive_lab import swift; "
            f"print(','.join(swift.stop_recorded({str(tmp_path / 'pids')!r})))")
        assert stopped.split(",") == list(reversed(swift.PROCESSES))
        assert swift.running_recorded(tmp_path / "pids") == {}
        assert not any(process._state(pid) not in ("", "Z") for pid in pids.values())
        with pytest.raises(requests.ConnectionError):
            requests.get(server.auth_url, timeout=5)
    finally:
        server.stop()
        swift.stop_recorded(tmp_path / "pids")


@pytest.mark.redfish
def test_redfish_released_then_stopped_by_another_process(tmp_path: Path) -> None:
    if redfish.find_executable() is None:
        skip_or_fail("sushy-emulator not installed (pip install sushy-tools)")
    pid_file = tmp_path / "redfish.pid"
    emulator = redfish.RedfishEmulator(tmp_path / "bmc", pid_file=pid_file)
    emulator.start()
    try:
        pid = process.pid_from_file(pid_file)
        assert pid is not None
        emulator.release()
        assert emulator.vmedia("Cd")["Inserted"] is False
        assert _other_process(
            "from ironic_configdrive_lab import redfish; "
            f"print(redfish.stop_recorded({str(pid_file)!r}))") == "True"
        assert process.pid_from_file(pid_file) is None and not pid_file.exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(emulator.url + "/redfish/v1", timeout=5)
    finally:
        emulator.stop()
        redfish.stop_recorded(pid_file)


@pytest.mark.lab
def test_wsgi_server_closes_every_connection(tmp_path: Path) -> None:
    """gunicorn's threaded worker resets a kept-alive connection it closes while the client
    reuses it (what broke ``openstack server delete --wait`` in CI): the lab's WSGI server
    answers each request with ``Connection: close`` and serves the next on a new one."""
    if nova_venv.missing():
        skip_or_fail("the Nova venv lacks " + ", ".join(nova_venv.missing()) +
                     " (tools/bootstrap.sh)")
    workdir = Workdir.at(tmp_path)
    workdir.create()
    url = wsgi.start(workdir, "demo", "wsgiref.simple_server:demo_app", env={})
    try:
        with requests.Session() as session:
            for _ in range(3):
                response = session.get(url, timeout=30)
                assert response.status_code == 200
                assert response.headers["Connection"].lower() == "close"
    finally:
        process.stop(workdir, "demo")
    assert process.running_pid(workdir, "demo") is None
