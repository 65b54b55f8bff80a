"""Unit tests of the lab's metalsmith helper: its cloud, what it asks of the node, what it
accepts as metalsmith's user data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ironic_configdrive_lab import guest, metalsmith_client
from ironic_configdrive_lab.names import NODE_NAME
from ironic_configdrive_lab.workdir import LabError, Workdir

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIunit unit@x"


class FakeClient:
    def __init__(self, node: dict[str, Any]) -> None:
        self._node = node
        self.calls: list[tuple[str, ...]] = []

    def node(self, ident: str) -> dict[str, Any]:
        return self._node

    def baremetal(self, *args: str, **kwargs: Any) -> None:
        self.calls.append(args)


def test_clouds_yaml_points_openstacksdk_at_the_lab(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = Workdir.at(tmp_path)
    workdir.create()
    workdir.update_state(api_url="http://127.0.0.1:6385")
    monkeypatch.setenv("OS_AUTH_TYPE", "password")
    monkeypatch.setenv("OS_BAREMETAL_API_VERSION", "latest")
    env = metalsmith_client.environment(workdir)
    assert env["OS_CLOUD"] == metalsmith_client.CLOUD
    # The caller's own OpenStack settings must not redirect or break the lab's cloud.
    assert "OS_AUTH_TYPE" not in env and "OS_BAREMETAL_API_VERSION" not in env
    clouds = yaml.safe_load(Path(env["OS_CLIENT_CONFIG_FILE"]).read_text())
    assert clouds == {"clouds": {"lab": {"auth_type": "none",
                                         "baremetal_endpoint_override":
                                             "http://127.0.0.1:6385"}}}


def test_prepare_node_gives_a_resource_class_and_a_power_state() -> None:
    client = FakeClient({"provision_state": "available", "resource_class": None,
                         "power_state": None})
    assert metalsmith_client.prepare_node(client) == metalsmith_client.RESOURCE_CLASS
    assert client.calls == [
        ("node", "set", NODE_NAME, "--resource-class", metalsmith_client.RESOURCE_CLASS),
        ("node", "power", "off", NODE_NAME)]


def test_prepare_node_keeps_what_the_node_has() -> None:
    client = FakeClient({"provision_state": "available", "resource_class": "baremetal",
                         "power_state": "power off"})
    assert metalsmith_client.prepare_node(client) == "baremetal"
    assert client.calls == []


def test_prepare_node_refuses_a_node_in_use() -> None:
    client = FakeClient({"provision_state": "active"})
    with pytest.raises(LabError, match="available nodes only.*'active'.*undeploy it first"):
        metalsmith_client.prepare_node(client)
    assert client.calls == []


def _user_data(users: list[dict[str, Any]]) -> str:
    # As metalsmith's CloudInitConfig writes it.
    return "#cloud-config\n" + json.dumps({"users": users})


@pytest.mark.parametrize("user_data,found", [
    (_user_data([{"name": "ops", "ssh_authorized_keys": [KEY]}]), ["ops"]),
    (_user_data([{"name": "ops", "ssh_authorized_keys": [KEY + " other comment"]}]), ["ops"]),
    (_user_data([{"name": "ops", "ssh_authorized_keys": []}]), []),
    (_user_data([{"name": "ops"}]), []),
    ("#!/bin/sh\n" + json.dumps({"users": [{"name": "ops", "ssh_authorized_keys": [KEY]}]}),
     []),
    ("#cloud-config\nusers: [", []),
    ("#cloud-config\n[]", []),
    ("", []),
])
def test_users_with_key(user_data: str, found: list[str]) -> None:
    assert metalsmith_client._users_with_key(user_data, guest.key_digest(KEY)) == found
