"""The swift store against a real Swift (proxy with tempauth + tempurl, real servers)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from swiftclient import client as swift_client

from ironic_configdrive.store import swift as swift_store
from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.common import ironic_conf
from ironic_configdrive.store.swift import SwiftStore
from tests.fixtures.swift import REPO_ROOT, SwiftServer, free_port

pytestmark = pytest.mark.swift

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"


def make_store(server: SwiftServer, container: str, *, user: str | None = None,
               key: str | None = None, **kwargs: object) -> SwiftStore:
    options: dict[str, object] = {"temp_url_duration": 600, "delete_after": 3600,
                                  "retries": 2, "retry_backoff": 0.01}
    options.update(kwargs)
    return SwiftStore.from_credentials(server.auth_url, user or server.user,
                                       key or server.key, container=container,
                                       **options)  # type: ignore[arg-type]


def objects(server: SwiftServer, container: str) -> list[str]:
    _headers, listing = server.connection().get_container(container)
    return [o["name"] for o in listing]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def wait_next_second() -> None:
    """Temp URL expiry has one-second resolution: let it tick so a re-sign differs."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


def test_put_then_anonymous_get_by_temp_url(swift_server: SwiftServer, container: str,
                                            drive_image: bytes) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, drive_image, deploy_id="d1")

    assert stored.location == f"{container}/{NODE}/d1"
    assert stored.size == len(drive_image)
    assert stored.sha256 == hashlib.sha256(drive_image).hexdigest()
    assert stored.encoding == "gzip"
    assert stored.expires_at is not None and stored.expires_at > time.time()
    assert "url" not in stored.record()
    resp = requests.get(stored.url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/gzip"
    decoded = gzip.decompress(resp.content)
    assert hashlib.sha256(decoded).hexdigest() == stored.sha256
    assert len(decoded) == stored.size
    assert int(query(stored.url)["temp_url_expires"]) == int(stored.expires_at)


def test_identity_put_serves_the_raw_iso(swift_server: SwiftServer, container: str,
                                         drive_image: bytes) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, drive_image, deploy_id="raw", encoding="identity")
    assert stored.location == f"{container}/{NODE}/raw.iso"
    assert stored.encoding == "identity" and stored.record()["encoding"] == "identity"
    resp = requests.get(stored.url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/x-iso9660-image"
    assert resp.content == drive_image  # byte for byte what a BMC mounts
    assert urlsplit(stored.url).path.endswith(".iso")
    resigned = store.url_for(stored.location, node_uuid=NODE)
    assert requests.get(resigned, timeout=10).content == drive_image
    store.delete(stored.location, node_uuid=NODE)
    assert objects(swift_server, container) == []


def test_object_has_delete_at_backstop_and_metadata(swift_server: SwiftServer, container: str,
                                                    drive_image: bytes) -> None:
    store = make_store(swift_server, container, delete_after=7200)
    before = time.time()
    stored = store.put(NODE, drive_image, deploy_id="backstop")
    headers = swift_server.connection().head_object(container, f"{NODE}/backstop")
    delete_at = int(headers["x-delete-at"])
    assert before + 7200 - 1 <= delete_at <= time.time() + 7200 + 1
    assert headers["x-object-meta-configdrive-sha256"] == stored.sha256
    assert headers["x-object-meta-configdrive-size"] == str(stored.size)
    # What an operator judges a stray object by, without reading it.
    assert headers["x-object-meta-configdrive-node"] == NODE
    assert headers["x-object-meta-configdrive-deploy-id"] == "backstop"
    assert headers["x-object-meta-configdrive-conductor"] == ironic_conf().host


def test_delete_after_zero_sets_no_backstop(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container, delete_after=0)
    store.put(NODE, b"x" * 4096, deploy_id="nobackstop")
    headers = swift_server.connection().head_object(container, f"{NODE}/nobackstop")
    assert "x-delete-at" not in headers


def test_url_for_resigns(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"resign" * 1000, deploy_id="d2")
    wait_next_second()
    fresh = store.url_for(stored.location, node_uuid=NODE)
    old_q, new_q = query(stored.url), query(fresh)
    assert new_q["temp_url_sig"] != old_q["temp_url_sig"]
    assert int(new_q["temp_url_expires"]) > int(old_q["temp_url_expires"])
    for url in (stored.url, fresh):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200
        assert gzip.decompress(resp.content) == b"resign" * 1000


def test_wrong_signature_is_refused(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"secret" * 100, deploy_id="d3")
    sig = query(stored.url)["temp_url_sig"]
    forged = stored.url.replace(sig, sig[:-4] + ("0000" if sig[-4:] != "0000" else "1111"))
    assert requests.get(forged, timeout=10).status_code == 401
    bare = stored.url.split("?", 1)[0]
    assert requests.get(bare, timeout=10).status_code == 401


def test_delete_is_idempotent_and_object_gone(swift_server: SwiftServer,
                                              container: str) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"bye" * 100, deploy_id="d4")
    store.delete(stored.location, node_uuid=NODE)
    store.delete(stored.location, node_uuid=NODE)
    assert requests.get(stored.url, timeout=10).status_code == 404
    assert objects(swift_server, container) == []
    with pytest.raises(StoreError, match="is gone"):
        store.url_for(stored.location, node_uuid=NODE)


