"""The Nova profile of the lab (``up --with-nova``): the services a cloud puts in front of
Ironic, started in two halves around Ironic and stopped by pid.

Before Ironic (its ``[glance]`` section needs them): MariaDB (Keystone's, placement's,
Glance's and Nova's databases), RabbitMQ, Keystone, Glance and placement. After the node is
enrolled (nova-compute reports it): the Neutron stand-in, nova-conductor, nova-scheduler,
nova-compute and nova-api, then the catalog, the bare-metal flavor and the lab's image, and
a wait until placement holds the node's inventory. ``DIR/clouds.yaml`` is written for the
``openstack`` CLI (:mod:`.openstack_env`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab import (
    keystone,
    mariadb,
    neutron_standin,
    nova,
    nova_venv,
    openstack_env,
    openstack_services,
    ports,
    process,
    rabbitmq,
    wsgi,
)
from ironic_configdrive_lab.workdir import LabError, Workdir

#: The node's resource class; Nova schedules the flavor's ``resources:CUSTOM_...`` on it.
RESOURCE_CLASS: Final = "lab-baremetal"
FLAVOR: Final = "lab-baremetal"
IMAGE: Final = "lab-image"
#: Stop order after Nova's own processes; MariaDB is stopped with the rest of the lab.
SERVICES: Final = (neutron_standin.NAME, openstack_services.GLANCE,
                   openstack_services.PLACEMENT, keystone.NAME)


def flavor_spec() -> dict[str, Any]:
    """A bare-metal flavor: the node's resource class, nothing of VCPU, RAM or disk."""
    resource = "CUSTOM_" + RESOURCE_CLASS.upper().replace("-", "_")
    return {"name": FLAVOR, "ram": 1, "vcpus": 1, "disk": 0,
            "extra_specs": {f"resources:{resource}": "1", "resources:VCPU": "0",
                            "resources:MEMORY_MB": "0", "resources:DISK_GB": "0"}}


def missing() -> list[str]:
    """What the profile needs and the machine lacks, each with where it comes from."""
    found = [f"{nova_venv.path()}/bin/{name} (tools/bootstrap.sh)" for name in nova_venv.missing()]
    if not Path(rabbitmq.SERVER).exists():
        found.append(f"rabbitmq-server ({rabbitmq.PACKAGE_HINT})")
    found += [f"{tool} ({mariadb.PACKAGE_HINT})" for tool in mariadb.missing_tools()]
    if not shutil.which("genisoimage"):
        found.append("genisoimage (Nova builds its config drive with it; bindep.txt)")
    return found


def start_before_ironic(workdir: Workdir, *, debug: bool,
                        say: Callable[[str], None]) -> dict[str, Any]:
    """MariaDB, RabbitMQ, Keystone, Glance, placement; what the rest needs (in the state)."""
    lacking = missing()
    if lacking:
        raise LabError("the Nova profile needs: " + "; ".join(lacking))
    mariadb.start(workdir)
    port = int(mariadb.sql(workdir, "SELECT @@port;\n").strip())
    databases = {name: mariadb.database(workdir, name, port)
                 for name in ("keystone", "glance", "placement", *nova.DATABASES.values())}
    transport_url = rabbitmq.start(workdir)
    say(f"RabbitMQ at {transport_url.rsplit('@', 1)[1]} (node lab-{workdir.tag}@localhost)")
    auth_url = keystone.start(workdir, database=databases["keystone"], debug=debug)
    say(f"Keystone at {auth_url} (fernet, admin password in "
        f"{keystone.root(workdir) / 'admin.password'})")
    glance_url = openstack_services.start_glance(workdir, database=databases["glance"],
                                                 auth_url=auth_url, debug=debug)
    placement_url = openstack_services.start_placement(
        workdir, database=databases["placement"], auth_url=auth_url, debug=debug)
    say(f"Glance at {glance_url} (file store {openstack_services.glance_root(workdir)}), "
        f"placement at {placement_url}")
    settings = {"auth_url": auth_url, "glance_url": glance_url,
                "placement_url": placement_url, "transport_url": transport_url,
                "databases": {key: databases[value] for key, value in nova.DATABASES.items()}}
    workdir.update_state(nova={"auth_url": auth_url, "glance_url": glance_url,
                               "placement_url": placement_url})
    return settings


