"""Load exposure plugins and decide, per node, which one shows the config drive.

``[configdrive]exposure`` sets the default; a node overrides it with
``driver_info['configdrive_exposure']``, or ``instance_info['configdrive_exposure']`` (wins)
where ``[configdrive]allow_instance_overrides`` allows it (see :mod:`..node_options`).
``auto`` means virtual media when the node has Redfish credentials, falling back to the
partition mechanism when its BMC has no free slot. :func:`resolve` turns that into an
:class:`~ironic_configdrive.expose.plan.ExposurePlan`; this is the only module that names
mechanisms.
"""

from __future__ import annotations

import logging
from typing import Any

import stevedore
from oslo_config import cfg

from ironic_configdrive import conf, node_options
from ironic_configdrive.expose.base import (
    Capabilities,
    ConfigDriveExposer,
    ExposureError,
    SlotBusyError,
)
from ironic_configdrive.expose.plan import ExposurePlan, Mechanism
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
    value, field = node_options.node_option_source(node, OPTION)
    source = "[configdrive]exposure" if field is None else f"{field}/{OPTION}"
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


def _mechanism(name: str, node: Any) -> Mechanism:
    return Mechanism(name, get_exposer(name, node=node.uuid).capabilities)


def resolve(node: Any) -> ExposurePlan:
    """The plan for ``node``: ``auto`` resolved, the fallback decided; ExposureError if the
    node asks for an unknown mechanism."""
    requested = requested_mechanism(node)
    if requested == AUTO:
        first = VIRTUAL_MEDIA if _has_redfish(node) else PARTITION
    else:
        first = requested
    fallback = None
    if first == VIRTUAL_MEDIA and (
            requested == AUTO or CONF.configdrive.virtual_media_fallback == PARTITION):
        fallback = _mechanism(PARTITION, node)
    return ExposurePlan(_mechanism(first, node), fallback)


def capabilities_of(name: str, *, node: str = "-") -> Capabilities:
    return get_exposer(name, node=node).capabilities


def validate(task: Any) -> None:
    """Check the node can use its mechanism (and its fallback); raise ExposureError."""
    for mechanism in resolve(task.node).mechanisms:
        get_exposer(mechanism.name, node=task.node.uuid).validate(task)


def attach(task: Any, plan: ExposurePlan, image: StoredImage,
           fallback_image: StoredImage | None = None) -> tuple[str, dict[str, Any]]:
    """Attach with the plan's first mechanism; on a busy BMC with its fallback.

    Returns the mechanism used and its record. ``fallback_image`` is what the fallback gets,
    if not ``image`` (the encrypted original rather than the plain copy made for a BMC).
    Without a fallback in the plan, the :class:`SlotBusyError` propagates.
    """
    node = task.node
    try:
        return plan.primary.name, get_exposer(plan.primary.name, node=node.uuid).attach(
            task, image)
    except SlotBusyError as exc:
        if plan.fallback is None:
            raise
        LOG.warning("Node %s: %s; falling back to the %s mechanism", node.uuid,
                    exc.message, plan.fallback.name)
    record = get_exposer(plan.fallback.name, node=node.uuid).attach(
        task, fallback_image or image)
    record["fallback_from"] = plan.primary.name
    return plan.fallback.name, record


def detach(task: Any, mechanism: str, record: dict[str, Any] | None) -> None:
    """Undo an attach from its record."""
    get_exposer(mechanism, node=task.node.uuid).detach(task, record or {"mechanism": mechanism})


def rollback(task: Any, plan: ExposurePlan) -> None:
    """Undo whatever a failed :func:`attach` may have left, for every mechanism it tried."""
    for mechanism in plan.mechanisms:
        try:
            get_exposer(mechanism.name, node=task.node.uuid).rollback(
                task, {"mechanism": mechanism.name})
        except ExposureError as exc:
            LOG.warning("Node %s: rollback of the %s exposure failed: %s", task.node.uuid,
                        mechanism.name, exc.message)
