"""The readers of a node's config drive, and the format every one of them can use.

A node names the programs that will read its drive in ``configdrive_readers``
(``instance_info`` for one deploy, ``driver_info`` for the node; a list or a comma-separated
string), by default ``[configdrive]readers``. The conductor builds ISO9660 unless a listed
reader cannot read it there (``[configdrive]format``, or the node's explicit
``configdrive_format``, is the preference), and refuses with what to do when no format
suits them all: e.g. Ignition on a disk with 4096-byte sectors, where the agent has to turn
an ISO9660 partition into vfat, which Ignition cannot find.

The disk's sector size comes from the node's inspection data (the root disk, or the disk
``configdrive_device`` names), when the drive may be written to the disk. Without it the
agent still protects the readers: :func:`format_to_keep` asks it to keep ISO9660 (and fail,
naming the sector size) rather than rebuild a drive as vfat that a reader cannot read.
"""

from __future__ import annotations

import logging
from typing import Any

from oslo_config import cfg

from ironic_configdrive.expose.plan import ExposurePlan
from ironic_configdrive.image import formats, readers
from ironic_configdrive.image.errors import InvalidInputError
from ironic_configdrive.node_options import node_option

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

OPTION = "configdrive_readers"
#: ``configdrive_device`` meaning the agent's install device (expose.partition.ROOT_DEVICE,
#: not imported: the partition exposer imports this module).
_ROOT_DEVICE = "root"


class ReadersError(InvalidInputError):
    """The node's readers are unknown, or no config drive format suits all of them."""

    message_template = "{reason}. {advice}"

    def __init__(self, *, reason: str, advice: str) -> None:
        super().__init__(reason=reason, advice=advice)
        self.reason = reason
        self.advice = advice


def selected(node: Any) -> tuple[str, ...]:
    """The node's readers (validated), in the order given, each once."""
    value = node_option(node, OPTION)
    where = "instance_info/driver_info"
    if value is None:
        names: list[Any] = list(CONF.configdrive.readers)
        where = "[configdrive]readers"
    elif isinstance(value, str):
        names = [name.strip() for name in value.split(",") if name.strip()]
    elif isinstance(value, list):
        names = value
    else:
        raise ReadersError(reason=f"{OPTION} of node {node.uuid} must be a list of reader "
                                  f"names, not {type(value).__name__}",
                           advice=f"Fix it in {where}")
    bad = [name for name in names if not isinstance(name, str)]
    unknown = bad or readers.unknown(names)
    if unknown or not names:
        what = (f"names unknown readers {', '.join(repr(n) for n in unknown)}" if unknown
                else "names no reader")
        raise ReadersError(reason=f"{OPTION} of node {node.uuid} {what}",
                           advice=f"Use some of {', '.join(readers.READERS)} in {where} "
                                  f"(Afterburn counts as ignition)")
    return tuple(dict.fromkeys(names))


def _failures(names: tuple[str, ...], facts: readers.DriveFacts) -> dict[str, list[str]]:
    verdicts = {name: readers.check(readers.PROFILES[name], facts) for name in names}
    return {name: why for name, why in verdicts.items() if why}


