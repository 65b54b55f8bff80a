"""Per-drive keys, wrapped for driver_internal_info with the conductors' key-encryption keys.

A stored drive is sealed with its own random key (:mod:`ironic_configdrive.image.sealing`).
That key must survive between deploy steps, a conductor restart and a rebuild that reuses the
drive, but driver_internal_info is readable through the API. So only its RFC 3394 wrap under
a key-encryption key (KEK) is kept there, prefixed with a short fingerprint of that KEK.

The :class:`Keyring` holds the current KEK (``[configdrive]key_file``), which wraps, and the
retired ones (``[configdrive]old_key_files``), which only unwrap: the fingerprint picks the
KEK, so records wrapped before a rotation keep working until they are re-wrapped.

Key files are one KEK each, 64 hexadecimal digits. They are refused unless they are regular
files (never followed through a symbolic link) owned by the conductor's user with no
permission for group or others. A missing current key file is created atomically (a
temporary file, fsync, then a hard link to the final name: of conductors racing, one wins
and the others read its key) unless ``[configdrive]key_file_create`` is off. Key material
never appears in a message or a log line; fingerprints do.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import pwd
import shlex
import stat
import tempfile
from collections.abc import Iterable
from typing import Final

from cryptography.hazmat.primitives import keywrap

from ironic_configdrive.image import sealing
from ironic_configdrive.image.errors import ConfigDriveError

LOG = logging.getLogger(__name__)

KEK_SIZE: Final = 32
#: A key file holds 64 hex digits and a newline; anything much longer is not a key file.
_MAX_FILE_SIZE: Final = 4096
_FINGERPRINT_TAG: Final = b"ironic-configdrive kek"
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_SAME_FILE_ADVICE: Final = ("copy the key file every conductor uses (the same file on every "
                            "conductor)")


class DriveKeyError(ConfigDriveError):
    """A key file is unusable, or a wrapped key cannot be unwrapped."""

    category = "key"
    message_template = "config drive encryption key problem: {reason}"


def fingerprint(kek: bytes) -> str:
    """A short public name of ``kek``: tells keys apart, reveals nothing of them."""
    return hashlib.sha256(_FINGERPRINT_TAG + kek).hexdigest()[:12]


def fingerprint_of(wrapped: str) -> str:
    """The fingerprint of the KEK that wrapped ``wrapped``."""
    return str(wrapped).partition(":")[0]


@dataclasses.dataclass(frozen=True)
class Kek:
    """One key-encryption key and the file it came from."""

    path: str
    material: bytes = dataclasses.field(repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.material)


# -- key files --------------------------------------------------------------------------------


def _user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _refuse(path: str, cause: str, fix: str) -> DriveKeyError:
    return DriveKeyError(reason=f"the key file {path} {cause}; {fix}")


def _check(path: str, info: os.stat_result) -> None:
    """Refuse what is not a regular file of ours that only we can read."""
    quoted = shlex.quote(path)
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "is not a regular file", "point [configdrive]key_file at the "
                      "key file itself")
    if info.st_uid != os.geteuid():
        raise _refuse(path, f"is owned by uid {info.st_uid}, not by the conductor's user "
                      f"{_user()} (uid {os.geteuid()})", "run the conductor (and "
                      f"ironic-configdrive-keys) as the file's owner, or run: chown "
                      f"{_user()} {quoted}")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise _refuse(path, f"has mode {stat.S_IMODE(info.st_mode):04o}: group or others may "
                      "access the key", f"run: chmod 600 {quoted}")


def _parse(path: str, text: bytes) -> bytes:
    stripped = text.strip()
    if not stripped:
        raise _refuse(path, "is empty (a truncated copy?)",
                      f"{_SAME_FILE_ADVICE} over it; if no node was ever deployed with "
                      "it, remove it and a new key is created")
    try:
        kek = bytes.fromhex(stripped.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        kek = b""
    if len(kek) != KEK_SIZE:
        raise _refuse(path, f"does not hold a key ({KEK_SIZE * 2} hexadecimal digits "
                      "expected)", f"{_SAME_FILE_ADVICE} over it")
    return kek


def _read(path: str) -> Kek:
    """The KEK in ``path``; FileNotFoundError when it does not exist."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "is a symbolic link", "set [configdrive]key_file to the "
                          "real file, or replace the link by a copy of it (mode 0600)") \
                from None
        raise _refuse(path, f"cannot be opened ({exc.strerror})", "check the file and the "
                      "permissions of its directory") from None
    try:
        _check(path, os.fstat(fd))
        chunks = []
        size = 0
        while size <= _MAX_FILE_SIZE:
            chunk = os.read(fd, _MAX_FILE_SIZE + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})", "check the file") from None
    finally:
        os.close(fd)
    return Kek(path, _parse(path, b"".join(chunks)))


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: str, *, announce: bool = True) -> Kek | None:
    """Create ``path`` with a new KEK, atomically; None when another process created it
    first (its key is the one to use). ``announce``: log a warning naming it (a conductor
    making up a key must be noticed)."""
    directory = os.path.dirname(os.path.abspath(path))
    material = os.urandom(KEK_SIZE)
    try:
        # mkstemp: mode 0600, owned by us, a name nobody else uses.
        fd, tmp = tempfile.mkstemp(prefix=".configdrive-key-", dir=directory)
    except OSError as exc:
        raise _refuse(path, f"cannot be created ({exc.strerror})", "create its directory, "
                      "or set [configdrive]key_file") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(material.hex().encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # Unlike a rename, a link never replaces a key another conductor just made.
            os.link(tmp, path)
        except FileExistsError:
            return None
        _fsync_directory(directory)
    except OSError as exc:
        raise _refuse(path, f"cannot be created ({exc.strerror})", "check its directory, "
                      "or set [configdrive]key_file") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    kek = Kek(path, material)
    if announce:
        LOG.warning("Created a new config drive key-encryption key in %s (fingerprint %s). "
                    "Every conductor needs this same file: copy it to the others, and set "
                    "[configdrive]key_file_create = False once they have it", path,
                    kek.fingerprint)
    return kek


def read_kek(path: str, *, create: bool) -> Kek:
    """The KEK in ``path``; with ``create``, a missing file is created first."""
    try:
        return _read(path)
    except FileNotFoundError:
        if not create:
            raise _refuse(path, "does not exist and [configdrive]key_file_create is off",
                          f"{_SAME_FILE_ADVICE} to it, mode 0600, owned by {_user()}; for "
                          "the first conductor of a deployment, run: ironic-configdrive-keys "
                          f"generate {shlex.quote(path)}") from None
    created = _create(path)
    return created if created is not None else _read(path)


def generate(path: str) -> Kek:
    """Create a new key file at ``path``; an existing file is never replaced."""
    created = _create(path, announce=False)
    if created is None:
        raise _refuse(path, "already exists", "it was left as it is; choose another name")
    return created


def load_kek(path: str, *, create: bool = True) -> bytes:
    """The KEK material in ``path`` (created if missing, unless ``create`` is False)."""
    return read_kek(path, create=create).material


# -- wrapping ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Keyring:
    """The current KEK (wraps) and the retired ones (unwrap only)."""

    current: Kek
    old: tuple[Kek, ...] = ()

    def by_fingerprint(self) -> dict[str, Kek]:
        keks: dict[str, Kek] = {}
        for kek in (self.current, *self.old):
            keks.setdefault(kek.fingerprint, kek)
        return keks

    def is_current(self, wrapped: str) -> bool:
        return fingerprint_of(wrapped) == self.current.fingerprint

    def wrap(self, key: bytes) -> str:
        """``fingerprint:base64(wrapped key)`` under the current KEK."""
        return wrap(self.current.material, key)

    def unwrap(self, wrapped: str) -> bytes:
        """The drive key, unwrapped with whichever KEK wrapped it."""
        wanted = fingerprint_of(wrapped)
        kek = self.by_fingerprint().get(wanted)
        if kek is None:
            have = ", ".join(f"{k.fingerprint} in {k.path}"
                             for k in self.by_fingerprint().values())
            raise DriveKeyError(reason=f"the drive key was wrapped with another "
                                       f"key-encryption key (fingerprint {wanted}; this "
                                       f"conductor has {have}); give every conductor the "
                                       "same [configdrive]key_file, list a retired key's file "
                                       "in [configdrive]old_key_files, or deploy again "
                                       "passing the config drive")
        _, _, body = str(wrapped).partition(":")
        try:
            key = keywrap.aes_key_unwrap(kek.material, base64.b64decode(body, validate=True))
        except (ValueError, keywrap.InvalidUnwrap):
            raise DriveKeyError(reason="the wrapped drive key in driver_internal_info is "
                                       "corrupt; deploy again passing the config drive") \
                from None
        if len(key) != sealing.KEY_SIZE:
            raise DriveKeyError(reason="the wrapped drive key has the wrong length; deploy "
                                       "again passing the config drive")
        return key

    def rewrap(self, wrapped: str) -> str:
        """``wrapped`` under the current KEK (unchanged if it already is)."""
        return wrapped if self.is_current(wrapped) else self.wrap(self.unwrap(wrapped))


def load_keyring(key_file: str, old_key_files: Iterable[str] = (), *,
                 create: bool) -> Keyring:
    """The current KEK from ``key_file`` (created if missing and ``create``) and the retired
    ones from ``old_key_files`` (never created)."""
    old = []
    for path in old_key_files:
        try:
            old.append(_read(path))
        except FileNotFoundError:
            raise _refuse(path, "is listed in [configdrive]old_key_files but does not exist",
                          "restore it, or remove it from the list once "
                          "'ironic-configdrive-keys status' shows no node on its "
                          "fingerprint") from None
    return Keyring(read_kek(key_file, create=create), tuple(old))


def wrap(kek: bytes, key: bytes) -> str:
    """``fingerprint:base64(wrapped key)``: safe to keep where the API shows it."""
    wrapped = keywrap.aes_key_wrap(kek, key)
    return f"{fingerprint(kek)}:{base64.b64encode(wrapped).decode('ascii')}"


def unwrap(kek: bytes, text: str, *, path: str) -> bytes:
    """The drive key from its wrapped form, with one KEK (the one in ``path``)."""
    return Keyring(Kek(path, kek)).unwrap(text)