def test_container_created_private(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    store.put(NODE, b"private" * 10, deploy_id="d5")
    headers = swift_server.connection().head_container(container)
    assert not headers.get("x-container-read")
    url = f"{swift_server.storage_url}/{container}"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(f"{url}/{NODE}/d5", timeout=10).status_code == 401
    other = swift_server.connection(user=swift_server.other_user, key=swift_server.other_key)
    other.get_auth()
    token = {"X-Auth-Token": other.token}
    assert requests.get(url, headers=token, timeout=10).status_code == 403
    assert requests.get(f"{url}/{NODE}/d5", headers=token, timeout=10).status_code == 403


def test_container_key_set_when_none_exists(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"key" * 10, deploy_id="d6")
    key = swift_server.connection().head_container(container)["x-container-meta-temp-url-key"]
    assert len(key) == 64
    # The signature verifies with that key (sha256 HMAC over method, expiry and path).
    parts = urlsplit(stored.url)
    q = query(stored.url)
    body = f"GET\n{q['temp_url_expires']}\n{parts.path}".encode()
    assert hmac.new(key.encode(), body, hashlib.sha256).hexdigest() == q["temp_url_sig"]
    # A second put reuses the key instead of rotating it (old URLs stay valid).
    store.put(NODE, b"key2", deploy_id="d7")
    again = swift_server.connection().head_container(container)
    assert again["x-container-meta-temp-url-key"] == key
    assert requests.get(stored.url, timeout=10).status_code == 200


def test_account_key_preferred(swift_server: SwiftServer, container: str) -> None:
    # The second account keeps its own key so other tests' URLs are unaffected.
    other = swift_server.connection(user=swift_server.other_user, key=swift_server.other_key)
    account_key = uuid.uuid4().hex
    other.post_account({"X-Account-Meta-Temp-Url-Key": account_key})
    store = make_store(swift_server, container, user=swift_server.other_user,
                       key=swift_server.other_key)
    stored = store.put(NODE, b"acct" * 10, deploy_id="d8")
    parts = urlsplit(stored.url)
    q = query(stored.url)
    body = f"GET\n{q['temp_url_expires']}\n{parts.path}".encode()
    assert hmac.new(account_key.encode(), body, hashlib.sha256).hexdigest() == q["temp_url_sig"]
    assert "x-container-meta-temp-url-key" not in other.head_container(container)
    assert requests.get(stored.url, timeout=10).status_code == 200


def test_public_container_refused(swift_server: SwiftServer, container: str) -> None:
    conn = swift_server.connection()
    conn.put_container(container, headers={"X-Container-Read": ".r:*"})
    store = make_store(swift_server, container)
    with pytest.raises(StoreError, match="read ACL") as info:
        store.put(NODE, b"nope", deploy_id="d9")
    assert NODE in str(info.value)
    assert objects(swift_server, container) == []


def test_503_after_write_is_retried_then_fails_without_orphan(
        swift_server: SwiftServer, container: str, drive_image: bytes) -> None:
    store = make_store(swift_server, container, retries=2)
    store.put(NODE, b"warm-up", deploy_id="first")  # container and key exist
    store.delete(f"{container}/{NODE}/first", node_uuid=NODE)
    # The proxy stores the object, then answers 503: the client cannot know it landed.
    with swift_server.inject_fault(method="PUT", path_contains=f"/{container}/{NODE}/",
                                   status=503, after_app=True) as counter:
        with pytest.raises(StoreError) as info:
            store.put(NODE, drive_image, deploy_id="broken")
        attempts = counter.read_text().splitlines()
    message = str(info.value)
    assert len(attempts) == 3  # one try + store_retries (2)
    assert NODE in message and "HTTP 503" in message and "3 attempt" in message
    assert "partial object was deleted" in message
    assert "temp_url_sig" not in message
    assert objects(swift_server, container) == []


def test_transient_503_is_retried_and_succeeds(swift_server: SwiftServer, container: str,
                                               drive_image: bytes) -> None:
    store = make_store(swift_server, container, retries=3)
    store.put(NODE, b"warm-up", deploy_id="first")
    with swift_server.inject_fault(method="PUT", path_contains=f"/{container}/{NODE}/flaky",
                                   status=503, remaining=2) as counter:
        stored = store.put(NODE, drive_image, deploy_id="flaky")
        attempts = counter.read_text().splitlines()
    assert len(attempts) == 2
    resp = requests.get(stored.url, timeout=10)
    assert resp.status_code == 200
    assert hashlib.sha256(gzip.decompress(resp.content)).hexdigest() == stored.sha256


def test_unreachable_swift_is_a_store_error() -> None:
    port = free_port()  # nothing listens there
    store = SwiftStore.from_credentials(f"http://127.0.0.1:{port}/auth/v1.0", "a:b", "c",
                                        container="x", retries=1, retry_backoff=0.01,
                                        temp_url_duration=600, delete_after=3600)
    with pytest.raises(StoreError) as info:
        store.put(NODE, b"data", deploy_id="d10")
    assert NODE in str(info.value) and "2 attempt" in str(info.value)
    with pytest.raises(StoreError):
        store.validate()


def test_wrong_credentials_are_a_store_error(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container, key="wrong")
    with pytest.raises(StoreError, match="HTTP 401"):
        store.validate()


def test_validate(swift_server: SwiftServer, container: str) -> None:
    make_store(swift_server, container).validate()
    with pytest.raises(StoreError, match="swift_delete_after"):
        make_store(swift_server, container, delete_after=60, temp_url_duration=600).validate()


def test_no_secret_in_logs(swift_server: SwiftServer, container: str,
                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"log" * 100, deploy_id="d11")
    url = store.url_for(stored.location, node_uuid=NODE)
    store.delete(stored.location, node_uuid=NODE)
    key = swift_server.connection().head_container(container)["x-container-meta-temp-url-key"]
    for secret in (query(stored.url)["temp_url_sig"], query(url)["temp_url_sig"], key,
                   key[:8]):
        assert secret not in caplog.text
    assert f"{container}/{NODE}/d11" in caplog.text


def test_store_error_for_other_nodes_location(swift_server: SwiftServer,
                                              container: str) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"mine", deploy_id="d12")
    other = str(uuid.uuid4())
    with pytest.raises(StoreError, match="not a config drive of this node"):
        store.delete(stored.location, node_uuid=other)
    with pytest.raises(StoreError, match="not a config drive of this node"):
        store.url_for(stored.location, node_uuid=other)


