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

Stores are made per call (``loader.get_store``), so what is worth keeping lives per process
and is shared by every store with the same connection settings (:class:`_Shared`): a pool of
authenticated connections (one token for all, renewed when Swift answers 401) and, per
container, the checked temp URL key (:class:`_ContainerState`). A warm put is then one PUT,
a delete one DELETE, and url_for one anonymous HEAD of the URL it returns.

Locks: ``threading`` locks work for native threads and, once eventlet has monkey-patched
``threading``, for green threads. The locks held across requests are made when the first
store is (after any monkey-patching); the module's registry lock is only ever held for
dictionary operations, so even a native lock there cannot block an eventlet hub.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oslo_config import cfg
from requests.exceptions import RequestException
from swiftclient import client as swift_client
from swiftclient import utils as swift_utils

from ironic_configdrive.masking import install_log_filter
from ironic_configdrive.store import common
from ironic_configdrive.store.base import GZIP, ConfigDriveStore, Listed, StoredImage, StoreError

LOG = logging.getLogger(__name__)

# swiftclient's debug log shows the first characters of temp URL key headers; show none.
swift_client.logger_settings["reveal_sensitive_prefix"] = 0
# urllib3's debug log quotes request paths: url_for's check of a temp URL would show its
# signature there.
install_log_filter("urllib3.connectionpool")

ConnectionFactory = Callable[[], Any]

ACCOUNT_KEYS = ("x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2")
CONTAINER_KEYS = ("x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2")
DEFAULT_BACKOFF = 1.0
#: Seconds per Swift request when neither [configdrive]swift_timeout nor [swift]timeout is set.
DEFAULT_TIMEOUT = 60.0
MAX_BACKOFF = 16.0
#: Seconds a checked temp URL key (and the container's privacy) is trusted before it is read
#: again: bounds how long a key an operator rotated or removed goes unnoticed by put().
KEY_TTL = 300.0
#: Seconds between setting a container key and reading back which one Swift kept (see
#: :meth:`SwiftStore._set_container_key`), and how often to read it back.
KEY_SETTLE = 0.5
KEY_READBACKS = 3
#: Idle connections kept per pool; more are closed when they come back.
MAX_IDLE = 256
#: Container listing page size of list_stored.
LISTING_PAGE = 1000
#: Object name suffixes (after the deploy id) of stored drives; gzip ones have none.
SUFFIXES = ("", ".iso", ".img", common.SEALED_SUFFIX)
#: Object metadata an operator can judge an object by (besides its name).
META_PREFIX = "X-Object-Meta-Configdrive-"

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


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: no answer, or a 5xx / rate limit answer."""
    if isinstance(exc, swift_client.ClientException):
        status = exc.http_status
        return status is None or 500 <= status <= 599 or status in (408, 429, 498)
    return isinstance(exc, (socket.error, RequestException))


def _reusable_after(exc: BaseException) -> bool:
    """Whether a connection that saw ``exc`` is in a known state (a whole answer was read).

    Transport errors and anything unexpected leave it mid-request: it is discarded.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, swift_client.ClientException):
            return seen.http_status is not None
        if isinstance(seen, (_ContainerMissing, _SignatureRefused)):
            return True  # answers, read whole
        if isinstance(seen, (socket.error, RequestException)) or not isinstance(seen,
                                                                                StoreError):
            return False
        seen = seen.__cause__
    return True


def _parse_name(name: str) -> tuple[str, str] | None:
    """(node, deploy id) of an object name of ours, ``<node>/<deploy_id><suffix>``; else None."""
    node, _, rest = name.partition("/")
    deploy_id, dot, ext = rest.partition(".")
    if not (common.is_safe_id(node) and common.is_safe_id(deploy_id)):
        return None
    return (node, deploy_id) if dot + ext in SUFFIXES else None