def ironic_sections(workdir: Workdir, settings: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What Ironic needs to deploy Nova's images: Glance as the admin, and its cache of
    Glance images under the workdir (not /var/lib/ironic)."""
    cache = workdir.root / "ironic-images"
    return {"glance": {**keystone.auth_section(workdir, settings["auth_url"]),
                       "endpoint_override": settings["glance_url"]},
            "pxe": {"images_path": str(cache / "images"),
                    "instance_master_path": str(cache / "master_images")}}


def start_after_enroll(workdir: Workdir, settings: dict[str, Any], *, ironic_url: str,
                       node_uuid: str, image: Path, debug: bool,
                       say: Callable[[str], None]) -> dict[str, Any]:
    """The Neutron stand-in and Nova; the catalog, flavor and image; Nova sees the node."""
    neutron_port = ports.free_port()
    process.spawn(workdir, neutron_standin.NAME, [
        sys.executable, "-m", "ironic_configdrive_lab.neutron_standin", str(neutron_port)])
    neutron_url = f"http://{ports.LOOPBACK}:{neutron_port}"
    wsgi.wait_http(workdir, neutron_standin.NAME, neutron_url)
    nova.write_conf(workdir, nova.config(
        workdir, databases=settings["databases"], transport_url=settings["transport_url"],
        auth_url=settings["auth_url"], ironic_url=ironic_url, neutron_url=neutron_url,
        debug=debug))
    nova.create_schema(workdir)
    api_port = ports.free_port()
    compute_url = nova.api_url(api_port)
    openstack_env.write_clouds(workdir, settings["auth_url"])
    # The catalog first: Nova's services look placement up in it when they start.
    made = _cloud_setup(workdir, settings, {"endpoints": {
        "compute": compute_url, "placement": settings["placement_url"],
        "image": settings["glance_url"], "network": neutron_url,
    }, "image": {"name": IMAGE, "path": str(image)}})
    nova.start(workdir, api_port)
    say(f"nova-api at {compute_url}; nova-conductor, nova-scheduler, nova-compute (ironic "
        f"driver on {ironic_url}); Neutron stand-in at {neutron_url}")
    made.update(_cloud_setup(workdir, settings, {"flavor": flavor_spec()}))
    say(f"flavor {FLAVOR} ({made['flavor']}), image {IMAGE} ({made['image']}); "
        f"openstack CLI: ironic-configdrive-lab env --workdir {workdir.root}")
    nova.wait_compute(workdir, node_uuid, {
        "url": settings["placement_url"],
        "token": keystone.token(workdir, settings["auth_url"])})
    nova.discover_hosts(workdir)
    say(f"nova-compute reports node {node_uuid} to placement; its host is mapped to "
        f"{nova.CELL}")
    recorded = {"auth_url": settings["auth_url"], "compute_url": compute_url,
                "glance_url": settings["glance_url"],
                "placement_url": settings["placement_url"], "neutron_url": neutron_url,
                "flavor": FLAVOR, "flavor_id": made["flavor"], "image": IMAGE,
                "image_id": made["image"],
                "clouds_yaml": str(openstack_env.clouds_path(workdir))}
    workdir.update_state(nova=recorded)
    return recorded


def _cloud_setup(workdir: Workdir, settings: dict[str, Any],
                 request: dict[str, Any]) -> dict[str, str]:
    """Run ``nova_side/cloud_setup.py`` with ``request`` (endpoints, image, flavor)."""
    request = {"cloud": openstack_env.cloud(workdir, settings["auth_url"]), **request}
    script = Path(__file__).resolve().parent / "nova_side" / "cloud_setup.py"
    result = subprocess.run([str(nova_venv.tool("python")), str(script)],
                            input=json.dumps(request), capture_output=True, text=True,
                            check=False, env=nova_venv.environment({}), timeout=600)
    if result.returncode != 0:
        raise LabError("setting up the lab cloud's catalog, flavor and image failed: "
                       f"{result.stderr.strip()[-1500:]}")
    made: dict[str, str] = json.loads(result.stdout)
    return made


def running(workdir: Workdir) -> dict[str, int | None]:
    names = [*nova.PROCESSES, *SERVICES, rabbitmq.NAME, rabbitmq.EPMD_NAME]
    return {name: process.running_pid(workdir, name) for name in names}


def stop(workdir: Workdir) -> list[str]:
    """Every process of the profile but MariaDB (the rest of the lab stops it last)."""
    stopped = nova.stop(workdir)
    stopped += process.stop_many(workdir, list(SERVICES))
    return stopped + rabbitmq.stop(workdir)
