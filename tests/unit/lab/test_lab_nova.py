"""Unit tests of the lab's Nova profile wiring: configurations, the Neutron stand-in's
answers, the openstack CLI's environment, the flavor (no processes)."""

from __future__ import annotations

import configparser
import io
import json
import threading
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from ironic_configdrive_lab import (
    cli,
    ironic_conf,
    keystone,
    mariadb,
    neutron_standin,
    nova,
    nova_profile,
    nova_venv,
    openstack_env,
    rabbitmq,
)
from ironic_configdrive_lab.workdir import LabError, Workdir

DATABASES = {key: f"mysql+pymysql://ironic:pw@127.0.0.1:3306/{name}?charset=utf8"
             for key, name in nova.DATABASES.items()}


def _workdir(tmp_path: Path) -> Workdir:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    return workdir


def _nova_conf(workdir: Workdir) -> configparser.ConfigParser:
    return nova.config(workdir, databases=DATABASES, transport_url="rabbit://g:g@127.0.0.1:1/",
                       auth_url="http://127.0.0.1:2/v3", ironic_url="http://127.0.0.1:3",
                       neutron_url="http://127.0.0.1:4", debug=False)


@pytest.mark.parametrize("path,key", [("/v2.0/ports", "ports"),
                                      ("/v2.0/ports.json?device_id=x", "ports"),
                                      ("/v2.0/security-groups", "security_groups"),
                                      ("/v2.0/floatingips/", "floatingips")])
def test_neutron_standin_lists_nothing(path: str, key: str) -> None:
    assert neutron_standin.answer("GET", path) == (200, {key: []})


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_neutron_standin_refuses_every_change(method: str) -> None:
    status, body = neutron_standin.answer(method, "/v2.0/ports")
    assert status == 405 and "--nic none" in json.dumps(body)


def test_neutron_standin_unknown_paths_and_versions() -> None:
    assert neutron_standin.answer("GET", "/v2.0/ports/1234")[0] == 404
    assert neutron_standin.answer("GET", "/")[1] == neutron_standin.VERSIONS


def test_neutron_standin_serves_json_over_http() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), neutron_standin._Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v2.0/networks"
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - loopback
            assert reply.headers["Content-Type"] == "application/json"
            assert json.load(reply) == {"networks": []}
    finally:
        server.shutdown()
        server.server_close()


def test_nova_conf_points_every_client_at_the_lab(tmp_path: Path) -> None:
    conf = _nova_conf(_workdir(tmp_path))
    assert conf["DEFAULT"]["compute_driver"] == "ironic_nonic.IronicDriver"
    assert (nova.NOVA_SIDE / "ironic_nonic.py").is_file()
    assert conf["DEFAULT"]["update_resources_interval"] == nova.UPDATE_RESOURCES_INTERVAL
    assert conf["ironic"]["auth_type"] == "none"
    assert conf["ironic"]["endpoint_override"] == "http://127.0.0.1:3"
    assert conf["neutron"]["endpoint_override"] == "http://127.0.0.1:4"
    assert conf["placement"]["auth_url"] == "http://127.0.0.1:2/v3"
    assert conf["api"]["auth_strategy"] == "keystone"
    assert conf["api_database"]["connection"] == DATABASES["api"]
    assert conf["database"]["connection"] == DATABASES["cell1"]


def test_cell_mappings_are_templates_filled_from_the_local_connection() -> None:
    # MariaDB's port changes at every `up`: the mapping must not carry one.
    assert nova.template("nova_cell0") == \
        "{scheme}://{username}:{password}@{hostname}:{port}/nova_cell0?{query}"


