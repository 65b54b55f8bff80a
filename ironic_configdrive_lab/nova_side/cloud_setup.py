"""The lab cloud's catalog, flavor and image, made through the APIs as the admin.

Run by the Nova venv's python (openstacksdk lives there) with a JSON request on stdin:
``{"cloud": <clouds.yaml entry>, "endpoints": {service type: URL}, "flavor": {...},
"image": {...}}``; prints ``{"flavor": id, "image": id}``. Idempotent: endpoints are updated
to this start's ports, an existing flavor and image (by name) are kept.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import openstack

SERVICE_NAMES = {"compute": "nova", "placement": "placement", "image": "glance",
                 "network": "neutron-standin"}


def _endpoints(conn: Any, endpoints: dict[str, str], region: str) -> None:
    for service_type, url in endpoints.items():
        service = next(iter(conn.identity.services(type=service_type)), None)
        if service is None:
            service = conn.identity.create_service(name=SERVICE_NAMES[service_type],
                                                   type=service_type)
        for interface in ("public", "internal", "admin"):
            found = next(iter(conn.identity.endpoints(service_id=service.id,
                                                      interface=interface)), None)
            if found is None:
                conn.identity.create_endpoint(service_id=service.id, interface=interface,
                                              url=url, region_id=region)
            elif found.url != url:
                conn.identity.update_endpoint(found, url=url)


def _flavor(conn: Any, spec: dict[str, Any]) -> str:
    flavor = conn.compute.find_flavor(spec["name"], ignore_missing=True)
    if flavor is None:
        flavor = conn.compute.create_flavor(name=spec["name"], ram=spec["ram"],
                                            vcpus=spec["vcpus"], disk=spec["disk"])
        conn.compute.create_flavor_extra_specs(flavor, spec["extra_specs"])
    return str(flavor.id)


def _image(conn: Any, spec: dict[str, Any]) -> str:
    image = conn.image.find_image(spec["name"], ignore_missing=True)
    if image is not None and image.status == "active":
        return str(image.id)
    if image is not None:
        conn.image.delete_image(image)
    image = conn.image.create_image(spec["name"], filename=spec["path"], disk_format="raw",
                                    container_format="bare", visibility="public",
                                    wait=True, timeout=120)
    return str(image.id)


def main() -> None:
    request = json.load(sys.stdin)
    conn = openstack.connect(**request["cloud"])
    if request.get("endpoints"):
        _endpoints(conn, request["endpoints"], request["cloud"]["region_name"])
        conn = openstack.connect(**request["cloud"])  # a new catalog
    result = {}
    if request.get("flavor"):
        result["flavor"] = _flavor(conn, request["flavor"])
    if request.get("image"):
        result["image"] = _image(conn, request["image"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
