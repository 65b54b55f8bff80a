"""Object names of the ``swift`` store: ``<node_uuid>/<deploy_id><suffix>`` in one container,
and locations ``<container>/<object>``."""

from __future__ import annotations

import datetime
from typing import Final

from ironic_configdrive.store import common
from ironic_configdrive.store.base import StoreError

#: Object name suffixes (after the deploy id) of stored drives; gzip ones have none.
SUFFIXES: Final = ("", ".iso", ".img", common.SEALED_SUFFIX)


def object_name(store: str, node_uuid: str, image: bytes, deploy_id: str, encoding: str,
                sealed: bool) -> str:
    common.check_id(store, node_uuid, "node UUID", node_uuid)
    common.check_id(store, node_uuid, "deploy id", deploy_id)
    common.check_encoding(store, node_uuid, encoding)
    return f"{node_uuid}/{deploy_id}" + common.suffix(image, encoding, sealed, "")


def split_location(store: str, location: str, node: str) -> tuple[str, str]:
    """(container, object) of a location of ``node``'s drive."""
    container, _, obj = location.partition("/")
    if not container or not obj.startswith(f"{node}/"):
        raise StoreError(store=store, node=node,
                         reason=f"location {location!r} is not a config drive of this "
                                "node; the node's driver_internal_info is inconsistent")
    return container, obj


def check_location(store: str, container: str, location: str, expected: str,
                   node: str) -> None:
    """Refuse a location given to put() that is not ``expected`` (in ``container``)."""
    if location == expected:
        return
    split_location(store, location, node)  # another node's: says so
    given = location.partition("/")[0]
    if given != container:
        reason = (f"location {location!r} is in container {given}, not in "
                  f"[configdrive]swift_container {container}; deploy again so the "
                  "drive is located anew")
    else:
        reason = (f"location {location!r} is not where this drive goes ({expected!r}: "
                  "deploy id, encoding and sealing decide it); pass what locate() "
                  "returned for the same arguments (a bug in the caller)")
    raise StoreError(store=store, node=node, reason=reason)


def parse_name(name: str) -> tuple[str, str] | None:
    """(node, deploy id) of an object name of ours, ``<node>/<deploy_id><suffix>``; else None."""
    node, _, rest = name.partition("/")
    deploy_id, dot, ext = rest.partition(".")
    if not (common.is_safe_id(node) and common.is_safe_id(deploy_id)):
        return None
    return (node, deploy_id) if dot + ext in SUFFIXES else None


def age(last_modified: object, now: float) -> float | None:
    """Seconds since a listing's ``last_modified`` (UTC, ISO 8601 without zone)."""
    try:
        written = datetime.datetime.fromisoformat(str(last_modified))
    except ValueError:
        return None
    if written.tzinfo is None:
        written = written.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, now - written.timestamp())
