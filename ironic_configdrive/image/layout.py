"""Turn Ironic's JSON config drive form into the file tree Nova would write.

Input is ``{meta_data, user_data, network_data, vendor_data}`` (all optional). Output is an
ordered ``{posix path: bytes}`` mapping with every OpenStack metadata version Nova writes
(2012-08-10 to 2025-04-04, :data:`NOVA_VERSIONS`) plus ``latest``, each file and each
``meta_data`` key gated by the version that introduced it, the EC2 tree,
``openstack/content/NNNN`` for embedded files and, on request, the CloudStack tree.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from . import rules
from .errors import InternalError, InvalidInputError, UnsafePathError


@dataclasses.dataclass(frozen=True)
class MetadataVersion:
    """One OpenStack metadata version Nova writes, and what it adds to the one before."""

    name: str
    #: The release that introduced it (Nova names the constants after it).
    release: str
    #: Files of ``openstack/<version>/`` that first appear here.
    adds_files: tuple[str, ...] = ()
    #: Top-level ``meta_data.json`` keys that first appear here.
    adds_keys: tuple[str, ...] = ()
    #: What changes inside ``meta_data.devices`` here.
    adds_device_fields: tuple[str, ...] = ()


#: Every OpenStack metadata version Nova 34 writes to a config drive, oldest first, with what
#: each adds (read from ``nova/api/metadata/base.py``: the files ``metadata_for_config_drive``
#: gates by version, the keys ``_metadata_as_json`` and ``_get_device_metadata`` gate).
#: ``random_seed`` is passed through when given, never made up: builds stay reproducible.
NOVA_VERSIONS: Final = (
    MetadataVersion("2012-08-10", "Folsom", adds_files=("meta_data.json", "user_data")),
    MetadataVersion("2013-04-04", "Grizzly", adds_keys=("random_seed",)),
    MetadataVersion("2013-10-17", "Havana", adds_files=("vendor_data.json",)),
    MetadataVersion("2015-10-15", "Liberty", adds_files=("network_data.json",),
                    adds_keys=("project_id",)),
    MetadataVersion("2016-06-30", "Newton", adds_keys=("devices",)),
    MetadataVersion("2016-10-06", "Newton", adds_files=("vendor_data2.json",)),
    MetadataVersion("2017-02-22", "Ocata", adds_device_fields=("vlan",)),
    MetadataVersion("2018-08-27", "Rocky", adds_device_fields=("vf_trusted",)),
    MetadataVersion("2020-10-14", "Victoria", adds_keys=("dedicated_cpus",)),
    MetadataVersion("2025-04-04", "Epoxy", adds_device_fields=("share devices",)),
)
#: Nova's OpenStack metadata versions, oldest first.
OPENSTACK_VERSIONS: Final = tuple(version.name for version in NOVA_VERSIONS)
LATEST: Final = "latest"


def _since(*, file: str | None = None, key: str | None = None,
           device_field: str | None = None) -> str:
    for version in NOVA_VERSIONS:
        if (file in version.adds_files or key in version.adds_keys
                or device_field in version.adds_device_fields):
            return version.name
    raise LookupError(file or key or device_field)


#: The first version carrying each optional file (Nova's gating).
VENDOR_DATA_SINCE: Final = _since(file="vendor_data.json")
NETWORK_DATA_SINCE: Final = _since(file="network_data.json")
VENDOR_DATA2_SINCE: Final = _since(file="vendor_data2.json")
#: The first version of each gated meta_data key, and of the gated parts of ``devices``.
KEY_SINCE: Final = {key: version.name for version in NOVA_VERSIONS
                    for key in version.adds_keys}
DEVICE_VLAN_SINCE: Final = _since(device_field="vlan")
DEVICE_VF_TRUSTED_SINCE: Final = _since(device_field="vf_trusted")
DEVICE_SHARE_SINCE: Final = _since(device_field="share devices")
#: The NIC fields of which Nova needs one to list a NIC at all.
_NIC_LISTED_BY: Final = ("tags", "vlan", "vf_trusted")

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

_KNOWN_KEYS: Final = ("meta_data", "user_data", "network_data", "vendor_data")
#: The only ``files[].encoding`` there is; without it, text contents are written as UTF-8.
BASE64: Final = "base64"


def _refuse(problem: rules.Problem | None) -> None:
    """Raise the error a broken rule means for build (the rules are in :mod:`.rules`)."""
    if problem is None:
        return
    if problem.unsafe:
        raise UnsafePathError(str(problem), field=problem.field, path=problem.path,
                              reason=problem.reason)
    raise InvalidInputError(reason=str(problem))


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        # rules.json_problem has looked at every value already: this is a bug of ours.
        raise InternalError(reason=f"{what} did not serialise after its checks "
                                   f"({type(exc).__name__})") from None


def _document_bytes(value: Any, what: str) -> bytes:
    """A metadata document's bytes, refused when a reader could not afford to parse them."""
    data = _json_bytes(value, what)
    _refuse(rules.document_size_problem(len(data), what))
    return data


