"""Per-node settings: ``instance_info`` (one deploy's wish) wins over ``driver_info`` (the
operator's default for the node); empty values count as unset."""

from __future__ import annotations

from typing import Any


def node_option(node: Any, key: str) -> Any:
    value = (node.instance_info or {}).get(key)
    if value in (None, ""):
        value = (node.driver_info or {}).get(key)
    return None if value == "" else value
