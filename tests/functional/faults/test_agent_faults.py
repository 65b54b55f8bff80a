"""Agent-side faults on real loop devices: a download cut mid-way, the agent killed mid-write.

The download case goes through IPA's own extension manager (the real ``configdrive.write``);
the kill case runs the ``ironic-configdrive write`` CLI as a subprocess and SIGKILLs it while
its download stalls, then checks what a re-run (a deploy step retried) and ``remove`` find.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ironic_python_agent import encoding

from ironic_configdrive.image import build_image, read_tree
from tests.fixtures import http as http_fixture
from tests.fixtures.real_agent import RealAgent
from tests.functional.agent_ext.conftest import (
    b64gz,
    blkid_label_nodes,
    disk_nodes,
    read_node,
    run,
    sha256,
)
from tests.functional.agent_ext.disk.conftest import LoopDisk, blkid_config_drives, sgdisk

pytestmark = pytest.mark.loopdev

ROOT = Path(__file__).parents[3]
MIB = 1024 * 1024
SIG = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
META = {"meta_data": {"uuid": "6a1e0c3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", "name": "faulty"},
        "user_data": "#cloud-config\nhostname: faulty\n"}
#: A pre-existing partition, so "the table as it was" is more than an empty table.
LAYOUT = ("-o", "-n", "1:2048:+16M", "-c", "1:instance-root")
#: Hang guard for polling a subprocess; never a performance threshold.
GUARD = 120.0


def image_of(random_mib: int) -> bytes:
    """A real config drive with ``random_mib`` MiB of incompressible content."""
    return build_image({**META, "meta_data": {**META["meta_data"], "files": [
        {"path": "/var/blob", "contents": os.urandom(random_mib * MIB).hex()[: random_mib * MIB]}
    ]}})


def table(device: str) -> dict[str, Any]:
    """The partition table as sfdisk reads it (header fields and every partition)."""
    out: dict[str, Any] = json.loads(run("sfdisk", "-J", device).stdout)["partitiontable"]
    return out


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"hang guard: {what} did not happen within {GUARD:g} s")
        time.sleep(0.05)


# -- 2. connection cut mid-download, through the real extension --------------------------------

@pytest.fixture
def agent(loopdisk: Callable[..., LoopDisk]) -> Iterator[tuple[RealAgent, LoopDisk]]:
    disk = loopdisk(128, layout=sgdisk(*LAYOUT))
    real = RealAgent(disk.device)
    real.setUp()
    try:
        yield real, disk
    finally:
        real.cleanUp()


def command(agent: RealAgent, name: str, **params: Any) -> dict[str, Any]:
    _code, result = agent.run(name, params)
    out: dict[str, Any] = json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder))
    return out


def test_cut_download_is_resumed_with_range(agent: tuple[RealAgent, LoopDisk],
                                             server: http_fixture.ObjectServer) -> None:
    real, disk = agent
    image = image_of(3)
    blob = b64gz(image)
    cut = len(blob) // 2
    server.objects["/v1/AUTH_t/c/node/d"] = blob
    server.fault("/v1/AUTH_t/c/node/d", ("drop", cut))  # once; the resume is served whole
    before = table(disk.device)

    out = command(real, "configdrive.write", device=disk.device, device_from_operator=True,
                  size=len(image),
                  configdrive=server.url("/v1/AUTH_t/c/node/d", f"temp_url_sig={SIG}"),
                  sha256=sha256(image))
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    written = out["command_result"]
    assert written["resumes"] == 1
    first, resumed = server.requests
    assert first.range is None
    assert resumed.range == f"bytes={cut}-" and resumed.if_range is not None
    assert SIG not in json.dumps(out)

    # The partition holds exactly the image, and it is the only config drive on the disk.
    on_disk = read_node(written["path"], len(image))
    assert hashlib.sha256(on_disk).hexdigest() == sha256(image) == written["sha256"]
    assert read_tree(on_disk)["openstack/latest/meta_data.json"] \
        == read_tree(image)["openstack/latest/meta_data.json"]
    assert blkid_config_drives(*disk_nodes(disk.device)) == [written["path"]]
    after = table(disk.device)
    assert after["partitions"][0] == before["partitions"][0]  # the instance's is untouched
    assert len(after["partitions"]) == 2


# -- 3. the agent killed in the middle of a write ----------------------------------------------

class StallServer:
    """Serves one object; the first GET sends ``stall_after`` bytes, then hangs until release.

    ``stalled`` is set once the partial body is on the wire. Later GETs are served whole.
    """

    def __init__(self, body: bytes, stall_after: int) -> None:
        self.body = body
        self.stall_after = stall_after
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.gets = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                outer.gets += 1
                stall = outer.gets == 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.send_header("ETag", '"' + sha256(outer.body)[:32] + '"')
                self.end_headers()
                try:
                    self.wfile.write(outer.body[: outer.stall_after] if stall else outer.body)
                    self.wfile.flush()
                except OSError:
                    return
                if stall:
                    outer.stalled.set()
                    outer.release.wait(GUARD)
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/cd?temp_url_sig={SIG}"

    def __enter__(self) -> StallServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ironic_configdrive.cli", *args],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)


@contextlib.contextmanager
def killed_mid_write(disk: LoopDisk, image: bytes) -> Iterator[StallServer]:
    """Start ``ironic-configdrive write``, SIGKILL it once image data is on the disk."""
    # 8 MiB of image: past the 1 MiB head held back and one 4 MiB write chunk.
    blob = b64gz(image)
    with StallServer(blob, stall_after=len(blob) * 3 // 4) as stall:
        before = set(disk.kernel_partitions())
        proc = subprocess.Popen(
            [sys.executable, "-m", "ironic_configdrive.cli", "write", "--device", disk.device,
             "--url", stall.url, "--sha256", sha256(image), "--size", str(len(image)),
             "--quiet", "--json"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for(stall.stalled.is_set, "the partial download")

            def body_on_disk() -> bool:
                new = set(disk.kernel_partitions()) - before
                if not new:
                    return False
                start, _size = disk.kernel_partitions()[max(new)]
                return any(disk.read(start + MIB, 64 * 1024))

            wait_for(body_on_disk, "image data past the head reaching the new partition")
            assert proc.poll() is None, proc.communicate()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=GUARD)
            assert proc.returncode == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=GUARD)
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
        yield stall


def assert_no_valid_config_drive(disk: LoopDisk) -> None:
    nodes = disk_nodes(disk.device)
    assert blkid_config_drives(*nodes) == [] and blkid_label_nodes(*nodes) == []
    done = cli("status", "--device", disk.device, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["present"] is False


def test_killed_write_leaves_nothing_valid_and_a_rerun_writes_one_drive(
        loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(128, layout=sgdisk(*LAYOUT))
    before = table(disk.device)
    image = image_of(8)
    with killed_mid_write(disk, image) as stall:
        assert_no_valid_config_drive(disk)

        # The deploy step re-runs: same URL, served whole this time.
        done = cli("write", "--device", disk.device, "--url", stall.url, "--quiet", "--json",
                   "--sha256", sha256(image), "--size", str(len(image)))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert SIG not in done.stdout + done.stderr
    assert blkid_config_drives(*disk_nodes(disk.device)) == [result["path"]]
    assert hashlib.sha256(read_node(result["path"], len(image))).hexdigest() == sha256(image)
    partitions = table(disk.device)["partitions"]
    assert partitions[0] == before["partitions"][0]
    assert len(partitions) == len(before["partitions"]) + 1  # the killed one's was reused

    done = cli("remove", "--device", disk.device, "--json")
    assert done.returncode == 0, done.stderr
    assert table(disk.device) == before


def test_remove_after_a_killed_write_restores_the_table(
        loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(128, layout=sgdisk(*LAYOUT))
    before = table(disk.device)
    with killed_mid_write(disk, image_of(8)):
        pass
    assert table(disk.device) != before  # the killed write's partition is still there
    done = cli("remove", "--device", disk.device, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["removed"] is True
    assert table(disk.device) == before
    assert_no_valid_config_drive(disk)
    assert disk_nodes(disk.device) == [disk.device, f"{disk.device}p1"]
