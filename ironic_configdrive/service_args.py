"""Keep a config drive given as a service step argument out of the node's stored fields.

``update_configdrive`` receives the new drive as the argument ``configdrive``. Ironic keeps
step arguments in ``node.service_step`` and ``driver_internal_info['service_steps']`` (the
API shows both), and writes a "Starting servicing with steps=..." node history event whose
masking leaves a JSON-form drive readable (oslo masks secret-named *strings* only). Once the
drive is stored, the step replaces the argument by our reference in all three places.
"""

from __future__ import annotations

import logging
from typing import Any

from ironic_configdrive.log_masking import mask_secrets

LOG = logging.getLogger(__name__)

ARG = "configdrive"
STEP = "update_configdrive"
#: What Ironic's servicing start event starts with (conductor.utils.log_step_flow_history).
_HISTORY_PREFIX = "Starting servicing with steps="


def _with_arg(step: Any, replacement: Any) -> Any:
    if isinstance(step, dict) and ARG in (step.get("args") or {}):
        return dict(step, args=dict(step["args"], **{ARG: replacement}))
    return step


def replace_step_args(node: Any, replacement: Any) -> None:
    """Put ``replacement`` where the running service step keeps its drive (caller saves)."""
    node.service_step = _with_arg(node.service_step, replacement)
    steps = node.driver_internal_info.get("service_steps")
    index = node.driver_internal_info.get("service_step_index")
    if isinstance(steps, list) and isinstance(index, int) and 0 <= index < len(steps):
        steps = list(steps)
        steps[index] = _with_arg(steps[index], replacement)
        node.set_driver_internal_info("service_steps", steps)


def scrub_history(task: Any) -> int:
    """Rewrite this servicing's start events that show a drive; return how many."""
    from ironic import objects

    node = task.node
    steps = mask_secrets(node.driver_internal_info.get("service_steps") or [])
    rewritten = 0
    for entry in objects.NodeHistory.list_by_node_id(task.context, node.id):
        event = entry.event or ""
        if not (event.startswith(_HISTORY_PREFIX) and f"'{STEP}'" in event
                and f"'{ARG}': {{" in event):
            continue
        # No update call exists for history entries: replace it, keeping its fields.
        replacement = objects.NodeHistory(
            task.context, node_id=node.id, event=f"{_HISTORY_PREFIX}{steps}",
            event_type=entry.event_type, severity=entry.severity,
            conductor=entry.conductor, user=entry.user)
        replacement.create()
        entry.destroy()
        rewritten += 1
    if rewritten:
        LOG.info("Node %s: masked the config drive in %d servicing history event(s)",
                 node.uuid, rewritten)
    return rewritten
