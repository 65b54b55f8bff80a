"""The ``swift`` store: config drives as Swift (or radosgw) objects behind temporary URLs.

One private container (created if missing, never given a read ACL), one object per node and
deploy named ``<node_uuid>/<deploy_id>``, gzip-compressed (or raw for virtual media, then
named with a ``.iso``/``.img`` extension some BMCs insist on), with ``X-Delete-After`` as a
backstop should teardown never run. Readers get a GET temp URL signed with the account key
(``X-Account-Meta-Temp-Url-Key``, what Ironic itself uses), else the container key; if
neither exists a random container key is set once. Only plain object/container calls and
tempurl are used, so radosgw works too (radosgw only honours *account* keys: set one there).

Connections come from a factory: by default python-swiftclient on Ironic's ``[swift]``
keystoneauth session and endpoint; tests and keystone-less clusters pass their own
(:meth:`SwiftStore.from_credentials`). Transient failures (5xx, connection errors) are
retried by swiftclient, ``[configdrive]store_retries`` times with exponential backoff.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oslo_config import cfg
from requests.exceptions import RequestException
from swiftclient import client as swift_client
from swiftclient import utils as swift_utils

from ironic_configdrive.store import common
from ironic_configdrive.store.base import GZIP, ConfigDriveStore, StoredImage, StoreError

LOG = logging.getLogger(__name__)

# swiftclient's debug log shows the first characters of temp URL key headers; show none.
swift_client.logger_settings["reveal_sensitive_prefix"] = 0

ConnectionFactory = Callable[[], Any]

ACCOUNT_KEYS = ("x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2")
CONTAINER_KEYS = ("x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2")
DEFAULT_BACKOFF = 1.0
#: Seconds per Swift request when neither [configdrive]swift_timeout nor [swift]timeout is set.
DEFAULT_TIMEOUT = 60.0
MAX_BACKOFF = 16.0

# Errors after which swiftclient has given up (its own retries are spent).
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    swift_client.ClientException, socket.error, RequestException)


def _describe(exc: BaseException) -> str:
    """A short cause for messages: HTTP status or error type, never headers or tokens."""
    if isinstance(exc, swift_client.ClientException):
        if exc.http_status is not None:
            return f"HTTP {exc.http_status} {exc.http_reason or ''}".rstrip()
        return exc.msg
    return f"{type(exc).__name__}: {exc}"


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, swift_client.ClientException) and exc.http_status == 404


def keystone_connection_factory() -> ConnectionFactory:
    """Connections authenticated by Ironic's ``[swift]`` keystoneauth options.

    The storage URL comes from the ``[swift]`` adapter options (catalog lookup with
    ``valid_interfaces``/``region_name``, or ``endpoint_override``), as for Ironic's own
    Swift use; swiftclient re-authenticates through the session on a 401.
    """
    conf = common.ironic_conf()

    def factory() -> Any:
        from ironic.common import keystone
        from ironic.common import swift as ironic_swift

        session = ironic_swift.get_swift_session()
        endpoint = keystone.get_endpoint("swift", session=session)
        interfaces = conf.swift.valid_interfaces or ["internal"]
        return swift_client.Connection(
            session=session, preauthurl=endpoint, timeout=request_timeout(conf),
            os_options={"endpoint_type": interfaces[0], "region_name": conf.swift.region_name,
                        "service_type": "object-store"})

    return factory


def _credentials_factory(cfg: Any) -> ConnectionFactory:
    """Connections for ``[configdrive]swift_auth_url/swift_user/swift_key`` (no Keystone)."""
    if not (cfg.swift_user and cfg.swift_key):
        raise StoreError(store="swift", node="<any>",
                         reason="[configdrive]swift_auth_url is set but swift_user or "
                                "swift_key is not; set all three, or none to use Ironic's "
                                "[swift] Keystone session")
    auth_url, user, key = cfg.swift_auth_url, cfg.swift_user, cfg.swift_key
    timeout = request_timeout(common.ironic_conf())

    def factory() -> Any:
        return swift_client.Connection(authurl=auth_url, user=user, key=key, auth_version="1",
                                       timeout=timeout)

    return factory


def request_timeout(conf: Any) -> float:
    """Seconds a Swift request may take: ``[configdrive]swift_timeout``, else ``[swift]timeout``.

    swiftclient waits forever by default, which would hold the node's lock for as long as a
    stuck proxy keeps the connection open.
    """
    own = conf.configdrive.swift_timeout
    if own:
        return float(own)
    try:
        ironic_swift = conf.swift.timeout
    except (AttributeError, cfg.NoSuchOptError, cfg.NoSuchGroupError):
        ironic_swift = None
    return float(ironic_swift) if ironic_swift else DEFAULT_TIMEOUT


class SwiftStore(ConfigDriveStore):
    """Config drives in Swift/radosgw, handed out as GET temp URLs."""

    name = "swift"

    def __init__(self, *, connection_factory: ConnectionFactory | None = None,
                 container: str | None = None, temp_url_duration: int | None = None,
                 delete_after: int | None = None, retries: int | None = None,
                 retry_backoff: float = DEFAULT_BACKOFF, temp_url_digest: str = "sha256",
                 conf: Any = None) -> None:
        """Settings default to ``[configdrive]``; keyword arguments override them.

        :param connection_factory: returns a fresh ``swiftclient.client.Connection`` per
            operation (connections are not shared between green threads). The store sets
            its ``retries`` and backoff on each. Default: Ironic's ``[swift]`` auth.
        :param temp_url_digest: HMAC digest of temp URLs; radosgw releases that only know
            HMAC-SHA1 need ``"sha1"``.
        """
        cfg = (conf or common.ironic_conf()).configdrive
        self.container: str = container or cfg.swift_container
        self.temp_url_duration: int = (temp_url_duration if temp_url_duration is not None
                                       else cfg.swift_temp_url_duration)
        self.delete_after: int = (delete_after if delete_after is not None
                                  else cfg.swift_delete_after)
        self.retries: int = retries if retries is not None else cfg.store_retries
        self.retry_backoff = retry_backoff
        self.temp_url_digest = temp_url_digest
        if connection_factory is None and cfg.swift_auth_url:
            connection_factory = _credentials_factory(cfg)
        self._factory = connection_factory

    @classmethod
    def from_credentials(cls, auth_url: str, user: str, key: str, *,
                         auth_version: str = "1", os_options: dict[str, Any] | None = None,
                         **kwargs: Any) -> SwiftStore:
        """A store that authenticates with explicit credentials (tempauth, keystone v3)."""

        timeout = request_timeout(kwargs.get("conf") or common.ironic_conf())

        def factory() -> Any:
            return swift_client.Connection(authurl=auth_url, user=user, key=key,
                                           auth_version=auth_version, os_options=os_options,
                                           timeout=timeout)

        return cls(connection_factory=factory, **kwargs)

    # -- plumbing ----------------------------------------------------------------------
    def _connect(self, node: str) -> Any:
        factory = self._factory or keystone_connection_factory()
        try:
            conn = factory()
        except Exception as exc:
            # keystoneauth, Ironic's config loading: anything here is a setup problem.
            raise StoreError(store=self.name, node=node,
                             reason=f"cannot set up the Swift connection ({type(exc).__name__}:"
                                    f" {exc}); check the [swift] section of ironic.conf") from exc
        conn.retries = self.retries
        conn.starting_backoff = self.retry_backoff
        conn.max_backoff = max(self.retry_backoff, MAX_BACKOFF)
        return conn

    def _fail(self, node: str, action: str, exc: BaseException, advice: str) -> StoreError:
        return StoreError(store=self.name, node=node,
                          reason=f"{action} failed after {self.retries + 1} attempt(s): "
                                 f"{_describe(exc)}; {advice}")

    def _split(self, location: str, node: str) -> tuple[str, str]:
        container, _, obj = location.partition("/")
        if not container or not obj.startswith(f"{node}/"):
            raise StoreError(store=self.name, node=node,
                             reason=f"location {location!r} is not a config drive of this "
                                    "node; the node's driver_internal_info is inconsistent")
        return container, obj

    def _ensure_container(self, conn: Any, node: str, *, create: bool) -> dict[str, str]:
        """Headers of the container (created private if missing); refuses public ones."""
        try:
            headers: dict[str, str] = conn.head_container(self.container)
        except _TRANSPORT_ERRORS as exc:
            if not _is_not_found(exc):
                raise self._fail(node, f"HEAD of container {self.container}", exc,
                                 "check that Swift is reachable and the [swift] credentials "
                                 "can use it") from exc
            if not create:
                return {}
            try:
                conn.put_container(self.container)
                LOG.info("Created private Swift container %s for config drives",
                         self.container)
                headers = conn.head_container(self.container)
            except _TRANSPORT_ERRORS as exc2:
                raise self._fail(node, f"creating container {self.container}", exc2,
                                 "check the account's quota and permissions, or create the "
                                 "container by hand") from exc2
        if headers.get("x-container-read"):
            raise StoreError(store=self.name, node=node,
                             reason=f"container {self.container} has a read ACL, which would "
                                    "expose config drives (they hold secrets); remove it "
                                    f"(swift post -r '' {self.container}) or set "
                                    "[configdrive]swift_container to a private container")
        return headers

    def _temp_url_key(self, conn: Any, node: str, container: str,
                      container_headers: dict[str, str] | None) -> str:
        try:
            account = conn.head_account()
            for name in ACCOUNT_KEYS:
                if account.get(name):
                    return str(account[name])
            if container_headers is None:
                container_headers = conn.head_container(container)
            for name in CONTAINER_KEYS:
                if container_headers.get(name):
                    return str(container_headers[name])
            key = secrets.token_hex(32)
            conn.post_container(container, {"X-Container-Meta-Temp-Url-Key": key})
        except _TRANSPORT_ERRORS as exc:
            raise self._fail(node, "reading or setting the temp URL key", exc,
                             "set X-Account-Meta-Temp-Url-Key on the account used by the "
                             "[swift] credentials (swift post -m Temp-URL-Key:<secret>)") from exc
        LOG.warning("Neither account %s nor container %s had a temp URL key, so a random "
                    "container key was set (radosgw ignores container keys: set an account "
                    "key there)",
                    urlsplit(conn.url or "").path.rsplit("/", 1)[-1], container)
        return key

    def _sign(self, conn: Any, key: str, container: str, obj: str) -> tuple[str, float]:
        parts = urlsplit(conn.url)
        expires = int(time.time()) + self.temp_url_duration
        path = f"{parts.path.rstrip('/')}/{container}/{obj}"
        signed = swift_utils.generate_temp_url(path, expires, key, "GET", absolute=True,
                                               digest=self.temp_url_digest)
        signed_path, _, query = signed.partition("?")
        return urlunsplit((parts.scheme, parts.netloc, signed_path, query, "")), float(expires)

    def _cleanup(self, conn: Any, node: str, container: str, obj: str) -> str:
        """Delete what a failed PUT may have left; return a note for the error message."""
        try:
            conn.delete_object(container, obj)
        except _TRANSPORT_ERRORS as exc:
            if _is_not_found(exc):
                return "nothing was left behind"
            LOG.warning("Could not delete partial config drive object %s/%s of node %s: %s",
                        container, obj, node, _describe(exc))
            expiry = (f"it expires in {self.delete_after}s (X-Delete-After)"
                      if self.delete_after else "delete it by hand")
            return f"object {container}/{obj} may remain: {expiry}"
        return "the partial object was deleted"

    # -- the store interface -----------------------------------------------------------
    def validate(self) -> None:
        node = "<any>"
        if self.delete_after and self.delete_after < self.temp_url_duration:
            raise StoreError(store=self.name, node=node,
                             reason=f"swift_delete_after ({self.delete_after}s) is shorter than "
                                    f"swift_temp_url_duration ({self.temp_url_duration}s): "
                                    "objects would vanish while their URL is valid; raise it "
                                    "or set it to 0")
        conn = self._connect(node)
        try:
            try:
                conn.head_account()
            except _TRANSPORT_ERRORS as exc:
                raise self._fail(node, "HEAD of the Swift account", exc,
                                 "check the [swift] credentials and endpoint") from exc
            self._ensure_container(conn, node, create=False)
        finally:
            conn.close()

    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = GZIP, key: bytes | None = None) -> StoredImage:
        common.check_id(self.name, node_uuid, "node UUID", node_uuid)
        common.check_id(self.name, node_uuid, "deploy id", deploy_id)
        data, sha256, size = common.encode(self.name, node_uuid, image, encoding, key)
        sealed = key is not None
        obj = f"{node_uuid}/{deploy_id}" + common.suffix(image, encoding, sealed, "")
        headers = {"X-Object-Meta-Configdrive-Sha256": sha256,
                   "X-Object-Meta-Configdrive-Size": str(size)}
        if self.delete_after:
            headers["X-Delete-After"] = str(self.delete_after)
        conn = self._connect(node_uuid)
        try:
            container_headers = self._ensure_container(conn, node_uuid, create=True)
            # The key first: a URL that cannot be signed must not leave an object behind.
            temp_url_key = self._temp_url_key(conn, node_uuid, self.container, container_headers)
            started = time.monotonic()
            try:
                conn.put_object(self.container, obj, io.BytesIO(data),
                                content_length=len(data),
                                etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                                content_type=common.content_type(image, encoding, sealed),
                                headers=headers)
            except _TRANSPORT_ERRORS as exc:
                note = self._cleanup(conn, node_uuid, self.container, obj)
                raise self._fail(node_uuid, f"upload of {self.container}/{obj}", exc,
                                 f"{note}; check the Swift proxy and its backends, then "
                                 "retry the deploy") from exc
            url, expires_at = self._sign(conn, temp_url_key, self.container, obj)
        finally:
            conn.close()
        LOG.info("Stored config drive of node %s as Swift object %s/%s (%d bytes, %d "
                 "stored, %s%s) in %.3fs", node_uuid, self.container, obj, size, len(data),
                 encoding, ", encrypted" if sealed else "", time.monotonic() - started)
        return StoredImage(store=self.name, location=f"{self.container}/{obj}", url=url,
                           sha256=sha256, size=size, encoding=encoding, expires_at=expires_at,
                           sealed=sealed, key=key)

    def url_for(self, location: str, *, node_uuid: str) -> str:
        container, obj = self._split(location, node_uuid)
        conn = self._connect(node_uuid)
        try:
            try:
                conn.head_object(container, obj)
            except _TRANSPORT_ERRORS as exc:
                if _is_not_found(exc):
                    raise StoreError(store=self.name, node=node_uuid,
                                     reason=f"object {location} is gone (deleted, or expired "
                                            "by X-Delete-After); redeploy or rebuild the node "
                                            "to store a new config drive") from exc
                raise self._fail(node_uuid, f"HEAD of {location}", exc,
                                 "check that Swift is reachable") from exc
            key = self._temp_url_key(conn, node_uuid, container, None)
            url, _expires = self._sign(conn, key, container, obj)
        finally:
            conn.close()
        return url

    def delete(self, location: str, *, node_uuid: str) -> None:
        container, obj = self._split(location, node_uuid)
        conn = self._connect(node_uuid)
        try:
            conn.delete_object(container, obj)
        except _TRANSPORT_ERRORS as exc:
            if _is_not_found(exc):
                LOG.debug("Config drive object %s of node %s already gone", location,
                          node_uuid)
                return
            raise self._fail(node_uuid, f"deletion of {location}", exc,
                             "retry the teardown; the object otherwise expires through "
                             "X-Delete-After") from exc
        finally:
            conn.close()
        LOG.info("Deleted config drive object %s of node %s", location, node_uuid)
