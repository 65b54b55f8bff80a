"""SwiftStore logic with a mocked python-swiftclient Connection."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import time
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from oslo_config import fixture as cfg_fixture
from swiftclient.client import ClientException

from ironic_configdrive.store import swift as swift_store
from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.swift import SwiftStore

NODE = "8f1f3b0e-4c55-4d7c-9a0e-2f8d7e6c5b4a"
STORAGE = "https://swift.example.com/v1/AUTH_abc"


def not_found() -> ClientException:
    return ClientException("not found", http_status=404, http_reason="Not Found")


def server_error(status: int = 503) -> ClientException:
    return ClientException("boom", http_status=status, http_reason="Service Unavailable")


def make_conn(*, account_key: str | None = "acctkey", container_exists: bool = True,
              container_headers: dict[str, str] | None = None) -> mock.Mock:
    conn = mock.Mock(name="Connection")
    conn.url = STORAGE
    conn.head_account.return_value = (
        {"x-account-meta-temp-url-key": account_key} if account_key else {})
    headers = container_headers or {}
    if container_exists:
        conn.head_container.return_value = headers
    else:
        conn.head_container.side_effect = [not_found(), headers, headers]
    return conn


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
    assert isinstance(body, io.BytesIO)  # seekable, so swiftclient can retry the upload
    data = body.getvalue()
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
    conn.close.assert_called()


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
    assert args[2].getvalue() == image
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


def test_url_for_checks_object_and_resigns() -> None:
    conn = make_conn()
    url = make_store(conn).url_for(f"cd/{NODE}/d", node_uuid=NODE)
    conn.head_object.assert_called_once_with("cd", f"{NODE}/d")
    assert signature_ok(url, "acctkey")
    conn.head_object.side_effect = not_found()
    with pytest.raises(StoreError, match="is gone"):
        make_store(conn).url_for(f"cd/{NODE}/d", node_uuid=NODE)


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
            mock.patch.object(swift_store.swift_client, "Connection") as connection:
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
