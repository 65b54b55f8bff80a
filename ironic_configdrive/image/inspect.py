"""Describe a config drive image and check it against what cloud-init and glean require.

What the consumers need (see DESIGN.md): an iso9660 or vfat filesystem labelled
``config-2`` (``CONFIG-2`` on vfat), ``openstack/<version>/meta_data.json`` carrying ``uuid``
for the version cloud-init picks (the newest dated version it knows, else ``latest``), and
``openstack/latest/`` for glean, which reads nothing else. ``problems`` (and so ``valid``)
stay about cloud-init and glean; ``readers`` holds a verdict for every reader
:mod:`~ironic_configdrive.image.readers` knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from . import build, formats, layout, readers, rules, vfat
from .errors import ConfigDriveError, JSONDepthError
from .iso9660 import labels as iso_labels
from .readers import DriveFacts
from .stream import StreamDecoder, decode_whole, passes_through, pieces


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
    #: ISO9660 volume space size in 2048-byte blocks (None for other filesystems).
    iso_blocks: int | None = None
    #: Per reader (see :mod:`.readers`), why it cannot use the drive; empty: it can.
    readers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: Problems in version directories no known reader reads (in ``problems`` too).
    unread: list[str] = dataclasses.field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def facts(self) -> DriveFacts:
        """What the readers' rules look at (the drive taken as a partition)."""
        files = self.files
        return DriveFacts(
            format=self.format, label=self.label,
            openstack_versions=tuple(self.openstack_versions),
            with_meta_data=tuple(v for v in self.openstack_versions
                                 if f"openstack/{v}/meta_data.json" in files),
            iso_blocks=self.iso_blocks)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["valid"] = self.valid
        return data


#: JSON files of a version directory besides meta_data.json, and the field each holds.
_DOCUMENTS: Final = {"network_data.json": "network_data", "vendor_data.json": "vendor_data.json",
                     "vendor_data2.json": "vendor_data"}


def _load_json(files: Mapping[str, bytes], path: str, field: str, report: Report) -> Any:
    """A JSON object read from the image (its problems reported), or None if there is none."""
    text = files[path]
    problem = rules.document_size_problem(len(text), field)
    if problem is not None:
        report.problems.append(f"{path}: {problem}")
        return None
    try:
        data = rules.loads(text, field)
    except JSONDepthError as exc:
        report.problems.append(f"{path}: {exc.message}")
        return None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        report.problems.append(f"{path} is not valid JSON ({exc})")
        return None
    problem = rules.object_problem(data, field)
    if problem is not None:
        report.problems.append(f"{path}: {problem}")
        return None
    problem = rules.json_problem(data, field)
    if problem is not None:
        report.problems.append(f"{path}: {problem}")
    return data


def _add(report: Report, path: str, problems: list[rules.Problem]) -> None:
    """Problems of one file, each once (json_problem may have named one already)."""
    for problem in problems:
        text = f"{path}: {problem}"
        if text not in report.problems:
            report.problems.append(text)


def _versions(files: Mapping[str, bytes], top: str) -> list[str]:
    found = {path.split("/")[1] for path in files
             if path.startswith(top + "/") and path.count("/") >= 2}
    return sorted(found - {"content"})


def _check_meta_data(files: Mapping[str, bytes], version: str, report: Report) -> None:
    path = f"openstack/{version}/meta_data.json"
    if path not in files:
        report.problems.append(f"{path} is missing")
        return
    meta = _load_json(files, path, "meta_data", report)
    if meta is None:
        return
    _add(report, path, rules.meta_data_problems(meta))
    report.warnings.extend(f"{path}: {text}" for text in rules.meta_data_warnings(meta))
    entries = meta.get("files")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        raw = entry.get("content_path") if isinstance(entry, dict) else None
        content_path = rules.content_path(raw, "")[0]
        if content_path is not None and f"openstack{content_path}" not in files:
            report.problems.append(f"{path}: meta_data.files[{index}].content_path refers "
                                   f"to missing {content_path}")
    if version == layout.LATEST or report.uuid is None:
        uuid, hostname = meta.get("uuid"), meta.get("hostname") or meta.get("name")
        report.uuid = uuid if isinstance(uuid, str) and uuid else report.uuid
        report.hostname = hostname if isinstance(hostname, str) else report.hostname


def _check_network_data(files: Mapping[str, bytes], version: str, report: Report) -> None:
    path = f"openstack/{version}/network_data.json"
    if path in files:
        network = _load_json(files, path, "network_data", report)
        if network is not None:
            _add(report, path, rules.network_data_problems(network))