def test_connection_errors_are_not_raw(swift_server: SwiftServer) -> None:
    # Mirrors what the conductor sees when Swift goes away between put and delete.
    store = make_store(swift_server, "c")
    broken = SwiftStore(connection_factory=lambda: swift_client.Connection(
        preauthurl=f"http://127.0.0.1:{free_port()}/v1/AUTH_test", preauthtoken="t"),
        container="c", retries=0, retry_backoff=0.01, temp_url_duration=600,
        delete_after=3600)
    assert store.name == broken.name == "swift"
    with pytest.raises(StoreError, match="deletion of c/"):
        broken.delete(f"c/{NODE}/x", node_uuid=NODE)


def test_store_configured_only_through_ironic_conf(swift_server: SwiftServer,
                                                   drive_image: bytes) -> None:
    """What an operator without Keystone does: three options, then the store by name."""
    from oslo_config import fixture as cfg_fixture

    from ironic_configdrive.store.common import ironic_conf
    from ironic_configdrive.store.loader import get_store

    config = cfg_fixture.Config(ironic_conf())
    config.setUp()
    try:
        config.config(store="swift", swift_auth_url=swift_server.auth_url,
                      swift_user=swift_server.user, swift_key=swift_server.key,
                      swift_container="from-conf", group="configdrive")
        store = get_store()
        store.validate()
        stored = store.put(NODE, drive_image, deploy_id="conf")
        body = requests.get(stored.url, timeout=10).content
        assert hashlib.sha256(gzip.decompress(body)).hexdigest() == stored.sha256
        store.delete(stored.location, node_uuid=NODE)
        assert objects(swift_server, "from-conf") == []
    finally:
        config.cleanUp()


