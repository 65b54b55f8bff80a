"""Ironic's configuration files for the lab, for both profiles (see :mod:`.profile`).

Pure: builds :class:`configparser.ConfigParser` objects (unit-tested) and writes them.

* single: one ``ironic`` process, sqlite, ``rpc_transport = none``;
* multi: ``ironic-api`` and N ``ironic-conductor``, ``rpc_transport = json-rpc``, one MariaDB.
  The API reaches a conductor at ``http://<its [DEFAULT]host>:<[json_rpc]port>``, so every
  conductor's ``host`` is its own loopback address, which is also its ``[json_rpc]host_ip``
  (two conductors on one address fight over the port). ``[json_rpc]port`` stays at Ironic's
  default: with another port Ironic registers ``host:port`` while node locks carry ``host``,
  and a crashed conductor's locks are never cleared. The API has one worker (two would fight
  over its port) and the conductors' heartbeat timeout and hash ring interval, or it keeps
  routing to a dead conductor.
"""

from __future__ import annotations

import configparser
from pathlib import Path

from ironic_configdrive_lab.profile import API_NAME, SINGLE_HOST, SINGLE_NAME, ConductorHost
from ironic_configdrive_lab.workdir import Workdir

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

#: Ironic's default json-rpc port, left alone (see the module docstring).
JSON_RPC_PORT = 8089
#: Seconds between reconciler runs (the product's default is 600).
RECONCILE_INTERVAL = "5"
#: Fast failure detection that did not flap here (heartbeat_timeout = 1 did): a dead
#: conductor's nodes move to another within 1-5 s.
HEARTBEAT = {"heartbeat_interval": "1", "heartbeat_timeout": "3"}
HASH_RING_RESET_INTERVAL = "1"
SYNC_LOCAL_STATE_INTERVAL = "1"
#: A conductor stopped with SIGTERM waits this long for its running tasks.
GRACEFUL_SHUTDOWN_TIMEOUT = "5"
#: [configdrive]fetch_allowed_networks: everything the lab serves is on loopback.
LOOPBACK_NETWORK = "127.0.0.0/8"
#: Agents heartbeat every third to half of this: short keeps clean/deploy polls brisk.
RAMDISK_HEARTBEAT_TIMEOUT = "20"


def _base(workdir: Workdir, *, name: str, host: str, rpc: str, debug: bool,
          api_port: int, database: str) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {
        "auth_strategy": "noauth",
        "rpc_transport": rpc,
        "host": host,
        "debug": str(debug),
        "log_file": str(workdir.log(name)),
        "use_stderr": "False",
        **INTERFACES,
    }
    conf["database"] = {"connection": database}
    # No keystone: the agent is told this API URL directly.
    conf["service_catalog"] = {"endpoint_override": f"http://127.0.0.1:{api_port}"}
    return conf


