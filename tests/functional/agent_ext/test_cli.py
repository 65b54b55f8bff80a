"""``python -m ironic_configdrive.cli write|status|remove`` on real loop devices."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ironic_configdrive.image import build_image, sealing
from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.conftest import b64gz, disk_nodes, read_node, sha256
from tests.functional.agent_ext.disk.conftest import blkid_config_drives, sgdisk

pytestmark = pytest.mark.loopdev

ROOT = Path(__file__).parents[3]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ironic_configdrive.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )


def test_write_status_remove(loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "c1"}, "user_data": os.urandom(20 << 20)})
    server.objects["/o"] = b64gz(image)
    url = server.url("/o", "temp_url_sig=abcdef0123&temp_url_expires=1")

    done = cli("status", "--device", disk.device)
    assert done.returncode == 0 and done.stdout.strip() == f"no config drive on {disk.device}"

    done = cli(
        "write",
        "--device",
        disk.device,
        "--url",
        url,
        "--sha256",
        sha256(image),
        "--size",
        str(len(image)),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    total = -(-len(image) // (1 << 20))
    progress = [line.split(" (")[0] for line in done.stderr.splitlines()]
    assert progress == [f"written 8 of {total} MiB", f"written 16 of {total} MiB"]
    assert "abcdef0123" not in done.stdout + done.stderr
    assert blkid_config_drives(*disk_nodes(disk.device)) == [result["path"]]
    assert read_node(result["path"], len(image)) == image

    done = cli("status", "--device", disk.device)
    assert done.returncode == 0
    assert done.stdout.startswith(f"config drive on {result['path']}")
    assert sha256(image) in done.stdout

    done = cli("remove", "--device", disk.device, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["removed"] is True
    done = cli("status", "--device", disk.device, "--json")
    assert json.loads(done.stdout)["present"] is False


def test_write_shows_retries_as_they_happen_masked(
    loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "c4"}})
    server.objects["/r"] = b64gz(image)
    server.fault("/r", ("status", 503), ("status", 503))
    done = cli("write", "--device", disk.device,
               "--url", server.url("/r", "temp_url_sig=feedface99&temp_url_expires=1"))
    assert done.returncode == 0, done.stderr
    retries = [line for line in done.stderr.splitlines()
               if line.startswith("warning: Config drive download failed (HTTP 503); retry ")]
    assert len(retries) == 2, done.stderr
    assert "feedface99" not in done.stdout + done.stderr


def test_write_from_file_human(loopdisk: Callable, tmp_path: Path) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "c2"}})
    path = tmp_path / "cd.b64"
    path.write_bytes(b64gz(image))
    done = cli("write", "--device", disk.device, "--file", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config drive written to ")
    assert "verified: yes" in done.stdout


def test_write_sealed_file_with_key_file(loopdisk: Callable, tmp_path: Path) -> None:
    """An encrypted drive as the conductor stores it, opened with --key-file."""
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "c3"}, "user_data": "pw: s3cr3t-cli\n"})
    key = sealing.new_key()
    sealed = tmp_path / "cd.sealed"
    sealed.write_bytes(sealing.seal(gzip.compress(image), key))
    key_file = tmp_path / "key"
    key_file.write_text(sealing.encode_key(key) + "\n")
    wrong = tmp_path / "wrong"
    wrong.write_text(sealing.encode_key(sealing.new_key()))

    done = cli("write", "--device", disk.device, "--file", str(sealed),
               "--key-file", str(wrong))
    assert done.returncode == 1 and "fails authentication" in done.stderr
    assert blkid_config_drives(*disk_nodes(disk.device)) == []
    done = cli("write", "--device", disk.device, "--file", str(sealed))
    assert done.returncode == 1 and "no gzip, ISO9660, FAT or base64 signature" in done.stderr

    done = cli("write", "--device", disk.device, "--file", str(sealed), "--key-file",
               str(key_file), "--sha256", sha256(image), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["encrypted"] is True
    assert read_node(result["path"], len(image)) == image
    assert sealing.encode_key(key) not in done.stdout + done.stderr


def test_failures_exit_1_with_one_line(
    loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    server.objects["/o"] = b"x"
    server.fault("/o", ("status", 403))
    done = cli("write", "--device", disk.device, "--url", server.url("/o", "temp_url_sig=zz9"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "temp URL has likely expired" in lines[0]
    assert "zz9" not in done.stderr

    done = cli("status", "--device", "/dev/ironic-configdrive-no-such-disk")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "/dev/ironic-configdrive-no-such-disk" in done.stderr


def test_usage_error_exits_2() -> None:
    done = cli("write", "--device", "/dev/null")
    assert done.returncode == 2 and "--url" in done.stderr


#: The CLI's write, then the modules it imported, as JSON on the last line of stderr.
_WRITE_THEN_MODULES = """
import json, sys
from ironic_configdrive.cli import main
code = main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""
#: What a write of an unsealed drive never uses: each costs start-up time and memory on
#: every agent (cryptography about 7 MiB; pycdlib, oslo and Ironic are conductor-side).
_NOT_FOR_A_PLAIN_WRITE = ("cryptography", "pycdlib", "oslo_config", "oslo_log", "ironic",
                          "ironic_python_agent")


def _write_modules(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _WRITE_THEN_MODULES, "write", *args],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.splitlines()[-1]))


def test_a_plain_write_imports_only_what_it_uses(
        loopdisk: Callable, server: http_fixture.ObjectServer, tmp_path: Path) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "c1"}, "user_data": os.urandom(2 << 20)})
    server.objects["/o"] = b64gz(image)
    modules = _write_modules("--device", disk.device, "--url", server.url("/o"),
                             "--sha256", sha256(image), "--quiet")
    assert {"agent_ext.pipeline", "agent_ext.fetch"} <= modules  # it did write
    assert not {name for name in modules if name.split(".")[0] in _NOT_FOR_A_PLAIN_WRITE}
    assert "ironic_configdrive.image.sealing" not in modules

    # A sealed drive needs cryptography, and the probe above would have seen it.
    key = sealing.new_key()
    sealed = tmp_path / "sealed"
    sealed.write_bytes(sealing.seal(gzip.compress(image), key))
    key_file = tmp_path / "key"
    key_file.write_text(sealing.encode_key(key))
    modules = _write_modules("--device", disk.device, "--file", str(sealed),
                             "--key-file", str(key_file), "--quiet")
    assert "cryptography" in modules
