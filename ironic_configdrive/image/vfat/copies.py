"""Which copies a FAT config drive leaves out, since FAT cannot store equal files once.

A Nova-shaped tree repeats every file in about twenty version directories. ISO9660 points
them all at one extent; FAT has no hard links, and two entries sharing a cluster chain are
cross-linked clusters, which ``fsck.fat`` reports and "repairs" by truncating one of them
(see doc/architecture.md, "vfat: one copy of each file"). So a FAT drive carries only the
copies a reader can reach:

- ``openstack/<YYYY-MM-DD>/`` directories are left out when ``openstack/latest/`` holds
  ``meta_data.json`` and every file of every dated directory, byte for byte, except that a
  dated ``meta_data.json`` may be latest's without the keys Nova adds in later versions
  (``layout.meta_data_for_version``, as our build writes it). cloud-init then reads
  ``latest`` (it reads the newest dated version it knows, else ``latest``) and gets the
  same bytes, plus any such newer key; glean reads only ``latest``. When any dated
  directory differs otherwise (a Nova-built ISO rebuilt for a 4Kn disk: Nova writes a fresh
  ``random_seed`` into each version), the ``openstack`` tree is kept whole, so no reader
  sees other content than before.
- ``ec2/<version>/`` directories other than ``latest`` are left out: the only config drive
  reader of ``ec2/`` is cloud-init, and it reads ``ec2/latest/meta-data.json`` alone.
  ``ec2/latest/user-data`` is left out when it equals ``openstack/latest/user_data``.
- Everything else (``openstack/content/``, ``cloudstack/``, unknown paths) is kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from ironic_configdrive.image import layout
from ironic_configdrive.image.errors import ConfigDriveError

_OPENSTACK: Final = "openstack/"
_EC2: Final = "ec2/"
_LATEST: Final = layout.LATEST
_DATED: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
#: cloud-init refuses a version directory without it.
_REQUIRED: Final = "meta_data.json"


def _split(path: str, top: str) -> tuple[str, str] | None:
    """``(version, rest)`` for ``top<version>/<rest>``, else ``None``."""
    if not path.startswith(top):
        return None
    version, slash, rest = path[len(top) :].partition("/")
    return (version, rest) if slash and rest else None


def _meta_data_views(latest: bytes) -> dict[str, bytes]:
    """What our build writes as ``openstack/<version>/meta_data.json`` for each dated version
    whose ``latest`` one is ``latest`` (empty when it is no JSON object)."""
    try:
        meta_data = json.loads(latest)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(meta_data, dict):
        return {}
    try:
        return {version: layout.meta_data_json(meta_data, version)
                for version in layout.OPENSTACK_VERSIONS}
    except ConfigDriveError:
        return {}


def _dated_openstack_redundant(files: Mapping[str, bytes]) -> bool:
    """True when ``latest`` holds every dated directory's files with the same bytes, except
    that a ``meta_data.json`` may be latest's without the keys only later versions carry."""
    latest: dict[str, bytes] = {}
    dated: list[tuple[str, str, bytes]] = []
    for path, data in files.items():
        split = _split(path, _OPENSTACK)
        if split is None:
            continue
        version, rest = split
        if version == _LATEST:
            latest[rest] = data
        elif _DATED.fullmatch(version):
            dated.append((version, rest, data))
    if not dated or _REQUIRED not in latest:
        return False
    views: dict[str, bytes] | None = None
    for version, rest, data in dated:
        if rest in latest and latest[rest] == data:
            continue
        if rest != _REQUIRED:
            return False
        if views is None:
            views = _meta_data_views(latest[_REQUIRED])
        if views.get(version) != data:
            return False
    return True


def fold_versions(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """``files`` without the copies no reader of a FAT config drive needs (see above).

    The order of the kept paths is the order of ``files``; the result is a new mapping.
    """
    drop_dated = _dated_openstack_redundant(files)
    user_data = files.get(f"{_OPENSTACK}{_LATEST}/user_data")
    kept: dict[str, bytes] = {}
    for path, data in files.items():
        openstack = _split(path, _OPENSTACK)
        if drop_dated and openstack is not None and _DATED.fullmatch(openstack[0]):
            continue
        ec2 = _split(path, _EC2)
        if ec2 is not None:
            version, rest = ec2
            if version != _LATEST:
                continue
            if rest == "user-data" and user_data is not None and data == user_data:
                continue
        kept[path] = data
    return kept
