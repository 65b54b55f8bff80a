"""``ironic-configdrive write|remove|status`` handlers (in-process, in-memory disk layer).

Lives here rather than under tests/unit/cli because it exercises the agent write path.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import agent_ext
from ironic_configdrive.cli import disk as cli_disk
from ironic_configdrive.cli import main
from ironic_configdrive.image import build_image
from tests.unit.agent_ext.fakes import FakeDisk

DEV = "/dev/fake0"


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FakeDisk:
    fake = FakeDisk()
    monkeypatch.setattr(agent_ext, "disk", fake, raising=False)
    return fake


@pytest.fixture(scope="module")
def image() -> bytes:
    return build_image({"meta_data": {"uuid": "u-1"}})


def run(argv: list[str]) -> int:
    """The real ``ironic-configdrive`` entry point, in process."""
    return main(argv)


def test_write_json(
    disk: FakeDisk, image: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cd.gz"
    path.write_bytes(gzip.compress(image))
    sha = hashlib.sha256(image).hexdigest()
    assert (
        run(
            [
                "write",
                "--device",
                DEV,
                "--file",
                str(path),
                "--sha256",
                sha,
                "--size",
                str(len(image)),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["sha256"] == sha and out["path"] == DEV + "p9" and out["encoding"] == "gzip"
    assert disk.content == image


def test_write_human_partition(
    disk: FakeDisk, image: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cd.iso"
    path.write_bytes(image)
    assert run(["write", "--device", DEV, "--file", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"config drive written to {DEV}p9 (partition 9 of {DEV}, created)")


def test_write_human(
    disk: FakeDisk, image: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cd.iso"
    path.write_bytes(image)
    assert run(["write", "--device", DEV, "--file", str(path), "--target", "device"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"config drive written to the whole device {DEV}\n")
    assert "verified: yes" in out


def test_write_failure_is_one_line(
    disk: FakeDisk, image: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cd.iso"
    path.write_bytes(image)
    assert run(["write", "--device", DEV, "--file", str(path), "--sha256", "a" * 64]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ironic-configdrive write: error: ")
    assert "sha256 of the received image" in lines[0]


def test_usage_errors_exit_2(disk: FakeDisk, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["write", "--device", DEV],
        ["write", "--file", "x"],
        ["write", "--device", DEV, "--file", "x", "--url", "http://h/"],
        ["status"],
        ["remove", "--device"],
    ):
        with pytest.raises(SystemExit) as info:
            run(argv)
        assert info.value.code == 2


def test_unreadable_file_is_a_usage_error(
    disk: FakeDisk, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["write", "--device", DEV, "--file", "/nonexistent/cd"]) == 2
    assert "cannot read config drive file '/nonexistent/cd'" in capsys.readouterr().err
    assert disk.prepared == []


def test_cert_without_key(disk: FakeDisk, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["write", "--device", DEV, "--url", "https://h/x", "--certfile", "c"]) == 1
    assert "--client-cert and --client-key go together" in capsys.readouterr().err


def test_status_and_remove(
    disk: FakeDisk, image: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["status", "--device", DEV]) == 0
    assert capsys.readouterr().out.strip() == f"no config drive on {DEV}"
    disk.content = image
    assert run(["status", "--device", DEV, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["present"] is True and out["sha256"] == hashlib.sha256(image).hexdigest()
    assert run(["remove", "--device", DEV]) == 0
    assert capsys.readouterr().out.strip() == "removed"
    assert run(["remove", "--device", DEV, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] is False


def test_status_lists_partitions_of_ours_without_a_drive() -> None:
    result = {"device": DEV, "present": False, "note": "partitions of ours hold no config drive",
              "partitions": [{"number": 2, "path": DEV + "p2", "size": 2 << 20,
                              "marked": True, "label": None, "format": None}]}
    assert cli_disk._human_status(result).splitlines() == [
        f"no config drive on {DEV}",
        "  note:   partitions of ours hold no config drive",
        f"  partition 2 ({DEV}p2, 2097152 bytes, marked): no config drive",
    ]


def test_unexpected_error_is_one_line(
    disk: FakeDisk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(device: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(disk, "config_drive_status", broken)
    assert run(["status", "--device", DEV]) == 1
    assert capsys.readouterr().err.strip() == (
        "ironic-configdrive status: error: unexpected RuntimeError: boom; please report this bug"
    )


def test_progress_lines() -> None:
    stream = io.StringIO()
    progress = cli_disk.Progress(stream)
    mib = 1024 * 1024
    for done in range(0, 48 * mib + 1, mib // 2):
        progress(done, 48 * mib)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "written 8 of 48 MiB (16%)"
    assert lines[-1] == "written 48 of 48 MiB (100%)"
    assert len(lines) == 6
    stream = io.StringIO()
    progress = cli_disk.Progress(stream)
    progress(3 * mib, None)
    progress(20 * mib, None)
    assert stream.getvalue() == "written 20 MiB\n"


def test_cli_module_does_not_import_the_agent() -> None:
    # The conductor-side CLI must load without IPA or the agent's code: block both.
    code = (
        "import sys, argparse\n"
        "sys.modules['agent_ext'] = None\n"
        "sys.modules['ironic_python_agent'] = None\n"
        "sys.modules['requests'] = None\n"
        "from ironic_configdrive.cli import disk\n"
        "parser = argparse.ArgumentParser()\n"
        "disk.register(parser.add_subparsers())\n"
        "print(parser.parse_args(['status', '--device', 'x']).device)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x"


def test_disk_commands_without_the_agent_extra_say_what_to_install() -> None:
    """With only [conductor] installed pyudev is missing: an install hint, not 'a bug'."""
    code = ("import sys; sys.modules['pyudev'] = None; "
            "from ironic_configdrive.cli import main; "
            "sys.exit(main(['status', '--device', '/dev/null']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1
    assert "need the agent's dependencies (module 'pyudev' is not installed)" in done.stderr
    assert "pip install 'ironic-configdrive[agent]'" in done.stderr
    assert "please report this bug" not in done.stderr


def test_a_missing_device_is_named_in_words_a_cli_user_knows(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status", "--device", "/dev/no-such-disk-here"]) == 1
    err = capsys.readouterr().err
    assert "/dev/no-such-disk-here" in err and "no such device" in err
    assert "in the request" not in err
