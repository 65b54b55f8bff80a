"""Turn Ironic's JSON config drive form into the file tree Nova would write.

Input is ``{meta_data, user_data, network_data, vendor_data}`` (all optional). Output is an
ordered ``{posix path: bytes}`` mapping with every OpenStack metadata version from 2012-08-10
to 2020-10-14 plus ``latest``, each file gated by the version that introduced it, the EC2
tree, ``openstack/content/NNNN`` for embedded files and, on request, the CloudStack tree.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import posixpath
from collections.abc import Mapping
from typing import Any, Final

from .errors import InvalidInputError, UnsafePathError

#: Nova's OpenStack metadata versions, oldest first.
OPENSTACK_VERSIONS: Final = (
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
)
LATEST: Final = "latest"
#: The first version carrying each optional file (Nova's gating).
VENDOR_DATA_SINCE: Final = "2013-10-17"
NETWORK_DATA_SINCE: Final = "2015-10-15"
VENDOR_DATA2_SINCE: Final = "2016-10-06"

#: Nova's EC2 metadata versions.
EC2_VERSIONS: Final = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
)
EC2_PLACEMENT_SINCE: Final = "2008-02-01"

CONTENT_DIR: Final = "openstack/content"

_KNOWN_KEYS: Final = frozenset({"meta_data", "user_data", "network_data", "vendor_data"})


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(reason=f"{what} is not JSON-serialisable: {exc}") from None


def _user_data_bytes(user_data: Any) -> bytes | None:
    if user_data is None:
        return None
    if isinstance(user_data, bytes):
        return user_data
    if isinstance(user_data, str):
        return user_data.encode("utf-8")
    if isinstance(user_data, (dict, list)):
        # Ironic dumps structured user_data as JSON (e.g. Ignition configs).
        return _json_bytes(user_data, "user_data")
    raise InvalidInputError(
        reason=f"user_data must be a string, bytes, a dict or a list, not "
        f"{type(user_data).__name__}")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            reason=f"{what} must be a JSON object, not {type(value).__name__}")
    return dict(value)


def _safe_content_path(raw: Any) -> str:
    """Normalise a ``content_path`` and refuse anything outside ``openstack/content``."""
    if not isinstance(raw, str) or not raw:
        raise InvalidInputError(reason="meta_data.files[].content_path must be a non-empty string")
    if "\x00" in raw or "\\" in raw:
        raise UnsafePathError(path=raw, reason="NUL bytes and backslashes are not allowed")
    # Nova's content paths are "/content/NNNN", relative to openstack/.
    parts = raw.split("/")
    if ".." in parts:
        raise UnsafePathError(path=raw, reason="'..' components are not allowed")
    normal = posixpath.normpath("/" + raw.lstrip("/"))
    if not normal.startswith("/content/") or normal == "/content/":
        raise UnsafePathError(path=raw, reason="it must lie under /content/")
    return normal


def _guest_path(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise InvalidInputError(
            reason=f"meta_data.files[].path must be an absolute path in the instance, got "
            f"{raw!r}")
    if "\x00" in raw or ".." in raw.split("/"):
        raise UnsafePathError(path=raw, reason="NUL bytes and '..' components are not allowed")
    return raw


def _file_contents(entry: Mapping[str, Any], index: int) -> bytes:
    contents = entry.get("contents", entry.get("content"))
    if contents is None:
        raise InvalidInputError(reason=f"meta_data.files[{index}] has no 'contents'")
    if isinstance(contents, bytes):
        return contents
    if not isinstance(contents, str):
        raise InvalidInputError(reason=f"meta_data.files[{index}].contents must be a string")
    if entry.get("encoding") == "base64":
        try:
            return base64.b64decode(contents, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(
                reason=f"meta_data.files[{index}].contents is not valid base64") from None
    return contents.encode("utf-8")


def _embed_files(meta_data: dict[str, Any], tree: dict[str, bytes]) -> None:
    """Move ``meta_data.files[].contents`` into ``openstack/content/NNNN``."""
    entries = meta_data.get("files")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise InvalidInputError(reason="meta_data.files must be a list")
    described = []
    used: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidInputError(reason=f"meta_data.files[{index}] must be an object")
        path = _guest_path(entry.get("path"))
        if "content_path" in entry and "contents" not in entry and "content" not in entry:
            raise InvalidInputError(
                reason=f"meta_data.files[{index}] names content_path but carries no contents")
        content_path = (_safe_content_path(entry["content_path"]) if "content_path" in entry
                        else f"/content/{index:04d}")
        if content_path in used:
            raise InvalidInputError(reason=f"two files share content_path {content_path}")
        used.add(content_path)
        tree["openstack" + content_path] = _file_contents(entry, index)
        described.append({"path": path, "content_path": content_path})
    meta_data["files"] = described


def normalise_meta_data(configdrive: Mapping[str, Any], node_uuid: str | None,
                        node_name: str | None = None) -> dict[str, Any]:
    """Apply Ironic's defaults: ``uuid`` from the node, ``name``, and ``hostname`` from name."""
    meta_data = copy.deepcopy(_mapping(configdrive.get("meta_data"), "meta_data"))
    if node_uuid and "uuid" not in meta_data:
        meta_data["uuid"] = node_uuid
    if node_name and "name" not in meta_data:
        meta_data["name"] = node_name
    if "name" in meta_data and "hostname" not in meta_data:
        meta_data["hostname"] = meta_data["name"]
    if not meta_data.get("uuid"):
        raise InvalidInputError(
            reason="meta_data.uuid is missing and no node UUID was given; cloud-init refuses "
            "a config drive without it")
    if not isinstance(meta_data["uuid"], str):
        raise InvalidInputError(
            reason=f"meta_data.uuid must be a string (cloud-init uses it as the instance "
                   f"id), not {type(meta_data['uuid']).__name__}")
    return meta_data


