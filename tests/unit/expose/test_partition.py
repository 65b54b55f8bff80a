"""PartitionExposer with Ironic's AgentClient mocked; results shaped as IPA 13 sends them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast
from unittest import mock

import pytest
from ironic.common import exception as ironic_exc

from ironic_configdrive.expose.base import ExposureError
from ironic_configdrive.expose.partition import PartitionExposer, describe_command_error
from ironic_configdrive.node_options import OverrideRefused
from ironic_configdrive.store.base import StoredImage
from tests.unit.expose.conftest import NODE, SIG

URL = f"http://10.0.0.1:8080/configdrive/{NODE}.gz?{SIG}"
IMAGE = StoredImage(store="http", location=f"{NODE}.gz", url=URL, sha256="ab" * 32, size=4096)
AGENT = {"agent_url": "http://10.0.0.9:9999"}

RUNNING = {"id": "c1", "command_name": "write", "command_status": "RUNNING",
           "command_error": None, "command_result": None}
SUCCEEDED = {"id": "c1", "command_name": "write", "command_status": "SUCCEEDED",
             "command_error": None,
             "command_result": {"device": "/dev/sda", "target": "partition",
                                "path": "/dev/sda4", "partition_number": 4,
                                "format": "iso9660", "sha256": "ab" * 32,
                                "source_sha256": "ab" * 32, "size": 4096}}
# Captured from IPA 13 running agent_ext (json.dumps with IPA's RESTJSONEncoder).
FAILED = json.loads(
    '{"id": "dcaaca44-d368-4d6f-824a-a12f8ae847e1", "command_name": "write", '
    '"command_status": "FAILED", "command_error": {"type": "ConfigDriveCommandError", '
    '"code": 500, "message": "Config drive command failed", "details": "download of '
    f'{URL} failed: HTTP 404; check the store", "category": "fetch", '
    '"error_type": "FetchError"}, "command_result": null}')


@pytest.fixture
def client() -> mock.Mock:
    client = mock.Mock(spec=["_command", "get_last_command_status"])
    client._command.return_value = dict(SUCCEEDED)
    return client


@pytest.fixture
def exposer() -> PartitionExposer:
    exposer = PartitionExposer()
    exposer._sleep = mock.Mock()
    return exposer


def task_with(make_task: Callable[..., Any], client: mock.Mock, **kwargs: Any) -> Any:
    kwargs.setdefault("driver_internal_info", AGENT)
    task = make_task(**kwargs)
    task.cached_agent_client = client  # what agent_client.get_client(task) returns
    return task


def test_attach_sends_the_write_command_and_records(make_task: Callable[..., Any],
                                                     client: mock.Mock,
                                                     exposer: PartitionExposer) -> None:
    task = task_with(make_task, client)
    record = exposer.attach(task, IMAGE)
    client._command.assert_called_once_with(
        task.node, method="configdrive.write", wait=False,
        params={"device": "root", "configdrive": URL, "sha256": "ab" * 32, "size": 4096,
                "target": "partition", "download_timeout": 450})
    assert record == {"mechanism": "partition", "device": "root", "resolved_device": "/dev/sda",
                      "partition": "/dev/sda4", "partition_number": 4, "format": "iso9660",
                      "sha256": "ab" * 32, "size": 4096}
    assert "temp_url_sig" not in json.dumps(record)
    cast(mock.Mock, exposer._sleep).assert_not_called()


def test_device_and_format_from_node_instance_info_wins_where_allowed(
        conf: Any, make_task: Callable[..., Any], client: mock.Mock,
        exposer: PartitionExposer) -> None:
    conf.config(allow_instance_overrides=["configdrive_device"], group="configdrive")
    task = task_with(make_task, client,
                     instance_info={"configdrive_device": "/dev/sdb",
                                    "configdrive_format": "vfat"},
                     driver_info={"configdrive_device": "/dev/sdc"})
    exposer.attach(task, IMAGE)
    params = client._command.call_args.kwargs["params"]
    assert (params["device"], params["format"]) == ("/dev/sdb", "vfat")
    # Not the operator's choice: the agent accepts it only as the root device hints' disk.
    assert "device_from_operator" not in params


def test_readers_that_cannot_read_vfat_make_the_agent_keep_iso9660(
        make_task: Callable[..., Any], client: mock.Mock, exposer: PartitionExposer) -> None:
    # On a 4Kn disk the agent then fails, naming the sector size, instead of writing vfat.
    task = task_with(make_task, client, driver_info={"configdrive_readers": ["ignition"]})
    exposer.attach(task, IMAGE)
    assert client._command.call_args.kwargs["params"]["format"] == "iso9660"
    task = task_with(make_task, client, driver_info={"configdrive_readers": "cloud-init"})
    exposer.attach(task, IMAGE)
    assert "format" not in client._command.call_args.kwargs["params"]


def test_instance_info_device_refused_unless_allowed(make_task: Callable[..., Any],
                                                     client: mock.Mock,
                                                     exposer: PartitionExposer) -> None:
    task = task_with(make_task, client, instance_info={"configdrive_device": "/dev/sdb",
                                                       "configdrive_format": "vfat"})
    with pytest.raises(OverrideRefused, match="instance_info/configdrive_device") as info:
        exposer.attach(task, IMAGE)
    assert NODE in info.value.message
    assert "allow_instance_overrides = configdrive_device" in info.value.message
    client._command.assert_not_called()
    exposer.detach(task, {"mechanism": "partition"})  # nothing written: nothing to remove
    client._command.assert_not_called()


def test_device_from_driver_info_is_the_operators(make_task: Callable[..., Any],
                                                  client: mock.Mock,
                                                  exposer: PartitionExposer) -> None:
    task = task_with(make_task, client, driver_info={"configdrive_device": "/dev/sdc"},
                     instance_info={"configdrive_format": "vfat"})
    exposer.attach(task, IMAGE)
    params = client._command.call_args.kwargs["params"]
    assert (params["device"], params["device_from_operator"]) == ("/dev/sdc", True)


def test_polls_until_done(make_task: Callable[..., Any], client: mock.Mock,
                          exposer: PartitionExposer) -> None:
    client._command.return_value = dict(RUNNING)
    client.get_last_command_status.side_effect = [dict(RUNNING), dict(SUCCEEDED)]
    record = exposer.attach(task_with(make_task, client), IMAGE)
    assert record["partition"] == "/dev/sda4"
    assert client.get_last_command_status.call_count == 2
    client.get_last_command_status.assert_called_with(mock.ANY, "configdrive.write")
    assert cast(mock.Mock, exposer._sleep).call_count == 2


def test_failed_command_maps_to_exposure_error(make_task: Callable[..., Any],
                                               client: mock.Mock,
                                               exposer: PartitionExposer) -> None:
    client._command.return_value = dict(RUNNING)
    client.get_last_command_status.return_value = FAILED
    with pytest.raises(ExposureError) as info:
        exposer.attach(task_with(make_task, client), IMAGE)
    message = info.value.message
    assert NODE in message
    assert "configdrive.write failed" in message
    assert "HTTP 404; check the store [fetch, FetchError]" in message
    assert "temp_url_sig" not in message and "deadbeef" not in message


def test_timeout_honours_agent_command_timeout(make_task: Callable[..., Any],
                                               client: mock.Mock, exposer: PartitionExposer,
                                               conf: Any) -> None:
    conf.config(agent_command_timeout=30, group="configdrive")
    conf.config(command_wait_interval=6, group="agent")
    clock = iter([100.0, 101.0, 125.0, 131.0])
    exposer._clock = lambda: next(clock)
    client._command.return_value = dict(RUNNING)
    client.get_last_command_status.return_value = dict(RUNNING)
    with pytest.raises(ExposureError) as info:
        exposer.attach(task_with(make_task, client), IMAGE)
    assert "did not finish within 30 s" in info.value.message
    assert "agent_command_timeout" in info.value.message
    # Sleeps never overshoot the deadline.
    assert [c.args[0] for c in cast(mock.Mock, exposer._sleep).call_args_list] == [6.0, 5.0]


def test_command_vanished(make_task: Callable[..., Any], client: mock.Mock,
                          exposer: PartitionExposer) -> None:
    client._command.return_value = dict(RUNNING)
    client.get_last_command_status.return_value = None
    with pytest.raises(ExposureError, match="no longer lists command"):
        exposer.attach(task_with(make_task, client), IMAGE)


@pytest.mark.parametrize(("exc", "expected"), [
    (ironic_exc.AgentConnectionFailed(reason="Connection refused"), "cannot reach the agent"),
    (ironic_exc.AgentInProgress(node=NODE, command="configdrive.write", error="busy"),
     "busy with another command"),
    (ironic_exc.AgentAPIError(node=NODE, status=404,
                              error="Not found: Extension configdrive not found"),
     "ironic-configdrive[agent]"),
    (ironic_exc.AgentAPIError(
        node=NODE, status=400,
        error="Invalid command parameters: invalid config drive input: target must be one "
              "of partition, device"),
     "rejected the configdrive.write parameters"),
    (ironic_exc.AgentAPIError(node=NODE, status=500, error="boom"), "configdrive.write failed"),
    (ironic_exc.IronicException(f"Unable to decode response for {URL}"), "failed"),
])
def test_agent_errors_map_to_exposure_error(make_task: Callable[..., Any], client: mock.Mock,
                                            exposer: PartitionExposer, exc: Exception,
                                            expected: str) -> None:
    client._command.side_effect = exc
    with pytest.raises(ExposureError) as info:
        exposer.attach(task_with(make_task, client), IMAGE)
    assert expected in info.value.message
    assert NODE in info.value.message
    assert "deadbeef" not in info.value.message


def test_unexpected_status(make_task: Callable[..., Any], client: mock.Mock,
                           exposer: PartitionExposer) -> None:
    client._command.return_value = {**SUCCEEDED, "command_status": "VERSION_MISMATCH"}
    with pytest.raises(ExposureError, match="unexpected status"):
        exposer.attach(task_with(make_task, client), IMAGE)


@pytest.mark.parametrize(("info", "match"), [
    ({"configdrive_format": "ext4"}, "configdrive_format"),
    ({"configdrive_device": "sda"}, "configdrive_device"),
])
def test_validate_rejects_bad_node_options(conf: Any, make_task: Callable[..., Any],
                                           client: mock.Mock, exposer: PartitionExposer,
                                           info: dict[str, Any], match: str) -> None:
    conf.config(allow_instance_overrides=["configdrive_device"], group="configdrive")
    with pytest.raises(ExposureError, match=match):
        exposer.attach(task_with(make_task, client, instance_info=info), IMAGE)
    client._command.assert_not_called()


def test_detach_removes_through_a_running_agent(make_task: Callable[..., Any],
                                                client: mock.Mock,
                                                exposer: PartitionExposer) -> None:
    client._command.return_value = {"command_name": "remove", "command_status": "SUCCEEDED",
                                    "command_error": None,
                                    "command_result": {"device": "/dev/sda", "removed": True}}
    task = task_with(make_task, client)
    exposer.detach(task, {"mechanism": "partition", "device": "/dev/sdb"})
    client._command.assert_called_once_with(task.node, method="configdrive.remove",
                                            params={"device": "/dev/sdb"}, wait=False)


def test_detach_without_agent_is_a_logged_noop(make_task: Callable[..., Any], client: mock.Mock,
                                               exposer: PartitionExposer,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    task = task_with(make_task, client, driver_internal_info={})
    exposer.detach(task, {"mechanism": "partition", "device": "root"})
    exposer.detach(task, {"mechanism": "partition", "device": "root"})
    client._command.assert_not_called()
    assert "until cleaning erases the disk" in caplog.text


def test_detach_with_unreachable_agent_returns(make_task: Callable[..., Any],
                                               client: mock.Mock, exposer: PartitionExposer,
                                               caplog: pytest.LogCaptureFixture) -> None:
    client._command.side_effect = ironic_exc.AgentConnectionFailed(reason="timed out")
    exposer.detach(task_with(make_task, client), {"mechanism": "partition", "device": "root"})
    assert "until cleaning erases the disk" in caplog.text


def test_detach_failure_raises_but_rollback_does_not(make_task: Callable[..., Any],
                                                     client: mock.Mock,
                                                     exposer: PartitionExposer) -> None:
    client._command.return_value = {**FAILED, "command_name": "remove"}
    task = task_with(make_task, client)
    with pytest.raises(ExposureError, match="configdrive.remove failed"):
        exposer.detach(task, {"mechanism": "partition", "device": "root"})
    exposer.rollback(task, {"mechanism": "partition", "device": "root"})


@pytest.mark.parametrize("sha256, size", [(None, None), ("", 0)])
def test_unknown_sha256_and_size_are_not_sent(make_task: Callable[..., Any], client: mock.Mock,
                                              exposer: PartitionExposer, sha256: str | None,
                                              size: int | None) -> None:
    # A passed-through URL: nobody saw the content, the agent must not be told size=0.
    image = StoredImage(store="passthrough", location="", url=URL, sha256=sha256, size=size,
                        encoding="")
    task = task_with(make_task, client)
    record = exposer.attach(task, image)
    client._command.assert_called_once_with(
        task.node, method="configdrive.write", wait=False,
        params={"device": "root", "configdrive": URL, "target": "partition",
                "download_timeout": 450})
    # What the agent reports becomes the record.
    assert (record["sha256"], record["size"]) == ("ab" * 32, 4096)


def test_remove_is_strict_about_an_unreachable_agent(make_task: Callable[..., Any],
                                                     client: mock.Mock,
                                                     exposer: PartitionExposer) -> None:
    client._command.side_effect = ironic_exc.AgentConnectionFailed(reason="timed out")
    task = task_with(make_task, client)
    with pytest.raises(ExposureError, match="cannot reach the agent for configdrive.remove"):
        exposer.remove(task, "/dev/sdb")
    client._command.assert_called_once_with(task.node, method="configdrive.remove",
                                            params={"device": "/dev/sdb"}, wait=False)


def test_remove_succeeds_through_the_agent(make_task: Callable[..., Any], client: mock.Mock,
                                           exposer: PartitionExposer) -> None:
    client._command.return_value = {"command_name": "remove", "command_status": "SUCCEEDED",
                                    "command_error": None,
                                    "command_result": {"device": "/dev/sda", "removed": True}}
    exposer.remove(task_with(make_task, client), "root")
    assert client._command.call_args.kwargs["params"] == {"device": "root"}


def test_describe_command_error_variants() -> None:
    assert describe_command_error({"command_error": "plain text"}) == "plain text"
    assert "without an error" in describe_command_error({})
    assert describe_command_error(
        {"command_error": {"message": "m", "type": "T"}}) == "m [T]"


@pytest.mark.parametrize("settings, expected", [
    ({"agent_command_timeout": 600}, 450),
    ({"agent_command_timeout": 40}, 30),
    ({"agent_command_timeout": 600, "agent_download_timeout": 100}, 100),
])
def test_download_timeout_sent_to_the_agent(make_task: Callable[..., Any], client: mock.Mock,
                                            exposer: PartitionExposer, conf: Any,
                                            settings: dict[str, int], expected: int) -> None:
    # The agent's download deadline: 3/4 of the conductor's wait unless set explicitly.
    conf.config(group="configdrive", **settings)
    exposer.attach(task_with(make_task, client), IMAGE)
    assert client._command.call_args.kwargs["params"]["download_timeout"] == expected