def _user_data_bytes(user_data: Any) -> bytes | None:
    if user_data is None:
        return None
    if isinstance(user_data, bytes):
        return user_data
    if isinstance(user_data, str):
        # Never quote user_data: it holds passwords and keys.
        _refuse(rules.text_problem(user_data, "user_data"))
        return user_data.encode("utf-8")
    if isinstance(user_data, (dict, list)):
        # Ironic dumps structured user_data as JSON (e.g. Ignition configs).
        _refuse(rules.json_problem(user_data, "user_data", show_keys=False))
        return _json_bytes(user_data, "user_data")
    raise InvalidInputError(
        reason=f"user_data must be a string, bytes, a dict or a list, not "
        f"{type(user_data).__name__}")


def _document(configdrive: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``meta_data``, ``network_data`` or ``vendor_data``: a JSON object every reader takes."""
    value = configdrive.get(key)
    if value is None:
        return {}
    _refuse(rules.object_problem(value, key))
    _refuse(rules.json_problem(value, key))
    return dict(value)


def _file_contents(entry: Mapping[str, Any], index: int) -> bytes:
    field = f"meta_data.files[{index}]"
    contents = entry.get("contents", entry.get("content"))
    if contents is None:
        raise InvalidInputError(reason=f"{field} has no 'contents'")
    encoding = entry.get("encoding")
    if encoding not in (None, BASE64):
        raise InvalidInputError(
            reason=f"{field}.encoding must be \"base64\" or left out (text contents are "
                   f"written as UTF-8), not {rules.shown(encoding)}")
    if isinstance(contents, bytes):
        return contents
    if not isinstance(contents, str):
        raise InvalidInputError(reason=f"{field}.contents must be a string")
    _refuse(rules.text_problem(contents, f"{field}.contents"))
    if encoding == BASE64:
        try:
            # Wrapped base64 (76 columns, as base64(1) writes) is common: allow line breaks.
            return base64.b64decode("".join(contents.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(reason=f"{field}.contents is not valid base64") from None
    return contents.encode("utf-8")


def _embed_files(meta_data: dict[str, Any], tree: dict[str, bytes]) -> None:
    """Move ``meta_data.files[].contents`` into ``openstack/content/NNNN``."""
    entries = meta_data.get("files")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise InvalidInputError(reason="meta_data.files must be a list")
    described = []
    used: dict[str, str] = {}
    for index, entry in enumerate(entries):
        field = f"meta_data.files[{index}]"
        if not isinstance(entry, Mapping):
            raise InvalidInputError(reason=f"{field} must be an object")
        _refuse(rules.guest_path_problem(entry.get("path"), f"{field}.path"))
        if "content_path" in entry and "contents" not in entry and "content" not in entry:
            raise InvalidInputError(
                reason=f"{field} names content_path but carries no contents")
        if "content_path" in entry:
            content_path, problem = rules.content_path(entry["content_path"],
                                                       f"{field}.content_path")
            _refuse(problem)
            assert content_path is not None
        else:
            content_path = f"{rules.CONTENT_PREFIX}{index:04d}"
        # FAT compares names case-insensitively: /content/a and /content/A would clash.
        if content_path.lower() in used:
            raise InvalidInputError(
                reason=f"{field}.content_path {content_path} is already used by "
                       f"{used[content_path.lower()]}; give each file its own")
        used[content_path.lower()] = field
        tree["openstack" + content_path] = _file_contents(entry, index)
        described.append({"path": entry["path"], "content_path": content_path})
    meta_data["files"] = described


def normalise_meta_data(configdrive: Mapping[str, Any], node_uuid: str | None,
                        node_name: str | None = None) -> dict[str, Any]:
    """Apply Ironic's defaults: ``uuid`` from the node, ``name``, and ``hostname`` from name."""
    meta_data = copy.deepcopy(_document(configdrive, "meta_data"))
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


def _device_view(device: Any, version: str) -> Any:
    """One ``meta_data.devices`` entry as Nova shows it at ``version`` (None: not shown)."""
    if not isinstance(device, Mapping):
        return device
    kind = device.get("type")
    if kind == "share" and version < DEVICE_SHARE_SINCE:
        return None
    if kind != "nic":
        return device
    shown = dict(device)
    if version < DEVICE_VLAN_SINCE:
        shown.pop("vlan", None)
    if version < DEVICE_VF_TRUSTED_SINCE:
        shown.pop("vf_trusted", None)
    if not any(field in shown for field in _NIC_LISTED_BY):
        return None
    return shown


def meta_data_for_version(meta_data: Mapping[str, Any], version: str) -> dict[str, Any]:
    """``meta_data`` as Nova writes it into ``openstack/<version>/``: without the keys (and
    ``devices`` fields) that only later versions carry. ``latest`` carries everything."""
    shown = dict(meta_data)
    if version == LATEST:
        return shown
    for key, since in KEY_SINCE.items():
        if version < since:
            shown.pop(key, None)
    devices = shown.get("devices")
    if isinstance(devices, list):
        shown["devices"] = [view for view in (_device_view(d, version) for d in devices)
                            if view is not None]
    return shown


def meta_data_json(meta_data: Mapping[str, Any], version: str) -> bytes:
    """The bytes of ``openstack/<version>/meta_data.json`` our build writes."""
    return _json_bytes(meta_data_for_version(meta_data, version), "meta_data")


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
               node_name: str | None = None, cloudstack: bool = False,
               warnings: list[str] | None = None) -> dict[str, bytes]:
    """Return the config drive's files as ``{posix path: content}``.

    Files that are identical across versions are the *same* bytes object, so writers can
    store them once. What readers take but Nova never writes (a ``uuid`` that is not a UUID)
    is appended to ``warnings`` when given.

    :raises InvalidInputError: the first rule of :mod:`.rules` the input breaks, naming the
        field.
    """
    if not isinstance(configdrive, Mapping):
        raise InvalidInputError(
            reason=f"config drive must be a JSON object, not {type(configdrive).__name__}")
    unknown = [key for key in configdrive if key not in _KNOWN_KEYS]
    if unknown:
        raise InvalidInputError(
            reason=f"unknown config drive key(s) {rules.key_names(unknown)}; expected "
            f"{sorted(_KNOWN_KEYS)}")
    meta_data = normalise_meta_data(configdrive, node_uuid, node_name)
    user_data = _user_data_bytes(configdrive.get("user_data"))
    network_data = _document(configdrive, "network_data")
    vendor_data = _document(configdrive, "vendor_data")

    tree: dict[str, bytes] = {}
    content: dict[str, bytes] = {}
    _embed_files(meta_data, content)
    # The rules validate applies to what we are about to write: refuse what it would report.
    for problem in (*rules.meta_data_problems(meta_data),
                    *rules.network_data_problems(network_data)):
        _refuse(problem)
    if warnings is not None:
        warnings.extend(rules.meta_data_warnings(meta_data))
    admin_pass = meta_data.get("admin_pass")

    ec2_user_data = user_data
    for version in (*EC2_VERSIONS, LATEST):
        base = f"ec2/{version}"
        tree[f"{base}/meta-data.json"] = _json_bytes(
            _ec2_meta_data(meta_data, version), "meta_data")
        if ec2_user_data is not None:
            tree[f"{base}/user-data"] = ec2_user_data

    meta_json = _document_bytes(meta_data, "meta_data")
    network_json = _document_bytes(network_data, "network_data")
    # Ironic's vendor_data is dynamic vendor data (vendor_data2.json); the static file stays {}.
    vendor_json = _json_bytes({}, "vendor_data")
    vendor2_json = _document_bytes(vendor_data, "vendor_data")
    # Versions showing the same meta_data share one bytes object (written once on ISO9660).
    meta_by_view: dict[bytes, bytes] = {meta_json: meta_json}
    for version in (*OPENSTACK_VERSIONS, LATEST):
        base = f"openstack/{version}"
        view = meta_data_json(meta_data, version)
        tree[f"{base}/meta_data.json"] = meta_by_view.setdefault(view, view)
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


def network_data_files(paths: Iterable[str],
                       network_data: Mapping[str, Any]) -> dict[str, bytes]:
    """``network_data`` as the new ``network_data.json`` of every ``openstack/<version>/``
    among ``paths`` that carries one (one shared bytes object).

    :raises InvalidInputError: ``network_data`` breaks a rule of :mod:`.rules`.
    """
    _refuse(rules.object_problem(network_data, "network_data"))
    _refuse(rules.json_problem(network_data, "network_data"))
    for problem in rules.network_data_problems(dict(network_data)):
        _refuse(problem)
    data = _document_bytes(network_data, "network_data")
    return {path: data for path in paths
            if path.startswith("openstack/") and path.count("/") == 2
            and path.endswith("/network_data.json")}


def content_size(tree: Mapping[str, bytes]) -> int:
    """Bytes of distinct content (what a deduplicating writer must store)."""
    seen: dict[int, int] = {}
    for data in tree.values():
        seen[id(data)] = len(data)
    return sum(seen.values())

