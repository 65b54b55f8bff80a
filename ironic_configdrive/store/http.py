"""The ``http`` store: config drives as files under Ironic's HTTP root.

Files live in ``[deploy]http_root/[configdrive]http_subdir`` (directory mode 0750) and are
served by whatever already serves ``[deploy]http_url`` to agents and BMCs. Unless
``[configdrive]http_root_shared`` says every conductor mounts the same root, the files belong
to the conductor that wrote them (``host_local``): records name it as their holder. Names carry 256
random bits (``secrets.token_urlsafe``) because the web server has no access control: the
name is the secret, like a temp URL signature. Files are written to a temporary name and
renamed, so a reader never sees half an image, and get mode 0640. Compressed images end in
``.gz``; raw ones (encoding ``identity``, for virtual media) in ``.iso`` or ``.img``, because
some BMCs only mount URLs with such an extension.

Since the names are the only protection, the directory must never be listed: it gets an
empty ``index.html`` (restored whenever missing), and :meth:`HttpStore.validate` checks that
the web server does not list directories (see :func:`_lists_directories`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import requests

from ironic_configdrive.store import common
from ironic_configdrive.store.base import (
    GZIP,
    ConfigDriveStore,
    Listed,
    StoredImage,
    StoreError,
)

LOG = logging.getLogger(__name__)

DIR_MODE = 0o750
FILE_MODE = 0o640
GZIP_SUFFIX = ".gz"
#: Extensions of stored files: compressed, raw ISO9660, raw FAT, encrypted.
SUFFIXES = (GZIP_SUFFIX, ".iso", ".img", common.SEALED_SUFFIX)

#: What Apache, nginx, lighttpd and Python's http.server serve instead of a listing.
INDEX_NAME: Final = "index.html"
INDEX_BODY: Final = b"<!DOCTYPE html>\n<title></title>\n"

#: A conductor re-checks the web server's listing behaviour this often (validate runs on
#: every deploy and `baremetal node validate`; the check costs two GETs). A server found
#: listing is re-checked on every validate, so a fix takes effect at once.
LISTING_CHECK_TTL: Final = 300.0
LISTING_PROBE_TIMEOUT: Final = 5.0
#: Bytes of a reply searched for the probe's names (a listing of ~40000 drives).
LISTING_READ_LIMIT: Final = 4 * 1024 * 1024
LISTING_PROBE_PREFIX: Final = "listing-probe-"
LISTING_ADVICE: Final = (
    "turn directory listings off for [deploy]http_root: Apache 'Options -Indexes', nginx "
    "'autoindex off;', lighttpd 'dir-listing.activate = \"disable\"'")


@dataclasses.dataclass(frozen=True)
class _Verdict:
    lists: bool | None  # None: the probe could not reach the web server
    at: float


#: Per conductor process: folder URL -> the last verdict on it.
_verdicts: dict[str, _Verdict] = {}
_verdicts_lock = threading.Lock()
#: Seam for tests: the clock the verdicts age by.
_clock: Callable[[], float] = time.monotonic


def _fetch_page(url: str) -> str | None:
    """The body of a 200 reply to GET ``url`` (at most LISTING_READ_LIMIT bytes), else None.

    Redirects are not followed: a listing elsewhere is not this folder's. Raises
    ``requests.RequestException`` when the server cannot be asked.
    """
    with requests.get(url, timeout=LISTING_PROBE_TIMEOUT, allow_redirects=False,
                      stream=True) as reply:
        if reply.status_code != 200:
            return None
        body = b""
        for chunk in reply.iter_content(64 * 1024):
            body += chunk
            if len(body) >= LISTING_READ_LIMIT:
                break
    return body.decode("utf-8", errors="replace")


def _lists_directories(directory: Path, folder_url: str) -> bool:
    """Whether the web server lists ``folder_url`` or a directory below it.

    A listing is recognised by what every listing has in common, whatever its format
    (Apache, nginx, lighttpd, Python's, HTML or JSON): the names of the files in it. So a
    probe directory with a probe file, both named at random and holding nothing, is made in
    the folder, and both GETs are searched for those names. The probe directory has no index
    file, so it shows how the server treats directories in general: our ``index.html`` is
    one deletion away from exposing the folder, and a listing server exposes the rest of
    [deploy]http_root too. Names start with a letter (Apache's and nginx's listings hide
    dot files) and are plain hex, so no escaping changes them.
    """
    probe_dir = directory / f"{LISTING_PROBE_PREFIX}{secrets.token_hex(8)}"
    probe_file = f"probe-{secrets.token_hex(8)}.txt"
    probe_dir.mkdir(mode=DIR_MODE)
    try:
        (probe_dir / probe_file).write_bytes(b"ironic-configdrive directory listing probe\n")
        os.chmod(probe_dir / probe_file, FILE_MODE)
        for url, name in ((folder_url, probe_dir.name),
                          (f"{folder_url}{probe_dir.name}/", probe_file)):
            body = _fetch_page(url)
            if body is not None and name in body:
                return True
        return False
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def _masked_name(name: str) -> str:
    """The file name with its random part hidden (it is what protects the file).

    Names are ``<node>.<deploy id>.<secret><suffix>``; none of the parts contains a dot.
    """
    parts = name.split(".")
    if len(parts) < 3:
        return "***"
    return ".".join([parts[0], parts[1], "***", *parts[3:]])



def _write_atomically(directory: Path, name: str, data: bytes, *, durable: bool) -> None:
    """Write ``directory/name`` (mode FILE_MODE) through a temporary file renamed into place,
    so that a web server never serves it half-written; ``durable``: fsync the file and the
    directory before returning. Raises OSError, leaving no temporary file behind."""
    tmp_path: str | None = None
    try:
        fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
            os.fchmod(f.fileno(), FILE_MODE)
        os.replace(tmp_path, directory / name)
        tmp_path = None
        if durable:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)

class HttpStore(ConfigDriveStore):
    """Config drives as unguessably named files under the conductor's HTTP root."""

    name = "http"

    def __init__(self, *, http_root: str | None = None, http_url: str | None = None,
                 subdir: str | None = None, conf: Any = None) -> None:
        conf = conf or common.ironic_conf()
        self.http_root = Path(http_root or conf.deploy.http_root)
        self.http_url: str | None = http_url or conf.deploy.http_url
        self.subdir: str = (subdir if subdir is not None else conf.configdrive.http_subdir)
        self.subdir = self.subdir.strip("/")
        # Files on this conductor's own disk belong to it, unless every conductor mounts
        # the same http_root.
        self.host_local = not conf.configdrive.http_root_shared
        if not self.subdir or ".." in Path(self.subdir).parts:
            raise StoreError(store=self.name, node="<any>",
                             reason=f"[configdrive]http_subdir {self.subdir!r} must be a "
                                    "relative directory inside [deploy]http_root")

    @property
    def directory(self) -> Path:
        return self.http_root / self.subdir

    def _error(self, node: str, reason: str) -> StoreError:
        return StoreError(store=self.name, node=node, reason=reason)

    def _prepare_dir(self, node: str) -> Path:
        if not self.http_root.is_dir():
            raise self._error(node, f"[deploy]http_root {self.http_root} is not a directory; "
                                    "create it (and serve it at [deploy]http_url)")
        directory = self.directory
        try:
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(node, f"cannot create {directory}: {exc.strerror}; make "
                                    "[deploy]http_root writable by the conductor") from exc
        self._ensure_index(directory, node)
        return directory

    def _ensure_index(self, directory: Path, node: str) -> None:
        """Write the empty index file a web server shows instead of listing the folder."""
        if (directory / INDEX_NAME).is_file():
            return
        try:
            _write_atomically(directory, INDEX_NAME, INDEX_BODY, durable=False)
        except OSError as exc:
            raise self._error(node, f"cannot write {INDEX_NAME} into {directory} "
                                    f"({exc.strerror}): it is not writable; give the "
                                    "conductor write access to it") from exc
        LOG.info("Wrote %s into %s so that the web server never lists it", INDEX_NAME,
                 directory)

    @property
    def folder_url(self) -> str:
        assert self.http_url is not None  # checked by validate before use
        return f"{self.http_url.rstrip('/')}/{quote(self.subdir)}/"

    def _check_no_listing(self, directory: Path) -> None:
        """Fail if the web server lists directories; verdicts are kept LISTING_CHECK_TTL.

        When the probe cannot reach the server this only warns: a conductor often cannot
        reach [deploy]http_url the way nodes and BMCs do (another network, a firewall, a
        proxy), and failing every validate then would stop deploys over a hardening check
        whose outcome is unknown; the drive's own download fails clearly if the server is
        really down.
        """
        folder_url = self.folder_url
        with _verdicts_lock:
            verdict = _verdicts.get(folder_url)
            if verdict is None or verdict.lists or _clock() - verdict.at >= LISTING_CHECK_TTL:
                verdict = _Verdict(self._probe(directory, folder_url), _clock())
                _verdicts[folder_url] = verdict
        if verdict.lists:
            raise self._error("<any>", (
                f"the web server behind [deploy]http_url lists {folder_url} (or directories "
                "below it): the random file names are all that protects the config drives "
                "and virtual media copies kept there, and a listing shows them to anyone "
                f"who can reach it; {LISTING_ADVICE}"))

    def _probe(self, directory: Path, folder_url: str) -> bool | None:
        try:
            return _lists_directories(directory, folder_url)
        except requests.RequestException as exc:
            LOG.warning("Could not check whether the web server lists %s (%s); a server that "
                        "lists directories shows the secret names of config drives: make "
                        "sure it does not (%s)", folder_url, type(exc).__name__,
                        LISTING_ADVICE)
            return None
        except OSError as exc:
            raise self._error("<any>", f"cannot make the listing probe in {directory}: "
                                       f"{exc.strerror}; give the conductor write access "
                                       "to it") from exc

    def _path_of(self, location: str, node: str) -> Path:
        rel = Path(location)
        if (rel.is_absolute() or ".." in rel.parts or len(rel.parts) < 2
                or not rel.name.startswith(f"{node}.") or not rel.name.endswith(SUFFIXES)):
            raise self._error(node, f"location {_masked_name(rel.name)} is not a config drive "
                                    "of this node; the node's driver_internal_info is "
                                    "inconsistent")
        return self.http_root / rel

    def _url(self, location: str) -> str:
        assert self.http_url is not None  # checked by put/url_for before use
        return f"{self.http_url.rstrip('/')}/{quote(location)}"

    def _require_url(self, node: str) -> None:
        if not self.http_url:
            raise self._error(node, "[deploy]http_url is not set; set it to the URL that "
                                    "serves [deploy]http_root")

    # -- the store interface -----------------------------------------------------------
    def validate(self) -> None:
        node = "<any>"
        self._require_url(node)
        directory = self._prepare_dir(node)
        try:
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        except OSError as exc:
            raise self._error(node, f"{directory} is not writable: {exc.strerror}; give the "
                                    "conductor write access to it") from exc
        os.close(fd)
        os.unlink(probe)
        self._check_no_listing(directory)

    def locate(self, node_uuid: str, image: bytes, *, deploy_id: str,
               encoding: str = GZIP, sealed: bool = False) -> str:
        common.check_id(self.name, node_uuid, "node UUID", node_uuid)
        common.check_id(self.name, node_uuid, "deploy id", deploy_id)
        suffix = common.suffix(image, encoding, sealed, GZIP_SUFFIX)
        return f"{self.subdir}/{node_uuid}.{deploy_id}.{secrets.token_urlsafe(32)}{suffix}"

    def list_stored(self, *, limit: int) -> list[Listed]:
        directory = self.directory
        found: list[Listed] = []
        now = time.time()
        try:
            entries = os.scandir(directory)
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise self._error("<any>", f"cannot list {directory}: {exc.strerror}; make "
                                       "[deploy]http_root readable by the conductor") from exc
        # The reconciler calls this periodically: a deleted index file comes back soon.
        try:
            self._ensure_index(directory, "<any>")
        except StoreError as exc:
            LOG.warning("%s", exc.message)
        with entries:
            for entry in entries:
                parts = entry.name.split(".")
                if (len(parts) < 4 or entry.name.startswith(".")
                        or not entry.name.endswith(SUFFIXES) or not entry.is_file()):
                    continue
                try:
                    age = now - entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                found.append(Listed(location=f"{self.subdir}/{entry.name}",
                                    node_uuid=parts[0], deploy_id=parts[1], age=age))
                if len(found) >= limit:
                    break
        return found

    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = GZIP, key: bytes | None = None,
            location: str | None = None) -> StoredImage:
        sealed = key is not None
        if location is None:
            location = self.locate(node_uuid, image, deploy_id=deploy_id, encoding=encoding,
                                   sealed=sealed)
        name = self._path_of(location, node_uuid).name
        if not name.startswith(f"{node_uuid}.{deploy_id}."):
            raise self._error(node_uuid, "the location given is not this deploy's; this is a "
                                         "bug in the caller, please report it")
        self._require_url(node_uuid)
        data, sha256, size = common.encode(self.name, node_uuid, image, encoding, key)
        directory = self._prepare_dir(node_uuid)
        try:
            _write_atomically(directory, name, data, durable=True)
        except OSError as exc:
            raise self._error(node_uuid, f"cannot write the config drive into {directory}: "
                                         f"{exc.strerror}; check free space and permissions "
                                         "of [deploy]http_root") from exc
        LOG.info("Stored config drive of node %s as %s/%s (%d bytes, %d stored, %s%s)",
                 node_uuid, self.subdir, _masked_name(name), size, len(data), encoding,
                 ", encrypted" if sealed else "")
        return StoredImage(store=self.name, location=location, url=self._url(location),
                           sha256=sha256, size=size, encoding=encoding, expires_at=None,
                           sealed=sealed, key=key)

    def url_for(self, location: str, *, node_uuid: str) -> str:
        path = self._path_of(location, node_uuid)
        self._require_url(node_uuid)
        if not path.is_file():
            raise self._error(node_uuid, f"stored config drive {_masked_name(path.name)} is "
                                         "gone from [deploy]http_root; redeploy or rebuild "
                                         "the node to store a new one")
        return self._url(location)

    def delete(self, location: str, *, node_uuid: str) -> None:
        path = self._path_of(location, node_uuid)
        try:
            path.unlink()
        except FileNotFoundError:
            LOG.debug("Config drive file of node %s already gone", node_uuid)
            return
        except OSError as exc:
            raise self._error(node_uuid, f"cannot delete {_masked_name(path.name)} from "
                                         f"{path.parent}: {exc.strerror}; fix the permissions and "
                                         "delete it by hand") from exc
        LOG.info("Deleted config drive file %s of node %s", _masked_name(path.name),
                 node_uuid)
