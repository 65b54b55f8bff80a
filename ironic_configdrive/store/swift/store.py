"""The ``swift`` store: config drives as Swift (or radosgw) objects behind temporary URLs.

One private container (created if missing, never given a read ACL), one object per node and
deploy named ``<node_uuid>/<deploy_id>``, gzip-compressed (or raw for virtual media, then
named with a ``.iso``/``.img`` extension some BMCs insist on), with ``X-Delete-After`` as a
backstop should teardown never run. Readers get a GET temp URL signed with the account key,
else the container key (:mod:`.keys`). Only plain object/container calls and tempurl are
used, so radosgw works too.

Connections come from a factory (:mod:`.connections`): by default python-swiftclient on
Ironic's ``[swift]`` keystoneauth session and endpoint; tests and keystone-less clusters
pass their own (:meth:`SwiftStore.from_credentials`). Transient failures (5xx, connection
errors) are retried by swiftclient, ``[configdrive]store_retries`` times with exponential
backoff.

Stores are made per call (``loader.get_store``), so what is worth keeping lives per process
and is shared by every store with the same connection settings (:mod:`.shared`): a pool of
authenticated connections (one token for all, renewed when Swift answers 401) and, per
container, the checked temp URL key. A warm put is then one PUT, a delete one DELETE, and
url_for one anonymous HEAD of the URL it returns.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Hashable
from typing import Any, Final

from ironic_configdrive.masking import install_record_masking
from ironic_configdrive.store import common
from ironic_configdrive.store.base import GZIP, ConfigDriveStore, Listed, StoredImage, StoreError
from ironic_configdrive.store.swift import connections, names, objects, tempurl
from ironic_configdrive.store.swift.connections import ConnectionFactory
from ironic_configdrive.store.swift.errors import (
    DEFAULT_BACKOFF,
    MAX_BACKOFF,
    TRANSPORT_ERRORS,
    ContainerMissing,
    SignatureRefused,
    describe,
    is_not_found,
    is_transient,
)
from ironic_configdrive.store.swift.keys import ContainerKeys
from ironic_configdrive.store.swift.pool import ConnectionPool
from ironic_configdrive.store.swift.shared import Shared, shared_for

LOG = logging.getLogger(__package__)

#: Container listing page size of list_stored.
LISTING_PAGE: Final = 1000


class SwiftStore(ConfigDriveStore):
    """Config drives in Swift/radosgw, handed out as GET temp URLs."""

    name = "swift"

    def __init__(self, *, connection_factory: ConnectionFactory | None = None,
                 container: str | None = None, temp_url_duration: int | None = None,
                 delete_after: int | None = None, retries: int | None = None,
                 retry_backoff: float = DEFAULT_BACKOFF, temp_url_digest: str = "sha256",
                 conf: Any = None, connection_key: Hashable | None = None) -> None:
        """Settings default to ``[configdrive]``; keyword arguments override them.

        :param connection_factory: returns a new ``swiftclient.client.Connection``; the
            store pools them and sets its ``retries`` and backoff on each. Default: Ironic's
            ``[swift]`` auth.
        :param connection_key: stores of this process with equal keys share one connection
            pool, token and key cache, so the key must identify what the factory connects
            as. None with a factory: this store's own pool and caches.
        :param temp_url_digest: HMAC digest of temp URLs; radosgw releases that only know
            HMAC-SHA1 need ``"sha1"``.
        """
        # urllib3's debug log quotes request paths: url_for's check of a temp URL would show
        # its signature there.
        install_record_masking()
        conf = conf or common.ironic_conf()
        cfg = conf.configdrive
        self.container: str = container or cfg.swift_container
        self.temp_url_duration: int = (temp_url_duration if temp_url_duration is not None
                                       else cfg.swift_temp_url_duration)
        self.delete_after: int = (delete_after if delete_after is not None
                                  else cfg.swift_delete_after)
        self.retries: int = retries if retries is not None else cfg.store_retries
        self.retry_backoff = retry_backoff
        self.temp_url_digest = temp_url_digest
        self.host: str | None = getattr(conf, "host", None) or None
        if connection_factory is None and cfg.swift_auth_url:
            connection_factory, connection_key = connections.tempauth_factory(conf)
        elif connection_factory is None:
            connection_key = connections.keystone_key(conf)
        self._factory = connection_factory
        self._shared = Shared() if connection_key is None else shared_for(connection_key)
        self._keys = ContainerKeys(self.name, self._shared, self._fail)

    @classmethod
    def from_credentials(cls, auth_url: str, user: str, key: str, *,
                         auth_version: str = "1", os_options: dict[str, Any] | None = None,
                         **kwargs: Any) -> SwiftStore:
        """A store that authenticates with explicit credentials (tempauth, keystone v3)."""

        kwargs["conf"] = kwargs.get("conf") or common.ironic_conf()
        factory, connection_key = connections.credentials_factory(
            auth_url, user, key, auth_version, os_options,
            connections.request_timeout(kwargs["conf"]))
        return cls(connection_factory=factory, connection_key=connection_key, **kwargs)

    @property
    def pool(self) -> ConnectionPool:
        """This store's connection pool (shared with equal stores of this process)."""
        return self._shared.pool

    # -- plumbing ----------------------------------------------------------------------
    def _connect(self, node: str) -> Any:
        """A new connection from the factory, with this store's retry settings."""
        factory = self._factory or connections.keystone_connection_factory()
        try:
            conn = factory()
        except Exception as exc:
            # keystoneauth, Ironic's config loading: anything here is a setup problem.
            raise StoreError(store=self.name, node=node,
                             reason=f"cannot set up the Swift connection ({type(exc).__name__}:"
                                    f" {exc}); check the [swift] section of ironic.conf") from exc
        self._configure(conn)
        return conn

    def _configure(self, conn: Any) -> None:
        # Pooled connections may have served a store with other settings.
        conn.retries = self.retries
        conn.starting_backoff = self.retry_backoff
        conn.max_backoff = max(self.retry_backoff, MAX_BACKOFF)

    def _connection(self, node: str) -> contextlib.AbstractContextManager[Any]:
        """A pooled, authenticated connection for one operation."""
        return self._shared.pool.lease(lambda: self._connect(node), self._configure,
                                       lambda conn: self._authenticate(conn, node))

    def _authenticate(self, conn: Any, node: str) -> None:
        """Obtain a token on ``conn``, retrying what may pass like swiftclient does."""
        backoff = self.retry_backoff
        for attempt in range(self.retries + 1):
            try:
                conn.get_auth()
                return
            except TRANSPORT_ERRORS as exc:
                if attempt == self.retries or not is_transient(exc):
                    raise self._fail(node, "authentication to Swift", exc,
                                     "check the [swift] credentials and endpoint (or "
                                     "[configdrive]swift_auth_url, swift_user and "
                                     "swift_key)") from exc
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _fail(self, node: str, action: str, exc: BaseException, advice: str) -> StoreError:
        return StoreError(store=self.name, node=node,
                          reason=f"{action} failed after {self.retries + 1} attempt(s): "
                                 f"{describe(exc)}; {advice}")

    def _sign(self, conn: Any, key: str, container: str, obj: str) -> tuple[str, float]:
        return tempurl.sign(conn, key, container, obj, duration=self.temp_url_duration,
                            digest=self.temp_url_digest)

    def _probe(self, conn: Any, url: str) -> int:
        return tempurl.probe(conn, url, retries=self.retries, backoff=self.retry_backoff)

    def _signed_url(self, conn: Any, node: str, container: str, obj: str) -> str:
        key = self._keys.key(conn, node, container, create=False)
        return self._sign(conn, key, container, obj)[0]

    # -- the store interface -----------------------------------------------------------
    def validate(self) -> None:
        node = "<any>"
        if self.delete_after and self.delete_after < self.temp_url_duration:
            raise StoreError(store=self.name, node=node,
                             reason=f"swift_delete_after ({self.delete_after}s) is shorter than "
                                    f"swift_temp_url_duration ({self.temp_url_duration}s): "
                                    "objects would vanish while their URL is valid; raise it "
                                    "or set it to 0")
        # A fresh look at the account and container, also for the cached key: validate()
        # runs before each deploy, so a key an operator changed is picked up then.
        with self._connection(node) as conn:
            self._keys.refresh(conn, node, self.container)

    def locate(self, node_uuid: str, image: bytes, *, deploy_id: str,
               encoding: str = GZIP, sealed: bool = False) -> str:
        return f"{self.container}/" + names.object_name(self.name, node_uuid, image, deploy_id,
                                                        encoding, sealed)

    def list_stored(self, *, limit: int) -> list[Listed]:
        node = "<any>"
        found: list[Listed] = []
        marker = ""
        with self._connection(node) as conn:
            while len(found) < limit:
                try:
                    _headers, page = conn.get_container(self.container, marker=marker,
                                                        limit=min(LISTING_PAGE, limit))
                except TRANSPORT_ERRORS as exc:
                    if is_not_found(exc):
                        return []  # no container, nothing stored yet
                    raise self._fail(node, f"listing of container {self.container}", exc,
                                     "check that Swift is reachable; the reconciler tries "
                                     "again later") from exc
                if not page:
                    break
                now = time.time()
                for item in page:
                    parsed = names.parse_name(str(item.get("name", "")))
                    if parsed is not None and len(found) < limit:
                        found.append(Listed(location=f"{self.container}/{item['name']}",
                                            node_uuid=parsed[0], deploy_id=parsed[1],
                                            age=names.age(item.get("last_modified"), now)))
                marker = str(page[-1]["name"])
        return found

    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = GZIP, key: bytes | None = None,
            location: str | None = None) -> StoredImage:
        sealed = key is not None
        obj = names.object_name(self.name, node_uuid, image, deploy_id, encoding, sealed)
        if location is not None:
            names.check_location(self.name, self.container, location,
                                 f"{self.container}/{obj}", node_uuid)
        data, sha256, size = common.encode(self.name, node_uuid, image, encoding, key)
        headers = objects.headers(sha256=sha256, size=size, node=node_uuid,
                                  deploy_id=deploy_id, host=self.host,
                                  delete_after=self.delete_after)
        content_type = common.content_type(image, encoding, sealed)
        with self._connection(node_uuid) as conn:
            # The key first: a URL that cannot be signed must not leave an object behind.
            temp_url_key = self._keys.key(conn, node_uuid, self.container, create=True)
            started = time.monotonic()
            try:
                try:
                    objects.upload(conn, self.container, obj, data, content_type, headers)
                except TRANSPORT_ERRORS as exc:
                    if not is_not_found(exc):
                        raise
                    # The container was deleted under us (with any key it had): make it
                    # again, once.
                    LOG.warning("Swift container %s vanished; creating it again",
                                self.container)
                    self._shared.container(self.container).forget()
                    temp_url_key = self._keys.key(conn, node_uuid, self.container,
                                                  create=True)
                    objects.upload(conn, self.container, obj, data, content_type, headers)
            except TRANSPORT_ERRORS as exc:
                # Whatever failed may be our picture of the container: check it next time.
                self._shared.container(self.container).expire()
                note = objects.remove_partial(conn, node_uuid, self.container, obj,
                                              self.delete_after)
                raise self._fail(node_uuid, f"upload of {self.container}/{obj}", exc,
                                 f"{note}; check the Swift proxy and its backends, then "
                                 "retry the deploy") from exc
            url, expires_at = self._sign(conn, temp_url_key, self.container, obj)
        LOG.info("Stored config drive of node %s as Swift object %s/%s (%d bytes, %d "
                 "stored, %s%s) in %.3fs", node_uuid, self.container, obj, size, len(data),
                 encoding, ", encrypted" if sealed else "", time.monotonic() - started)
        return StoredImage(store=self.name, location=f"{self.container}/{obj}", url=url,
                           sha256=sha256, size=size, encoding=encoding, expires_at=expires_at,
                           sealed=sealed, key=key)

    def url_for(self, location: str, *, node_uuid: str) -> str:
        container, obj = names.split_location(self.name, location, node_uuid)
        state = self._shared.container(container)
        with self._connection(node_uuid) as conn:
            try:
                url = self._signed_url(conn, node_uuid, container, obj)
                try:
                    status = self._probe(conn, url)
                except SignatureRefused:
                    # The key changed (rotated, or another conductor's won a race): read it
                    # again and sign anew, once.
                    state.forget()
                    url = self._signed_url(conn, node_uuid, container, obj)
                    status = self._probe(conn, url)
            except ContainerMissing:
                status = 404
            except SignatureRefused as exc:
                state.expire()
                raise StoreError(store=self.name, node=node_uuid,
                                 reason=f"Swift refuses temp URLs of {location} signed with "
                                        "the key it holds (HTTP 401); check that the proxy "
                                        "runs the tempurl middleware (on radosgw: set an "
                                        "account temp URL key)") from exc
            except TRANSPORT_ERRORS as exc:
                state.expire()
                raise self._fail(node_uuid, f"HEAD of {location} by temp URL", exc,
                                 "check that Swift is reachable") from exc
        if status == 404:
            raise StoreError(store=self.name, node=node_uuid,
                             reason=f"object {location} is gone (deleted, or expired by "
                                    "X-Delete-After); redeploy or rebuild the node to store "
                                    "a new config drive")
        return url

    def delete(self, location: str, *, node_uuid: str) -> None:
        container, obj = names.split_location(self.name, location, node_uuid)
        with self._connection(node_uuid) as conn:
            try:
                conn.delete_object(container, obj)
            except TRANSPORT_ERRORS as exc:
                if is_not_found(exc):
                    LOG.debug("Config drive object %s of node %s already gone", location,
                              node_uuid)
                    return
                raise self._fail(node_uuid, f"deletion of {location}", exc,
                                 "retry the teardown; the object otherwise expires through "
                                 "X-Delete-After") from exc
        LOG.info("Deleted config drive object %s of node %s", location, node_uuid)
