"""One exception hierarchy for the image core, split the way pycdlib splits its own.

* :class:`InvalidInputError` — what the caller gave us is wrong (bad metadata, unsafe path,
  over the size cap). Fix the input.
* :class:`InvalidMediaError` — bytes that should be a config drive are not one (corrupt gzip,
  no ISO9660/FAT signature, truncated). Rebuild or re-send the image.
* :class:`InternalError` — a bug in this project. Report it.

Each class carries a message template; keyword arguments fill it, so messages stay uniform
and callers (the conductor, the agent, the CLI) can add the node without re-wording.
"""

from __future__ import annotations

from typing import Any


class ConfigDriveError(Exception):
    """Base of every error the image core raises."""

    message_template = "config drive error"
    #: Short machine-readable category, serialised into agent and API replies.
    category = "error"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message_template.format(**kwargs)
            except (KeyError, IndexError, ValueError):
                # A template/argument mismatch is our bug; keep the information anyway.
                message = f"{self.message_template} {kwargs!r}"
        self.message = message
        super().__init__(message)


class InvalidInputError(ConfigDriveError):
    """The config drive content or options given by the caller are not acceptable."""

    category = "invalid_input"
    message_template = "invalid config drive input: {reason}"


class InvalidMediaError(ConfigDriveError):
    """Bytes that should hold a config drive image are not a usable one."""

    category = "invalid_media"
    message_template = "invalid config drive image: {reason}"


class InternalError(ConfigDriveError):
    """Something that cannot happen did: a bug in ironic-configdrive."""

    category = "internal"
    message_template = (
        "internal error in ironic-configdrive: {reason}; please report this as a bug"
    )


class SizeLimitExceeded(InvalidInputError):
    """The decoded image (or the content to build) is larger than the hard cap."""

    message_template = (
        "config drive is larger than the {limit_mib} MiB limit ({what}); "
        "reduce user_data or the files embedded in meta_data"
    )


class UnsafePathError(InvalidInputError):
    """A path given in the metadata would escape the config drive's file tree."""

    message_template = "{field} {path!r} escapes the config drive tree: {reason}"


class JSONDepthError(InvalidInputError):
    """JSON nests deeper than the bound every reader of the drive can take."""

    message_template = (
        "{field} nests arrays and objects deeper than {limit} levels; flatten it"
    )


class UnknownFormatError(InvalidMediaError):
    """Data is not in any encoding or filesystem format we accept."""

    message_template = (
        "unrecognised config drive data ({reason}); expected base64 text of a gzip image, "
        "gzip, raw ISO9660 (CD001 at 0x8001) or raw FAT"
    )