def _ec2_meta_data(meta_data: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The EC2 view Nova derives; only what Ironic's input can actually tell."""
    data: dict[str, Any] = {
        "instance-id": meta_data["uuid"],
        "ami-launch-index": meta_data.get("launch_index", 0),
    }
    hostname = meta_data.get("hostname")
    if hostname:
        data["hostname"] = hostname
        data["local-hostname"] = hostname
        data["public-hostname"] = hostname
    keys = meta_data.get("public_keys")
    if isinstance(keys, Mapping) and keys:
        data["public-keys"] = {
            str(index): {"openssh-key": key} for index, key in enumerate(keys.values())}
    zone = meta_data.get("availability_zone")
    if zone and version >= EC2_PLACEMENT_SINCE:
        data["placement"] = {"availability-zone": zone}
    return data


def _cloudstack_tree(meta_data: Mapping[str, Any], user_data: bytes | None,
                     admin_pass: str | None) -> dict[str, bytes]:
    hostname = str(meta_data.get("hostname") or meta_data.get("name") or meta_data["uuid"])
    keys = meta_data.get("public_keys")
    key_text = "\n".join(keys.values()) if isinstance(keys, Mapping) else ""
    fields = {
        "availability-zone": str(meta_data.get("availability_zone", "")),
        "instance-id": str(meta_data["uuid"]),
        "service-offering": str(meta_data.get("instance_type", "")),
        "cloud-identifier": str(meta_data.get("project_id", "")),
        "local-hostname": hostname,
        "vm-id": str(meta_data["uuid"]),
        "public-keys": key_text,
    }
    tree = {f"cloudstack/metadata/{name}.txt": value.encode("utf-8")
            for name, value in fields.items()}
    if admin_pass:
        password = admin_pass.encode("utf-8")
        tree["cloudstack/password/vm_password.txt"] = password
        tree["cloudstack/password/vm-password-md5checksum.txt"] = (
            hashlib.md5(password, usedforsecurity=False).hexdigest().encode("ascii"))
    if user_data is not None:
        tree["cloudstack/userdata/user_data.txt"] = user_data
    return tree


def build_tree(configdrive: Mapping[str, Any], *, node_uuid: str | None = None,
               node_name: str | None = None, cloudstack: bool = False) -> dict[str, bytes]:
    """Return the config drive's files as ``{posix path: content}``.

    Files that are identical across versions are the *same* bytes object, so writers can
    store them once.
    """
    if not isinstance(configdrive, Mapping):
        raise InvalidInputError(
            reason=f"config drive must be a JSON object, not {type(configdrive).__name__}")
    unknown = set(configdrive) - _KNOWN_KEYS
    if unknown:
        raise InvalidInputError(
            reason=f"unknown config drive key(s) {sorted(unknown)}; expected "
            f"{sorted(_KNOWN_KEYS)}")
    meta_data = normalise_meta_data(configdrive, node_uuid, node_name)
    user_data = _user_data_bytes(configdrive.get("user_data"))
    network_data = _mapping(configdrive.get("network_data"), "network_data")
    vendor_data = _mapping(configdrive.get("vendor_data"), "vendor_data")

    tree: dict[str, bytes] = {}
    content: dict[str, bytes] = {}
    _embed_files(meta_data, content)
    admin_pass = meta_data.get("admin_pass")

    ec2_user_data = user_data
    for version in (*EC2_VERSIONS, LATEST):
        base = f"ec2/{version}"
        tree[f"{base}/meta-data.json"] = _json_bytes(
            _ec2_meta_data(meta_data, version), "meta_data")
        if ec2_user_data is not None:
            tree[f"{base}/user-data"] = ec2_user_data

    meta_json = _json_bytes(meta_data, "meta_data")
    network_json = _json_bytes(network_data, "network_data")
    # Ironic's vendor_data is dynamic vendor data (vendor_data2.json); the static file stays {}.
    vendor_json = _json_bytes({}, "vendor_data")
    vendor2_json = _json_bytes(vendor_data, "vendor_data")
    for version in (*OPENSTACK_VERSIONS, LATEST):
        base = f"openstack/{version}"
        tree[f"{base}/meta_data.json"] = meta_json
        if user_data is not None:
            tree[f"{base}/user_data"] = user_data
        if version == LATEST or version >= VENDOR_DATA_SINCE:
            tree[f"{base}/vendor_data.json"] = vendor_json
        if version == LATEST or version >= NETWORK_DATA_SINCE:
            tree[f"{base}/network_data.json"] = network_json
        if version == LATEST or version >= VENDOR_DATA2_SINCE:
            tree[f"{base}/vendor_data2.json"] = vendor2_json
    tree.update(content)
    if cloudstack:
        tree.update(_cloudstack_tree(meta_data, user_data, admin_pass))
    return tree


def content_size(tree: Mapping[str, bytes]) -> int:
    """Bytes of distinct content (what a deduplicating writer must store)."""
    seen: dict[int, int] = {}
    for data in tree.values():
        seen[id(data)] = len(data)
    return sum(seen.values())

