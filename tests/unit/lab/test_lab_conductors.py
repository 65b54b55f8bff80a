"""Unit tests of the multi-conductor profile: Ironic configs, profile state, the CLI, stops."""

from __future__ import annotations

import configparser
import sys
import time
from pathlib import Path

import pytest

from ironic_configdrive_lab import (
    cli,
    conductor_cmd,
    ironic_conf,
    mariadb,
    names,
    ports,
    process,
    status_cmd,
    verify,
)
from ironic_configdrive_lab.profile import ConductorHost, Profile, recorded_hosts
from ironic_configdrive_lab.workdir import LabError, Workdir

DB = mariadb.url("127.0.0.1", 3306, "secret")
SWIFT = {"store": "swift", "swift_auth_url": "http://127.0.0.1:1/auth/v1.0"}


def _conductors(workdir: Workdir, configdrive: dict[str, str] | None = None
                ) -> list[configparser.ConfigParser]:
    return [ironic_conf.conductor(host, api_port=6385, database=DB, debug=False,
                                  http_url=f"http://{host.address}:{8000 + host.index}",
                                  configdrive=configdrive)
            for host in Profile(2).hosts(workdir)]


def test_two_conductors_are_two_hosts(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    one, two = _conductors(workdir, SWIFT)
    for conf, address, index in ((one, "127.0.0.2", 1), (two, "127.0.0.3", 2)):
        assert conf["DEFAULT"]["host"] == address
        assert conf["json_rpc"]["host_ip"] == address
        # Ironic's default port: another one makes node locks unclearable after a crash.
        assert not conf.has_option("json_rpc", "port")
        assert conf["DEFAULT"]["rpc_transport"] == "json-rpc"
        assert conf["database"]["connection"] == DB
        assert conf["deploy"]["http_root"] == str(tmp_path / f"conductor-{index}" / "http")
        assert conf["deploy"]["http_url"] == f"http://{address}:{8000 + index}"
        assert conf["DEFAULT"]["log_file"] == str(workdir.log(f"conductor-{index}"))
        assert conf["oslo_concurrency"]["lock_path"] == str(
            tmp_path / f"conductor-{index}" / "locks")
        assert conf["configdrive"]["store"] == "swift"
        assert conf["configdrive"]["swift_auth_url"] == SWIFT["swift_auth_url"]
    # Distinct where a host is distinct; the same key content is copied to each by `up`.
    for section, key in (("DEFAULT", "host"), ("json_rpc", "host_ip"), ("deploy", "http_root"),
                         ("deploy", "http_url"), ("DEFAULT", "log_file"),
                         ("configdrive", "key_file")):
        assert one[section][key] != two[section][key], (section, key)


def test_fast_heartbeats_match_between_api_and_conductors(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    api = ironic_conf.api(workdir, api_port=6385, database=DB, debug=True)
    assert api["api"]["api_workers"] == "1"
    assert (api["api"]["host_ip"], api["api"]["port"]) == ("127.0.0.1", "6385")
    assert api["DEFAULT"]["rpc_transport"] == "json-rpc"
    assert api["database"]["connection"] == DB
    assert api["DEFAULT"]["debug"] == "True"
    for conf in _conductors(workdir):
        assert conf["conductor"]["heartbeat_interval"] == "1"
        assert conf["conductor"]["heartbeat_timeout"] == "3"
        assert conf["conductor"]["sync_local_state_interval"] == "1"
        assert conf["DEFAULT"]["hash_ring_reset_interval"] == "1"
        # The API must judge conductors dead as fast as they judge each other.
        assert api["conductor"]["heartbeat_timeout"] == conf["conductor"]["heartbeat_timeout"]
        assert api["DEFAULT"]["hash_ring_reset_interval"] == \
            conf["DEFAULT"]["hash_ring_reset_interval"]
        assert not conf.has_option("api", "port")  # a conductor serves no API
    assert not api.has_section("deploy")


def test_single_profile_config_is_unchanged(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    conf = ironic_conf.single(workdir, api_port=5, http_url="http://127.0.0.1:6", debug=False)
    assert conf["DEFAULT"]["rpc_transport"] == "none"
    assert conf["DEFAULT"]["host"] == "lab-conductor"
    assert conf["database"]["connection"] == f"sqlite:///{tmp_path / 'ironic.sqlite'}"
    assert conf["deploy"]["http_root"] == str(workdir.http_root)
    assert conf["conductor"]["heartbeat_interval"] == "5"
    assert not conf.has_section("json_rpc")
    assert not conf.has_option("conductor", "heartbeat_timeout")
    assert conf["configdrive"]["key_file"] == str(workdir.etc / "configdrive.key")


def test_mariadb_url_uses_pymysql() -> None:
    assert DB == "mysql+pymysql://ironic:secret@127.0.0.1:3306/ironic?charset=utf8"


def test_profile_state_and_hosts(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    assert Profile.of({}) == Profile(1)  # a lab from before profiles
    assert Profile(1).hosts(workdir) == [] and Profile(1).api_name == "ironic"
    two = Profile.of({"profile": Profile(2).to_state()})
    assert two == Profile(2) and two.multi and two.api_name == "ironic-api"
    assert two.to_state() == {"conductors": 2, "database": "mariadb",
                              "rpc_transport": "json-rpc"}
    assert [(h.name, h.address, h.http_name) for h in two.hosts(workdir)] == [
        ("conductor-1", "127.0.0.2", "http-1"), ("conductor-2", "127.0.0.3", "http-2")]
    with pytest.raises(LabError, match="no conductor 3"):
        two.host(workdir, 3)
    with pytest.raises(LabError, match="single Ironic process"):
        Profile(1).host(workdir, 1)
    with pytest.raises(LabError, match="between 1 and"):
        Profile(0)


def test_down_finds_conductors_by_pid_files_without_state(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    (workdir.pids / "conductor-3.pid").write_text("1 2\n")
    (workdir.pids / "http-1.pid").write_text("1 2\n")
    assert [h.index for h in recorded_hosts(workdir)] == [1, 3]
    names = conductor_cmd.stop_order(workdir)
    assert names == ["ironic", "ironic-api", "conductor-1", "conductor-3", "http-1", "http-3"]
    workdir.update_state(profile=Profile(2).to_state())
    assert [h.index for h in recorded_hosts(workdir)] == [1, 2, 3]


def test_status_processes_follow_the_profile(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    assert tuple(status_cmd.status(workdir)["processes"]) == names.SERVICES
    workdir.update_state(profile=Profile(2).to_state())
    status = status_cmd.status(workdir)
    assert list(status["processes"]) == [
        "power", "agent", "ironic-api", "conductor-1", "conductor-2", "http-1", "http-2",
        "mariadb", "redfish", "http"]
    assert status["profile"]["conductors"] == 2
    assert status["database"]["engine"] == "mariadb"


def test_parser_conductors_and_conductor_command() -> None:
    args = cli._parser().parse_args(["up", "--workdir", "x", "--conductors", "2"])
    assert args.conductors == 2
    assert cli._parser().parse_args(["run", "--workdir", "x"]).conductors == 1
    args = cli._parser().parse_args(["conductor", "stop", "--workdir", "x", "2"])
    assert (args.action, args.index, args.graceful, args.wait) == ("stop", 2, False, False)
    args = cli._parser().parse_args(["conductor", "start", "1", "--workdir", "x", "--json"])
    assert (args.action, args.index) == ("start", 1)
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["conductor", "restart", "--workdir", "x", "1"])


def test_conductor_command_needs_a_multi_conductor_lab(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    assert cli.main(["conductor", "stop", "--workdir", str(tmp_path), "1"]) == 1
    assert "--conductors 2" in capsys.readouterr().err


def test_http_roots_and_host_local_leftovers(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    state = {"profile": Profile(2).to_state()}
    one, two = (ConductorHost(i, workdir) for i in (1, 2))
    assert verify.http_roots(workdir, state) == {"conductor-1": one.http_root,
                                                "conductor-2": two.http_root}
    assert verify.http_roots(workdir, {}) == {"ironic": workdir.http_root}
    location = "configdrive/node.deploy.secret.gz"
    stored = two.http_root / location
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"x")
    # Left in the root of the host that was down: reported, not failed.
    [note] = verify._http_deleted(workdir, state, location, "conductor-1", "stored drive")
    assert note.startswith("NOTE: the stored drive is still in conductor-2's HTTP root")
    # Left by the conductor that did the undeploy: a failure.
    with pytest.raises(LabError, match="not deleted"):
        verify._http_deleted(workdir, state, location, "conductor-2", "stored drive")
    stored.unlink()
    assert verify._http_deleted(workdir, state, location, "conductor-2", "stored drive") == [
        "stored drive deleted from the http store"]


def test_ports_free_and_in_use() -> None:
    import socket

    port = ports.free_port("127.0.0.2")
    assert ports.is_free("127.0.0.2", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", port))
        sock.listen()
        assert not ports.is_free("127.0.0.2", port)
        assert ports.answers("127.0.0.2", port)
    assert not ports.answers("127.0.0.2", port)


def test_stop_many_signals_together_and_hard_stop_kills(tmp_path: Path) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    # Ignores SIGTERM: only the grace's SIGKILL ends it.
    stubborn = [sys.executable, "-c", "import signal, time; "
                "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    for name in ("a", "b"):
        process.spawn(workdir, name, stubborn)
    process.spawn(workdir, "c", sleeper)
    mark = time.monotonic()
    assert process.stop_many(workdir, ["a", "b", "missing"], grace=1.0) == ["a", "b"]
    assert time.monotonic() - mark < 2.5  # one grace for both, not one each
    mark = time.monotonic()
    assert process.stop(workdir, "c", hard=True) is True
    assert time.monotonic() - mark < 1.0
    assert all(process.running_pid(workdir, n) is None for n in ("a", "b", "c"))
