"""Agent-side errors: the image core's hierarchy plus disk and transfer failures.

Every error names the device or URL involved, the cause and what to do, and serialises into
an IPA command reply through :meth:`AgentConfigDriveError.serialize`.
"""

from __future__ import annotations

from typing import Any

from ironic_configdrive.image.errors import ConfigDriveError, InvalidInputError


class AgentConfigDriveError(ConfigDriveError):
    """Base for errors raised by the agent extension's disk and transfer code."""

    category = "agent"
    message_template = "config drive operation failed: {reason}"

    def serialize(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "category": self.category,
                "message": self.message, "details": self.message}


class DeviceError(AgentConfigDriveError):
    """The target block device is missing, read-only, too small or laid out unusably."""

    category = "device"
    message_template = "device {device}: {reason}"


class TransferError(AgentConfigDriveError):
    """The image could not be fetched (HTTP error, TLS failure, connection lost for good)."""

    category = "transfer"
    message_template = "download of the config drive from {url} failed: {reason}"


class DownloadTooLarge(TransferError):
    """The server sent (or announced) more bytes than any valid encoded drive takes."""


class DownloadDeadlineExceeded(TransferError):
    """The download (retries and resumes included) did not finish within its deadline."""


class VerificationError(AgentConfigDriveError):
    """What was received or written does not match the expected size or sha256."""

    category = "verification"
    message_template = "config drive verification failed on {device}: {reason}"


class NotAConfigDriveError(AgentConfigDriveError):
    """The received image arrived intact but is not a drive cloud-init would use."""

    category = "invalid_media"
    message_template = (
        "refused to write the config drive to {device}: {reason}; nothing was made valid "
        "on the disk. The image itself is wrong (not a transfer fault): check it with "
        "`ironic-configdrive validate IMAGE` and rebuild it (for a deploy: deploy again with "
        "a corrected --config-drive)")


__all__ = ["AgentConfigDriveError", "DeviceError", "DownloadDeadlineExceeded",
           "DownloadTooLarge", "InvalidInputError", "NotAConfigDriveError", "TransferError",
           "VerificationError"]
