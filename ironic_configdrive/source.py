"""Turn whatever a user put in ``instance_info['configdrive']`` into raw image bytes.

Accepted forms, as Ironic accepts them: an http(s) URL, a gzip+base64 blob (or any encoding
the image core's decoder recognises: gzip, base64, raw ISO9660/FAT), raw image bytes, or the
JSON dict ``{meta_data, user_data, network_data, vendor_data}`` which is built here with
Ironic's defaults for ``uuid`` and ``name``. A URL is fetched by the conductor through the
streaming decoder with a hard cap, so agents never reach external hosts and the sha256 of
what they write is always known — unless pass-through is allowed, in which case the URL is
handed on untouched (after the same host check).

A user's URL is untrusted: it is fetched only from hosts the operator's
:class:`.AddressPolicy` allows (:mod:`.pinned_http` connects to the checked address, checks
every redirect), within a wire byte cap and one deadline. Every refusal and network failure
before the server answered 200 gives the user one text, whatever the cause, so the error is
no probe of the control plane; the cause goes to the conductor's log.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from ironic_configdrive import image, pinned_http
from ironic_configdrive.image import formats, sealing, stream
from ironic_configdrive.image.errors import (
    ConfigDriveError,
    InvalidInputError,
    SizeLimitExceeded,
    UnknownFormatError,
)
from ironic_configdrive.masking import mask_url, scrub
from ironic_configdrive.url_policy import AddressPolicy, RefusedAddress

LOG = logging.getLogger(__name__)

#: Seconds to connect to, and between bytes from, a server holding a user's config drive.
FETCH_TIMEOUT = (10.0, 60.0)
#: Seconds a whole download may take (``[configdrive]fetch_deadline``).
FETCH_DEADLINE: Final = 120.0
#: Slack on the wire cap beyond base64 with line breaks (headers of gzip members, padding).
WIRE_SLACK: Final = 1024 * 1024
#: The policy for URLs the conductor itself made (its store's), not given by a user.
TRUSTED = AddressPolicy(unrestricted=True)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: How JSON text starts; no encoding of an image (base64, gzip) does.
_JSON_STARTS = ("{", "[", b"{", b"[")
_HTTP_SCHEMES = ("http://", "https://")


def wire_cap(cap: int) -> int:
    """Most bytes read off the network for a drive of at most ``cap`` bytes.

    Base64 of the raw image (4/3) with a line break of two bytes every 76 characters (what
    ``base64`` and MIME write), plus :data:`WIRE_SLACK`.
    """
    text = -(-cap // 3) * 4
    return text + text // 38 + WIRE_SLACK


class FetchError(ConfigDriveError):
    """The config drive URL given by the user could not be downloaded.

    One text for every refusal and failure up to a 200 answer; the cause is logged only.
    """

    category = "fetch"
    message_template = (
        "could not download the config drive from {url}: the conductor does not fetch from "
        "that address, or got no config drive from it (the conductor's log has the cause); "
        "give an http(s) URL on a host the cloud's operator allows "
        "([configdrive]fetch_allowed_networks, fetch_allowed_hosts) that answers 200 with "
        "the drive (temporary URLs expire), or pass the config drive inline"
    )


class DownloadTooLargeError(FetchError):
    """The server sent (or announced) more bytes than any encoding of the drive takes."""

    message_template = (
        "the download from {url} passed {limit} bytes, more than any encoding of a "
        "{cap_mib} MiB config drive takes; serve the drive gzip+base64 without padding, or "
        "pass it inline"
    )


class DownloadTooSlowError(FetchError):
    """The download did not finish within ``[configdrive]fetch_deadline``."""

    message_template = (
        "downloading the config drive from {url} took longer than {seconds:g} s "
        "([configdrive]fetch_deadline); serve it from a host that sends it faster, or pass "
        "it inline"
    )


class EncodedTransferError(FetchError):
    """The server applied a ``Content-Encoding``, which is never decoded for it."""

    message_template = (
        "the server at {url} sent the config drive with Content-Encoding: {encoding}; the "
        "conductor does not undo transfer encodings (a small compressed answer can hide a "
        "huge one): serve the file as it is (e.g. a .gz file without Content-Encoding), or "
        "pass it inline"
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
              timeout: tuple[float, float] = FETCH_TIMEOUT,
              policy: AddressPolicy | None = None,
              deadline: float = FETCH_DEADLINE) -> Source:
    """Normalise one ``instance_info['configdrive']`` value.

    :param fmt: filesystem of images built from the JSON form.
    :param cap: largest decoded image accepted, in bytes.
    :param policy: where a URL may point; default: global unicast addresses only.
    :param deadline: seconds a download may take in all.
    :raises InvalidInputError: the value is of no accepted form or too large.
    :raises InvalidMediaError: the data is not a config drive image.
    :raises FetchError: a URL was refused or could not be downloaded.
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
        policy = policy if policy is not None else AddressPolicy()
        if allow_url_passthrough:
            check_passthrough(url, policy, node=node_uuid)
            return Source(kind="url", passthrough_url=url)
        return Source(kind="url", image=fetch(url, cap=cap, timeout=timeout, policy=policy,
                                              deadline=deadline, node=node_uuid))
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


