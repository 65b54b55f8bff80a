"""Helpers shared by the store plugins: configuration, identifiers, encoding."""

from __future__ import annotations

import gzip
import hashlib
import re
from typing import Any

from ironic_configdrive.image import codec, formats, sealing
from ironic_configdrive.store.base import ENCODINGS, GZIP, IDENTITY, StoreError

# Node UUIDs and deploy ids end up in object and file names: keep them to a safe alphabet so
# a caller can never steer a name outside its container or directory.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


#: The CONF object our options were last registered on (see :func:`ironic_conf`).
_registered_on: Any = None


def ironic_conf() -> Any:
    """Ironic's global CONF with the ``[configdrive]`` options registered (idempotent)."""
    global _registered_on
    from ironic.conf import CONF

    from ironic_configdrive import conf as cd_conf

    # Registering the same Opt objects again is a no-op, but not a cheap one (stores are
    # made per call, and call this): only when CONF is new to us (tests may swap it).
    if CONF is not _registered_on:
        cd_conf.register_opts(CONF)
        _registered_on = CONF
    return CONF


def is_safe_id(value: object) -> bool:
    """Whether ``value`` may be part of a stored name (what :func:`check_id` accepts)."""
    return isinstance(value, str) and _SAFE_ID.match(value) is not None


def check_id(store: str, node_uuid: str, what: str, value: str) -> None:
    if not is_safe_id(value):
        raise StoreError(store=store, node=node_uuid or "<unknown>",
                         reason=f"{what} {value!r} is not usable in a stored name (allowed: "
                                "letters, digits, '-' and '_', at most 128); this is a bug in "
                                "the caller, please report it")


def check_encoding(store: str, node_uuid: str, encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise StoreError(store=store, node=node_uuid or "<unknown>",
                         reason=f"encoding {encoding!r} is not one of {', '.join(ENCODINGS)}; "
                                "this is a bug in the caller, please report it")


#: File/object name suffix of sealed drives (neither a BMC nor a browser can use them).
SEALED_SUFFIX = ".sealed"


def encode(store: str, node_uuid: str, image: bytes, encoding: str = GZIP,
           key: bytes | None = None) -> tuple[bytes, str, int]:
    """(stored bytes, sha256 of ``image``, len(image)); gzip is deterministic (mtime 0).

    With ``key`` the encoded bytes are sealed, so the store never holds the plaintext.
    """
    check_encoding(store, node_uuid, encoding)
    data = image if encoding == IDENTITY else gzip.compress(
        image, compresslevel=codec.GZIP_LEVEL, mtime=0)
    if key is not None:
        data = sealing.seal(data, key)
    return data, hashlib.sha256(image).hexdigest(), len(image)


def suffix(image: bytes, encoding: str, sealed: bool, gzip_suffix: str = ".gz") -> str:
    """Name suffix of a stored drive: what it holds, for people and picky BMCs."""
    if sealed:
        return SEALED_SUFFIX
    return gzip_suffix if encoding == GZIP else raw_suffix(image)


def raw_suffix(image: bytes) -> str:
    """File extension for a raw image: some BMCs only mount URLs ending in .iso or .img."""
    return ".iso" if formats.detect_format(image[: formats.SNIFF_SIZE]) == formats.ISO9660 \
        else ".img"


def content_type(image: bytes, encoding: str, sealed: bool = False) -> str:
    """The Content-Type to store ``image`` under in ``encoding``."""
    if sealed:
        return "application/octet-stream"
    if encoding == GZIP:
        return "application/gzip"
    if raw_suffix(image) == ".iso":
        return "application/x-iso9660-image"
    return "application/octet-stream"
