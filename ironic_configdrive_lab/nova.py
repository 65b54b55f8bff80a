"""Nova 34 for the Nova profile: nova-api (gunicorn), nova-conductor, nova-scheduler and
nova-compute with the ironic virt driver pointed at the lab's Ironic.

One ``DIR/etc/nova/nova.conf`` for all four. The cell mappings hold *templated* URLs
(``{scheme}://{username}:{password}@{hostname}:{port}/...``), filled from each service's own
``[database]connection`` and ``transport_url``: MariaDB and RabbitMQ listen on new ports at
every ``up`` and the mappings stay right without rewriting them. Nova builds the config drive
itself with genisoimage (its ``mkisofs_cmd``), as in a cloud; our deploy interface then takes
it over from Ironic's API.

Nova's ironic driver talks to the lab's Ironic without Keystone (``auth_type = none`` and
``endpoint_override``: the lab's Ironic is noauth). nova-compute loads the driver subclass in
``nova_side/`` (see :mod:`ironic_nonic <ironic_configdrive_lab.nova_side.ironic_nonic>`).
"""

from __future__ import annotations

import configparser
import shutil
import time
from pathlib import Path
from typing import Final

from ironic_configdrive_lab import keystone, nova_venv, openstack_services, process, wsgi
from ironic_configdrive_lab.workdir import LabError, Workdir

API: Final = "nova-api"
CONDUCTOR: Final = "nova-conductor"
SCHEDULER: Final = "nova-scheduler"
COMPUTE: Final = "nova-compute"
#: Stop order: the compute first (it holds the node), the API last.
PROCESSES: Final = (COMPUTE, SCHEDULER, CONDUCTOR, API)
API_APP: Final = "nova.wsgi.osapi_compute:application"
COMPUTE_HOST: Final = "lab-nova-compute"
DATABASES: Final = {"api": "nova_api", "cell0": "nova_cell0", "cell1": "nova"}
CELL: Final = "cell1"
NOVA_SIDE: Final = Path(__file__).resolve().parent / "nova_side"
#: ``[DEFAULT]compute_driver``: Nova loads ``nova.virt.<this>`` (registered by
#: ``nova_side/nova_compute.py``).
COMPUTE_DRIVER: Final = "ironic_nonic.IronicDriver"
#: Seconds between nova-compute's resource updates: a deleted server's node is reserved
#: for Nova until the next one, so a build right after a delete waits at most this long.
UPDATE_RESOURCES_INTERVAL: Final = "5"
COMPUTE_READY_TIMEOUT: Final = 180.0
#: Nova's default, set explicitly: the metadata's hostname is ``<server>.<this>``.
DHCP_DOMAIN: Final = "novalocal"
#: Nova's paste pipeline as pip installs it (keystone authentication).
PASTE: Final = nova_venv.path() / "etc" / "nova" / "api-paste.ini"


def conf_dir(workdir: Workdir) -> Path:
    return workdir.etc / "nova"


def conf_path(workdir: Workdir) -> Path:
    return conf_dir(workdir) / "nova.conf"


def template(database: str) -> str:
    """A cell mapping URL filled from the reading service's own ``[database]connection``."""
    return f"{{scheme}}://{{username}}:{{password}}@{{hostname}}:{{port}}/{database}?{{query}}"


def config(workdir: Workdir, *, databases: dict[str, str], transport_url: str,
           auth_url: str, ironic_url: str, neutron_url: str,
           debug: bool) -> configparser.ConfigParser:
    """nova.conf; ``databases``: URLs keyed like :data:`DATABASES`."""
    auth = keystone.auth_section(workdir, auth_url)
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {
        "debug": str(debug),
        "host": COMPUTE_HOST,
        "my_ip": "127.0.0.1",
        "state_path": str(workdir.root / "nova"),
        "transport_url": transport_url,
        "compute_driver": COMPUTE_DRIVER,
        # Bare metal: the node is the whole machine, nothing is reserved on it.
        "reserved_host_memory_mb": "0",
        "reserved_host_disk_mb": "0",
        "update_resources_interval": UPDATE_RESOURCES_INTERVAL,
    }
    conf["api"] = {"auth_strategy": "keystone", "dhcp_domain": DHCP_DOMAIN}
    conf["api_database"] = {"connection": databases["api"]}
    conf["database"] = {"connection": databases["cell1"]}
    conf["keystone_authtoken"] = openstack_services.authtoken(workdir, auth_url)
    conf["placement"] = auth
    conf["neutron"] = {**auth, "endpoint_override": neutron_url}
    conf["ironic"] = {"auth_type": "none", "endpoint_override": ironic_url,
                      "api_max_retries": "120", "api_retry_interval": "2"}
    conf["conductor"] = {"workers": "1"}
    conf["scheduler"] = {"workers": "1"}
    conf["oslo_concurrency"] = {"lock_path": str(workdir.root / "nova" / "locks")}
    conf["oslo_messaging_notifications"] = {"driver": "noop"}
    return conf


