"""HttpStore failure handling that needs faults a real filesystem will not produce."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from unittest import mock

import pytest
import requests

from ironic_configdrive.store import http as http_store
from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.http import HttpStore

NODE = "2a7c5e6f-1b3d-4e8a-9c0f-7d6e5b4a3c21"


def make_store(tmp_path: Path) -> HttpStore:
    return HttpStore(http_root=str(tmp_path), http_url="http://10.0.0.1:8080/", subdir="cd")


def test_url_joins_cleanly(tmp_path: Path) -> None:
    stored = make_store(tmp_path).put(NODE, b"x", deploy_id="d")
    assert stored.url == f"http://10.0.0.1:8080/{stored.location}"
    assert stored.location.startswith(f"cd/{NODE}.d.")


def test_disk_full_leaves_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with mock.patch.object(http_store.os, "replace",
                           side_effect=OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))):
        with pytest.raises(StoreError, match="No space left on device") as info:
            store.put(NODE, b"x" * 1000, deploy_id="d")
    assert NODE in str(info.value)
    assert list((tmp_path / "cd").iterdir()) == []


def test_delete_permission_error(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    stored = store.put(NODE, b"x", deploy_id="d")
    with mock.patch.object(Path, "unlink",
                           side_effect=PermissionError(errno.EACCES, "Permission denied")):
        with pytest.raises(StoreError, match="Permission denied") as info:
            store.delete(stored.location, node_uuid=NODE)
    secret = Path(stored.location).name.split(".")[2]
    assert secret not in str(info.value)


@pytest.mark.parametrize("subdir", ["..", "a/../..", "/"])
def test_bad_subdir(tmp_path: Path, subdir: str) -> None:
    with pytest.raises(StoreError, match="http_subdir"):
        HttpStore(http_root=str(tmp_path), http_url="http://h", subdir=subdir)


def test_masked_name() -> None:
    assert http_store._masked_name(f"{NODE}.d.SECRET.gz") == f"{NODE}.d.***.gz"
    assert http_store._masked_name(f"{NODE}.d.SECRET.iso") == f"{NODE}.d.***.iso"
    assert http_store._masked_name(f"{NODE}.d.SECRET") == f"{NODE}.d.***"
    assert http_store._masked_name("garbage") == "***"


@pytest.mark.parametrize("fmt, suffix", [("iso9660", ".iso"), ("vfat", ".img")])
def test_identity_is_stored_raw_without_gz(tmp_path: Path, fmt: str, suffix: str) -> None:
    from ironic_configdrive.image import build_image

    store = make_store(tmp_path)
    image = build_image({"meta_data": {"uuid": NODE}}, fmt=fmt)
    stored = store.put(NODE, image, deploy_id="d", encoding="identity")
    assert stored.encoding == "identity"
    assert stored.location.endswith(suffix) and ".gz" not in stored.location
    assert (tmp_path / stored.location).read_bytes() == image
    assert store.url_for(stored.location, node_uuid=NODE) == stored.url
    store.delete(stored.location, node_uuid=NODE)
    assert not (tmp_path / stored.location).exists()


def test_unknown_encoding_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="encoding 'zstd'"):
        make_store(tmp_path).put(NODE, b"x", deploy_id="d", encoding="zstd")
    assert not (tmp_path / "cd").exists()


def test_unsafe_ids_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not usable"):
        make_store(tmp_path).put("../x", b"x", deploy_id="d")
    assert not (tmp_path / "cd").exists()


def test_locate_names_the_file_put_writes(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    location = store.locate(NODE, b"x", deploy_id="d", encoding="identity")
    assert location.startswith(f"cd/{NODE}.d.") and location.endswith(".img")
    assert store.locate(NODE, b"x", deploy_id="d") != store.locate(NODE, b"x", deploy_id="d")
    stored = store.put(NODE, b"x", deploy_id="d", encoding="identity", location=location)
    assert stored.location == location and (tmp_path / location).is_file()


@pytest.mark.parametrize("location", [
    "cd/other-node.d.x.gz", f"cd/{NODE}.other.x.gz", f"../{NODE}.d.x.gz", f"cd/{NODE}.d.x.txt"])
def test_put_refuses_a_location_not_of_this_deploy(tmp_path: Path, location: str) -> None:
    with pytest.raises(StoreError, match="config drive of this node|not this deploy's"):
        make_store(tmp_path).put(NODE, b"x", deploy_id="d", location=location)
    assert not any(tmp_path.rglob(f"*{NODE}*"))


def test_list_stored_sees_ours_only(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    first = store.put(NODE, b"x", deploy_id="d1")
    second = store.put(NODE, b"y" * 10, deploy_id="d2", encoding="identity")
    (tmp_path / "cd" / ".tmp-half-written").write_bytes(b"z")
    (tmp_path / "cd" / "index.html").write_bytes(b"")
    (tmp_path / "cd" / "README").write_bytes(b"")
    os.utime(tmp_path / first.location, (1, 1))
    listed = sorted(store.list_stored(limit=10), key=lambda entry: entry.deploy_id)
    assert [(e.location, e.node_uuid, e.deploy_id) for e in listed] == [
        (first.location, NODE, "d1"), (second.location, NODE, "d2")]
    assert listed[0].age is not None and listed[0].age > 10**9  # mtime 1970
    assert listed[1].age is not None and listed[1].age < 60
    assert len(store.list_stored(limit=1)) == 1


def test_list_stored_without_a_directory_is_empty(tmp_path: Path) -> None:
    assert make_store(tmp_path).list_stored(limit=10) == []


def test_host_local_unless_the_root_is_shared(tmp_path: Path, conf: object) -> None:
    assert make_store(tmp_path).host_local
    conf.config(http_root_shared=True, group="configdrive")  # type: ignore[attr-defined]
    assert not make_store(tmp_path).host_local


# -- directory listings -------------------------------------------------------------------

FOLDER = "http://10.0.0.1:8080/cd/"


def test_index_file_is_written_with_the_folder_and_restored(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    index = tmp_path / "cd" / "index.html"
    store.put(NODE, b"x", deploy_id="d")
    assert index.read_bytes() == http_store.INDEX_BODY
    assert oct(index.stat().st_mode & 0o777) == oct(http_store.FILE_MODE)
    for restore in (store.validate, lambda: store.list_stored(limit=10),
                    lambda: store.put(NODE, b"y", deploy_id="e")):
        index.unlink()
        restore()
        assert index.read_bytes() == http_store.INDEX_BODY
    assert len(store.list_stored(limit=10)) == 2  # the index file is not a drive


class FakeServer:
    """Answers the probe's GETs like a server that lists directories (or not, or is down)."""

    def __init__(self, tmp_path: Path, *, lists: bool = True,
                 down: bool = False) -> None:
        self.directory = tmp_path / "cd"
        self.lists, self.down = lists, down
        self.asked: list[str] = []

    def __call__(self, url: str) -> str | None:
        self.asked.append(url)
        if self.down:
            raise requests.ConnectionError("connection refused")
        if not self.lists:
            return None
        relative = url[len(FOLDER):].strip("/")
        listed = self.directory / relative
        return "".join(f'<a href="{p.name}">{p.name}</a>' for p in listed.iterdir())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(http_store, "_clock", lambda: now[0])
    return now


