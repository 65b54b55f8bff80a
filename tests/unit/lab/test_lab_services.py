"""Unit tests of the lab's Swift/Redfish wiring: configs, pid files, arguments, summaries."""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ironic_configdrive_lab import bmc, cli, ironic, objectstore, process, redfish, run_cmd, swift
from ironic_configdrive_lab.workdir import Workdir

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def _sleeper(path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(SLEEP, start_new_session=True)
    process.record_pid(path, proc.pid)
    return proc


def test_pid_file_round_trip_and_stop(tmp_path: Path) -> None:
    path = tmp_path / "pids" / "x.pid"
    proc = _sleeper(path)
    assert process.pid_from_file(path) == proc.pid
    assert process.stop_pid_file(path) is True
    assert proc.poll() is not None
    assert not path.exists()
    assert process.stop_pid_file(path) is False


def test_swift_stop_recorded_stops_every_recorded_process(tmp_path: Path) -> None:
    procs = {name: _sleeper(path) for name, path in swift.pid_files(tmp_path).items()}
    assert swift.running_recorded(tmp_path) == {n: p.pid for n, p in procs.items()}
    # Reverse start order: the proxy goes first, memcached last.
    assert swift.stop_recorded(tmp_path) == list(reversed(swift.PROCESSES))
    assert all(p.poll() is not None for p in procs.values())
    assert swift.running_recorded(tmp_path) == {}


def test_redfish_stop_recorded(tmp_path: Path) -> None:
    proc = _sleeper(tmp_path / "redfish.pid")
    assert redfish.stop_recorded(tmp_path / "redfish.pid") is True
    assert proc.poll() is not None
    assert redfish.stop_recorded(tmp_path / "redfish.pid") is False


def _proxy_conf(server: swift.SwiftServer) -> configparser.ConfigParser:
    server.conf_dir.mkdir(parents=True)
    server.ports = {name: 1000 + i for i, name in enumerate(swift.PROCESSES)}
    server._write_configs()
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(server.conf_dir / "proxy-server.conf")
    return conf


def test_swift_proxy_has_no_test_middleware_by_default(tmp_path: Path) -> None:
    conf = _proxy_conf(swift.SwiftServer(tmp_path))
    pipeline = conf["pipeline:main"]["pipeline"].split()
    assert pipeline[-1] == "proxy-server" and "tempurl" in pipeline and "tempauth" in pipeline
    assert not any(name.startswith("filter:faults") for name in conf.sections())
    assert "tests" not in (tmp_path / "etc" / "proxy-server.conf").read_text()


def test_swift_proxy_takes_extra_middleware(tmp_path: Path) -> None:
    conf = _proxy_conf(swift.SwiftServer(tmp_path, middleware=[
        ("faults", {"paste.filter_factory": "pkg.mod:factory", "control_file": "/x"})]))
    pipeline = conf["pipeline:main"]["pipeline"].split()
    # After auth, right before the final logging and the app.
    assert pipeline[-3:] == ["faults", "proxy-logging", "proxy-server"]
    assert pipeline.index("tempauth") < pipeline.index("faults")
    assert conf["filter:faults"]["paste.filter_factory"] == "pkg.mod:factory"
    assert conf["filter:faults"]["control_file"] == "/x"


def test_release_needs_pid_tracking(tmp_path: Path) -> None:
    with pytest.raises(swift.SwiftServerError, match="pid_dir"):
        swift.SwiftServer(tmp_path).release()
    with pytest.raises(redfish.RedfishEmulatorError, match="pid_file"):
        redfish.RedfishEmulator(tmp_path).release()


def test_test_fixtures_reexport_the_package_classes() -> None:
    from tests.fixtures import redfish as redfish_fixture
    from tests.fixtures import swift as swift_fixture

    assert redfish_fixture.RedfishEmulator is redfish.RedfishEmulator
    assert issubclass(swift_fixture.SwiftServer, swift.SwiftServer)
    assert swift_fixture.SwiftServerError is swift.SwiftServerError


def test_ironic_conf_points_at_the_lab_swift(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    settings = {"auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "test:tester",
                "key": "testing", "container": objectstore.CONTAINER}
    path = ironic.write_conf(workdir, api_port=2, http_url="http://127.0.0.1:3", debug=False,
                             configdrive=objectstore.conf_options(settings))
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path)
    assert {key: conf["configdrive"][key] for key in (
        "store", "swift_container", "swift_auth_url", "swift_user", "swift_key")} == {
        "store": "swift", "swift_container": "lab-configdrive",
        "swift_auth_url": settings["auth_url"], "swift_user": "test:tester",
        "swift_key": "testing"}
    path = ironic.write_conf(workdir, api_port=2, http_url="http://127.0.0.1:3", debug=False)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path)
    assert conf["configdrive"]["store"] == "http"
    assert not conf.has_option("configdrive", "swift_key")
    # URLs of the lab's own servers may be fetched: loopback is allowed, nothing else.
    assert conf["configdrive"]["fetch_allowed_networks"] == "127.0.0.0/8"


