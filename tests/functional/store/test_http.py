"""The http store writing into a directory served by a real HTTP server on loopback."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest
import requests
from oslo_config import fixture as cfg_fixture

from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.http import HttpStore
from ironic_configdrive_lab import http as lab_http
from tests.conftest import require_tool
from tests.functional.store.conftest import ListingHandler, serve_directory

NODE = "5d0c7ac1-8e8e-4a3c-9b53-0f3c2b8f7f11"


@pytest.fixture
def store(conf: cfg_fixture.Config, http_server: tuple[Path, str]) -> HttpStore:
    root, url = http_server
    conf.config(http_root=str(root), http_url=url, group="deploy")
    conf.config(http_subdir="configdrive", group="configdrive")
    return HttpStore()


def test_put_serves_the_image(store: HttpStore, http_server: tuple[Path, str],
                              drive_image: bytes) -> None:
    root, url = http_server
    stored = store.put(NODE, drive_image, deploy_id="d1")

    assert stored.url.startswith(f"{url}/configdrive/{NODE}.d1.")
    assert stored.sha256 == hashlib.sha256(drive_image).hexdigest()
    assert stored.size == len(drive_image)
    assert stored.expires_at is None
    resp = requests.get(stored.url, timeout=10)
    assert resp.status_code == 200
    assert hashlib.sha256(gzip.decompress(resp.content)).hexdigest() == stored.sha256
    assert store.url_for(stored.location, node_uuid=NODE) == stored.url
    # Nothing but the final file and the index: the temporary one was renamed, not copied.
    assert sorted(p.name for p in (root / "configdrive").iterdir()) == sorted(
        [Path(stored.location).name, "index.html"])


def test_identity_put_serves_the_raw_image(store: HttpStore, http_server: tuple[Path, str],
                                           drive_image: bytes) -> None:
    root, _url = http_server
    stored = store.put(NODE, drive_image, deploy_id="raw", encoding="identity")
    assert stored.encoding == "identity"
    name = Path(stored.location).name
    assert name.endswith(".iso") and not name.endswith(".gz")
    resp = requests.get(stored.url, timeout=10)
    assert resp.status_code == 200
    assert resp.content == drive_image  # byte for byte what a BMC mounts
    assert stat.S_IMODE((root / stored.location).stat().st_mode) == 0o640
    store.delete(stored.location, node_uuid=NODE)
    assert not (root / stored.location).exists()


def test_modes_and_unguessable_names(store: HttpStore, http_server: tuple[Path, str]) -> None:
    root, _url = http_server
    first = store.put(NODE, b"a" * 100, deploy_id="d1")
    second = store.put(NODE, b"a" * 100, deploy_id="d1")
    assert first.location != second.location
    directory = root / "configdrive"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    for stored in (first, second):
        path = root / stored.location
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        secret = path.name[len(f"{NODE}.d1."):-len(".gz")]
        assert len(secret) >= 43  # 32 random bytes, base64url


def test_delete_is_idempotent(store: HttpStore) -> None:
    stored = store.put(NODE, b"bye", deploy_id="d2")
    store.delete(stored.location, node_uuid=NODE)
    store.delete(stored.location, node_uuid=NODE)
    assert requests.get(stored.url, timeout=10).status_code == 404
    with pytest.raises(StoreError, match="gone"):
        store.url_for(stored.location, node_uuid=NODE)


def test_locations_of_other_nodes_or_outside_root_refused(store: HttpStore) -> None:
    stored = store.put(NODE, b"mine", deploy_id="d3")
    for location, node in ((stored.location, "0f6c1fbe-6a55-4c93-8a0a-5b9c7f1d2e33"),
                           (f"../{Path(stored.location).name}", NODE),
                           (f"/etc/{Path(stored.location).name}", NODE)):
        with pytest.raises(StoreError, match="not a config drive of this node"):
            store.delete(location, node_uuid=node)
    assert requests.get(stored.url, timeout=10).status_code == 200


def test_validate(store: HttpStore) -> None:
    store.validate()


def test_unwritable_root(conf: cfg_fixture.Config, tmp_path: Path) -> None:
    # A path below a regular file cannot be created even by root.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    conf.config(http_root=str(tmp_path), http_url="http://127.0.0.1:1", group="deploy")
    conf.config(http_subdir="file/configdrive", group="configdrive")
    store = HttpStore()
    with pytest.raises(StoreError, match="cannot create") as info:
        store.put(NODE, b"data", deploy_id="d4")
    assert NODE in str(info.value)
    with pytest.raises(StoreError, match="cannot create"):
        store.validate()


def test_read_only_directory(store: HttpStore, http_server: tuple[Path, str]) -> None:
    root, _url = http_server
    directory = root / "configdrive"
    directory.mkdir(mode=0o750)
    # Root ignores permission bits; the immutable attribute stops it too.
    lock, unlock = ((["chattr", "+i", str(directory)], ["chattr", "-i", str(directory)])
                    if os.geteuid() == 0 else (None, None))
    if lock is not None:
        require_tool("chattr")
        subprocess.run(lock, check=True)
    else:
        directory.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable") as info:
            store.validate()
        assert str(directory) in str(info.value)
        with pytest.raises(StoreError, match="cannot write") as info:
            store.put(NODE, b"data", deploy_id="d5")
        assert NODE in str(info.value)
    finally:
        if unlock is not None:
            subprocess.run(unlock, check=True)
        directory.chmod(0o750)
    assert list(directory.iterdir()) == []


def test_missing_root_and_url(conf: cfg_fixture.Config, tmp_path: Path) -> None:
    conf.config(http_root=str(tmp_path / "absent"), http_url="http://127.0.0.1:1",
                group="deploy")
    with pytest.raises(StoreError, match="is not a directory"):
        HttpStore().validate()
    conf.config(http_root=str(tmp_path), http_url=None, group="deploy")
    with pytest.raises(StoreError, match="http_url is not set"):
        HttpStore().validate()
    with pytest.raises(StoreError, match="http_url is not set"):
        HttpStore().put(NODE, b"x", deploy_id="d6")


def test_no_secret_in_logs(store: HttpStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stored = store.put(NODE, b"log", deploy_id="d7")
    store.delete(stored.location, node_uuid=NODE)
    secret = Path(stored.location).name[len(f"{NODE}.d7."):-len(".gz")]
    assert secret not in caplog.text
    assert f"{NODE}.d7.***.gz" in caplog.text


# -- directory listings: the names are the only protection ---------------------------------

def _fetched(url: str) -> requests.Response:
    return requests.get(url, timeout=10, allow_redirects=False)


def test_listing_server_fails_validate_with_the_fix(conf: cfg_fixture.Config,
                                                    tmp_path: Path) -> None:
    """Python's http.server lists directories without an index file."""
    for root, url in serve_directory(tmp_path / "listing", ListingHandler):
        conf.config(http_root=str(root), http_url=url, group="deploy")
        store = HttpStore()
        stored = store.put(NODE, b"plain drive", deploy_id="l1", encoding="identity")
        with pytest.raises(StoreError) as info:
            store.validate()
        message = str(info.value)
        assert f"lists {url}/configdrive/" in message
        assert "Options -Indexes" in message and "autoindex off" in message
        assert Path(stored.location).name not in message
        # The index file keeps the folder itself from being listed...
        folder = _fetched(f"{url}/configdrive/")
        assert folder.status_code == 200
        assert Path(stored.location).name not in folder.text
        # ...until someone deletes it: that is what validate warns about.
        (root / "configdrive" / "index.html").unlink()
        assert Path(stored.location).name in _fetched(f"{url}/configdrive/").text
        with pytest.raises(StoreError, match="lists"):
            store.validate()
        assert (root / "configdrive" / "index.html").is_file()  # validate restored it
        assert sorted(p.name for p in (root / "configdrive").iterdir()) == sorted(
            ["index.html", Path(stored.location).name])  # no probe left behind