def test_listing_fails_validate_with_the_fix_and_is_rechecked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    server = FakeServer(tmp_path)
    monkeypatch.setattr(http_store, "_fetch_page", server)
    store = make_store(tmp_path)
    for _ in range(2):  # a listing server is probed again on every validate
        with pytest.raises(StoreError) as info:
            store.validate()
        message = info.value.message
        assert f"lists {FOLDER}" in message
        assert "Options -Indexes" in message and "autoindex off" in message
    assert server.asked[0] == FOLDER
    assert len(server.asked) == 2
    # Fixed: passes at once, without waiting for a cached verdict to expire.
    server.lists = False
    store.validate()
    # Probes leave nothing behind but the index file.
    assert [p.name for p in (tmp_path / "cd").iterdir()] == ["index.html"]


def test_a_listing_below_the_folder_is_caught_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    server = FakeServer(tmp_path)

    def honours_the_index(url: str) -> str | None:
        return "<title></title>" if url == FOLDER else server(url)

    monkeypatch.setattr(http_store, "_fetch_page", honours_the_index)
    with pytest.raises(StoreError, match="or directories below it"):
        make_store(tmp_path).validate()
    assert server.asked[0].startswith(FOLDER + http_store.LISTING_PROBE_PREFIX)


def test_a_clean_verdict_is_cached_per_conductor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    server = FakeServer(tmp_path, lists=False)
    monkeypatch.setattr(http_store, "_fetch_page", server)
    make_store(tmp_path).validate()
    assert len(server.asked) == 2
    clock[0] += http_store.LISTING_CHECK_TTL - 1
    make_store(tmp_path).validate()  # a new store object: the verdict is the process's
    assert len(server.asked) == 2
    clock[0] += 1
    server.lists = True
    with pytest.raises(StoreError, match="lists"):
        make_store(tmp_path).validate()


def test_unreachable_server_warns_and_passes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: list[float],
        caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(tmp_path, down=True)
    monkeypatch.setattr(http_store, "_fetch_page", server)
    make_store(tmp_path).validate()
    make_store(tmp_path).validate()
    assert len(server.asked) == 1  # the unknown verdict is cached too: one warning
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert FOLDER in warning.getMessage() and "ConnectionError" in warning.getMessage()
    assert "Options -Indexes" in warning.getMessage()
    assert [p.name for p in (tmp_path / "cd").iterdir()] == ["index.html"]


def test_unit_tests_never_reach_the_network(tmp_path: Path,
                                            _listing_probe_offline: list[str]) -> None:
    make_store(tmp_path).validate()
    assert _listing_probe_offline == [FOLDER, mock.ANY]
