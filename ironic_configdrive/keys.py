"""Per-drive keys, wrapped for driver_internal_info with the conductor's key-encryption key.

A stored drive is sealed with its own random key (:mod:`ironic_configdrive.image.sealing`).
That key must survive between deploy steps, a conductor restart and a rebuild that reuses the
drive, but driver_internal_info is readable through the API. So only its RFC 3394 wrap under
the conductor's key-encryption key (KEK, ``[configdrive]key_file``) is kept there, prefixed
with a short fingerprint of the KEK so a conductor with another KEK says so instead of
failing to unwrap.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os

from cryptography.hazmat.primitives import keywrap

from ironic_configdrive.image import sealing
from ironic_configdrive.image.errors import ConfigDriveError

LOG = logging.getLogger(__name__)

_KEK_SIZE = 32


class DriveKeyError(ConfigDriveError):
    """The key-encryption key is unusable, or a wrapped key cannot be unwrapped."""

    category = "key"
    message_template = "config drive encryption key problem: {reason}"


def _fingerprint(kek: bytes) -> str:
    return hashlib.sha256(b"ironic-configdrive kek" + kek).hexdigest()[:12]


def load_kek(path: str) -> bytes:
    """Read the KEK from ``path`` (64 hex digits), creating it with mode 0600 if missing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DriveKeyError(reason=f"cannot create the key file {path} ({exc.strerror}); create "
                               "its directory or set [configdrive]key_file") from None
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(_KEK_SIZE).hex() + "\n")
        LOG.info("Created the config drive key-encryption key %s; copy it to every "
                 "conductor", path)
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DriveKeyError(reason=f"cannot read the key file {path} "
                               f"({getattr(exc, 'strerror', None) or type(exc).__name__}); "
                               "check [configdrive]key_file and its permissions") from None
    try:
        kek = bytes.fromhex(text)
    except ValueError:
        kek = b""
    if len(kek) != _KEK_SIZE:
        raise DriveKeyError(reason=f"the key file {path} must hold {_KEK_SIZE * 2} hexadecimal "
                               "digits; restore it from another conductor")
    return kek


def wrap(kek: bytes, key: bytes) -> str:
    """``fingerprint:base64(wrapped key)``: safe to keep where the API shows it."""
    wrapped = keywrap.aes_key_wrap(kek, key)
    return f"{_fingerprint(kek)}:{base64.b64encode(wrapped).decode('ascii')}"


def unwrap(kek: bytes, text: str, *, path: str) -> bytes:
    """The drive key from its wrapped form; a clear error for another conductor's KEK."""
    fingerprint, _, body = str(text).partition(":")
    if fingerprint != _fingerprint(kek):
        raise DriveKeyError(reason=f"the drive was encrypted by a conductor with another "
                               f"key-encryption key (fingerprint {fingerprint}, this one has "
                               f"{_fingerprint(kek)} in {path}); give every conductor the "
                               "same [configdrive]key_file, or deploy again passing the "
                               "config drive")
    try:
        key = keywrap.aes_key_unwrap(kek, base64.b64decode(body, validate=True))
    except (ValueError, keywrap.InvalidUnwrap):
        raise DriveKeyError(reason="the wrapped drive key in driver_internal_info is corrupt; "
                               "deploy again passing the config drive") from None
    if len(key) != sealing.KEY_SIZE:
        raise DriveKeyError(reason="the wrapped drive key has the wrong length; deploy again "
                               "passing the config drive")
    return key