def _age(last_modified: object, now: float) -> float | None:
    """Seconds since a listing's ``last_modified`` (UTC, ISO 8601 without zone)."""
    try:
        written = datetime.datetime.fromisoformat(str(last_modified))
    except ValueError:
        return None
    if written.tzinfo is None:
        written = written.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, now - written.timestamp())


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


def _keystone_key(conf: Any) -> Hashable:
    """What makes two stores' Keystone connections interchangeable."""
    try:
        interfaces = tuple(conf.swift.valid_interfaces or ())
        region = conf.swift.region_name
    except (AttributeError, cfg.NoSuchOptError, cfg.NoSuchGroupError):
        interfaces, region = (), None
    return ("keystone", interfaces, region, request_timeout(conf))


def _credentials_key(auth_url: str, user: str, key: str, auth_version: str,
                     os_options: dict[str, Any] | None, timeout: float) -> Hashable:
    # The password only as a digest: this key may show up in a debugger or a repr.
    return ("credentials", auth_url, user, hashlib.sha256(key.encode()).hexdigest(),
            auth_version, repr(sorted((os_options or {}).items())), timeout)


def _credentials_factory(conf: Any) -> tuple[ConnectionFactory, Hashable]:
    """Connections for ``[configdrive]swift_auth_url/swift_user/swift_key`` (no Keystone)."""
    cfg = conf.configdrive
    if not (cfg.swift_user and cfg.swift_key):
        raise StoreError(store="swift", node="<any>",
                         reason="[configdrive]swift_auth_url is set but swift_user or "
                                "swift_key is not; set all three, or none to use Ironic's "
                                "[swift] Keystone session")
    auth_url, user, key = cfg.swift_auth_url, cfg.swift_user, cfg.swift_key
    timeout = request_timeout(conf)

    def factory() -> Any:
        return swift_client.Connection(authurl=auth_url, user=user, key=key, auth_version="1",
                                       timeout=timeout)

    return factory, _credentials_key(auth_url, user, key, "1", None, timeout)


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


# -- per-process shared state --------------------------------------------------------------
@dataclasses.dataclass
class _Lease:
    """A pooled connection and the (storage URL, token) it was last given by the pool."""

    conn: Any
    auth: tuple[str, str] | None = None


class ConnectionPool:
    """Idle swiftclient Connections of one identity and the token they all use.

    A connection serves one operation at a time (swiftclient's are not thread-safe). The
    first one authenticates (once, however many threads ask at the same time); the others
    are handed its storage URL and token. When Swift answers 401 swiftclient authenticates
    again on that connection: the new token then replaces the shared one on its return.
    """

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._lock = threading.Lock()  # idle list and shared token; never held for I/O
        self._auth_lock = threading.Lock()  # one authentication at a time; held for I/O
        self._idle: list[_Lease] = []
        self._auth: tuple[str, str] | None = None
        #: Tokens obtained (first ones and renewals after a 401), for tests and benchmarks.
        self.authentications = 0

    def take(self) -> _Lease | None:
        """The most recently returned idle connection (its socket is likeliest alive)."""
        with self._lock:
            return self._idle.pop() if self._idle else None

    def authorize(self, lease: _Lease, authenticate: Callable[[Any], None]) -> None:
        """Give ``lease`` the shared token; obtain it first if there is none."""
        shared = self._auth
        if shared is not None:
            self._adopt(lease, shared)
            return
        conn = lease.conn
        if conn.url and conn.token:  # the factory pre-authenticated it
            self._publish(lease, renewed=False)
            return
        with self._auth_lock:
            shared = self._auth
            if shared is None:
                authenticate(conn)
                self._publish(lease, renewed=True)
            else:
                self._adopt(lease, shared)

    def release(self, lease: _Lease, *, reusable: bool) -> None:
        conn = lease.conn
        with self._lock:
            if conn.url and conn.token:
                if (conn.url, conn.token) != lease.auth:
                    # swiftclient authenticated again after a 401 (the token had expired):
                    # every connection should use the new token from now on.
                    self._auth = lease.auth = (conn.url, conn.token)
                    self.authentications += 1
            elif lease.auth is not None and lease.auth == self._auth:
                # swiftclient dropped the token we gave it (401 even after re-auth): it is
                # bad for everyone; the next operation authenticates afresh.
                self._auth = None
            if reusable and len(self._idle) < self.max_idle:
                self._idle.append(lease)
                return
        with contextlib.suppress(Exception):
            conn.close()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle, self._auth = self._idle, [], None
        for lease in idle:
            with contextlib.suppress(Exception):
                lease.conn.close()

    @staticmethod
    def _adopt(lease: _Lease, shared: tuple[str, str]) -> None:
        if lease.auth != shared:
            lease.conn.url, lease.conn.token = shared
            lease.auth = shared

    def _publish(self, lease: _Lease, *, renewed: bool) -> None:
        with self._lock:
            self._auth = lease.auth = (lease.conn.url, lease.conn.token)
            if renewed:
                self.authentications += 1