# -- concurrency, request counts, caches ----------------------------------------------------
def without_query_and_status(request: str) -> str:
    method, path, _status = request.split()
    return f"{method} {path.split('?')[0]}"


def auth_requests(seen: list[str]) -> list[str]:
    return [r for r in seen if r.startswith("GET /auth/")]


def fetch_all(urls: list[str]) -> list[requests.Response]:
    with requests.Session() as session:
        return [session.get(url, timeout=30) for url in urls]


def test_50_concurrent_cold_puts_all_get_working_urls(swift_server: SwiftServer,
                                                      container: str) -> None:
    """A conductor's first deploys into a new container with no temp URL key, at once."""
    swift_store.reset_shared_state()  # a freshly started conductor
    images = {f"{uuid.uuid4()}": os.urandom(512) + str(i).encode() for i in range(50)}

    def put(node: str) -> tuple[str, str]:
        stored = make_store(swift_server, container).put(node, images[node], deploy_id="cold")
        return node, stored.url

    with swift_server.requests_seen() as seen, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(put, images))
    responses = fetch_all([url for _node, url in results])
    assert [r.status_code for r in responses] == [200] * 50
    for (node, _url), resp in zip(results, responses, strict=True):
        assert gzip.decompress(resp.content) == images[node]
    assert len(auth_requests(seen)) == 1
    assert len([r for r in seen if r.startswith(f"POST /v1/{swift_server.account}/")]) == 1


RACER = """
import json, sys, threading, time
from pathlib import Path
from ironic_configdrive.store.swift import SwiftStore

auth_url, user, key, container, go, count = sys.argv[1:7]
results = {}

def put(i):
    store = SwiftStore.from_credentials(auth_url, user, key, container=container,
                                        temp_url_duration=600, delete_after=3600, retries=2,
                                        retry_backoff=0.01)
    while not Path(go).exists():
        time.sleep(0.001)
    node = f"{sys.argv[7]}-{i}"
    results[node] = store.put(node, node.encode() * 100, deploy_id="race").url

threads = [threading.Thread(target=put, args=(i,)) for i in range(int(count))]
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
print(json.dumps(results), flush=True)
"""


