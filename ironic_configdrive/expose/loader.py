"""Load exposure plugins and decide, per node, which one shows the config drive.

``[configdrive]exposure`` sets the default; a node overrides it with
``instance_info['configdrive_exposure']`` (wins) or ``driver_info['configdrive_exposure']``.
``auto`` means virtual media when the node has Redfish credentials, falling back to the
partition mechanism when its BMC has no free slot.
"""

from __future__ import annotations

import logging
from typing import Any

import stevedore
from oslo_config import cfg

from ironic_configdrive import conf
from ironic_configdrive.expose.base import ConfigDriveExposer, ExposureError, SlotBusyError
from ironic_configdrive.store.base import StoredImage

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
conf.register_opts(CONF)

NAMESPACE = "ironic_configdrive.exposers"
PARTITION = "partition"
VIRTUAL_MEDIA = "virtual_media"
AUTO = "auto"
OPTION = "configdrive_exposure"

_cache: dict[str, ConfigDriveExposer] = {}


def available() -> list[str]:
    """Names of the installed exposure plugins."""
    return sorted(stevedore.ExtensionManager(NAMESPACE).names())


def get_exposer(name: str, *, node: str = "-") -> ConfigDriveExposer:
    """The plugin registered as ``name`` (plugins are stateless, so one instance each)."""
    if name in _cache:
        return _cache[name]
    try:
        exposer: Any = stevedore.DriverManager(NAMESPACE, name, invoke_on_load=True).driver
    except Exception as exc:  # NoMatches, or an import/constructor error in the plugin
        raise ExposureError(
            mechanism=name, node=node,
            reason=f"cannot load the exposure plugin ({type(exc).__name__}: {exc}); "
                   f"installed: {', '.join(available()) or 'none'}") from None
    if not isinstance(exposer, ConfigDriveExposer):
        raise ExposureError(mechanism=name, node=node,
                            reason="the plugin is not a ConfigDriveExposer")
    _cache[name] = exposer
    return exposer


def requested_mechanism(node: Any) -> str:
    """The mechanism asked for (``auto`` unresolved); validated."""
    value: Any = None
    source = "[configdrive]exposure"
    for field in ("instance_info", "driver_info"):
        candidate = (getattr(node, field, None) or {}).get(OPTION)
        if candidate not in (None, ""):
            value, source = candidate, f"{field}/{OPTION}"
            break
    if value is None:
        value = CONF.configdrive.exposure
    if not isinstance(value, str) or not value:
        raise ExposureError(mechanism=str(value), node=node.uuid,
                            reason=f"{source} must be a mechanism name")
    value = value.strip()
    if value != AUTO and value not in (PARTITION, VIRTUAL_MEDIA) and value not in available():
        raise ExposureError(
            mechanism=value, node=node.uuid,
            reason=f"unknown mechanism in {source}; use {AUTO}, "
                   f"{', '.join(sorted({PARTITION, VIRTUAL_MEDIA, *available()}))}")
    return value


def _has_redfish(node: Any) -> bool:
    return bool((node.driver_info or {}).get("redfish_address"))


def choose_mechanism(task: Any) -> str:
    """The mechanism to try first for ``task.node`` (``auto`` resolved)."""
    requested = requested_mechanism(task.node)
    if requested == AUTO:
        return VIRTUAL_MEDIA if _has_redfish(task.node) else PARTITION
    return requested


def validate(task: Any) -> None:
    """Check the node can use its mechanism (and its fallback); raise ExposureError."""
    requested = requested_mechanism(task.node)
    mechanism = choose_mechanism(task)
    get_exposer(mechanism, node=task.node.uuid).validate(task)
    if mechanism == VIRTUAL_MEDIA and _falls_back(requested):
        get_exposer(PARTITION, node=task.node.uuid).validate(task)


def _falls_back(requested: str) -> bool:
    return requested == AUTO or CONF.configdrive.virtual_media_fallback == PARTITION


def attach_with_fallback(task: Any, image: StoredImage,
                         fallback_image: StoredImage | None = None) -> dict[str, Any]:
    """Attach with the chosen mechanism; on a busy BMC fall back to the partition one.

    Falls back when the node asked for ``auto`` or ``[configdrive]virtual_media_fallback``
    is ``partition``; otherwise the :class:`SlotBusyError` propagates. The partition
    mechanism needs the agent, so call this while the agent runs. ``fallback_image`` is
    what the agent gets then, if not ``image`` (the encrypted original rather than the
    plain copy made for the BMC).
    """
    node = task.node
    requested = requested_mechanism(node)
    mechanism = choose_mechanism(task)
    exposer = get_exposer(mechanism, node=node.uuid)
    try:
        return exposer.attach(task, image)
    except SlotBusyError as exc:
        if mechanism != VIRTUAL_MEDIA or not _falls_back(requested):
            raise
        LOG.warning("Node %s: %s; falling back to the partition mechanism", node.uuid,
                    exc.message)
    record = get_exposer(PARTITION, node=node.uuid).attach(task, fallback_image or image)
    record["fallback_from"] = VIRTUAL_MEDIA
    return record


def detach(task: Any, record: dict[str, Any] | None) -> None:
    """Undo an attach from its record (no record: nothing was attached)."""
    if not record:
        return
    mechanism = record.get("mechanism")
    if not mechanism:
        raise ExposureError(mechanism="?", node=task.node.uuid,
                            reason=f"the exposure record has no mechanism: {sorted(record)}")
    get_exposer(str(mechanism), node=task.node.uuid).detach(task, record)