def check_tree(files: Mapping[str, bytes], report: Report,
               structural: list[str] | None = None) -> None:
    """Check the tree; problems about which directory exists go to ``structural`` too (the
    readers' own rules judge those, each for the directory it reads). Public for the agent."""
    structural = [] if structural is None else structural
    report.openstack_versions = _versions(files, "openstack")
    report.ec2_versions = _versions(files, "ec2")
    if not report.openstack_versions:
        _structural(report, structural, "no openstack/<version>/ directory")
        return
    report.cloud_init_version = readers.version_read(
        readers.PROFILES[readers.CLOUD_INIT], report.openstack_versions)
    if report.cloud_init_version is None:
        _structural(report, structural, f"no version cloud-init knows among "
                                        f"{report.openstack_versions} and no 'latest'")
    else:
        _check_meta_data(files, report.cloud_init_version, report)
        _check_network_data(files, report.cloud_init_version, report)
    if layout.LATEST not in report.openstack_versions:
        _structural(report, structural,
                    "openstack/latest/ is missing; glean reads nothing else")
    elif report.cloud_init_version != layout.LATEST:
        _check_meta_data(files, layout.LATEST, report)
        _check_network_data(files, layout.LATEST, report)
    checked = {report.cloud_init_version, layout.LATEST}
    for version in report.openstack_versions:
        base = f"openstack/{version}"
        if f"{base}/meta_data.json" not in files:
            report.warnings.append(f"{base}/ has no meta_data.json")
        elif version not in checked:
            # a newer cloud-init reads a newer version than the profile's
            _check_meta_data(files, version, report)
        for name, field in _DOCUMENTS.items():
            done = version in checked and name == "network_data.json"
            if f"{base}/{name}" in files and not done:
                _load_json(files, f"{base}/{name}", field, report)
    for version in report.ec2_versions:
        path = f"ec2/{version}/meta-data.json"
        if path in files:
            _load_json(files, path, "ec2 meta-data", report)


def _structural(report: Report, structural: list[str], text: str) -> None:
    report.problems.append(text)
    structural.append(text)


def check_label(image: bytes, fmt: str | None, report: Report,
                structural: list[str] | None = None) -> None:
    """The label as blkid reports it (cloud-init finds the drive with blkid).

    Public for the agent, which checks a drive with these rules before committing it.
    """
    structural = [] if structural is None else structural
    if fmt == formats.ISO9660:
        labels = iso_labels.volume_labels(image)
        if labels is not None:
            report.label = labels.blkid
            if labels.differ:
                report.problems.append(
                    f"volume label is {labels.primary!r} in the primary volume descriptor "
                    f"but {labels.joliet!r} in the Joliet one, and blkid (which cloud-init "
                    f"uses to find the drive) reports {labels.blkid!r}; write the same "
                    f"label, {formats.LABEL!r}, in both")
    elif fmt == formats.VFAT:
        try:
            report.label = vfat.read_fat_label(image) or report.label
        except ConfigDriveError as exc:
            report.problems.append(exc.message)
    if report.label not in (formats.LABEL, formats.VFAT_LABEL):
        _structural(report, structural, f"volume label is {report.label!r}; cloud-init "
                                        "looks for 'config-2' or 'CONFIG-2'")


def _judge_readers(report: Report, structural: list[str]) -> None:
    """Fill ``report.readers``: each reader's own rules, plus the problems of what it reads.

    A problem under ``openstack/<version>/`` counts for the readers of that version; one that
    names no version directory (a bad image, the size, ec2/ files) counts for every reader.
    """
    facts = report.facts()
    content = [text for text in report.problems if text not in structural]
    for profile in readers.profiles():
        version = readers.version_read(profile, report.openstack_versions)
        own = f"openstack/{version}/"
        report.readers[profile.name] = readers.check(profile, facts) + [
            text for text in content
            if not text.startswith("openstack/") or text.startswith(own)]
    judged = {text for why in report.readers.values() for text in why}
    report.unread = [text for text in content if text not in judged]


def _unreadable(size: int, problem: str) -> Report:
    return Report(format=None, label=None, size=size, problems=[problem],
                  readers={name: [problem] for name in readers.READERS})


def _decode(data: bytes | str) -> tuple[bytes, str | None]:
    """The raw image and its encoding; a raw image given as bytes is used as it is."""
    if isinstance(data, bytes) and passes_through(data):
        return data, "raw"
    decoder = StreamDecoder()
    return decode_whole(pieces(data), decoder), decoder.encoding


def inspect(data: bytes | str) -> Report:
    """Describe an image given in any encoding :func:`~.codec.unpack` accepts.

    Never raises for a bad image: what is wrong ends up in ``problems``. Only the JSON
    documents the rules parse are read from the image, one at a time (see
    :mod:`.file_tree`); user_data and other files are known by their directory entries, so
    the memory used beyond the image does not grow with them.
    """
    if isinstance(data, str) and not data.isascii():
        return _unreadable(len(data), "config drive text contains non-ASCII characters")
    try:
        image, encoding = _decode(data)
    except ConfigDriveError as exc:
        return _unreadable(len(data), exc.message)
    fmt = formats.detect_format(image[: formats.SNIFF_SIZE])
    report = Report(format=fmt, label=formats.read_label(image), size=len(image),
                    encoding=encoding, iso_blocks=readers.iso_blocks(image))
    structural: list[str] = []
    check_label(image, fmt, report, structural)
    if len(image) > formats.MAX_IMAGE_SIZE:
        report.problems.append(f"image is larger than {formats.MAX_IMAGE_SIZE} bytes")
    try:
        with build.open_tree(image) as files:
            report.files = dict(sorted(files.sizes.items()))
            check_tree(files, report, structural)
    except ConfigDriveError as exc:
        report.problems.append(exc.message)
    _judge_readers(report, structural)
    return report


def validate(data: bytes | str) -> list[str]:
    """Problems that would stop cloud-init or glean from using the drive (empty: valid)."""
    return inspect(data).problems