def _conductor_sections(conf: configparser.ConfigParser, *, http_root: Path, http_url: str,
                        lock_path: Path, key_file: Path, configdrive: dict[str, str] | None,
                        heartbeat_interval: str) -> None:
    """What a conductor needs: deploy, agent, the configdrive store, its own locks."""
    conf["conductor"] = {
        "automated_clean": "True",
        # The lab plays the power; no periodic sync must second-guess it.
        "sync_power_state_interval": "-1",
        "check_provision_state_interval": "5",
        "deploy_callback_timeout": "180",
        "clean_callback_timeout": "180",
        "heartbeat_interval": heartbeat_interval,
    }
    conf["deploy"] = {
        "http_root": str(http_root),
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
    conf["oslo_concurrency"] = {"lock_path": str(lock_path)}
    conf["configdrive"] = {"store": "http", "agent_command_timeout": "120",
                           "key_file": str(key_file),
                           # Brisk, so scenarios see leftovers go within seconds.
                           "reconcile_interval": RECONCILE_INTERVAL,
                           # `deploy --exposure` and the tempest scenario choose it per
                           # deploy in instance_info, as a tenant would.
                           "allow_instance_overrides": "configdrive_exposure",
                           # Config drive URLs given to the lab point at its own loopback
                           # servers, which the default policy refuses.
                           "fetch_allowed_networks": LOOPBACK_NETWORK, **(configdrive or {})}


def single(workdir: Workdir, *, api_port: int, http_url: str, debug: bool,
           configdrive: dict[str, str] | None = None,
           extra: dict[str, dict[str, str]] | None = None) -> configparser.ConfigParser:
    """The single-process Ironic (API + conductor, sqlite, no RPC).

    ``configdrive``: ``[configdrive]`` options (the store); default the http store.
    ``extra``: whole sections to add (the Nova profile's ``[glance]``).
    """
    conf = _base(workdir, name=SINGLE_NAME, host=SINGLE_HOST, rpc="none", debug=debug,
                 api_port=api_port,
                 database=f"sqlite:///{workdir.root / 'ironic.sqlite'}")
    conf["api"] = {"host_ip": "127.0.0.1", "port": str(api_port),
                   "ramdisk_heartbeat_timeout": RAMDISK_HEARTBEAT_TIMEOUT}
    _conductor_sections(conf, http_root=workdir.http_root, http_url=http_url,
                        lock_path=workdir.root / "locks",
                        key_file=workdir.etc / "configdrive.key", configdrive=configdrive,
                        heartbeat_interval="5")
    conf.read_dict(extra or {})
    return conf


def api(workdir: Workdir, *, api_port: int, database: str,
        debug: bool) -> configparser.ConfigParser:
    """``ironic-api`` of the multi-conductor profile: one worker, json-rpc to conductors."""
    conf = _base(workdir, name=API_NAME, host="127.0.0.1", rpc="json-rpc", debug=debug,
                 api_port=api_port, database=database)
    conf["DEFAULT"]["hash_ring_reset_interval"] = HASH_RING_RESET_INTERVAL
    conf["api"] = {"host_ip": "127.0.0.1", "port": str(api_port), "api_workers": "1",
                   "ramdisk_heartbeat_timeout": RAMDISK_HEARTBEAT_TIMEOUT}
    # The API judges conductors alive with this: the same as the conductors'.
    conf["conductor"] = {"heartbeat_timeout": HEARTBEAT["heartbeat_timeout"]}
    conf["oslo_concurrency"] = {"lock_path": str(workdir.root / "locks")}
    return conf


def conductor(host: ConductorHost, *, api_port: int, database: str, http_url: str,
              debug: bool, configdrive: dict[str, str] | None = None,
              extra: dict[str, dict[str, str]] | None = None) -> configparser.ConfigParser:
    """``ironic-conductor`` number ``host.index``: its own host, address, HTTP root, locks."""
    conf = _base(host.workdir, name=host.name, host=host.address, rpc="json-rpc",
                 debug=debug, api_port=api_port, database=database)
    conf["DEFAULT"]["hash_ring_reset_interval"] = HASH_RING_RESET_INTERVAL
    # Ironic reads it on the conductor too (agent heartbeat deadlines).
    conf["api"] = {"ramdisk_heartbeat_timeout": RAMDISK_HEARTBEAT_TIMEOUT}
    _conductor_sections(conf, http_root=host.http_root, http_url=http_url,
                        lock_path=host.lock_path, key_file=host.key_file,
                        configdrive=configdrive,
                        heartbeat_interval=HEARTBEAT["heartbeat_interval"])
    conf["conductor"].update({
        "heartbeat_timeout": HEARTBEAT["heartbeat_timeout"],
        "sync_local_state_interval": SYNC_LOCAL_STATE_INTERVAL,
        "graceful_shutdown_timeout": GRACEFUL_SHUTDOWN_TIMEOUT,
    })
    conf["json_rpc"] = {"host_ip": host.address}
    conf.read_dict(extra or {})
    return conf


def write(conf: configparser.ConfigParser, path: Path) -> Path:
    with open(path, "w") as handle:
        conf.write(handle)
    return path
