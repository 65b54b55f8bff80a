"""SwiftStore logic with a mocked python-swiftclient Connection."""

from __future__ import annotations

import concurrent.futures
import datetime
import gzip
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from oslo_config import fixture as cfg_fixture
from swiftclient.client import ClientException

from ironic_configdrive.store import swift as swift_store
from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.swift import SwiftStore, connections, keys, shared

NODE = "8f1f3b0e-4c55-4d7c-9a0e-2f8d7e6c5b4a"
STORAGE = "https://swift.example.com/v1/AUTH_abc"


def not_found() -> ClientException:
    return ClientException("not found", http_status=404, http_reason="Not Found")


def server_error(status: int = 503) -> ClientException:
    return ClientException("boom", http_status=status, http_reason="Service Unavailable")


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts like a new conductor process, without waiting for key settling."""
    monkeypatch.setattr(keys, "KEY_SETTLE", 0.0)
    swift_store.reset_shared_state()
    yield
    swift_store.reset_shared_state()


def make_conn(*, account_key: str | None = "acctkey", container_exists: bool = True,
              container_headers: dict[str, str] | None = None,
              probe_status: int = 200) -> mock.Mock:
    conn = mock.Mock(name="Connection")
    conn.url = STORAGE
    conn.head_account.return_value = (
        {"x-account-meta-temp-url-key": account_key} if account_key else {})
    headers = container_headers if container_headers is not None else {}
    if container_exists:
        conn.head_container.return_value = headers
    else:
        conn.head_container.side_effect = [not_found(), headers, headers]
    # Container metadata POSTs land in the headers the next HEAD returns.
    conn.post_container.side_effect = lambda _c, h: headers.update(
        {k.lower(): v for k, v in h.items()})
    # The anonymous HEAD of temp URLs goes through swiftclient's HTTPConnection.
    conn.http_conn = None
    http = mock.Mock(name="HTTPConnection")
    http.getresponse.return_value = mock.Mock(status=probe_status, reason="")
    conn.http_connection.return_value = (urlsplit(STORAGE), http)
    return conn


def probes(conn: mock.Mock) -> list[tuple[Any, ...]]:
    """The anonymous HEADs of temp URLs sent on ``conn``."""
    http = conn.http_connection.return_value[1]
    return [c.args for c in http.request.call_args_list]


def make_store(conn: mock.Mock, **kwargs: Any) -> SwiftStore:
    options: dict[str, Any] = {"container": "cd", "temp_url_duration": 600,
                               "delete_after": 3600, "retries": 4, "retry_backoff": 0.5}
    options.update(kwargs)
    return SwiftStore(connection_factory=lambda: conn, **options)


def signature_ok(url: str, key: str) -> bool:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    body = f"GET\n{q['temp_url_expires']}\n{parts.path}".encode()
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest() == q["temp_url_sig"]


def test_defaults_come_from_conf(conf: cfg_fixture.Config) -> None:
    conf.config(swift_container="mine", swift_temp_url_duration=120, swift_delete_after=0,
                store_retries=7, group="configdrive")
    store = SwiftStore(connection_factory=mock.Mock)
    assert (store.container, store.temp_url_duration, store.delete_after, store.retries) == (
        "mine", 120, 0, 7)


def test_tempauth_options_replace_keystone(conf: cfg_fixture.Config) -> None:
    conf.config(swift_auth_url="http://127.0.0.1:1/auth/v1.0", swift_user="acc:u",
                swift_key="k3y", group="configdrive")
    with mock.patch("swiftclient.client.Connection") as connection:
        SwiftStore()._connect("node-1")
    connection.assert_called_once_with(authurl="http://127.0.0.1:1/auth/v1.0", user="acc:u",
                                       key="k3y", auth_version="1", timeout=60.0)


def test_request_timeout_never_unbounded(conf: cfg_fixture.Config) -> None:
    """swiftclient waits forever by default; ours falls back to [swift]timeout, then 60 s."""
    from ironic_configdrive.store.swift import request_timeout

    assert request_timeout(conf.conf) == 60.0
    conf.config(timeout=7, group="swift")
    assert request_timeout(conf.conf) == 7.0
    conf.config(swift_timeout=3.5, group="configdrive")
    assert request_timeout(conf.conf) == 3.5


def test_tempauth_needs_all_three_options(conf: cfg_fixture.Config) -> None:
    conf.config(swift_auth_url="http://127.0.0.1:1/auth/v1.0", group="configdrive")
    with pytest.raises(StoreError, match="swift_user or swift_key is not"):
        SwiftStore()


def test_put_uploads_gzip_with_backstop_and_signs() -> None:
    conn = make_conn()
    store = make_store(conn)
    image = b"\x00" * 32768 + b"CD001" + b"x" * 1000
    before = time.time()
    stored = store.put(NODE, image, deploy_id="dep-1")

    args, kwargs = conn.put_object.call_args
    assert args[:2] == ("cd", f"{NODE}/dep-1")
    body = args[2]
    # bytes (sent in one piece) that say they can be rewound, so swiftclient retries them
    assert isinstance(body, bytes) and body.tell() == 0 and hasattr(body, "seek")
    data = bytes(body)
    assert gzip.decompress(data) == image
    assert kwargs["content_length"] == len(data)
    assert kwargs["etag"] == hashlib.md5(data).hexdigest()
    assert kwargs["content_type"] == "application/gzip"
    assert kwargs["headers"]["X-Delete-After"] == "3600"
    assert stored.location == f"cd/{NODE}/dep-1"
    assert stored.sha256 == hashlib.sha256(image).hexdigest() and stored.size == len(image)
    assert stored.url.startswith(f"{STORAGE}/cd/{NODE}/dep-1?temp_url_sig=")
    assert signature_ok(stored.url, "acctkey")
    assert stored.expires_at is not None
    assert before + 600 - 1 <= stored.expires_at <= time.time() + 600
    assert conn.retries == 4 and conn.starting_backoff == 0.5
    conn.put_container.assert_not_called()
    conn.post_container.assert_not_called()
    conn.close.assert_not_called()  # back in the pool for the next operation


@pytest.mark.parametrize("fmt, suffix, content_type", [
    ("iso9660", ".iso", "application/x-iso9660-image"),
    ("vfat", ".img", "application/octet-stream")])
def test_put_identity_uploads_the_raw_image(fmt: str, suffix: str, content_type: str) -> None:
    from ironic_configdrive.image import build_image

    conn = make_conn()
    image = build_image({"meta_data": {"uuid": NODE}}, fmt=fmt)
    stored = make_store(conn).put(NODE, image, deploy_id="dep-1", encoding="identity")
    args, kwargs = conn.put_object.call_args
    assert args[:2] == ("cd", f"{NODE}/dep-1{suffix}")
    assert bytes(args[2]) == image
    assert kwargs["content_type"] == content_type
    assert kwargs["content_length"] == len(image)
    assert stored.encoding == "identity"
    assert stored.location == f"cd/{NODE}/dep-1{suffix}"
    assert stored.record()["encoding"] == "identity"
    assert stored.sha256 == hashlib.sha256(image).hexdigest() and stored.size == len(image)


def test_put_unknown_encoding_is_refused_before_any_request() -> None:
    conn = make_conn()
    with pytest.raises(StoreError, match="encoding 'br'") as info:
        make_store(conn).put(NODE, b"x", deploy_id="d", encoding="br")
    assert NODE in info.value.message
    conn.put_object.assert_not_called()


def test_delete_after_zero_sends_no_header() -> None:
    conn = make_conn()
    make_store(conn, delete_after=0).put(NODE, b"x", deploy_id="d")
    assert "X-Delete-After" not in conn.put_object.call_args.kwargs["headers"]


def test_missing_container_created_without_acl() -> None:
    conn = make_conn(container_exists=False)
    make_store(conn).put(NODE, b"x", deploy_id="d")
    conn.put_container.assert_called_once_with("cd")


def test_container_key_used_when_no_account_key() -> None:
    conn = make_conn(account_key=None,
                     container_headers={"x-container-meta-temp-url-key-2": "ckey"})
    stored = make_store(conn).put(NODE, b"x", deploy_id="d")
    assert signature_ok(stored.url, "ckey")
    conn.post_container.assert_not_called()


def test_container_key_set_when_none() -> None:
    conn = make_conn(account_key=None)
    stored = make_store(conn).put(NODE, b"x", deploy_id="d")
    (container, headers), _ = conn.post_container.call_args
    key = headers["X-Container-Meta-Temp-Url-Key"]
    assert container == "cd" and len(key) == 64
    assert signature_ok(stored.url, key)


def test_key_failure_leaves_no_object() -> None:
    conn = make_conn(account_key=None)
    conn.post_container.side_effect = ClientException("no", http_status=403,
                                                      http_reason="Forbidden")
    with pytest.raises(StoreError, match="temp URL key.*HTTP 403"):
        make_store(conn).put(NODE, b"x", deploy_id="d")
    conn.put_object.assert_not_called()


def test_read_acl_refused() -> None:
    conn = make_conn(container_headers={"x-container-read": ".r:*"})
    with pytest.raises(StoreError, match="read ACL"):
        make_store(conn).put(NODE, b"x", deploy_id="d")
    conn.put_object.assert_not_called()


def test_failed_upload_deletes_partial_object() -> None:
    conn = make_conn()
    conn.put_object.side_effect = server_error()
    with pytest.raises(StoreError) as info:
        make_store(conn).put(NODE, b"x", deploy_id="d")
    conn.delete_object.assert_called_once_with("cd", f"{NODE}/d")
    message = str(info.value)
    assert NODE in message and "HTTP 503" in message and "5 attempt(s)" in message
    assert "partial object was deleted" in message


def test_failed_upload_and_failed_cleanup_says_what_remains() -> None:
    conn = make_conn()
    conn.put_object.side_effect = ConnectionResetError("reset")
    conn.delete_object.side_effect = server_error(500)
    with pytest.raises(StoreError, match="may remain: it expires in 3600s"):
        make_store(conn).put(NODE, b"x", deploy_id="d")


def test_failed_upload_nothing_left() -> None:
    conn = make_conn()
    conn.put_object.side_effect = server_error()
    conn.delete_object.side_effect = not_found()
    with pytest.raises(StoreError, match="nothing was left behind"):
        make_store(conn).put(NODE, b"x", deploy_id="d")


@pytest.mark.parametrize(("node", "deploy_id"), [
    ("../etc", "d"), (NODE, "a/b"), (NODE, ""), ("", "d"), (NODE, "x" * 200), (NODE, "a.b")])
def test_unsafe_names_refused(node: str, deploy_id: str) -> None:
    conn = make_conn()
    with pytest.raises(StoreError, match="not usable in a stored name"):
        make_store(conn).put(node, b"x", deploy_id=deploy_id)
    conn.put_object.assert_not_called()


def test_delete_missing_is_success() -> None:
    conn = make_conn()
    conn.delete_object.side_effect = not_found()
    make_store(conn).delete(f"cd/{NODE}/d", node_uuid=NODE)


def test_delete_failure_is_store_error() -> None:
    conn = make_conn()
    conn.delete_object.side_effect = server_error(500)
    with pytest.raises(StoreError, match=f"node {NODE}.*deletion of cd/{NODE}/d.*HTTP 500"):
        make_store(conn).delete(f"cd/{NODE}/d", node_uuid=NODE)


def test_delete_uses_container_of_location() -> None:
    conn = make_conn()
    make_store(conn, container="new").delete(f"old/{NODE}/d", node_uuid=NODE)
    conn.delete_object.assert_called_once_with("old", f"{NODE}/d")


def test_url_for_checks_object_by_its_temp_url_and_resigns() -> None:
    conn = make_conn()
    url = make_store(conn).url_for(f"cd/{NODE}/d", node_uuid=NODE)
    assert signature_ok(url, "acctkey")
    (method, target, _body, headers), = probes(conn)
    # What the agent or BMC will do: no token, just the signed URL.
    assert method == "HEAD" and headers == {}
    assert target == url[len("https://swift.example.com"):]
    conn.head_object.assert_not_called()
    gone = make_conn(probe_status=404)
    with pytest.raises(StoreError, match=f"node {NODE}.*is gone.*redeploy"):
        make_store(gone).url_for(f"cd/{NODE}/d", node_uuid=NODE)


@pytest.mark.parametrize("location", [f"cd/{NODE}", "cd", f"/{NODE}/d", "cd/other/d"])
def test_foreign_locations_refused(location: str) -> None:
    conn = make_conn()
    with pytest.raises(StoreError, match="not a config drive of this node"):
        make_store(conn).delete(location, node_uuid=NODE)
    conn.delete_object.assert_not_called()


def test_factory_failure_is_store_error() -> None:
    def factory() -> Any:
        raise RuntimeError("Missing auth_url")

    store = SwiftStore(connection_factory=factory, container="cd", temp_url_duration=600,
                       delete_after=0, retries=0)
    with pytest.raises(StoreError, match=r"\[swift\] section"):
        store.put(NODE, b"x", deploy_id="d")


def test_validate_checks_account_and_durations() -> None:
    conn = make_conn()
    make_store(conn).validate()
    conn.head_account.assert_called()
    conn.put_container.assert_not_called()
    with pytest.raises(StoreError, match="shorter than"):
        make_store(conn, delete_after=100, temp_url_duration=600).validate()
    conn.head_account.side_effect = ClientException("x", http_status=401,
                                                    http_reason="Unauthorized")
    with pytest.raises(StoreError, match="HTTP 401"):
        make_store(conn).validate()


def test_keystone_factory_uses_ironic_swift_session(conf: cfg_fixture.Config) -> None:
    conf.config(region_name="RegionTwo", group="swift")
    session = mock.Mock(name="session")
    with mock.patch("ironic.common.swift.get_swift_session", return_value=session), \
            mock.patch("ironic.common.keystone.get_endpoint",
                       return_value=STORAGE) as get_endpoint, \
            mock.patch.object(connections.swift_client, "Connection") as connection:
        swift_store.keystone_connection_factory()()
    get_endpoint.assert_called_once_with("swift", session=session)
    kwargs = connection.call_args.kwargs
    assert kwargs["session"] is session and kwargs["preauthurl"] == STORAGE
    assert kwargs["os_options"]["region_name"] == "RegionTwo"


def test_default_factory_is_keystone() -> None:
    store = SwiftStore(container="cd", temp_url_duration=600, delete_after=0, retries=0)
    with mock.patch("ironic.common.swift.get_swift_session",
                    side_effect=RuntimeError("no auth_type")):
        with pytest.raises(StoreError, match="no auth_type"):
            store.validate()


def test_sha1_digest_for_old_radosgw() -> None:
    conn = make_conn()
    stored = make_store(conn, temp_url_digest="sha1").put(NODE, b"x", deploy_id="d")
    sig = parse_qs(urlsplit(stored.url).query)["temp_url_sig"][0]
    assert len(sig) == 40


# -- one pool, one token, one key per process ------------------------------------------------
class FakeSwift:
    """Just enough of one Swift account for many mocked connections at once."""

    def __init__(self, *, account_key: str | None = None, delay: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.account: dict[str, str] = (
            {"x-account-meta-temp-url-key": account_key} if account_key else {})
        self.containers: dict[str, dict[str, str]] = {}
        self.objects: dict[str, bytes] = {}
        self.delay = delay  # lets racing threads overlap
        self.calls: list[str] = []
        self.auths = 0
        self.connections: list[mock.Mock] = []
        #: Replaces what a container key POST stores (another conductor's POST landing later).
        self.post_override: str | None = None

    def _log(self, what: str) -> None:
        with self.lock:
            self.calls.append(what)
        time.sleep(self.delay)

    def count(self, prefix: str) -> int:
        return sum(1 for c in self.calls if c.startswith(prefix))

    def connection(self) -> mock.Mock:
        conn = mock.Mock(name="Connection")
        conn.url = conn.token = None
        conn.http_conn = None

        def get_auth() -> tuple[str, str]:
            self._log("AUTH")
            with self.lock:
                self.auths += 1
            conn.url, conn.token = STORAGE, f"tok{self.auths}"
            return conn.url, conn.token

        def head_container(name: str) -> dict[str, str]:
            self._log(f"HEAD {name}")
            if name not in self.containers:
                raise not_found()
            return dict(self.containers[name])

        def put_container(name: str) -> None:
            self._log(f"PUT {name}")
            self.containers.setdefault(name, {})

        def post_container(name: str, headers: dict[str, str]) -> None:
            self._log(f"POST {name}")
            stored = {k.lower(): v for k, v in headers.items()}
            if self.post_override is not None:
                stored = {k: self.post_override for k in stored}
            self.containers[name].update(stored)

        def head_account() -> dict[str, str]:
            self._log("HEAD account")
            return dict(self.account)

        def put_object(container: str, obj: str, body: bytes, **_kw: Any) -> None:
            self._log(f"PUT {container}/{obj}")
            if container not in self.containers:
                raise not_found()
            self.objects[f"{container}/{obj}"] = bytes(body)

        def delete_object(container: str, obj: str) -> None:
            self._log(f"DELETE {container}/{obj}")
            if self.objects.pop(f"{container}/{obj}", None) is None:
                raise not_found()

        conn.get_auth.side_effect = get_auth
        conn.head_container.side_effect = head_container
        conn.put_container.side_effect = put_container
        conn.post_container.side_effect = post_container
        conn.head_account.side_effect = head_account
        conn.put_object.side_effect = put_object
        conn.delete_object.side_effect = delete_object
        http = mock.Mock(name="HTTPConnection")
        http.getresponse.return_value = mock.Mock(status=200, reason="OK")
        conn.http_connection.return_value = (urlsplit(STORAGE), http)
        with self.lock:
            self.connections.append(conn)
        return conn

    def key_of(self, container: str) -> str:
        return self.containers[container]["x-container-meta-temp-url-key"]


def shared_store(swift: FakeSwift, key: object = "creds", **kwargs: Any) -> SwiftStore:
    """A store like loader.get_store() makes per call: same settings, shared state."""
    options: dict[str, Any] = {"container": "cd", "temp_url_duration": 600,
                               "delete_after": 0, "retries": 0, "retry_backoff": 0.0,
                               "connection_factory": swift.connection}
    options.update(kwargs)
    return SwiftStore(connection_key=key, **options)


def run_threads(count: int, fn: Callable[[int], Any]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(fn, range(count)))


def test_many_operations_one_connection_one_auth_no_heads_when_warm() -> None:
    swift = FakeSwift(account_key="acctkey")
    shared_store(swift).put(NODE, b"x", deploy_id="warm")
    swift.calls.clear()
    for i in range(10):
        store = shared_store(swift)  # a new instance per call, as the loader makes them
        stored = store.put(NODE, b"x", deploy_id=f"d{i}")
        store.url_for(stored.location, node_uuid=NODE)
        store.delete(stored.location, node_uuid=NODE)
    assert len(swift.connections) == 1 and swift.auths == 1
    # One request per put and per delete; url_for's is the anonymous HEAD of its URL.
    assert swift.calls == [c for i in range(10)
                           for c in (f"PUT cd/{NODE}/d{i}", f"DELETE cd/{NODE}/d{i}")]
    assert len(probes(swift.connections[0])) == 10


def test_other_settings_get_another_pool() -> None:
    swift = FakeSwift(account_key="acctkey")
    shared_store(swift, key="a").put(NODE, b"x", deploy_id="d")
    shared_store(swift, key="b").put(NODE, b"x", deploy_id="d")
    SwiftStore(connection_factory=swift.connection, container="cd", temp_url_duration=600,
               delete_after=0, retries=0).put(NODE, b"x", deploy_id="d")
    assert len(swift.connections) == 3 and swift.auths == 3


def test_concurrent_cold_puts_authenticate_once_and_set_the_key_once() -> None:
    swift = FakeSwift(delay=0.002)

    def put(i: int) -> str:
        return shared_store(swift).put(f"node-{i}", b"x", deploy_id="d").url

    urls = run_threads(30, put)
    assert swift.auths == 1
    assert swift.count("PUT cd") == 31  # the container once, then the 30 objects
    assert swift.count("POST cd") == 1
    key = swift.key_of("cd")
    assert all(signature_ok(url, key) for url in urls)
    assert len(swift.connections) <= 30


def test_key_is_read_back_and_another_conductors_wins() -> None:
    swift = FakeSwift()
    swift.containers["cd"] = {}
    swift.post_override = "theirs"  # their POST landed after ours
    stored = shared_store(swift).put(NODE, b"x", deploy_id="d")
    assert signature_ok(stored.url, "theirs")
    assert swift.calls[-3:] == ["POST cd", "HEAD cd", f"PUT cd/{NODE}/d"]


def test_existing_container_key_never_overwritten() -> None:
    swift = FakeSwift()
    swift.containers["cd"] = {"x-container-meta-temp-url-key-2": "old"}
    stored = shared_store(swift).put(NODE, b"x", deploy_id="d")
    assert signature_ok(stored.url, "old") and swift.count("POST") == 0


def test_key_invisible_after_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = make_conn(account_key=None)
    conn.post_container.side_effect = None  # Swift accepts it but never shows it
    with pytest.raises(StoreError, match=f"node {NODE}.*shows no temp URL key.*account"):
        make_store(conn).put(NODE, b"x", deploy_id="d")
    assert conn.head_container.call_count == 1 + keys.KEY_READBACKS
    conn.put_object.assert_not_called()


def test_failed_connection_is_discarded_not_pooled() -> None:
    swift = FakeSwift(account_key="k")
    store = shared_store(swift)
    store.put(NODE, b"x", deploy_id="d")
    store.delete(f"cd/{NODE}/gone", node_uuid=NODE)  # a 404 answer: connection still fine
    assert len(swift.connections) == 1
    swift.connections[0].delete_object.side_effect = ConnectionResetError("reset")
    with pytest.raises(StoreError, match="deletion of"):
        store.delete(f"cd/{NODE}/d", node_uuid=NODE)
    swift.connections[0].close.assert_called()
    store.delete(f"cd/{NODE}/d", node_uuid=NODE)
    assert len(swift.connections) == 2  # a new one replaced the broken one
    assert swift.auths == 1  # ... and was given the token, not authenticated again


def test_renewed_token_is_shared_and_a_refused_one_dropped() -> None:
    swift = FakeSwift(account_key="k")
    store = shared_store(swift)
    store.put(NODE, b"x", deploy_id="d")
    first = swift.connections[0]

    def expired_then_renewed(*_a: Any, **_kw: Any) -> None:
        first.token = "renewed"  # what swiftclient does after a 401
        # a second connection is needed while this one is busy
        shared_store(swift).delete(f"cd/{NODE}/d", node_uuid=NODE)

    first.put_object.side_effect = expired_then_renewed
    store.put(NODE, b"x", deploy_id="e")
    second = swift.connections[1]
    assert second.token == "tok1"  # got the token of the moment
    pool = store.pool
    leases = [pool.take(), pool.take()]
    lease = next(le for le in leases if le is not None and le.conn is second)
    pool.authorize(lease, lambda conn: pytest.fail("must not authenticate"))
    assert second.token == "renewed"  # the renewed token replaced the shared one
    # A connection whose token swiftclient dropped (401 twice) makes the next one auth.
    lease.conn.token = None
    pool.release(lease, reusable=True)
    assert shared_store(swift).put(NODE, b"x", deploy_id="f")
    assert swift.auths == 2


def test_missing_container_is_remade_once_on_404() -> None:
    swift = FakeSwift()
    store = shared_store(swift)
    old = store.put(NODE, b"x", deploy_id="d")
    del swift.containers["cd"]  # someone deleted it, key included
    stored = store.put(NODE, b"x", deploy_id="e")
    assert swift.count("PUT cd/") == 3 and swift.count("PUT cd") == 5
    assert signature_ok(stored.url, swift.key_of("cd"))
    assert not signature_ok(old.url, swift.key_of("cd"))


def test_refused_signature_makes_url_for_read_the_key_again() -> None:
    swift = FakeSwift(account_key="old")
    store = shared_store(swift)
    stored = store.put(NODE, b"x", deploy_id="d")
    swift.account["x-account-meta-temp-url-key"] = "new"  # an operator rotated it
    http = swift.connections[0].http_connection.return_value[1]
    http.getresponse.side_effect = [mock.Mock(status=401, reason=""),
                                    mock.Mock(status=200, reason="")]
    url = store.url_for(stored.location, node_uuid=NODE)
    assert signature_ok(url, "new")
    # ... and put() signs with the new key from then on.
    assert signature_ok(store.put(NODE, b"x", deploy_id="e").url, "new")
    http.getresponse.side_effect = None
    http.getresponse.return_value = mock.Mock(status=401, reason="")
    with pytest.raises(StoreError, match="refuses temp URLs.*tempurl"):
        store.url_for(stored.location, node_uuid=NODE)


def test_key_checked_again_after_ttl_and_after_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    swift = FakeSwift(account_key="k1")
    store = shared_store(swift)
    store.put(NODE, b"x", deploy_id="a")
    store.put(NODE, b"x", deploy_id="b")
    assert swift.count("HEAD account") == 1
    swift.account["x-account-meta-temp-url-key"] = "k2"
    monkeypatch.setattr(shared, "KEY_TTL", 0.0)
    assert signature_ok(store.put(NODE, b"x", deploy_id="c").url, "k2")
    monkeypatch.setattr(shared, "KEY_TTL", 300.0)
    swift.connections[0].put_object.side_effect = server_error()
    with pytest.raises(StoreError, match="HTTP 503"):
        store.put(NODE, b"x", deploy_id="d")
    swift.connections[0].put_object.side_effect = None
    store.put(NODE, b"x", deploy_id="e")
    assert swift.count("HEAD account") == 3


def test_validate_reads_the_key_again() -> None:
    swift = FakeSwift(account_key="k1")
    store = shared_store(swift)
    store.put(NODE, b"x", deploy_id="a")
    swift.account["x-account-meta-temp-url-key"] = "k2"
    shared_store(swift).validate()
    assert signature_ok(store.put(NODE, b"x", deploy_id="b").url, "k2")


# -- locate, put(location=), list_stored, metadata -----------------------------------------
def test_locate_is_where_put_writes() -> None:
    from ironic_configdrive.image import build_image

    conn = make_conn()
    store = make_store(conn)
    iso = build_image({"meta_data": {"uuid": NODE}})
    for image, encoding, sealed, expected in [
            (b"x", "gzip", False, f"cd/{NODE}/d"),
            (iso, "identity", False, f"cd/{NODE}/d.iso"),
            (b"x", "identity", False, f"cd/{NODE}/d.img"),
            (b"x", "gzip", True, f"cd/{NODE}/d.sealed")]:
        location = store.locate(NODE, image, deploy_id="d", encoding=encoding, sealed=sealed)
        assert location == expected
        stored = store.put(NODE, image, deploy_id="d", encoding=encoding,
                           key=b"k" * 32 if sealed else None, location=location)
        assert stored.location == location
        assert "cd/" + "/".join(conn.put_object.call_args.args[:2][1:]) == location
    conn.head_account.assert_called_once()  # no I/O in locate, one key read for all


@pytest.mark.parametrize(("location", "match"), [
    (f"cd/{NODE}/other", "not where this drive goes"),
    (f"cd/{NODE}/d.iso", "not where this drive goes"),
    (f"elsewhere/{NODE}/d", "container elsewhere, not in"),
    ("cd/another-node/d", "not a config drive of this node")])
def test_put_refuses_a_location_not_its_own(location: str, match: str) -> None:
    conn = make_conn()
    with pytest.raises(StoreError, match=match) as info:
        make_store(conn).put(NODE, b"x", deploy_id="d", location=location)
    assert NODE in str(info.value)
    conn.put_object.assert_not_called()


def test_locate_refuses_what_put_refuses() -> None:
    store = make_store(make_conn())
    with pytest.raises(StoreError, match="not usable in a stored name"):
        store.locate(NODE, b"x", deploy_id="a/b")
    with pytest.raises(StoreError, match="encoding 'br'"):
        store.locate(NODE, b"x", deploy_id="d", encoding="br")


def test_object_metadata_names_node_deploy_and_conductor(conf: cfg_fixture.Config) -> None:
    conf.config(host="conductor-7")
    conn = make_conn()
    make_store(conn).put(NODE, b"x", deploy_id="dep-9")
    headers = conn.put_object.call_args.kwargs["headers"]
    assert headers["X-Object-Meta-Configdrive-Node"] == NODE
    assert headers["X-Object-Meta-Configdrive-Deploy-Id"] == "dep-9"
    assert headers["X-Object-Meta-Configdrive-Conductor"] == "conductor-7"


def listing(*names: str, modified: str = "2026-01-01T00:00:00.000000") -> list[dict[str, Any]]:
    return [{"name": n, "last_modified": modified, "bytes": 1} for n in names]


def test_list_stored_parses_names_and_skips_foreign_ones() -> None:
    conn = make_conn()
    now = time.time()
    recent = datetime.datetime.fromtimestamp(now - 90, datetime.timezone.utc)
    conn.get_container.side_effect = [
        ({}, listing(f"{NODE}/d1", "readme.txt", f"{NODE}/d2.iso", "a/b/c", f"{NODE}/d3.tar",
                     modified=recent.replace(tzinfo=None).isoformat())),
        ({}, listing(f"{NODE}/d4.sealed", "x/y.img", modified="garbage")),
        ({}, [])]
    found = make_store(conn).list_stored(limit=10)
    assert [(f.location, f.node_uuid, f.deploy_id) for f in found] == [
        (f"cd/{NODE}/d1", NODE, "d1"), (f"cd/{NODE}/d2.iso", NODE, "d2"),
        (f"cd/{NODE}/d4.sealed", NODE, "d4"), ("cd/x/y.img", "x", "y")]
    assert found[0].age is not None and 89 <= found[0].age <= time.time() - now + 91
    assert found[2].age is None
    markers = [c.kwargs["marker"] for c in conn.get_container.call_args_list]
    assert markers == ["", f"{NODE}/d3.tar", "x/y.img"]
    conn.head_object.assert_not_called()


def test_list_stored_stops_at_limit_and_handles_no_container() -> None:
    conn = make_conn()
    conn.get_container.return_value = ({}, listing(*(f"n{i}/d" for i in range(5))))
    found = make_store(conn).list_stored(limit=3)
    assert [f.node_uuid for f in found] == ["n0", "n1", "n2"]
    assert conn.get_container.call_args.kwargs["limit"] == 3
    conn.get_container.side_effect = not_found()
    assert make_store(conn).list_stored(limit=3) == []
    conn.get_container.side_effect = server_error()
    with pytest.raises(StoreError, match="listing of container cd.*HTTP 503"):
        make_store(conn).list_stored(limit=3)


def test_first_authentication_retried_when_transient_refused_when_wrong() -> None:
    swift = FakeSwift(account_key="k")
    real = swift.connection

    def flaky() -> mock.Mock:
        conn = real()
        answers = iter([server_error(), conn.get_auth.side_effect])

        def get_auth() -> Any:
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer()

        conn.get_auth.side_effect = get_auth
        return conn

    shared_store(swift, connection_factory=flaky, retries=1).put(NODE, b"x", deploy_id="d")
    assert swift.auths == 1 and swift.count("PUT cd/") == 1

    def wrong() -> mock.Mock:
        conn = real()
        conn.get_auth.side_effect = ClientException("no", http_status=401,
                                                    http_reason="Unauthorized")
        return conn

    store = SwiftStore(connection_factory=wrong, container="cd", temp_url_duration=600,
                       delete_after=0, retries=3, retry_backoff=0.0)
    with pytest.raises(StoreError, match=f"node {NODE}.*authentication.*HTTP 401.*credentials"):
        store.put(NODE, b"x", deploy_id="d")
    assert swift.count("PUT cd/") == 1  # nothing was sent without a token
