"""A real single-process Ironic (API + conductor) on loopback with sqlite and noauth."""

from __future__ import annotations

import configparser
import subprocess
import sys
import time
from pathlib import Path

import requests

from ironic_configdrive.lab import plugins, process
from ironic_configdrive.lab.workdir import LabError, Workdir

NAME = "ironic"
START_TIMEOUT = 120.0

#: Interfaces every hardware type listed must find a default among (fake-hardware only).
INTERFACES = {
    "enabled_hardware_types": "lab-hardware",
    "enabled_boot_interfaces": "fake",
    "enabled_power_interfaces": "fake",
    "enabled_management_interfaces": "noop,fake",
    "enabled_deploy_interfaces": "direct,configdrive",
    "enabled_inspect_interfaces": "no-inspect",
    "enabled_bios_interfaces": "no-bios",
    "enabled_console_interfaces": "no-console",
    "enabled_firmware_interfaces": "no-firmware",
    "enabled_network_interfaces": "noop",
    "enabled_raid_interfaces": "no-raid",
    "enabled_rescue_interfaces": "no-rescue",
    "enabled_storage_interfaces": "noop",
    "enabled_vendor_interfaces": "no-vendor",
}


def _bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def write_conf(workdir: Workdir, *, api_port: int, http_url: str, debug: bool,
               configdrive: dict[str, str] | None = None) -> Path:
    """``configdrive``: ``[configdrive]`` options (the store); default the http store."""
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {
        "auth_strategy": "noauth",
        "rpc_transport": "none",
        "host": "lab-conductor",
        "debug": str(debug),
        "log_file": str(workdir.log(NAME)),
        "use_stderr": "False",
        **INTERFACES,
    }
    # Agents heartbeat every third to half of this: short keeps clean/deploy polls brisk.
    conf["api"] = {"host_ip": "127.0.0.1", "port": str(api_port),
                   "ramdisk_heartbeat_timeout": "20"}
    conf["database"] = {"connection": f"sqlite:///{workdir.root / 'ironic.sqlite'}"}
    conf["conductor"] = {
        "automated_clean": "True",
        # The lab plays the power; no periodic sync must second-guess it.
        "sync_power_state_interval": "-1",
        "check_provision_state_interval": "5",
        "deploy_callback_timeout": "180",
        "clean_callback_timeout": "180",
        "heartbeat_interval": "5",
    }
    conf["deploy"] = {
        "http_root": str(workdir.http_root),
        "http_url": http_url,
        "fast_track": "False",
        # Shredding a disk takes long; metadata erase and our erase_configdrive stay.
        "erase_devices_priority": "0",
        "power_off_after_deploy_failure": "True",
    }
    conf["agent"] = {
        "post_deploy_get_power_state_retries": "2",
        "post_deploy_get_power_state_retry_interval": "1",
        "image_download_source": "http",
        "command_timeout": "60",
    }
    # No keystone: the agent is told this API URL directly.
    conf["service_catalog"] = {"endpoint_override": f"http://127.0.0.1:{api_port}"}
    conf["oslo_concurrency"] = {"lock_path": str(workdir.root / "locks")}
    conf["configdrive"] = {"store": "http", "agent_command_timeout": "120",
                           "key_file": str(workdir.etc / "configdrive.key"),
                           **(configdrive or {})}
    path = workdir.etc / "ironic.conf"
    with open(path, "w") as handle:
        conf.write(handle)
    return path


def create_schema(workdir: Workdir, conf_path: Path) -> None:
    if (workdir.root / "ironic.sqlite").exists():
        return
    result = subprocess.run([_bin("ironic-dbsync"), "--config-file", str(conf_path),
                             "create_schema"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        (workdir.root / "ironic.sqlite").unlink(missing_ok=True)
        raise LabError(f"ironic-dbsync create_schema failed: {result.stderr.strip()[-800:]}")


def start(workdir: Workdir, conf_path: Path, api_url: str) -> int:
    env = plugins.env(workdir)
    env[plugins.SECURE_DELETE_ENV] = "1"
    pid = process.spawn(workdir, NAME, [_bin("ironic"), "--config-file", str(conf_path)],
                        env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.running_pid(workdir, NAME) is None:
            raise LabError("ironic exited while starting:\n"
                           + process.log_tail(workdir, NAME))
        try:
            # The conductor registers its drivers after the API answers; wait for both.
            response = requests.get(f"{api_url}/v1/drivers", timeout=2)
            if response.ok and response.json().get("drivers"):
                return pid
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    raise LabError(f"ironic did not answer at {api_url} within {START_TIMEOUT:.0f} s; see "
                   f"{workdir.log(NAME)}")