def check_passthrough(url: str, policy: AddressPolicy, *, node: str | None = None) -> None:
    """Refuse a URL to be handed on whose host the policy does not allow.

    The agent or BMC resolves the name again, so this cannot pin the address as a download
    here does (DNS rebinding stays possible); it refuses what is plainly internal, which the
    provisioning network would otherwise let a user reach.
    """
    try:
        target = pinned_http.parse_target(url)
        policy.resolve(target.host, target.port)
    except (pinned_http.Refused, RefusedAddress) as exc:
        _log_refusal(url, node, str(exc))
        raise FetchError(url=mask_url(url)) from None


def fetch(url: str, *, cap: int = image.MAX_IMAGE_SIZE,
          timeout: tuple[float, float] = FETCH_TIMEOUT, key: bytes | None = None,
          policy: AddressPolicy | None = None, deadline: float = FETCH_DEADLINE,
          node: str | None = None) -> bytes:
    """Download ``url`` and decode it on the fly, never holding more than ``cap`` bytes.

    :param key: the data is sealed (:mod:`.image.sealing`); open it with this key first.
    :param policy: where the URL (and its redirects) may point; default: global unicast
        addresses only. :data:`TRUSTED` for the conductor's own store.
    :param node: named in the log line of a failure.
    """
    shown = mask_url(url)
    limits = pinned_http.Limits(wire_cap=wire_cap(cap), deadline=deadline,
                                connect_timeout=timeout[0], read_timeout=timeout[1])
    decoder = image.StreamDecoder(cap=cap)
    try:
        with pinned_http.open_url(url, policy=policy if policy is not None else AddressPolicy(),
                                  limits=limits) as body:
            plain = body if key is None else sealing.iter_open(body, key)
            image_bytes = stream.decode_whole(plain, decoder)
    except pinned_http.Refused as exc:
        _log_refusal(url, node, str(exc))
        raise FetchError(url=shown) from None
    except pinned_http.WireLimitExceeded:
        raise DownloadTooLargeError(url=shown, limit=limits.wire_cap,
                                    cap_mib=cap // (1024 * 1024)) from None
    except pinned_http.DeadlineExceeded:
        raise DownloadTooSlowError(url=shown, seconds=deadline) from None
    except pinned_http.ContentEncodingRefused as exc:
        raise EncodedTransferError(url=shown, encoding=scrub(exc.encoding)[:40]) from None
    except ConfigDriveError as exc:
        # Decoding errors name the data, not the source: say where it came from.
        raise type(exc)(f"{exc.message} (downloaded from {shown})") from None
    return image_bytes


def _log_refusal(url: str, node: str | None, cause: str) -> None:
    LOG.warning("Config drive URL %s%s refused or not downloaded: %s", mask_url(url),
                f" of node {node}" if node else "", scrub(cause))


def _check_size(raw: bytes, cap: int, what: str) -> None:
    if len(raw) > cap:
        raise SizeLimitExceeded(limit_mib=cap // (1024 * 1024),
                                what=f"{what} is {len(raw)} bytes")