def test_keystone_password_is_private_and_kept(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    password = keystone.admin_password(workdir)
    assert keystone.admin_password(workdir) == password
    assert (keystone.root(workdir) / "admin.password").stat().st_mode & 0o077 == 0
    auth = keystone.auth_section(workdir, "http://127.0.0.1:5/v3")
    assert auth["password"] == password and auth["username"] == keystone.ADMIN


def test_keystone_conf_keeps_keys_under_the_workdir(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    conf = keystone.config(workdir, database="mysql+pymysql://x", debug=False)
    assert conf["token"]["provider"] == "fernet"
    for section in ("fernet_tokens", "credential"):
        assert Path(conf[section]["key_repository"]).is_relative_to(workdir.root)


def test_rabbitmq_environment_keeps_off_the_system_broker(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    env = rabbitmq.environment(workdir, amqp_port=1, dist_port=2, epmd_port=3)
    assert env["RABBITMQ_NODE_IP_ADDRESS"] == env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert (env["RABBITMQ_NODE_PORT"], env["RABBITMQ_DIST_PORT"], env["ERL_EPMD_PORT"]) == \
        ("1", "2", "3")
    for key in ("HOME", "RABBITMQ_MNESIA_BASE", "RABBITMQ_LOG_BASE", "RABBITMQ_PID_FILE",
                "RABBITMQ_CONFIG_FILE", "RABBITMQ_CONF_ENV_FILE",
                "RABBITMQ_ENABLED_PLUGINS_FILE"):
        assert Path(env[key]).is_relative_to(workdir.root), key
    assert workdir.tag in env["RABBITMQ_NODENAME"]


def test_flavor_asks_for_the_nodes_resource_class_only() -> None:
    spec = nova_profile.flavor_spec()
    assert spec["extra_specs"] == {"resources:CUSTOM_LAB_BAREMETAL": "1",
                                   "resources:VCPU": "0", "resources:MEMORY_MB": "0",
                                   "resources:DISK_GB": "0"}


def test_ironic_gets_glance_and_keeps_its_image_cache_in_the_workdir(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    extra = nova_profile.ironic_sections(workdir, {"auth_url": "http://127.0.0.1:5/v3",
                                                   "glance_url": "http://127.0.0.1:6"})
    conf = ironic_conf.single(workdir, api_port=7, http_url="http://127.0.0.1:8",
                              debug=False, extra=extra)
    assert conf["glance"]["endpoint_override"] == "http://127.0.0.1:6"
    assert conf["glance"]["auth_type"] == "password"
    for option in ("images_path", "instance_master_path"):
        assert Path(conf["pxe"][option]).is_relative_to(workdir.root)
    # The rest of Ironic's configuration is untouched.
    assert conf["DEFAULT"]["auth_strategy"] == "noauth"


def test_clouds_yaml_is_private_and_env_prints_the_exports(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    workdir = _workdir(tmp_path)
    assert cli.main(["env", "--workdir", str(workdir.root)]) == 1
    assert "up --with-nova" in capsys.readouterr().err
    path = openstack_env.write_clouds(workdir, "http://127.0.0.1:5/v3")
    assert path.stat().st_mode & 0o077 == 0
    cloud = json.loads(path.read_text())["clouds"][openstack_env.CLOUD]
    assert cloud["auth"]["auth_url"] == "http://127.0.0.1:5/v3"
    assert cloud["compute_api_version"] == "2.57"
    assert cli.main(["env", "--workdir", str(workdir.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "unset " + " ".join(openstack_env.OVERRIDING)
    assert f"export OS_CLIENT_CONFIG_FILE={path}" in lines
    assert f"export OS_CLOUD={openstack_env.CLOUD}" in lines


def test_cli_environment_drops_the_callers_os_variables(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("OS_AUTH_TYPE", "none")
    monkeypatch.setenv("OS_ENDPOINT", "http://elsewhere")
    env = openstack_env.environment(_workdir(tmp_path))
    assert "OS_AUTH_TYPE" not in env and "OS_ENDPOINT" not in env
    assert env["OS_CLOUD"] == openstack_env.CLOUD
    assert env["PATH"].startswith(str(nova_venv.path() / "bin"))


def test_cli_json_after_wait_progress() -> None:
    assert openstack_env.parse_json("Complete\n{\"id\": \"x\"}\n") == {"id": "x"}
    assert openstack_env.parse_json("[]") == []
    with pytest.raises(LabError, match="no JSON"):
        openstack_env.parse_json("Complete\n")


def test_missing_nova_venv_names_the_fix(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv(nova_venv.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(LabError, match="tools/bootstrap.sh"):
        nova_venv.tool("nova-compute")
    assert "nova-compute" in nova_venv.missing()


def test_mariadb_database_url_port() -> None:
    assert mariadb.port_of(mariadb.url("127.0.0.1", 4321, "pw")) == 4321


def test_parser_knows_with_nova() -> None:
    args = cli._parser().parse_args(["up", "--workdir", "x", "--with-nova"])
    assert args.with_nova is True
    assert cli._parser().parse_args(["run", "--workdir", "x"]).with_nova is False


def test_standin_main_parses_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = io.StringIO()

    class Server:
        def __init__(self, address: tuple[str, int], handler: object) -> None:
            seen.write(f"{address[0]}:{address[1]}")

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr(neutron_standin, "ThreadingHTTPServer", Server)
    neutron_standin.main(["4242"])
    assert seen.getvalue() == "127.0.0.1:4242"


def test_run_with_nova_tells_the_nova_story(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ironic_configdrive_lab import nova_cmd, run_cmd

    calls: list[tuple[str, dict[str, object]]] = []

    def record(name: str) -> object:
        def action(workdir: Workdir, **kwargs: object) -> dict[str, object]:
            calls.append((name, kwargs))
            return {"checks": [f"{name} checked"]}
        return action

    for name in ("up", "down", "deploy", "undeploy", "update"):
        monkeypatch.setattr(run_cmd, name, record(name))
    for name in ("create", "rebuild", "delete"):
        monkeypatch.setattr(nova_cmd, name, record(name))
    monkeypatch.setattr(run_cmd, "_print_summary", lambda *a, **k: None)
    summary = run_cmd.run(Workdir.at(tmp_path / "lab"), config_drive=None, exposure=None,
                          debug=False, with_nova=True)
    assert [name for name, _ in calls] == ["up", "create", "rebuild", "delete", "down"]
    assert calls[0][1]["with_nova"] is True
    create, rebuild = calls[1][1], calls[2][1]
    assert create["user_data"] != rebuild["user_data"]
    assert create["public_key"] == rebuild["public_key"]
    assert str(create["public_key"]).startswith("ssh-ed25519 ")
    assert list(summary["phases"]) == ["up --with-nova", "nova server create+verify",
                                       "nova server rebuild+verify",
                                       "nova server delete+clean+verify", "down"]


def test_run_with_nova_refuses_a_drive_of_its_own(tmp_path: Path) -> None:
    from ironic_configdrive_lab import run_cmd

    with pytest.raises(LabError, match="builds the config drive itself"):
        run_cmd.run(Workdir.at(tmp_path), config_drive="{}", exposure=None, debug=False,
                    with_nova=True)


def test_status_shows_the_nova_profile(tmp_path: Path) -> None:
    from ironic_configdrive_lab import status_cmd

    workdir = _workdir(tmp_path)
    workdir.update_state(with_nova=True, nova={"auth_url": "http://127.0.0.1:5/v3",
                                               "flavor": nova_profile.FLAVOR})
    found = status_cmd.status(workdir)["nova"]
    assert found["auth_url"] == "http://127.0.0.1:5/v3"
    assert found["flavor"] == nova_profile.FLAVOR
    assert set(found["processes"]) >= {nova.COMPUTE, nova.API, keystone.NAME, rabbitmq.NAME}
    assert not any(found["processes"].values())


def test_config_files_holding_passwords_are_private(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    path = nova.conf_path(workdir)
    path.parent.mkdir(parents=True)
    path.write_text("")
    path.chmod(0o644)
    nova_venv.write_private(_nova_conf(workdir), path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keystone.admin_password(workdir) in path.read_text()
