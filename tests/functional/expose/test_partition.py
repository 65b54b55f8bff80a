"""PartitionExposer driving the REAL ``configdrive`` IPA extension on real loop devices.

IPA 13's own extension manager loads our extension in this process; a small client hands
Ironic's ``_command``/``get_last_command_status`` calls to it and returns the JSON IPA's API
would send (serialised with IPA's encoder), so the exposer's polling, result parsing and
error mapping meet real command results. The agent's HTTP API is the lab's business.

No Ironic DbTestCase here: its base forbids subprocesses, which the agent's disk code needs.
"""

from __future__ import annotations

import gzip
import json
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import ironic.conf  # noqa: F401  (registers [agent] options the exposer reads)
import pytest
from ironic.common import exception as ironic_exc
from ironic_python_agent import encoding
from ironic_python_agent import errors as ipa_errors

from ironic_configdrive.expose import loader
from ironic_configdrive.expose.base import ExposureError
from ironic_configdrive.expose.partition import PartitionExposer
from ironic_configdrive.image import build_image
from ironic_configdrive.store.base import StoredImage
from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.conftest import (
    Agent,
    disk_nodes,
    loaded_agent,
    read_node,
    sha256,
)
from tests.functional.agent_ext.disk.conftest import blkid_config_drives, loopdisk, sgdisk

pytestmark = pytest.mark.loopdev
__all__ = ["loopdisk"]  # the fixture, re-used from the disk layer's conftest

SIG = "feedfacefeedfacefeedfacefeedfacefeedface"
NODE = "3f0c9a2e-7777-4888-9999-000011112222"


class InProcessAgentClient:
    """Ironic's AgentClient surface used by the exposer, answered by an in-process agent."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @staticmethod
    def _json(result: Any) -> dict[str, Any]:
        return dict(json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder)))

    def _command(self, node: Any, method: str, params: dict[str, Any], wait: bool = False,
                 poll: bool = False) -> dict[str, Any]:
        self.calls.append((method, dict(params)))
        try:
            result = self.agent.execute_command(method, **params)
        except ipa_errors.RESTError as exc:  # what IPA's API answers with an HTTP error
            body = self._json(exc)
            raise ironic_exc.AgentAPIError(node=node.uuid, status=exc.status_code,
                                           error=f"{body.get('message')}: "
                                                 f"{body.get('details')}") from None
        return self._json(result)

    def get_last_command_status(self, node: Any, method: str) -> dict[str, Any] | None:
        name = method.split(".", 1)[1]
        for result in reversed(list(self.agent.command_results.values())):
            if result.command_name == name:
                return self._json(result)
        return None


@pytest.fixture
def agent() -> Iterator[Agent]:
    with loaded_agent() as loaded:
        yield loaded
        for result in loaded.command_results.values():
            result.join()


@pytest.fixture
def server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()


@pytest.fixture
def make_task(agent: Agent) -> Callable[..., Any]:
    def make(**driver_info: Any) -> Any:
        # The operator's per-node settings: the agent writes only a disk it names.
        node = types.SimpleNamespace(
            uuid=NODE, instance_info={}, driver_info=driver_info,
            driver_internal_info={"agent_url": "http://127.0.0.1:9999"})
        task = types.SimpleNamespace(node=node)
        task.cached_agent_client = InProcessAgentClient(agent)  # Ironic's get_client() seam
        return task

    return make


@pytest.fixture
def exposer() -> PartitionExposer:
    exposer = PartitionExposer()
    exposer._sleep = lambda seconds: time.sleep(0.05)  # poll quickly; no timing asserted
    return exposer


def stored(server: http_fixture.ObjectServer, image: bytes, path: str = "/o") -> StoredImage:
    server.objects[path] = gzip.compress(image)
    return StoredImage(store="http", location=path.lstrip("/"),
                       url=server.url(path, f"temp_url_sig={SIG}&temp_url_expires=9"),
                       sha256=sha256(image), size=len(image))


def test_attach_writes_and_detach_removes(make_task: Callable[..., Any], exposer: PartitionExposer,
                                          loopdisk: Callable[..., Any],
                                          server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": NODE}})
    task = make_task(configdrive_device=disk.device)

    record = exposer.attach(task, stored(server, image))

    assert record["mechanism"] == "partition"
    assert record["device"] == disk.device
    assert record["sha256"] == sha256(image)
    assert SIG not in json.dumps(record)
    assert blkid_config_drives(*disk_nodes(disk.device)) == [record["partition"]]
    assert read_node(record["partition"], len(image)) == image
    method, params = task.cached_agent_client.calls[0]
    assert (method, params["target"], params["size"]) == ("configdrive.write", "partition",
                                                          len(image))
    assert "format" not in params

    exposer.detach(task, record)
    assert blkid_config_drives(*disk_nodes(disk.device)) == []
    exposer.detach(task, record)  # nothing left: still success
    assert [c[0] for c in task.cached_agent_client.calls] == [
        "configdrive.write", "configdrive.remove", "configdrive.remove"]


def test_loader_runs_partition_by_default(make_task: Callable[..., Any],
                                          loopdisk: Callable[..., Any],
                                          server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": NODE}})
    task = make_task(configdrive_device=disk.device)
    plan = loader.resolve(task.node)
    assert plan.primary.name == "partition"
    loader.get_exposer("partition")._sleep = lambda seconds: time.sleep(0.05)  # type: ignore[attr-defined]
    used, record = loader.attach(task, plan, stored(server, image))
    assert blkid_config_drives(*disk_nodes(disk.device)) == [record["partition"]]
    loader.detach(task, used, record)
    assert blkid_config_drives(*disk_nodes(disk.device)) == []


def test_failed_download_names_node_and_cause(make_task: Callable[..., Any],
                                              exposer: PartitionExposer,
                                              loopdisk: Callable[..., Any],
                                              server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(64, layout=sgdisk("-o"))
    image = stored(server, build_image({"meta_data": {"uuid": NODE}}))
    server.fault("/o", *[("status", 404)] * 10)
    with pytest.raises(ExposureError) as info:
        exposer.attach(make_task(configdrive_device=disk.device), image)
    message = info.value.message
    assert NODE in message and "configdrive.write failed" in message
    assert "404" in message
    assert SIG not in message
    assert blkid_config_drives(*disk_nodes(disk.device)) == []


def test_checksum_mismatch_is_reported(make_task: Callable[..., Any], exposer: PartitionExposer,
                                       loopdisk: Callable[..., Any],
                                       server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(64, layout=sgdisk("-o"))
    good = stored(server, build_image({"meta_data": {"uuid": NODE}}))
    wrong = StoredImage(**{**good.__dict__, "sha256": "0" * 64})
    with pytest.raises(ExposureError) as info:
        exposer.attach(make_task(configdrive_device=disk.device), wrong)
    assert "sha256" in info.value.message.lower()
    assert "[" in info.value.message  # category / error type from the agent's command_error
    assert blkid_config_drives(*disk_nodes(disk.device)) == []


def test_missing_device_fails_before_any_download(
        make_task: Callable[..., Any], exposer: PartitionExposer,
        server: http_fixture.ObjectServer) -> None:
    image = stored(server, build_image({"meta_data": {"uuid": NODE}}))
    with pytest.raises(ExposureError) as info:
        exposer.attach(make_task(configdrive_device="/dev/no-such-disk-here"), image)
    assert "/dev/no-such-disk-here: no such device" in info.value.message
    assert "[device, DeviceError]" in info.value.message
    assert server.requests == []