def test_bmc_system_is_stable_per_workdir(tmp_path: Path) -> None:
    one, other = Workdir.at(tmp_path / "a"), Workdir.at(tmp_path / "b")
    assert bmc.system_uuid(one) == bmc.system_uuid(Workdir.at(tmp_path / "a"))
    assert bmc.system_uuid(one) != bmc.system_uuid(other)


def test_parser_defaults() -> None:
    args = cli._parser().parse_args(["run", "--workdir", "x"])
    assert (args.store, args.exposure) == ("swift", None)
    args = cli._parser().parse_args(["deploy", "--workdir", "x", "--config-drive", "{}"])
    assert args.exposure == "partition"
    args = cli._parser().parse_args(["up", "--workdir", "x", "--store", "http"])
    assert args.store == "http"
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["up", "--workdir", "x", "--store", "s3"])


def test_renamed_drive_changes_the_instance_name_only() -> None:
    drive = json.loads(run_cmd._renamed(json.dumps(run_cmd.EXAMPLE_DRIVE), "other"))
    assert drive["meta_data"]["name"] == drive["meta_data"]["hostname"] == "other"
    assert drive["user_data"] == "#cloud-config\nhostname: other\n"
    assert drive["meta_data"]["public_keys"] == run_cmd.EXAMPLE_DRIVE["meta_data"]["public_keys"]
    assert run_cmd._renamed("/some/file.iso", "other") == "/some/file.iso"


def test_json_output_hides_the_swift_key() -> None:
    state: dict[str, Any] = {"up": True, "swift": {"auth_url": "http://127.0.0.1:1/auth/v1.0",
                                                   "key": "k3y"}}
    public = cli._public(state)
    assert public["swift"]["key"] == "***" and "k3y" not in json.dumps(public)
    assert state["swift"]["key"] == "k3y"
    assert cli._public({"store": "http"}) == {"store": "http"}


def test_swift_log_level_reaches_every_server(tmp_path: Path) -> None:
    _proxy_conf(swift.SwiftServer(tmp_path, log_level="DEBUG"))
    for server in ("proxy", "account", "container", "object"):
        assert "log_level = DEBUG" in (tmp_path / "etc" / f"{server}-server.conf").read_text()


def test_undeployed_checks_the_http_store(tmp_path: Path) -> None:
    from ironic_configdrive_lab import verify
    from ironic_configdrive_lab.workdir import LabError

    workdir = Workdir.at(tmp_path)
    workdir.create()
    (workdir.http_root / "configdrive").mkdir()
    leftover = workdir.http_root / "configdrive" / "node.secret.iso"
    leftover.write_bytes(b"drive")
    state = {"store": "http", "deployed": {"stored": {"store": "http",
                                                     "location": "configdrive/node.secret.iso"}}}
    with pytest.raises(LabError, match="not deleted from the http store") as info:
        verify.undeployed(workdir, state)
    assert "secret" not in str(info.value)
    leftover.unlink()
    assert verify.undeployed(workdir, state) == [
        "stored config drive deleted from the http store"]


def test_run_reads_a_json_file_so_updates_change_the_drive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tools/demo.sh passes a file: each phase must get its own, renamed drive."""
    calls: list[tuple[str, str]] = []
    deployed: dict[str, bool] = {"now": False}

    def record(name: str) -> Any:
        def action(workdir: Any, **kwargs: Any) -> dict[str, Any]:
            calls.append((name, kwargs.get("config_drive", "")))
            deployed["now"] = name in ("deploy", "update")
            return {"checks": []}
        return action

    for name in ("up", "deploy", "update", "undeploy", "down"):
        monkeypatch.setattr(run_cmd, name, record(name))
    monkeypatch.setattr(Workdir, "load_state",
                        lambda self: {"deployed": True} if deployed["now"] else {})
    monkeypatch.setattr(run_cmd, "_print_summary", lambda *a, **k: None)
    drive_file = tmp_path / "drive.json"
    drive_file.write_text(json.dumps(run_cmd.EXAMPLE_DRIVE))
    run_cmd.run(Workdir.at(tmp_path / "lab"), config_drive=str(drive_file), exposure=None,
            debug=False)
    names = [name for name, _ in calls]
    assert names == ["up", "deploy", "update", "deploy", "undeploy", "deploy", "update",
                     "undeploy", "down"]
    drives = [json.loads(text)["meta_data"]["name"] for _, text in calls if text]
    assert drives == ["lab-instance", "lab-updated", "lab-rebuilt", "lab-vmedia",
                      "lab-vmedia-updated"]


def test_run_skips_updates_for_a_drive_it_cannot_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for name in ("up", "deploy", "update", "undeploy", "down"):
        monkeypatch.setattr(run_cmd, name, lambda workdir, _n=name, **kw: calls.append(_n) or {})
    monkeypatch.setattr(run_cmd, "_print_summary", lambda *a, **k: None)
    blob = tmp_path / "drive.gz.b64"
    blob.write_text("H4sIAAAAAAAA")
    run_cmd.run(Workdir.at(tmp_path / "lab"), config_drive=str(blob), exposure=None, debug=False)
    assert "update" not in calls
