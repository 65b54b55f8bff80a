"""Unit tests of the lab's decisions: power rules, inputs, state, pid tracking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ironic_configdrive_lab import guest, node_cmd, plugins, power, process
from ironic_configdrive_lab.workdir import LabError, Workdir


@pytest.mark.parametrize("node,wanted", [
    ({"power_state": "power on", "provision_state": "wait call-back"}, True),
    ({"power_state": "power on", "provision_state": "clean wait"}, True),
    ({"power_state": "power off", "provision_state": "wait call-back"}, False),
    ({"power_state": "power on", "provision_state": "active"}, False),
    ({"power_state": "power on", "provision_state": "available"}, False),
    # The power-on that boots the instance is not a ramdisk boot.
    ({"power_state": "power on", "provision_state": "deploying",
      "deploy_step": {"step": "boot_instance"}}, False),
    ({"power_state": "power on", "provision_state": "deploying",
      "deploy_step": {"step": "write_image"}}, True),
])
def test_wants_agent(node: dict, wanted: bool) -> None:
    assert power.wants_agent(node) is wanted


def test_config_drive_arg(tmp_path: Path) -> None:
    assert node_cmd.config_drive_arg('{"meta_data": {}}') == '{"meta_data": {}}'
    as_json = tmp_path / "drive.json"
    as_json.write_text('{"user_data": "x"}\n')
    assert json.loads(node_cmd.config_drive_arg(str(as_json))) == {"user_data": "x"}
    blob = tmp_path / "drive.iso.gz.b64"
    blob.write_text("H4sIAAAAAAAA")
    assert node_cmd.config_drive_arg(str(blob)) == str(blob)
    with pytest.raises(LabError, match="JSON or an existing file"):
        node_cmd.config_drive_arg("not json")


def test_expected_guest_compares_key_type_and_body() -> None:
    drive = json.dumps({"meta_data": {"name": "h", "public_keys": {
        "k": "ssh-ed25519 AAAAbody comment here"}}})
    expected = node_cmd._expected_guest(drive)
    assert expected == {"hostname": "h", "keys": [guest.key_digest("ssh-ed25519 AAAAbody x")]}
    assert "AAAAbody" not in json.dumps(expected)  # the lab's state keeps no key
    assert node_cmd._expected_guest("/some/file") == {}


def test_state_round_trip(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path / "lab")
    workdir.create()
    assert workdir.load_state() == {}
    workdir.update_state(a=1, b="x")
    assert workdir.update_state(a=None) == {"b": "x"}
    workdir.state_file.write_text("{broken")
    with pytest.raises(LabError, match="state.json"):
        workdir.load_state()


def test_tag_and_names_are_stable_and_short(tmp_path: Path) -> None:
    from ironic_configdrive_lab import network

    workdir = Workdir.at(tmp_path)
    node_end, peer = network.names(workdir)
    assert (node_end, peer) == network.names(Workdir.at(tmp_path))
    assert len(peer) <= 15  # IFNAMSIZ - 1
    assert network.mac(workdir).startswith("52:54:00:")


def test_spawn_and_stop_by_pid_file(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    pid = process.spawn(workdir, "sleeper", [sys.executable, "-c",
                                             "import time; time.sleep(60)"])
    assert process.running_pid(workdir, "sleeper") == pid
    with pytest.raises(LabError, match="already runs"):
        process.spawn(workdir, "sleeper", ["true"])
    assert process.stop(workdir, "sleeper") is True
    assert process.running_pid(workdir, "sleeper") is None
    assert process.stop(workdir, "sleeper") is False


def test_wait_until_ready(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    process.spawn(workdir, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        answers = iter([False, False, True])
        process.wait_until_ready(workdir, "sleeper", lambda: next(answers), where="here",
                                 timeout=30, interval=0.01)
        with pytest.raises(LabError, match=r"sleeper did not answer here within 0 s"):
            process.wait_until_ready(workdir, "sleeper", lambda: False, where="here",
                                     timeout=0.05, interval=0.01)
    finally:
        process.stop(workdir, "sleeper")
    process.spawn(workdir, "quitter", [sys.executable, "-c", "print('bad config')"])
    with pytest.raises(LabError, match=r"quitter exited while starting:\nbad config"):
        process.wait_until_ready(workdir, "quitter", lambda: False, where="here",
                                 timeout=30, interval=0.05)


def test_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    # Our own pid with a wrong start time: a reused pid must never be killed.
    workdir.pid_file("ghost").write_text(f"{os.getpid()} 1\n")
    assert process.running_pid(workdir, "ghost") is None
    assert process.stop(workdir, "ghost") is False


def test_lab_plugins_are_only_on_the_lab_path(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    env = plugins.env(workdir, {"PYTHONPATH": "/x"})
    assert env["PYTHONPATH"] == f"{tmp_path / 'plugins'}:/x"
    code = ("from importlib.metadata import entry_points; "
            "print(sorted(e.name for e in "
            "entry_points(group='ironic_python_agent.hardware_managers')))")
    inside = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout
    outside = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
    assert "ironic_configdrive_lab" in inside
    assert "ironic_configdrive_lab" not in outside


def test_hardware_manager_is_inert_without_the_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ironic_python_agent")
    from ironic_configdrive_lab import agent, hardware

    ipa_hardware = hardware.hardware  # IPA's module, imported after its config
    manager = hardware.LabHardwareManager()
    monkeypatch.delenv(agent.DISK_ENV, raising=False)
    assert manager.evaluate_hardware_support() == ipa_hardware.HardwareSupport.NONE
    # Anything but a loop device is refused: the lab never hands the agent a host disk.
    monkeypatch.setenv(agent.DISK_ENV, "/dev/vda")
    assert manager.evaluate_hardware_support() == ipa_hardware.HardwareSupport.NONE
    monkeypatch.setenv(agent.DISK_ENV, "/dev/loop7")
    assert manager.evaluate_hardware_support() > ipa_hardware.HardwareSupport.GENERIC
    assert manager.get_os_install_device() == "/dev/loop7"
    monkeypatch.setenv(agent.IFACE_ENV, "cdl-absent")
    assert manager.list_network_interfaces() == []


def test_status_prints_the_exports_the_readme_promises() -> None:
    from ironic_configdrive_lab.status_cmd import status_exports

    text = status_exports({"api_url": "http://127.0.0.1:6385"})
    assert "export OS_AUTH_TYPE=none" in text.splitlines()
    assert "export OS_ENDPOINT=http://127.0.0.1:6385" in text.splitlines()
    assert "not up" in status_exports({"api_url": None})
