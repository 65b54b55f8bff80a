"""The wire form Ironic and Nova use (gzip, then base64) and its inverse."""

from __future__ import annotations

import base64
import gzip

from . import formats, stream
from .errors import InvalidMediaError

#: zlib's fast strategy: measured on a typical drive, 2.7x faster than level 6 for 1 KB more
#: output (4.8 KB vs 3.9 KB), and within 2% of level 6's size on megabytes of user_data.
GZIP_LEVEL = 3


def pack(image: bytes) -> str:
    """gzip then base64 a raw image; the result is what ``instance_info['configdrive']`` holds.

    The gzip header carries no timestamp, so packing is reproducible.
    """
    if formats.detect_format(image[: formats.SNIFF_SIZE]) is None:
        raise InvalidMediaError(reason="refusing to pack data that is not an ISO9660 or FAT image")
    return base64.b64encode(gzip.compress(image, compresslevel=GZIP_LEVEL, mtime=0)).decode()


def unpack(data: bytes | str, cap: int = formats.MAX_IMAGE_SIZE) -> bytes:
    """Raw image from base64-of-gzip text, gzip bytes, base64 of an image or a raw image.

    The encoding is recognised by magic bytes (see :mod:`.stream`); the result is at most
    ``cap`` bytes.
    """
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidMediaError(
                reason="config drive text contains non-ASCII characters; expected base64"
            ) from None
    return b"".join(stream.iter_decode((data,), cap))
