"""Describe a config drive image and check it against what cloud-init and glean require.

What the consumers need (see DESIGN.md): an iso9660 or vfat filesystem labelled
``config-2`` (``CONFIG-2`` on vfat), ``openstack/<version>/meta_data.json`` carrying ``uuid``
for the version cloud-init picks (the newest dated version it knows, else ``latest``), and
``openstack/latest/`` for glean, which reads nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from . import build, formats, layout, vfat
from .errors import ConfigDriveError
from .stream import StreamDecoder

_OPENSTACK_JSON = ("meta_data.json", "network_data.json", "vendor_data.json",
                   "vendor_data2.json")


@dataclasses.dataclass
class Report:
    """What :func:`inspect` found. ``problems`` are fatal for a consumer; ``warnings`` not."""

    format: str | None
    label: str | None
    size: int
    encoding: str | None = None
    openstack_versions: list[str] = dataclasses.field(default_factory=list)
    ec2_versions: list[str] = dataclasses.field(default_factory=list)
    files: dict[str, int] = dataclasses.field(default_factory=dict)
    uuid: str | None = None
    hostname: str | None = None
    #: The version directory cloud-init would read.
    cloud_init_version: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["valid"] = self.valid
        return data


def _load_json(files: Mapping[str, bytes], path: str, report: Report) -> Any:
    try:
        return json.loads(files[path])
    except (UnicodeDecodeError, ValueError) as exc:
        report.problems.append(f"{path} is not valid JSON ({exc})")
        return None


def _versions(files: Mapping[str, bytes], top: str) -> list[str]:
    found = {path.split("/")[1] for path in files
             if path.startswith(top + "/") and path.count("/") >= 2}
    return sorted(found - {"content"})


def _cloud_init_choice(versions: list[str]) -> str | None:
    known = [v for v in layout.OPENSTACK_VERSIONS if v in versions]
    if known:
        return known[-1]
    return layout.LATEST if layout.LATEST in versions else None


def _check_meta_data(files: Mapping[str, bytes], version: str, report: Report) -> None:
    path = f"openstack/{version}/meta_data.json"
    if path not in files:
        report.problems.append(f"{path} is missing")
        return
    meta = _load_json(files, path, report)
    if meta is None:
        return
    if not isinstance(meta, dict):
        report.problems.append(f"{path} must hold a JSON object")
        return
    if not meta.get("uuid"):
        report.problems.append(f"{path} has no 'uuid'; cloud-init rejects the drive")
    keys = meta.get("public_keys")
    if keys is not None and not (
            isinstance(keys, dict) and all(isinstance(k, str) for k in keys.values())):
        report.problems.append(f"{path}: public_keys must map names to key strings (glean)")
    entries = meta.get("files") or []
    if not isinstance(entries, list):
        report.problems.append(f"{path}: 'files' must be a list")
        entries = []
    for entry in entries:
        content_path = entry.get("content_path") if isinstance(entry, dict) else None
        if not isinstance(content_path, str):
            report.problems.append(f"{path}: every files[] entry needs a content_path string")
        elif f"openstack/{content_path.lstrip('/')}" not in files:
            report.problems.append(f"{path} refers to missing {content_path}")
    if version == layout.LATEST or report.uuid is None:
        report.uuid = meta.get("uuid") or report.uuid
        report.hostname = meta.get("hostname") or meta.get("name") or report.hostname


def _check_tree(files: Mapping[str, bytes], report: Report) -> None:
    report.openstack_versions = _versions(files, "openstack")
    report.ec2_versions = _versions(files, "ec2")
    if not report.openstack_versions:
        report.problems.append("no openstack/<version>/ directory")
        return
    report.cloud_init_version = _cloud_init_choice(report.openstack_versions)
    if report.cloud_init_version is None:
        report.problems.append(
            f"no version cloud-init knows among {report.openstack_versions} and no 'latest'")
    else:
        _check_meta_data(files, report.cloud_init_version, report)
    if layout.LATEST not in report.openstack_versions:
        report.problems.append("openstack/latest/ is missing; glean reads nothing else")
    elif report.cloud_init_version != layout.LATEST:
        _check_meta_data(files, layout.LATEST, report)
    for version in report.openstack_versions:
        base = f"openstack/{version}"
        if f"{base}/meta_data.json" not in files:
            report.warnings.append(f"{base}/ has no meta_data.json")
        for name in _OPENSTACK_JSON[1:]:
            if f"{base}/{name}" in files:
                _load_json(files, f"{base}/{name}", report)
    network = files.get("openstack/latest/network_data.json")
    if network is not None:
        try:
            data = json.loads(network)
        except ValueError:
            data = None  # already reported above
        if isinstance(data, dict):
            for key in ("links", "networks", "services"):
                if key in data and not isinstance(data[key], list):
                    report.problems.append(
                        f"openstack/latest/network_data.json: '{key}' must be a list (glean)")
    for version in report.ec2_versions:
        path = f"ec2/{version}/meta-data.json"
        if path in files:
            _load_json(files, path, report)


def inspect(data: bytes | str) -> Report:
    """Describe an image given in any encoding :func:`~.codec.unpack` accepts.

    Never raises for a bad image: what is wrong ends up in ``problems``.
    """
    decoder = StreamDecoder()
    try:
        raw = data.encode("ascii") if isinstance(data, str) else data
        image = b"".join([*decoder.feed(raw), *decoder.finish()])
    except UnicodeEncodeError:
        return Report(format=None, label=None, size=len(data),
                      problems=["config drive text contains non-ASCII characters"])
    except ConfigDriveError as exc:
        return Report(format=None, label=None, size=len(data), problems=[exc.message])
    fmt = formats.detect_format(image[: formats.SNIFF_SIZE])
    label = formats.read_label(image)
    report = Report(format=fmt, label=label, size=len(image), encoding=decoder.encoding)
    if fmt == formats.VFAT:
        try:
            report.label = vfat.read_fat_label(image) or label
        except ConfigDriveError as exc:
            report.problems.append(exc.message)
    if report.label not in (formats.LABEL, formats.VFAT_LABEL):
        report.problems.append(
            f"volume label is {report.label!r}; cloud-init looks for 'config-2' or 'CONFIG-2'")
    if len(image) > formats.MAX_IMAGE_SIZE:
        report.problems.append(f"image is larger than {formats.MAX_IMAGE_SIZE} bytes")
    try:
        files = build.read_tree(image)
    except ConfigDriveError as exc:
        report.problems.append(exc.message)
        return report
    report.files = {path: len(content) for path, content in sorted(files.items())}
    _check_tree(files, report)
    return report


def validate(data: bytes | str) -> list[str]:
    """Problems that would stop cloud-init or glean from using the drive (empty: valid)."""
    return inspect(data).problems