def _describe(failures: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {', '.join(why)}" for name, why in failures.items())


def _on_disk(fmt: str, sector_size: int | None) -> str:
    return (f"{fmt} on its {sector_size}-byte-sector disk" if sector_size
            else fmt)


def choose_format(node: Any, *, sector_size: int | None = None) -> str:
    """The filesystem to build the node's drive in: the preferred one its readers can all use.

    ``sector_size`` is the logical sector size of the disk the drive may be written to
    (None: unknown, or not written to a disk).
    """
    names = selected(node)
    explicit = node_option(node, "configdrive_format")
    if explicit and explicit not in formats.FORMATS:
        return str(explicit)  # the image core refuses it, naming the formats it knows
    candidates = ([explicit] if explicit else
                  list(dict.fromkeys([CONF.configdrive.format, *formats.FORMATS])))
    tried: dict[str, dict[str, list[str]]] = {}
    for fmt in candidates:
        failures = _failures(names, readers.built_drive_facts(fmt, sector_size=sector_size))
        if not failures:
            return str(fmt)
        tried[fmt] = failures
    why = " / ".join(f"as {_on_disk(fmt, sector_size)}, {_describe(failures)}"
                     for fmt, failures in tried.items())
    if explicit:
        advice = (f"Unset configdrive_format (or choose another) in instance_info/"
                  f"driver_info, or change {OPTION}")
    else:
        advice = (f"Expose the drive as virtual media (configdrive_exposure), write it to a "
                  f"disk with 512-byte sectors (configdrive_device), or remove those "
                  f"readers from {OPTION} if the image does not use them")
    raise ReadersError(reason=f"no config drive format suits its readers "
                              f"{', '.join(names)}: {why}", advice=advice)


def check_image(node: Any, report: Any, *, sector_size: int | None = None) -> None:
    """Refuse a given (not built) image, inspected as ``report``, that a reader cannot use.

    On a disk with sectors larger than ISO9660's blocks the agent rebuilds an ISO9660 image
    as vfat, so the readers are asked about that too.
    """
    names = selected(node)
    failures = {name: list(report.readers.get(name, [])) for name in names}
    if report.format == formats.ISO9660 and sector_size and sector_size > readers.ISO_BLOCK:
        rebuilt = _failures(names, readers.built_drive_facts(formats.VFAT))
        for name, why in rebuilt.items():
            failures[name] += [f"{text} (rebuilt as vfat for the {sector_size}-byte sectors "
                               f"of its disk)" for text in why]
    failures = {name: why for name, why in failures.items() if why}
    if failures:
        raise ReadersError(reason=f"the config drive given for node {node.uuid} does not "
                                  f"suit its readers: {_describe(failures)}",
                           advice=f"Give a drive they can all read (ironic-configdrive "
                                  f"validate --reader ... shows why), or the JSON form, or "
                                  f"change {OPTION}")


def format_to_keep(node: Any) -> str | None:
    """The format the agent must not rebuild into another one: ISO9660 when a reader of the
    node cannot read the vfat drive the agent would make (on a 4Kn disk), else None."""
    try:
        names = selected(node)
    except ReadersError:
        return None  # validate() reports it; the attach then keeps the agent's default
    if _failures(names, readers.built_drive_facts(formats.VFAT)):
        return formats.ISO9660
    return None


def validate(node: Any) -> None:
    """Check the option, and that a format suits the readers when the disk's sector size
    is not considered (no I/O): an explicit configdrive_format may not."""
    try:
        choose_format(node)
    except ReadersError as exc:
        raise ReadersError(reason=f"node {node.uuid}: {exc.reason}", advice=exc.advice) from None


def _disk(node: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    """The inspected disk the drive goes to: the root disk, or ``configdrive_device``."""
    disks = (data.get("inventory") or {}).get("disks") or []
    device = node_option(node, "configdrive_device") or _ROOT_DEVICE
    if device != _ROOT_DEVICE:
        return next((disk for disk in disks if disk.get("name") == device), None)
    root = (data.get("plugin_data") or {}).get("root_disk")
    if isinstance(root, dict):
        return root
    hints = (node.properties or {}).get("root_device")
    if hints and disks:
        from ironic.common import utils as ironic_utils

        try:
            found = ironic_utils.match_root_device_hints(disks, hints)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None
    return disks[0] if len(disks) == 1 else None


def sector_size(task: Any, plan: ExposurePlan) -> int | None:
    """The logical sector size of the disk the drive may be written to, from the node's
    inspection data; None when the plan never writes the disk or nothing is known."""
    if not plan.may_write_disk:
        return None
    from ironic.common import exception
    from ironic.drivers.modules import inspect_utils

    try:
        data = inspect_utils.get_inspection_data(task.node, task.context)
    except exception.IronicException as exc:
        LOG.debug("No inspection data for node %s (%s): its disk's sector size is unknown",
                  task.node.uuid, type(exc).__name__)
        return None
    disk = _disk(task.node, data or {})
    value = (disk or {}).get("logical_sectors")
    return int(value) if isinstance(value, int) and value > 0 else None