def write_conf(workdir: Workdir, conf: configparser.ConfigParser) -> Path:
    path = conf_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    (workdir.root / "nova" / "locks").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PASTE, conf_dir(workdir) / "api-paste.ini")
    return nova_venv.write_private(conf, path)


def _manage(workdir: Workdir, *args: str) -> str:
    return nova_venv.run(workdir.log("nova-manage"),
                         ["nova-manage", "--config-file", str(conf_path(workdir)), *args],
                         what=f"nova-manage {' '.join(args[:2])}")


def create_schema(workdir: Workdir) -> None:
    """API and cell databases, cell0 and cell1 mapped (idempotent: kept between ``up``s)."""
    _manage(workdir, "api_db", "sync")
    _manage(workdir, "cell_v2", "map_cell0", "--database_connection",
            template(DATABASES["cell0"]))
    if f"| {CELL} " not in _manage(workdir, "cell_v2", "list_cells"):
        _manage(workdir, "cell_v2", "create_cell", "--name", CELL, "--database_connection",
                template(DATABASES["cell1"]), "--transport-url",
                "{scheme}://{username}:{password}@{hostname}:{port}/")
    _manage(workdir, "db", "sync")


def discover_hosts(workdir: Workdir) -> None:
    """Map nova-compute's host into cell1 (once it has registered): before, the scheduler
    may pick the node and the conductor fails the build with "No host-to-cell mapping"."""
    _manage(workdir, "cell_v2", "discover_hosts", "--by-service")


def _service_env() -> dict[str, str]:
    # nova-api loads its paste pipeline from the first file, its options from both.
    return {"OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf"}


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v2.1"


def start(workdir: Workdir, api_port: int) -> str:
    """The four services; nova-api's URL (:func:`api_url`)."""
    env = nova_venv.environment({})
    for name in (CONDUCTOR, SCHEDULER, COMPUTE):
        command = [str(nova_venv.tool("python")), str(NOVA_SIDE / "nova_compute.py")] \
            if name == COMPUTE else [str(nova_venv.tool(name))]
        process.spawn(workdir, name, [*command, "--config-file", str(conf_path(workdir))],
                      env=env)
    wsgi.start(workdir, API, API_APP, port=api_port,
               env={**_service_env(), "OS_NOVA_CONFIG_DIR": str(conf_dir(workdir))})
    return api_url(api_port)


def wait_compute(workdir: Workdir, node_uuid: str, placement: dict[str, str]) -> None:
    """Until nova-compute has reported the node to placement as free: an inventory, none of
    it reserved. Before, the scheduler finds no host: at start, and after a delete until
    nova-compute's next resource update (Nova keeps a node it just released reserved)."""
    import requests

    deadline = time.monotonic() + COMPUTE_READY_TIMEOUT
    headers = {"X-Auth-Token": placement["token"], "OpenStack-API-Version": "placement 1.20"}
    while time.monotonic() < deadline:
        for name in PROCESSES[:3]:
            if process.running_pid(workdir, name) is None:
                raise LabError(f"{name} exited while starting:\n"
                               + process.log_tail(workdir, name))
        try:
            reply = requests.get(f"{placement['url']}/resource_providers/{node_uuid}/"
                                 "inventories", headers=headers, timeout=10)
            inventories = reply.json().get("inventories") if reply.ok else None
            if inventories and all(item["reserved"] < item["total"]
                                   for item in inventories.values()):
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise LabError(f"nova-compute did not report node {node_uuid} to placement as free "
                   f"within {COMPUTE_READY_TIMEOUT:.0f} s; see {workdir.log(COMPUTE)}")


def stop(workdir: Workdir) -> list[str]:
    return process.stop_many(workdir, list(PROCESSES))