def test_server_without_listings_passes(store: HttpStore, http_server: tuple[Path, str],
                                        caplog: pytest.LogCaptureFixture) -> None:
    root, url = http_server
    store.validate()
    store.validate()
    assert "WARNING" not in caplog.text
    assert (root / "configdrive" / "index.html").is_file()
    assert _fetched(f"{url}/configdrive/").status_code == 200  # the index, not a listing


def test_lab_server_never_lists(conf: cfg_fixture.Config, tmp_path: Path) -> None:
    root = tmp_path / "lab-http"
    (root / "configdrive").mkdir(parents=True)
    server = lab_http.make_server(str(root), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        conf.config(http_root=str(root), http_url=url, group="deploy")
        store = HttpStore()
        stored = store.put(NODE, b"drive", deploy_id="lab")
        store.validate()
        (root / "configdrive" / "index.html").unlink()
        reply = _fetched(f"{url}/configdrive/")
        assert reply.status_code == 403
        assert Path(stored.location).name not in reply.text
        assert gzip.decompress(_fetched(stored.url).content) == b"drive"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_unreachable_server_only_warns(conf: cfg_fixture.Config, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    # A loopback port nobody listens on: bound, then closed.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf.config(http_root=str(tmp_path), http_url=f"http://127.0.0.1:{port}", group="deploy")
    HttpStore().validate()
    assert "Could not check whether the web server lists" in caplog.text
    assert "ConnectionError" in caplog.text
