"""Per-node settings: ``driver_info`` (the operator's, per node) and ``instance_info`` (one
deploy's wish, set by whoever deploys: a tenant through Nova, a lessee); empty values count
as unset.

``instance_info`` wins for harmless choices (``configdrive_format``). The keys in
:data:`GUARDED_KEYS` decide which disk the agent writes (``configdrive_device``) and whether
the conductor serves a decrypted copy over plain HTTP (``configdrive_exposure``): a deploy
may set them only when ``[configdrive]allow_instance_overrides`` names them. Otherwise every
read refuses (:class:`OverrideRefused`) instead of silently ignoring the value, so the deploy
fails at validation with what to do.
"""

from __future__ import annotations

from typing import Any, Final

from ironic_configdrive.conf import GUARDED_NODE_KEYS
from ironic_configdrive.image.errors import InvalidInputError

DEVICE: Final = "configdrive_device"
EXPOSURE: Final = "configdrive_exposure"
#: Keys instance_info may set only when the operator allows it.
GUARDED_KEYS: Final = GUARDED_NODE_KEYS
POLICY_OPTION: Final = "[configdrive]allow_instance_overrides"

INSTANCE_INFO: Final = "instance_info"
DRIVER_INFO: Final = "driver_info"


class OverrideRefused(InvalidInputError):
    """instance_info sets a key the operator did not allow deploys to choose."""

    message_template = (
        "node {node}: instance_info/{key} is set but deploys may not choose it; remove it "
        "from instance_info (the operator may set driver_info/{key} instead), or allow it "
        "for every node with " + POLICY_OPTION + " = {key}")


def _allowed() -> frozenset[str]:
    from ironic_configdrive.store.common import ironic_conf

    return frozenset(ironic_conf().configdrive.allow_instance_overrides or ())


def _value(info: dict[str, Any] | None, key: str) -> Any:
    value = (info or {}).get(key)
    return None if value in (None, "") else value


def check_instance_overrides(node: Any) -> None:
    """Raise :class:`OverrideRefused` for the first guarded key instance_info may not set."""
    allowed = _allowed()
    for key in GUARDED_KEYS:
        if key not in allowed and _value(node.instance_info, key) is not None:
            raise OverrideRefused(node=node.uuid, key=key)


def node_option_source(node: Any, key: str) -> tuple[Any, str | None]:
    """(value, ``"instance_info"``/``"driver_info"``/None for unset); guarded keys are
    refused from instance_info unless allowed."""
    value = _value(node.instance_info, key)
    if value is not None:
        if key in GUARDED_KEYS and key not in _allowed():
            raise OverrideRefused(node=node.uuid, key=key)
        return value, INSTANCE_INFO
    value = _value(node.driver_info, key)
    return (value, DRIVER_INFO) if value is not None else (None, None)


def node_option(node: Any, key: str) -> Any:
    return node_option_source(node, key)[0]