def test_two_conductors_racing_cold_puts_agree_on_one_key(
        swift_server: SwiftServer, container: str, tmp_path: Path) -> None:
    """Two processes, 25 first puts each, same fresh container: no URL may be dead."""
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))
    racers = [subprocess.Popen(
        [sys.executable, "-c", RACER, swift_server.auth_url, swift_server.user,
         swift_server.key, container, str(go), "25", name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name in ("a", "b")]
    try:
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready", racer.stderr
        go.touch()
        outputs = [racer.communicate(timeout=120) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    urls: dict[str, str] = {}
    for racer, (out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err
        urls.update(json.loads(out))
    assert len(urls) == 50
    responses = fetch_all(list(urls.values()))
    assert [r.status_code for r in responses] == [200] * 50
    for node, resp in zip(urls, responses, strict=True):
        assert gzip.decompress(resp.content) == node.encode() * 100


def test_requests_per_put_url_delete(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    store.delete(store.put(NODE, b"warm", deploy_id="warm").location, node_uuid=NODE)
    with swift_server.requests_seen() as seen:
        stored = make_store(swift_server, container).put(NODE, b"count" * 100,
                                                         deploy_id="count")
        url = make_store(swift_server, container).url_for(stored.location, node_uuid=NODE)
        make_store(swift_server, container).delete(stored.location, node_uuid=NODE)
    path = f"/v1/{swift_server.account}/{stored.location}"
    assert [r.split("?")[0] for r in seen] == [
        f"PUT {path} 201", f"HEAD {path}", f"DELETE {path} 204"]
    # url_for's one request is the temp URL itself, without a token: what the agent does.
    assert seen[1].startswith(f"HEAD {path}?temp_url_sig=") and seen[1].endswith(" 200")
    assert requests.get(url, timeout=10).status_code == 404  # deleted


def test_one_authentication_for_many_operations(swift_server: SwiftServer,
                                                container: str) -> None:
    swift_store.reset_shared_state()
    with swift_server.requests_seen() as seen:
        for i in range(5):
            store = make_store(swift_server, container)  # per call, like the loader
            stored = store.put(NODE, b"auth" * 10, deploy_id=f"a{i}")
            store.url_for(stored.location, node_uuid=NODE)
            store.delete(stored.location, node_uuid=NODE)
        make_store(swift_server, container).validate()
    assert len(auth_requests(seen)) == 1
    base = f"/v1/{swift_server.account}"
    # A new container with no key, set once; then 3 requests per round; validate's 2.
    assert [without_query_and_status(r) for r in seen] == [
        "GET /auth/v1.0", f"HEAD {base}/{container}", f"PUT {base}/{container}",
        f"HEAD {base}/{container}", f"HEAD {base}", f"POST {base}/{container}",
        f"HEAD {base}/{container}",
        *(f"{method} {base}/{container}/{NODE}/a{i}" for i in range(5)
          for method in ("PUT", "HEAD", "DELETE")),
        f"HEAD {base}/{container}", f"HEAD {base}"]


def test_expired_token_is_renewed_once(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    store.put(NODE, b"before", deploy_id="t1")
    swift_server.forget_tokens()  # every token is now refused, as when it expires
    with swift_server.requests_seen() as seen:
        for i in range(3):
            stored = make_store(swift_server, container).put(NODE, b"after",
                                                             deploy_id=f"t{i + 2}")
    assert [r.split()[0] for r in seen[:3]] == ["PUT", "GET", "PUT"]
    assert seen[0].endswith(" 401") and len(auth_requests(seen)) == 1
    assert requests.get(stored.url, timeout=10).status_code == 200


def test_deleted_container_is_made_again(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    store.delete(store.put(NODE, b"one", deploy_id="c1").location, node_uuid=NODE)
    swift_server.connection().delete_container(container)  # its key went with it
    stored = make_store(swift_server, container).put(NODE, b"two" * 10, deploy_id="c2")
    assert gzip.decompress(requests.get(stored.url, timeout=10).content) == b"two" * 10


def test_rotated_key_is_noticed_by_url_for(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    stored = store.put(NODE, b"rot" * 10, deploy_id="r1")
    swift_server.connection().post_container(
        container, {"X-Container-Meta-Temp-Url-Key": uuid.uuid4().hex})
    assert requests.get(stored.url, timeout=10).status_code == 401  # the old signature
    url = make_store(swift_server, container).url_for(stored.location, node_uuid=NODE)
    assert requests.get(url, timeout=10).status_code == 200
    again = make_store(swift_server, container).put(NODE, b"rot2", deploy_id="r2")
    assert requests.get(again.url, timeout=10).status_code == 200


def test_locate_then_put_there(swift_server: SwiftServer, container: str,
                               drive_image: bytes) -> None:
    store = make_store(swift_server, container)
    location = store.locate(NODE, drive_image, deploy_id="loc", encoding="identity")
    assert location == f"{container}/{NODE}/loc.iso"
    stored = make_store(swift_server, container).put(NODE, drive_image, deploy_id="loc",
                                                     encoding="identity", location=location)
    assert stored.location == location
    assert objects(swift_server, container) == [f"{NODE}/loc.iso"]
    with pytest.raises(StoreError, match="not where this drive goes"):
        store.put(NODE, drive_image, deploy_id="loc", location=location)  # gzip: no .iso


def test_list_stored_sees_ours_not_foreign(swift_server: SwiftServer, container: str) -> None:
    store = make_store(swift_server, container)
    other = str(uuid.uuid4())
    mine = {store.put(NODE, b"a", deploy_id="l1").location,
            store.put(NODE, b"b", deploy_id="l2", encoding="identity").location,
            store.put(other, b"c", deploy_id="l3", key=b"k" * 32).location}
    conn = swift_server.connection()
    for foreign in ("README", f"{NODE}/l4.tar", "a/b/c", f"{NODE}/.tmp"):
        conn.put_object(container, foreign, b"not ours")
    found = make_store(swift_server, container).list_stored(limit=100)
    assert {f.location for f in found} == mine
    by_location = {f.location: f for f in found}
    assert by_location[f"{container}/{other}/l3.sealed"].node_uuid == other
    assert by_location[f"{container}/{NODE}/l2.img"].deploy_id == "l2"
    assert all(f.age is not None and 0 <= f.age < 300 for f in found)
    assert len(store.list_stored(limit=2)) == 2
    assert make_store(swift_server, f"cd-none-{uuid.uuid4().hex[:8]}").list_stored(
        limit=5) == []


GREEN = """
import json, sys
order, auth_url, user, key, container = sys.argv[1:6]
if order == "patch-first":  # how eventlet-based services start
    import eventlet
    eventlet.monkey_patch()
from ironic_configdrive.store.swift import SwiftStore
if order == "import-first":
    import eventlet
    eventlet.monkey_patch()
import eventlet

def put(i):
    store = SwiftStore.from_credentials(auth_url, user, key, container=container,
                                        temp_url_duration=600, delete_after=3600, retries=2,
                                        retry_backoff=0.01)
    return store.put(f"green-{i}", b"green" * 100, deploy_id="g").url

print(json.dumps(list(eventlet.GreenPool(30).imap(put, range(30)))), flush=True)
"""


@pytest.mark.parametrize("order", ["patch-first", "import-first"])
def test_green_threads_share_the_pool_and_key_without_deadlock(
        swift_server: SwiftServer, container: str, order: str) -> None:
    """Under eventlet the locks held across requests must be green ones."""
    pytest.importorskip("eventlet")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))
    done = subprocess.run(
        [sys.executable, "-c", GREEN, order, swift_server.auth_url, swift_server.user,
         swift_server.key, container],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    urls = json.loads(done.stdout.strip().splitlines()[-1])
    responses = fetch_all(urls)
    assert [r.status_code for r in responses] == [200] * 30
    assert all(gzip.decompress(r.content) == b"green" * 100 for r in responses)
