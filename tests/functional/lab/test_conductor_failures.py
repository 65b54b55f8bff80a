"""The drive's lifecycle across conductors and failures, in the lab (marker lab).

Two conductors on MariaDB (json-rpc), each host with its own HTTP root and server:

* virtual media with the encrypted Swift store: the holder's host fails, the survivor takes
  the node over and re-serves the media from its own HTTP root; the old host comes back (the
  node moves back to it, and its reconciler deletes the copy it held); an update and a
  rebuild still work; undeploy leaves 0 objects in Swift and 0 drives in any HTTP root;
* the same with the http store: the drive lived only on the failed host, so the survivor
  says so in the node's last_error instead of re-serving; undeploy on the survivor keeps the
  failed host's files recorded, and that host's reconciler deletes them when it is back.

One conductor, Swift stopped during undeploy: the delete fails, stays recorded, and the
reconciler deletes the object within one period once Swift is back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ironic_configdrive.store import http as http_store
from ironic_configdrive_lab import (
    bmc,
    cli,
    ironic_conf,
    names,
    node_cmd,
    objectstore,
    status_cmd,
    up_cmd,
    verify,
)
from ironic_configdrive_lab.client import Client
from ironic_configdrive_lab.conductors import Conductors
from ironic_configdrive_lab.workdir import Workdir
from tests.functional.lab.test_conductors import Timings, _leftovers, _require_conductors
from tests.functional.lab.test_lab import CONFIG_DRIVE, _require_lab

pytestmark = pytest.mark.lab

#: A few reconciler periods: how long a leftover may take to go.
RECONCILE_WAIT = 12 * float(ironic_conf.RECONCILE_INTERVAL)


def _drive(hostname: str) -> str:
    meta = {**CONFIG_DRIVE["meta_data"], "name": hostname, "hostname": hostname}
    return json.dumps({**CONFIG_DRIVE, "meta_data": meta,
                       "user_data": f"#cloud-config\nhostname: {hostname}\n"})


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def _drives(lab: Conductors, index: int) -> list[str]:
    """Config drive files in conductor ``index``'s HTTP root (plaintext copies included;
    not the empty index file that keeps web servers from listing the folder)."""
    directory = lab.host(index).http_root / "configdrive"
    return sorted(p.name for p in directory.iterdir()
                  if p.is_file() and p.name != http_store.INDEX_NAME) \
        if directory.is_dir() else []


def _record(workdir: Workdir) -> dict[str, Any] | None:
    node = Client(workdir.load_state()["api_url"]).node(names.NODE_NAME) or {}
    return (node.get("driver_internal_info") or {}).get("configdrive")


def _media(workdir: Workdir, device: str) -> dict[str, Any]:
    return bmc.media(workdir, workdir.load_state()["redfish"]["redfish_address"])[device]


def _served_by(lab: Conductors, workdir: Workdir, device: str, index: int,
               sha256: str) -> bool:
    """The BMC's media URL is conductor ``index``'s and answers with the drive."""
    http_url = workdir.load_state()["conductors"][lab.host(index).name]["http_url"]
    return verify.media_served_by(workdir, device, str(http_url), sha256)


@pytest.fixture
def two_conductors(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workdir]:
    _require_conductors()
    workdir = Workdir.at(tmp_path / "lab")
    store = request.param
    try:
        assert cli.main(["up", "--workdir", str(workdir.root), "--conductors", "2",
                         "--store", store]) == 0
        yield workdir
    finally:
        up_cmd.down(workdir, quiet=True)
    assert _leftovers(workdir) == []


@pytest.mark.parametrize("two_conductors", ["swift"], indirect=True)
def test_virtual_media_survives_its_conductor(two_conductors: Workdir) -> None:
    workdir, timings = two_conductors, Timings("two conductors, Swift, virtual media")
    lab = Conductors(workdir)
    try:
        with timings.phase("deploy (virtual media, Swift, encrypted)"):
            result = node_cmd.deploy(workdir, config_drive=_drive("vm-one"),
                                exposure="virtual_media")
        first, device, sha = lab.holder(), str(result["media"]), str(result["sha256"])
        assert first is not None
        other = 3 - first
        assert len(_drives(lab, first)) == 1 and _drives(lab, other) == []
        assert _served_by(lab, workdir, device, first, sha)

        with timings.phase(f"conductor-{first} fails; takeover and re-exposure"):
            lab.stop(first)
            second, _ = lab.wait_for_takeover(first)
            assert second == other
            _wait("the BMC's media served again by the survivor",
                  lambda: _served_by(lab, workdir, device, second, sha), 60)
        assert len(_drives(lab, second)) == 1
        record = _record(workdir)
        assert record is not None
        assert [ref["holder"] for ref in record["served"]] == [f"127.0.0.{second + 1}"]
        assert [ref["holder"] for ref in record["stale"]] == [f"127.0.0.{first + 1}"]

        with timings.phase(f"conductor-{first} back: node moves back, old copies reconciled"):
            lab.start(first)
            lab.wait_for_holder(lambda index: index == first)
            _wait("the media served by the returning conductor",
                  lambda: _served_by(lab, workdir, device, first, sha), 60)
            _wait("one plaintext copy left, on the holder",
                  lambda: len(_drives(lab, first)) == 1 and _drives(lab, second) == [],
                  RECONCILE_WAIT)

        with timings.phase("update (service step) after the rebalance"):
            updated = node_cmd.update(workdir, config_drive=_drive("vm-two"))
        assert updated["sha256"] != sha
        with timings.phase("rebuild after the rebalance"):
            rebuilt = node_cmd.deploy(workdir, config_drive=_drive("vm-three"),
                                 exposure="virtual_media")
        assert rebuilt["sha256"] not in (sha, updated["sha256"])

        with timings.phase("undeploy"):
            node_cmd.undeploy(workdir)
        state = workdir.load_state()
        assert objectstore.list_objects(state["swift"]) == []
        assert not _media(workdir, device).get("Inserted")
        _wait("no drive in any HTTP root",
              lambda: _drives(lab, 1) == [] and _drives(lab, 2) == [], RECONCILE_WAIT)
        assert _record(workdir) is None
    finally:
        timings.report()


@pytest.mark.parametrize("two_conductors", ["http"], indirect=True)
def test_host_local_drive_of_a_failed_host(two_conductors: Workdir) -> None:
    workdir, timings = two_conductors, Timings("two conductors, http store, virtual media")
    lab = Conductors(workdir)
    try:
        with timings.phase("deploy (virtual media, http store, encrypted)"):
            result = node_cmd.deploy(workdir, config_drive=_drive("local-one"),
                                exposure="virtual_media")
        first, device = lab.holder(), str(result["media"])
        assert first is not None
        assert len(_drives(lab, first)) == 2  # the sealed drive and the decrypted copy

        with timings.phase(f"conductor-{first} fails; the survivor reports"):
            lab.stop(first)
            second, _ = lab.wait_for_takeover(first)
            status = _wait("the survivor's report in last_error", lambda: (
                status_cmd.status(workdir)["node"] if "not re-exposed after a takeover" in str(
                    (status_cmd.status(workdir)["node"] or {}).get("last_error")) else None), 60)
        assert f"held by conductor 127.0.0.{first + 1}" in status["last_error"]
        assert "update_configdrive" in status["last_error"]
        assert _drives(lab, second) == []

        with timings.phase(f"undeploy on conductor-{second}"):
            node_cmd.undeploy(workdir)
        assert not _media(workdir, device).get("Inserted")
        record = _record(workdir)
        assert record is not None  # the failed host's files: recorded, not forgotten
        assert {ref["holder"] for ref in record["stale"]} == {f"127.0.0.{first + 1}"}
        assert len(_drives(lab, first)) == 2

        with timings.phase(f"conductor-{first} back: its reconciler deletes its files"):
            lab.start(first)
            _wait("no drive in any HTTP root",
                  lambda: _drives(lab, 1) == [] and _drives(lab, 2) == [], RECONCILE_WAIT)
            _wait("the record gone", lambda: _record(workdir) is None, RECONCILE_WAIT)
    finally:
        timings.report()


def test_swift_down_during_undeploy(tmp_path: Path) -> None:
    _require_lab()
    workdir, timings = Workdir.at(tmp_path / "lab"), Timings("one conductor, Swift down")
    try:
        with timings.phase("up (one conductor, Swift)"):
            assert cli.main(["up", "--workdir", str(workdir.root)]) == 0
        with timings.phase("deploy (partition)"):
            node_cmd.deploy(workdir, config_drive=_drive("swift-down"), exposure="partition")
        settings = workdir.load_state()["swift"]
        assert len(objectstore.list_objects(settings)) == 1
        client = Client(workdir.load_state()["api_url"])
        with timings.phase("undeploy (teardown + cleaning) with the Swift proxy down"):
            with objectstore.proxy_down(workdir):
                client.baremetal("node", "undeploy", names.NODE_NAME)
                node = client.wait_for(names.NODE_NAME, {"available"}, timeout=600)
                record = (node.get("driver_internal_info") or {}).get("configdrive")
                assert record is not None and len(record["stale"]) == 1
        with timings.phase("Swift back: the reconciler deletes the object"):
            _wait("the object gone", lambda: objectstore.list_objects(settings) == [],
                  RECONCILE_WAIT)
            _wait("the record gone", lambda: _record(workdir) is None, RECONCILE_WAIT)
    finally:
        up_cmd.down(workdir, quiet=True)
        timings.report()