class _ContainerState:
    """The checked temp URL key of one container: from Swift at most every KEY_TTL seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one reader/setter of the key at a time; held for I/O
        # One tuple, so readers without the lock see key and time from the same check.
        self._entry: tuple[str | None, float] = (None, 0.0)

    def current(self) -> tuple[str | None, bool]:
        """(key or None, whether it is still fresh)."""
        key, checked = self._entry
        return key, key is not None and time.monotonic() - checked < KEY_TTL

    def remember(self, key: str | None) -> None:
        self._entry = (key, time.monotonic())

    def expire(self) -> None:
        """Check again on next use; meanwhile signing with the known key goes on."""
        self._entry = (self._entry[0], float("-inf"))

    def forget(self) -> None:
        """The key is known to be wrong (or the container gone): nobody may sign with it."""
        self._entry = (None, 0.0)


class _Shared:
    """What the stores of one process with the same connection settings share."""

    def __init__(self) -> None:
        self.pool = ConnectionPool()
        self._lock = threading.Lock()
        self._containers: dict[str, _ContainerState] = {}

    def container(self, name: str) -> _ContainerState:
        state = self._containers.get(name)
        if state is None:
            with self._lock:
                state = self._containers.setdefault(name, _ContainerState())
        return state


_REGISTRY_LOCK = threading.Lock()
_REGISTRY: dict[Hashable, _Shared] = {}


def _shared_for(key: Hashable) -> _Shared:
    shared = _REGISTRY.get(key)
    if shared is None:
        with _REGISTRY_LOCK:
            shared = _REGISTRY.setdefault(key, _Shared())
    return shared


def reset_shared_state() -> None:
    """Forget every pool, token and cached key of this process (tests; a config reload)."""
    with _REGISTRY_LOCK:
        shared = list(_REGISTRY.values())
        _REGISTRY.clear()
    for entry in shared:
        entry.pool.clear()


class _Body(bytes):
    """An upload body swiftclient sends in one piece and may retry.

    swiftclient retries only bodies it can rewind (``tell``/``seek``), and streams file
    objects in 8 KiB reads (a BytesIO costs a tenth of a millisecond per 60 KB put). Bytes
    go out in one write and, immutable, need no rewinding: this says so.
    """

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


class _ContainerMissing(Exception):
    """The container does not exist (and was not to be created)."""


class _SignatureRefused(Exception):
    """Swift answered 401 to a temp URL: it does not hold the key we signed with."""


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
            connection_factory, connection_key = _credentials_factory(conf)
        elif connection_factory is None:
            connection_key = _keystone_key(conf)
        self._factory = connection_factory
        self._shared = _Shared() if connection_key is None else _shared_for(connection_key)

    @classmethod
    def from_credentials(cls, auth_url: str, user: str, key: str, *,
                         auth_version: str = "1", os_options: dict[str, Any] | None = None,
                         **kwargs: Any) -> SwiftStore:
        """A store that authenticates with explicit credentials (tempauth, keystone v3)."""

        kwargs["conf"] = kwargs.get("conf") or common.ironic_conf()
        timeout = request_timeout(kwargs["conf"])

        def factory() -> Any:
            return swift_client.Connection(authurl=auth_url, user=user, key=key,
                                           auth_version=auth_version, os_options=os_options,
                                           timeout=timeout)

        connection_key = _credentials_key(auth_url, user, key, auth_version, os_options,
                                          timeout)
        return cls(connection_factory=factory, connection_key=connection_key, **kwargs)

    @property
    def pool(self) -> ConnectionPool:
        """This store's connection pool (shared with equal stores of this process)."""
        return self._shared.pool

    # -- plumbing ----------------------------------------------------------------------
    def _connect(self, node: str) -> Any:
        """A new connection from the factory, with this store's retry settings."""
        factory = self._factory or keystone_connection_factory()
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

    @contextlib.contextmanager
    def _connection(self, node: str) -> Iterator[Any]:
        """A pooled, authenticated connection for one operation; back to the pool after,
        unless it failed mid-request."""
        pool = self._shared.pool
        lease = pool.take()
        if lease is None:
            lease = _Lease(self._connect(node))
        else:
            self._configure(lease.conn)
        reusable = False
        try:
            pool.authorize(lease, lambda conn: self._authenticate(conn, node))
            yield lease.conn
            reusable = True
        except BaseException as exc:
            reusable = _reusable_after(exc)
            raise
        finally:
            pool.release(lease, reusable=reusable)

    def _authenticate(self, conn: Any, node: str) -> None:
        """Obtain a token on ``conn``, retrying what may pass like swiftclient does."""
        backoff = self.retry_backoff
        for attempt in range(self.retries + 1):
            try:
                conn.get_auth()
                return
            except _TRANSPORT_ERRORS as exc:
                if attempt == self.retries or not _is_transient(exc):
                    raise self._fail(node, "authentication to Swift", exc,
                                     "check the [swift] credentials and endpoint (or "
                                     "[configdrive]swift_auth_url, swift_user and "
                                     "swift_key)") from exc
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

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

    def _object_name(self, node_uuid: str, image: bytes, deploy_id: str, encoding: str,
                     sealed: bool) -> str:
        common.check_id(self.name, node_uuid, "node UUID", node_uuid)
        common.check_id(self.name, node_uuid, "deploy id", deploy_id)
        common.check_encoding(self.name, node_uuid, encoding)
        return f"{node_uuid}/{deploy_id}" + common.suffix(image, encoding, sealed, "")

    # -- the container and its temp URL key --------------------------------------------
    def _temp_url_key(self, conn: Any, node: str, container: str, *,
                      create: bool) -> str:
        """The key to sign with: cached, else read (or set) by one thread for all.

        ``create`` makes the container if it is missing; else :class:`_ContainerMissing` is
        raised then, unless the account has a key. An existing container without a key gets
        one (:meth:`_set_container_key`).
        """
        state = self._shared.container(container)
        key, fresh = state.current()
        if key is not None and fresh:
            return key
        if key is not None and not state.lock.acquire(blocking=False):
            return key  # another thread is checking it again; the known key is still good
        if key is None:
            state.lock.acquire()  # wait for whoever is reading or setting it now
        try:
            key, fresh = state.current()
            if key is not None and fresh:
                return key
            key = self._read_key(conn, node, container, create=create)
            state.remember(key)
            return key
        finally:
            state.lock.release()

    def _read_key(self, conn: Any, node: str, container: str, *, create: bool) -> str:
        headers = self._container_headers(conn, node, container, create=create)
        key = self._stored_key(conn, node, headers)
        if key is None:
            key = self._set_container_key(conn, node, container)
        return key

    def _container_headers(self, conn: Any, node: str, container: str, *,
                           create: bool) -> dict[str, str] | None:
        """Headers of the container (created private if ``create``); refuses public ones.

        None when it is missing and not created.
        """
        try:
            headers: dict[str, str] = conn.head_container(container)
        except _TRANSPORT_ERRORS as exc:
            if not _is_not_found(exc):
                raise self._fail(node, f"HEAD of container {container}", exc,
                                 "check that Swift is reachable and the [swift] credentials "
                                 "can use it") from exc
            if not create:
                return None
            try:
                conn.put_container(container)
                LOG.info("Created private Swift container %s for config drives", container)
                # Another conductor may have made it first, with a key: read what is there.
                headers = conn.head_container(container)
            except _TRANSPORT_ERRORS as exc2:
                raise self._fail(node, f"creating container {container}", exc2,
                                 "check the account's quota and permissions, or create the "
                                 "container by hand") from exc2
        if headers.get("x-container-read"):
            raise StoreError(store=self.name, node=node,
                             reason=f"container {container} has a read ACL, which would "
                                    "expose config drives (they hold secrets); remove it "
                                    f"(swift post -r '' {container}) or set "
                                    "[configdrive]swift_container to a private container")
        return headers

    def _stored_key(self, conn: Any, node: str,
                    container_headers: dict[str, str] | None) -> str | None:
        """The account key, else the container's; raises _ContainerMissing if neither and
        there is no container."""
        try:
            account = conn.head_account()
        except _TRANSPORT_ERRORS as exc:
            raise self._fail(node, "reading the temp URL key (HEAD of the Swift account)", exc,
                             "check the [swift] credentials and endpoint") from exc
        for name in ACCOUNT_KEYS:
            if account.get(name):
                return str(account[name])
        if container_headers is None:
            raise _ContainerMissing()
        for name in CONTAINER_KEYS:
            if container_headers.get(name):
                return str(container_headers[name])
        return None

    def _set_container_key(self, conn: Any, node: str, container: str) -> str:
        """Set a random container key and return the one Swift keeps.

        Swift has no conditional POST, so "set if absent" cannot be atomic. Within this
        process the container's lock makes one thread do it while the others wait for the
        result. Between processes (several conductors) two may both see no key and both
        POST: container metadata is last-writer-wins (by the proxy's timestamp) on every
        replica, so after a settle time we read the key back and use whatever Swift holds,
        never our own value blindly; a racer that wrote later reads back its own, one that
        wrote earlier reads the later one. What remains is a racer whose POST lands more than
        KEY_SETTLE after ours although it saw no key before ours landed (a stalled request):
        URLs we signed meanwhile would then answer 401. url_for() notices that (it checks
        the URL it hands out) and reads the key again; put() rereads it after KEY_TTL.
        """
        key = secrets.token_hex(32)
        try:
            conn.post_container(container, {"X-Container-Meta-Temp-Url-Key": key})
            for _ in range(KEY_READBACKS):
                time.sleep(KEY_SETTLE)
                headers = conn.head_container(container)
                stored = next((str(headers[n]) for n in CONTAINER_KEYS if headers.get(n)),
                              None)
                if stored is not None:
                    break
        except _TRANSPORT_ERRORS as exc:
            raise self._fail(node, "reading or setting the temp URL key", exc,
                             "set X-Account-Meta-Temp-Url-Key on the account used by the "
                             "[swift] credentials (swift post -m Temp-URL-Key:<secret>)") from exc
        if stored is None:
            raise StoreError(store=self.name, node=node,
                             reason=f"container {container} shows no temp URL key although "
                                    "one was just set; check the Swift cluster's health, or set "
                                    "X-Account-Meta-Temp-Url-Key on the account")
        LOG.warning("Neither account %s nor container %s had a temp URL key, so a random "
                    "container key was set%s (radosgw ignores container keys: set an account "
                    "key there)",
                    urlsplit(conn.url or "").path.rsplit("/", 1)[-1], container,
                    "" if stored == key else " (another conductor's won)")
        return stored

    # -- signing and checking URLs -----------------------------------------------------
    def _sign(self, conn: Any, key: str, container: str, obj: str) -> tuple[str, float]:
        parts = urlsplit(conn.url)
        expires = int(time.time()) + self.temp_url_duration
        path = f"{parts.path.rstrip('/')}/{container}/{obj}"
        signed = swift_utils.generate_temp_url(path, expires, key, "GET", absolute=True,
                                               digest=self.temp_url_digest)
        signed_path, _, query = signed.partition("?")
        return urlunsplit((parts.scheme, parts.netloc, signed_path, query, "")), float(expires)

    def _probe(self, conn: Any, url: str) -> int:
        """Status of an anonymous HEAD of a temp URL (a GET URL allows HEAD), as the agent or
        BMC will see it: 2xx or 404; :class:`_SignatureRefused` on 401.

        Sent on the pooled connection but not through swiftclient, whose request log would
        show the signature; retried like swiftclient retries.
        """
        parts = urlsplit(url)
        target = f"{parts.path}?{parts.query}"
        backoff = self.retry_backoff
        for attempt in range(self.retries + 1):
            failure: BaseException
            try:
                status, reason = self._head(conn, target)
            except (OSError, RequestException) as exc:
                conn.close()  # mid-request: swiftclient drops the connection too
                failure = exc
            else:
                if status == 401:
                    raise _SignatureRefused()
                failure = swift_client.ClientException("HEAD of a temp URL failed",
                                                       http_status=status, http_reason=reason)
                if not _is_transient(failure):
                    if status < 300 or status == 404:
                        return status
                    raise failure
            if attempt == self.retries:
                raise failure
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _head(conn: Any, target: str) -> tuple[int, str]:
        if not conn.http_conn:
            conn.http_conn = conn.http_connection()
        http = conn.http_conn[1]
        http.request("HEAD", target, "", {})  # no token: the signature must do
        resp = http.getresponse()
        resp.read()  # returns the socket to the connection's pool
        return int(resp.status), str(getattr(resp, "reason", "") or "")

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
        state = self._shared.container(self.container)
        with self._connection(node) as conn, state.lock:
            headers = self._container_headers(conn, node, self.container, create=False)
            try:
                key = self._stored_key(conn, node, headers)
            except _ContainerMissing:
                key = None  # put() creates it
            if key is None:
                state.forget()  # put() sets one
            else:
                state.remember(key)

    def locate(self, node_uuid: str, image: bytes, *, deploy_id: str,
               encoding: str = GZIP, sealed: bool = False) -> str:
        return f"{self.container}/" + self._object_name(node_uuid, image, deploy_id,
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
                except _TRANSPORT_ERRORS as exc:
                    if _is_not_found(exc):
                        return []  # no container, nothing stored yet
                    raise self._fail(node, f"listing of container {self.container}", exc,
                                     "check that Swift is reachable; the reconciler tries "
                                     "again later") from exc
                if not page:
                    break
                now = time.time()
                for item in page:
                    parsed = _parse_name(str(item.get("name", "")))
                    if parsed is not None and len(found) < limit:
                        found.append(Listed(location=f"{self.container}/{item['name']}",
                                            node_uuid=parsed[0], deploy_id=parsed[1],
                                            age=_age(item.get("last_modified"), now)))
                marker = str(page[-1]["name"])
        return found

    def put(self, node_uuid: str, image: bytes, *, deploy_id: str,
            encoding: str = GZIP, key: bytes | None = None,
            location: str | None = None) -> StoredImage:
        sealed = key is not None
        obj = self._object_name(node_uuid, image, deploy_id, encoding, sealed)
        if location is not None:
            self._check_location(location, f"{self.container}/{obj}", node_uuid)
        data, sha256, size = common.encode(self.name, node_uuid, image, encoding, key)
        headers = {f"{META_PREFIX}Sha256": sha256, f"{META_PREFIX}Size": str(size),
                   f"{META_PREFIX}Node": node_uuid, f"{META_PREFIX}Deploy-Id": deploy_id}
        if self.host:
            headers[f"{META_PREFIX}Conductor"] = self.host
        if self.delete_after:
            headers["X-Delete-After"] = str(self.delete_after)
        content_type = common.content_type(image, encoding, sealed)
        with self._connection(node_uuid) as conn:
            # The key first: a URL that cannot be signed must not leave an object behind.
            temp_url_key = self._temp_url_key(conn, node_uuid, self.container, create=True)
            started = time.monotonic()
            try:
                try:
                    self._upload(conn, obj, data, content_type, headers)
                except _TRANSPORT_ERRORS as exc:
                    if not _is_not_found(exc):
                        raise
                    # The container was deleted under us (with any key it had): make it
                    # again, once.
                    LOG.warning("Swift container %s vanished; creating it again",
                                self.container)
                    self._shared.container(self.container).forget()
                    temp_url_key = self._temp_url_key(conn, node_uuid, self.container,
                                                      create=True)
                    self._upload(conn, obj, data, content_type, headers)
            except _TRANSPORT_ERRORS as exc:
                # Whatever failed may be our picture of the container: check it next time.
                self._shared.container(self.container).expire()
                note = self._cleanup(conn, node_uuid, self.container, obj)
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

    def _check_location(self, location: str, expected: str, node: str) -> None:
        if location == expected:
            return
        self._split(location, node)  # another node's: says so
        container = location.partition("/")[0]
        if container != self.container:
            reason = (f"location {location!r} is in container {container}, not in "
                      f"[configdrive]swift_container {self.container}; deploy again so the "
                      "drive is located anew")
        else:
            reason = (f"location {location!r} is not where this drive goes ({expected!r}: "
                      "deploy id, encoding and sealing decide it); pass what locate() "
                      "returned for the same arguments (a bug in the caller)")
        raise StoreError(store=self.name, node=node, reason=reason)

    def _upload(self, conn: Any, obj: str, data: bytes, content_type: str,
                headers: dict[str, str]) -> None:
        conn.put_object(self.container, obj, _Body(data), content_length=len(data),
                        etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                        content_type=content_type, headers=headers)

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

    def url_for(self, location: str, *, node_uuid: str) -> str:
        container, obj = self._split(location, node_uuid)
        state = self._shared.container(container)
        with self._connection(node_uuid) as conn:
            try:
                url = self._signed_url(conn, node_uuid, container, obj)
                try:
                    status = self._probe(conn, url)
                except _SignatureRefused:
                    # The key changed (rotated, or another conductor's won a race): read it
                    # again and sign anew, once.
                    state.forget()
                    url = self._signed_url(conn, node_uuid, container, obj)
                    status = self._probe(conn, url)
            except _ContainerMissing:
                status = 404
            except _SignatureRefused as exc:
                state.expire()
                raise StoreError(store=self.name, node=node_uuid,
                                 reason=f"Swift refuses temp URLs of {location} signed with "
                                        "the key it holds (HTTP 401); check that the proxy "
                                        "runs the tempurl middleware (on radosgw: set an "
                                        "account temp URL key)") from exc
            except _TRANSPORT_ERRORS as exc:
                state.expire()
                raise self._fail(node_uuid, f"HEAD of {location} by temp URL", exc,
                                 "check that Swift is reachable") from exc
        if status == 404:
            raise StoreError(store=self.name, node=node_uuid,
                             reason=f"object {location} is gone (deleted, or expired by "
                                    "X-Delete-After); redeploy or rebuild the node to store "
                                    "a new config drive")
        return url

    def _signed_url(self, conn: Any, node: str, container: str, obj: str) -> str:
        key = self._temp_url_key(conn, node, container, create=False)
        return self._sign(conn, key, container, obj)[0]

    def delete(self, location: str, *, node_uuid: str) -> None:
        container, obj = self._split(location, node_uuid)
        with self._connection(node_uuid) as conn:
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
        LOG.info("Deleted config drive object %s of node %s", location, node_uuid)
