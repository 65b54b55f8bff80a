"""Exposure through a config-2 partition the agent writes (``configdrive.write``).

The conductor sends the agent the store URL, the expected sha256 and size; the agent streams,
verifies and writes the image (see ``agent_ext``). The command is asynchronous: we start it
and poll its status ourselves, so ``[configdrive]agent_command_timeout`` bounds the wait
(Ironic's own ``poll=True`` uses ``[agent]command_wait_attempts`` fixed at import time), and
the agent's download gets a shorter deadline (``download_timeout``) so its own error, not a
time-out here, tells what went wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from oslo_config import cfg

from ironic_configdrive import conf, drive_readers
from ironic_configdrive.expose.base import Capabilities, ConfigDriveExposer, ExposureError
from ironic_configdrive.image import formats, sealing
from ironic_configdrive.masking import scrub
from ironic_configdrive.node_options import (
    DRIVER_INFO,
    OverrideRefused,
    node_option,
    node_option_source,
)
from ironic_configdrive.store.base import StoredImage

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
conf.register_opts(CONF)

WRITE = "configdrive.write"
REMOVE = "configdrive.remove"
#: The agent resolves this to its install device, honouring the node's root device hints.
ROOT_DEVICE = "root"

_FAILED = "FAILED"
_RUNNING = "RUNNING"
_SUCCEEDED = "SUCCEEDED"


#: Write parameter telling the agent the operator named the device (driver_info); without
#: it the agent accepts an explicit device only if it is the root device hints' choice.
FROM_OPERATOR = "device_from_operator"


def target_device(node: Any) -> str:
    """The device the agent writes to: explicit ``configdrive_device`` or ``"root"``."""
    device = node_option(node, "configdrive_device")
    return str(device) if device else ROOT_DEVICE


def _named_by_operator(node: Any) -> bool:
    return node_option_source(node, "configdrive_device")[1] == DRIVER_INFO


def download_timeout() -> int:
    """Seconds the agent may spend on the download: the option, or 3/4 of the command wait.

    Shorter than ``agent_command_timeout`` so the agent reports its own, precise error
    (deadline, bytes read) while the conductor still waits for it.
    """
    configured = CONF.configdrive.agent_download_timeout
    if configured:
        return int(configured)
    return max(1, int(CONF.configdrive.agent_command_timeout) * 3 // 4)


def describe_command_error(result: dict[str, Any]) -> str:
    """A one-line reason from an IPA command result (``command_error`` dict or string)."""
    error = result.get("command_error")
    if error is None:
        return "the agent reported failure without an error"
    if isinstance(error, dict):
        details = error.get("details") or error.get("message") or str(error)
        kind = error.get("error_type") or error.get("type")
        category = error.get("category")
        tags = ", ".join(str(t) for t in (category, kind) if t)
        return scrub(f"{details} [{tags}]" if tags else str(details))
    return scrub(str(error))


class PartitionExposer(ConfigDriveExposer):
    """Have the node's running agent write the drive to a config-2 partition."""

    name = "partition"
    capabilities = Capabilities(takes_sealed=True, takes_compressed=True, needs_agent=True,
                                writes_disk=True, reads_url_while_attached=False)

    #: Seams for tests: the clock and the sleep between status polls.
    _clock: Callable[[], float] = staticmethod(time.monotonic)
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def validate(self, task: Any) -> None:
        node = task.node
        fmt = node_option(node, "configdrive_format")
        if fmt is not None and fmt not in formats.FORMATS:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"configdrive_format {fmt!r} is not one of "
                       f"{', '.join(formats.FORMATS)}; fix instance_info/driver_info")
        device = node_option(node, "configdrive_device")
        if device is not None and (not isinstance(device, str)
                                   or not (device == ROOT_DEVICE or device.startswith("/dev/"))):
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"configdrive_device {device!r} must be 'root' or a /dev/ path; fix "
                       "instance_info/driver_info")

    # -- attach ---------------------------------------------------------------------------

    def attach(self, task: Any, image: StoredImage) -> dict[str, Any]:
        self.validate(task)
        node = task.node
        device = target_device(node)
        params: dict[str, Any] = {
            "device": device,
            # IPA and Ironic mask this key (and everything under it) in their debug logs:
            # the URL may carry a temp URL signature, and the key opens the sealed drive.
            "configdrive": image.url if image.key is None else {
                "url": image.url, "key": sealing.encode_key(image.key)},
            "target": "partition",
            "download_timeout": download_timeout(),
        }
        if device != ROOT_DEVICE and _named_by_operator(node):
            params[FROM_OPERATOR] = True
        # Unknown for a passed-through URL: then the agent checks only what it decodes
        # (it refuses size 0, and an empty sha256 would never match).
        if image.sha256:
            params["sha256"] = image.sha256
        if image.size:
            params["size"] = image.size
        # Keep an ISO9660 drive ISO9660 when a reader cannot read the vfat one the agent
        # would rebuild it as on a 4Kn disk: the agent then fails, naming the sector size.
        fmt = node_option(node, "configdrive_format") or drive_readers.format_to_keep(node)
        if fmt:
            params["format"] = fmt
        LOG.info("Asking the agent on node %s to write its config drive to device %s "
                 "(%s bytes, sha256 %s)", node.uuid, device, image.size or "unknown",
                 image.sha256 or "unknown")
        result = self._run(task, WRITE, params)
        summary = result.get("command_result") or {}
        if not isinstance(summary, dict):
            summary = {}
        record = {
            "mechanism": self.name,
            "device": device,
            "resolved_device": summary.get("device"),
            "partition": summary.get("path"),
            "partition_number": summary.get("partition_number"),
            "format": summary.get("format"),
            "sha256": summary.get("source_sha256") or image.sha256 or None,
            "size": image.size or summary.get("size"),
        }
        LOG.info("Config drive of node %s written by the agent to %s", node.uuid,
                 record["partition"])
        return record

    # -- detach ---------------------------------------------------------------------------

    def detach(self, task: Any, record: dict[str, Any]) -> None:
        node = task.node
        device = (record or {}).get("device")
        if not device:
            try:
                device = target_device(node)
            except OverrideRefused:
                # attach refuses the same way before the agent is asked: nothing was written.
                return
        if not (node.driver_internal_info or {}).get("agent_url"):
            LOG.info("No agent is running on node %s: its config-2 partition on %s stays "
                     "until cleaning erases the disk", node.uuid, device)
            return
        try:
            self.remove(task, device)
        except _AgentUnreachable as exc:
            LOG.warning("The agent of node %s cannot be reached (%s): its config-2 partition "
                        "on %s stays until cleaning erases the disk", node.uuid, exc.message,
                        device)

    def remove(self, task: Any, device: str) -> None:
        """Have the agent zero and remove the config-2 partition on ``device``.

        Unlike :meth:`detach` this is strict: an unreachable agent raises
        :class:`ExposureError` too, for callers that must know the drive is gone (the
        ``erase_configdrive`` clean step).
        """
        self._run(task, REMOVE, {"device": device})
        LOG.info("Config drive partition of node %s removed from %s", task.node.uuid, device)

    def rollback(self, task: Any, record: dict[str, Any]) -> None:
        """A failed write leaves no valid config-2 filesystem; remove what remains if we can."""
        try:
            self.detach(task, record)
        except ExposureError as exc:
            LOG.warning("Rollback of the config drive of node %s failed: %s", task.node.uuid,
                        exc.message)

    # -- the agent command ----------------------------------------------------------------

    def _run(self, task: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Start an async agent command and poll it to completion; raise on any failure."""
        from ironic.common import exception as ironic_exc
        from ironic.drivers.modules import agent_client

        node = task.node
        client = agent_client.get_client(task)
        timeout = CONF.configdrive.agent_command_timeout
        try:
            result = client._command(node, method=method, params=params, wait=False)
            deadline = self._clock() + timeout
            while (result or {}).get("command_status") == _RUNNING:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise ExposureError(
                        mechanism=self.name, node=node.uuid,
                        reason=f"agent command {method} did not finish within "
                               f"{timeout} s ([configdrive]agent_command_timeout); check "
                               "the agent log and the node's access to the store URL, then "
                               "retry or raise the timeout")
                self._sleep(min(float(CONF.agent.command_wait_interval), remaining))
                last = client.get_last_command_status(node, method)
                if last is None:
                    raise ExposureError(
                        mechanism=self.name, node=node.uuid,
                        reason=f"the agent no longer lists command {method} (did it "
                               "restart?); retry the operation")
                result = last
        except ironic_exc.AgentConnectionFailed as exc:
            raise _AgentUnreachable(
                mechanism=self.name, node=node.uuid,
                reason=f"cannot reach the agent for {method}: {scrub(str(exc))}; check that "
                       "the node runs the agent ramdisk and the conductor can reach it") \
                from None
        except ironic_exc.AgentInProgress as exc:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"the agent is busy with another command ({scrub(str(exc))}); retry "
                       "when it is idle") from None
        except ironic_exc.AgentAPIError as exc:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=_api_error_reason(method, exc)) from None
        except ironic_exc.IronicException as exc:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"agent command {method} failed: {scrub(str(exc))}") from None

        status = result.get("command_status")
        if status == _SUCCEEDED:
            return result
        if status == _FAILED:
            raise ExposureError(
                mechanism=self.name, node=node.uuid,
                reason=f"agent command {method} failed: {describe_command_error(result)}")
        raise ExposureError(
            mechanism=self.name, node=node.uuid,
            reason=f"agent command {method} returned unexpected status {status!r}; check "
                   "the agent version")


class _AgentUnreachable(ExposureError):
    """The agent did not answer (detach treats this as nothing left to do)."""


def _api_error_reason(method: str, exc: Exception) -> str:
    # IronicException keeps its kwargs as (quoted) strings.
    status = str(getattr(exc, "kwargs", {}).get("status", "")).strip("\"'")
    text = scrub(str(exc))
    if status == "404":
        return (f"the agent does not know {method} ({text}); build the agent ramdisk with "
                "ironic-configdrive[agent] so the 'configdrive' extension is loaded")
    if status == "400":
        return f"the agent rejected the {method} parameters: {text}"
    return f"agent command {method} failed: {text}"
