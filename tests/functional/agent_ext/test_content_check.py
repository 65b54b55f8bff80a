"""What ``configdrive.write`` accepts, and finding what it wrote, on real loop devices.

Through IPA 13's own extension manager: an intact image that is no usable config drive is
refused with a clear error and leaves the partition table as it was (``sfdisk --json``,
``sgdisk -v``); a partition of ours holding no drive (what older versions let through) is
listed by ``status``, reused by the next write and erased by ``remove``. The CLI refuses
the same images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ironic_python_agent import encoding

from tests.fixtures import bad_drives
from tests.functional.agent_ext.conftest import Agent, b64gz, sha256
from tests.functional.agent_ext.disk.conftest import LoopDisk, parted, run, sgdisk

pytestmark = pytest.mark.loopdev

ROOT = Path(__file__).parents[3]
MIB = 1024 * 1024


def command(agent: Agent, name: str, **params: Any) -> dict[str, Any]:
    if name == "configdrive.write":
        # The loop disk is the operator's choice here (driver_info/configdrive_device).
        params.setdefault("device_from_operator", True)
    result = agent.execute_command(name, **params)
    result.join()
    return dict(json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder)))


def table(disk: LoopDisk) -> tuple[Any, ...]:
    """The partition table as sfdisk reads it, sgdisk's verdict (GPT) and the kernel's view."""
    sfdisk = json.loads(run("sfdisk", "--json", disk.device).stdout)["partitiontable"]
    verify = ""
    if sfdisk["label"] == "gpt":
        verify = run("sgdisk", "-v", disk.device, check=False).stdout
        assert "No problems found" in verify, verify
    return sfdisk, verify, disk.kernel_partitions()


def zeros(disk: LoopDisk, start: int, size: int) -> bool:
    return not any(disk.read(start, size))


GPT = sgdisk("-o")
MBR = parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "20MiB")


@pytest.mark.parametrize("case", sorted(bad_drives.CASES))
def test_refused_on_a_fresh_gpt_disk(agent: Agent, loopdisk: Callable[..., LoopDisk],
                                     case: str) -> None:
    make, phrase = bad_drives.CASES[case]
    image = make()
    disk = loopdisk(96, layout=GPT)
    before = table(disk)
    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(image).decode(), sha256=sha256(image))
    assert out["command_status"] == "FAILED", out["command_result"]
    error = out["command_error"]
    assert error["error_type"] == "NotAConfigDriveError" and error["category"] == "invalid_media"
    assert phrase in error["details"] and disk.device in error["details"]
    assert "ironic-configdrive validate" in error["details"]
    assert "was deleted again" in error["details"]   # the partition made for it is gone
    assert table(disk) == before
    status = command(agent, "configdrive.status", device=disk.device)["command_result"]
    assert (status["present"], status["partitions"]) == (False, [])


@pytest.mark.parametrize("case", ["vfat_without_label", "meta_data_without_uuid",
                                  "iso_directory_cycle"])
def test_refused_on_an_mbr_disk(agent: Agent, loopdisk: Callable[..., LoopDisk],
                                case: str) -> None:
    make, phrase = bad_drives.CASES[case]
    disk = loopdisk(96, layout=MBR)
    before = table(disk)
    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(make()).decode())
    assert out["command_status"] == "FAILED" and phrase in out["command_error"]["details"]
    assert table(disk) == before


def test_refused_over_an_existing_drive_keeps_the_partition_zeroed_and_ours(
        agent: Agent, loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(96, layout=GPT)
    good = bad_drives.good_iso()
    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(good).decode())
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    number = out["command_result"]["partition_number"]
    start, size = disk.kernel_partitions()[number]
    before = table(disk)

    image = bad_drives.CASES["iso_wrong_label"][0]()
    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(image).decode())
    assert out["command_status"] == "FAILED"
    assert "volume label is 'WRONG-LABEL'" in out["command_error"]["details"]
    assert table(disk)[:2] == before[:2]
    assert zeros(disk, start, size)            # neither the old drive nor the refused one
    status = command(agent, "configdrive.status", device=disk.device)["command_result"]
    assert status["present"] is False
    assert [(p["number"], p["marked"]) for p in status["partitions"]] == [(number, True)]

    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(good).decode())
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert (out["command_result"]["partition_number"], out["command_result"]["action"]) == (
        number, "reused")
    assert list(disk.kernel_partitions()) == [number]


@pytest.mark.parametrize("scheme", ["gpt", "mbr"])
def test_stale_marked_partition_with_garbage_is_found_reused_and_erased(
        agent: Agent, loopdisk: Callable[..., LoopDisk], scheme: str) -> None:
    """What an older version left: our partition, committed with bytes that are no drive."""
    disk = loopdisk(96, layout=GPT if scheme == "gpt" else MBR)
    others = disk.kernel_partitions()
    listed_before = json.loads(run("sfdisk", "--json", disk.device).stdout)[
        "partitiontable"].get("partitions", [])
    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(bad_drives.good_iso()).decode())
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    number, node = out["command_result"]["partition_number"], out["command_result"]["path"]
    start, size = disk.kernel_partitions()[number]

    def stale() -> None:
        with open(node, "r+b") as part:
            part.write(bad_drives.CASES["iso_wrong_label"][0]())
            part.write(b"old user data \x01" * 4096)
        # Writing through the node makes udev probe it; let that finish, or the kernel
        # refuses to drop a partition udev still holds open.
        run("udevadm", "settle", check=False)

    stale()
    status = command(agent, "configdrive.status", device=disk.device)["command_result"]
    assert status["present"] is False and "hold no config drive" in status["note"]
    assert [(p["number"], p["marked"], p["size"]) for p in status["partitions"]] == [
        (number, True, size)]

    out = command(agent, "configdrive.write", device=disk.device,
                  configdrive=b64gz(bad_drives.good_vfat()).decode())
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert out["command_result"]["partition_number"] == number
    assert list(disk.kernel_partitions()) == [*others, number]   # no second partition

    stale()
    out = command(agent, "configdrive.remove", device=disk.device)
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert out["command_result"]["partitions"] == [number]
    assert zeros(disk, start, size)                      # read back: every byte zero
    assert disk.kernel_partitions() == others
    assert json.loads(run("sfdisk", "--json", disk.device).stdout)["partitiontable"].get(
        "partitions", []) == listed_before


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ironic_configdrive.cli", *args],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("case", sorted(bad_drives.CASES))
def test_cli_write_refuses(tmp_path: Path, loopdisk: Callable[..., LoopDisk],
                           case: str) -> None:
    make, phrase = bad_drives.CASES[case]
    disk = loopdisk(96, layout=GPT)
    path = tmp_path / "drive.img"
    path.write_bytes(make())
    before = table(disk)
    done = cli("write", "--device", disk.device, "--file", str(path), "--quiet")
    assert done.returncode == 1, done.stdout
    assert phrase in done.stderr and "verified" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
    assert table(disk) == before
