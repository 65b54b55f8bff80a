"""The pure config drive image core: build, encode, decode, inspect and validate.

No Ironic, IPA, oslo or network imports here: the conductor, the agent and the CLI all use it.
"""

from .build import build_image, read_tree, rebuild_image, write_tree
from .codec import pack, unpack
from .errors import (
    ConfigDriveError,
    InternalError,
    InvalidInputError,
    InvalidMediaError,
    SizeLimitExceeded,
    UnknownFormatError,
    UnsafePathError,
)
from .formats import ISO9660, MAX_IMAGE_SIZE, VFAT, detect_format
from .inspect import Report, inspect, validate
from .layout import build_tree
from .stream import StreamDecoder, iter_decode

__all__ = [
    "ISO9660",
    "MAX_IMAGE_SIZE",
    "VFAT",
    "ConfigDriveError",
    "InternalError",
    "InvalidInputError",
    "InvalidMediaError",
    "Report",
    "SizeLimitExceeded",
    "StreamDecoder",
    "UnknownFormatError",
    "UnsafePathError",
    "build_image",
    "build_tree",
    "detect_format",
    "inspect",
    "iter_decode",
    "pack",
    "read_tree",
    "rebuild_image",
    "unpack",
    "validate",
    "write_tree",
]
