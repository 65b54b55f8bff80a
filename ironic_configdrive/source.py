"""Turn whatever a user put in ``instance_info['configdrive']`` into raw image bytes.

Accepted forms, as Ironic accepts them: an http(s) URL, a gzip+base64 blob (or any encoding
the image core's decoder recognises: gzip, base64, raw ISO9660/FAT), raw image bytes, or the
JSON dict ``{meta_data, user_data, network_data, vendor_data}`` which is built here with
Ironic's defaults for ``uuid`` and ``name``. A URL is fetched by the conductor through the
streaming decoder with a hard cap, so agents never reach external hosts and the sha256 of
what they write is always known — unless pass-through is allowed, in which case the URL is
handed on untouched.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

import requests

from ironic_configdrive import image
from ironic_configdrive.image import formats, sealing
from ironic_configdrive.image.errors import (
    ConfigDriveError,
    InvalidInputError,
    SizeLimitExceeded,
    UnknownFormatError,
)
from ironic_configdrive.masking import mask_url

#: Seconds to connect to, and between bytes from, a server holding a user's config drive.
FETCH_TIMEOUT = (10.0, 60.0)
#: Bytes read from the network at a time.
FETCH_CHUNK = 64 * 1024

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: How JSON text starts; no encoding of an image (base64, gzip) does.
_JSON_STARTS = ("{", "[", b"{", b"[")
_HTTP_SCHEMES = ("http://", "https://")


class FetchError(ConfigDriveError):
    """The config drive URL given by the user could not be downloaded."""

    category = "fetch"
    message_template = (
        "could not download the config drive from {url}: {reason}; check that the URL is "
        "reachable from the conductor and still valid (temporary URLs expire), or pass the "
        "config drive inline"
    )


#: The kind of a drive built here from the JSON form.
BUILT: Final = "json"


@dataclasses.dataclass(frozen=True)
class Source:
    """A normalised config drive: the raw image, or a URL passed through untouched."""

    #: "json", "encoded" (blob or bytes) or "url".
    kind: str
    image: bytes | None = None
    passthrough_url: str | None = None

    @property
    def passthrough(self) -> bool:
        return self.passthrough_url is not None


def is_url(value: Any) -> bool:
    """Whether ``value`` is a URL (of any scheme) rather than inline data."""
    return isinstance(value, str) and bool(_SCHEME.match(value.strip()))


def normalise(value: Any, *, node_uuid: str, node_name: str | None = None,
              fmt: str = image.ISO9660, cap: int = image.MAX_IMAGE_SIZE,
              cloudstack: bool = False, allow_url_passthrough: bool = False,
              timeout: tuple[float, float] = FETCH_TIMEOUT) -> Source:
    """Normalise one ``instance_info['configdrive']`` value.

    :param fmt: filesystem of images built from the JSON form.
    :param cap: largest decoded image accepted, in bytes.
    :raises InvalidInputError: the value is of no accepted form or too large.
    :raises InvalidMediaError: the data is not a config drive image.
    :raises FetchError: a URL could not be downloaded.
    """
    if isinstance(value, Mapping):
        raw = image.build_image(value, fmt=fmt, node_uuid=node_uuid, node_name=node_name,
                                cloudstack=cloudstack)
        _check_size(raw, cap, "the built image")
        return Source(kind=BUILT, image=raw)
    if is_url(value):
        url = value.strip()
        if not url.lower().startswith(_HTTP_SCHEMES):
            raise InvalidInputError(
                reason=f"config drive URL {mask_url(url)} has an unsupported scheme; "
                       "give an http:// or https:// URL or the data itself")
        if allow_url_passthrough:
            return Source(kind="url", passthrough_url=url)
        return Source(kind="url", image=fetch(url, cap=cap, timeout=timeout))
    if isinstance(value, (str, bytes, bytearray)):
        if not value.strip():
            raise InvalidInputError(reason="the config drive is empty")
        data = bytes(value) if isinstance(value, bytearray) else value
        if data.lstrip()[:1] in _JSON_STARTS and (
                isinstance(data, str) or image.detect_format(data[: formats.SNIFF_SIZE]) is None):
            # Ironic takes the JSON form as an object only; a string is a URL or an image.
            # Not parsed here, so no nesting depth or size reaches a JSON parser.
            raise UnknownFormatError(
                reason="the text looks like JSON; give the JSON form as an object "
                       "{meta_data, user_data, network_data, vendor_data}, not as a string "
                       "holding it")
        return Source(kind="encoded", image=image.unpack(data, cap=cap))
    raise InvalidInputError(
        reason=f"a config drive must be a URL, gzip+base64 text or a JSON object, "
               f"not {type(value).__name__}")


def fetch(url: str, *, cap: int = image.MAX_IMAGE_SIZE,
          timeout: tuple[float, float] = FETCH_TIMEOUT, key: bytes | None = None) -> bytes:
    """Download ``url`` and decode it on the fly, never holding more than ``cap`` bytes.

    :param key: the data is sealed (:mod:`.image.sealing`); open it with this key first.
    """
    shown = mask_url(url)
    decoder = image.StreamDecoder(cap=cap)
    opener = sealing.Opener(key) if key is not None else None
    pieces: list[bytes] = []
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise FetchError(url=shown, reason=f"the server answered HTTP "
                                                   f"{response.status_code}")
            for chunk in response.iter_content(FETCH_CHUNK):
                for plain in (opener.feed(chunk) if opener is not None else (chunk,)):
                    pieces.extend(decoder.feed(plain))
        if opener is not None:
            opener.finish()
        pieces.extend(decoder.finish())
    except requests.RequestException as exc:
        # Exception texts of requests quote the full URL, query string included.
        raise FetchError(url=shown, reason=type(exc).__name__) from None
    except ConfigDriveError as exc:
        if isinstance(exc, FetchError):
            raise
        # Decoding errors name the data, not the source: say where it came from.
        raise type(exc)(f"{exc.message} (downloaded from {shown})") from None
    return b"".join(pieces)


def _check_size(raw: bytes, cap: int, what: str) -> None:
    if len(raw) > cap:
        raise SizeLimitExceeded(limit_mib=cap // (1024 * 1024),
                                what=f"{what} is {len(raw)} bytes")
