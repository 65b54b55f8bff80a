"""Plugin loading, per-node mechanism choice and the virtual media fallback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from ironic_configdrive.expose import loader
from ironic_configdrive.expose.base import ExposureError, SlotBusyError
from ironic_configdrive.expose.partition import PartitionExposer
from ironic_configdrive.expose.virtual_media import VirtualMediaExposer
from ironic_configdrive.node_options import OverrideRefused
from ironic_configdrive.store.base import StoredImage

IMAGE = StoredImage(store="http", location="x", url="http://h/x", sha256="ab" * 32, size=1)
REDFISH = {"redfish_address": "https://bmc"}


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    loader._cache.clear()
    yield
    loader._cache.clear()


@pytest.fixture(autouse=True)
def exposure_overridable(conf: Any) -> None:
    """These tests are about resolving a node's wish: let instance_info express one."""
    conf.config(allow_instance_overrides=["configdrive_exposure"], group="configdrive")


def test_entry_points_load_the_plugins() -> None:
    assert loader.available() == ["partition", "virtual_media"]
    assert isinstance(loader.get_exposer("partition"), PartitionExposer)
    assert isinstance(loader.get_exposer("virtual_media"), VirtualMediaExposer)
    assert loader.get_exposer("partition") is loader.get_exposer("partition")


def test_unknown_plugin() -> None:
    with pytest.raises(ExposureError, match="installed: partition, virtual_media"):
        loader.get_exposer("san", node="n1")


@pytest.mark.parametrize(("default", "driver_info", "instance_info", "expected"), [
    ("partition", {}, {}, "partition"),
    ("virtual_media", {}, {}, "virtual_media"),
    ("partition", {"configdrive_exposure": "virtual_media"}, {}, "virtual_media"),
    ("virtual_media", {"configdrive_exposure": "virtual_media"},
     {"configdrive_exposure": "partition"}, "partition"),
    ("partition", {"configdrive_exposure": ""}, {}, "partition"),
    ("auto", {}, {}, "partition"),
    ("auto", dict(REDFISH), {}, "virtual_media"),
    ("partition", dict(REDFISH), {"configdrive_exposure": "auto"}, "virtual_media"),
])
def test_resolve_the_first_mechanism(conf: Any, make_task: Callable[..., Any], default: str,
                                     driver_info: dict[str, Any],
                                     instance_info: dict[str, Any], expected: str) -> None:
    conf.config(exposure=default, group="configdrive")
    task = make_task(driver_info=driver_info, instance_info=instance_info)
    assert loader.resolve(task.node).primary.name == expected


@pytest.mark.parametrize(("requested", "fallback", "expected"), [
    ("virtual_media", "partition", "partition"),
    ("virtual_media", "fail", None),
    ("auto", "fail", "partition"),
    ("partition", "partition", None),
])
def test_resolve_the_fallback(conf: Any, make_task: Callable[..., Any], requested: str,
                              fallback: str, expected: str | None) -> None:
    conf.config(virtual_media_fallback=fallback, group="configdrive")
    task = make_task(driver_info=dict(REDFISH), instance_info={"configdrive_exposure": requested})
    plan = loader.resolve(task.node)
    assert (plan.fallback.name if plan.fallback else None) == expected


def test_plan_derives_needs_from_capabilities(conf: Any, make_task: Callable[..., Any]) -> None:
    conf.config(virtual_media_fallback="fail", group="configdrive")
    node = make_task(driver_info=dict(REDFISH)).node
    node.instance_info = {"configdrive_exposure": "partition"}
    agent = loader.resolve(node)
    assert (agent.needs_agent, agent.may_write_disk) == (True, True)
    assert (agent.store_encoding(sealed=False), agent.store_encoding(sealed=True)) == (
        "gzip", "gzip")
    assert not agent.needs_plain_copy(sealed=True)
    node.instance_info = {"configdrive_exposure": "virtual_media"}
    bmc = loader.resolve(node)
    assert (bmc.needs_agent, bmc.may_write_disk) == (False, False)
    assert (bmc.store_encoding(sealed=False), bmc.store_encoding(sealed=True)) == (
        "identity", "gzip")  # sealed: the BMC gets a plain copy, the store keeps it small
    assert bmc.needs_plain_copy(sealed=True) and not bmc.needs_plain_copy(sealed=False)
    conf.config(virtual_media_fallback="partition", group="configdrive")
    assert loader.resolve(node).may_write_disk  # the fallback may write the disk


@pytest.mark.parametrize("value", ["floppy", 3])
def test_invalid_mechanism(make_task: Callable[..., Any], value: Any) -> None:
    task = make_task(instance_info={"configdrive_exposure": value})
    with pytest.raises(ExposureError, match="instance_info/configdrive_exposure"):
        loader.resolve(task.node)


def test_instance_info_exposure_refused_unless_allowed(conf: Any,
                                                      make_task: Callable[..., Any]) -> None:
    conf.config(allow_instance_overrides=[], group="configdrive")
    task = make_task(instance_info={"configdrive_exposure": "virtual_media"},
                     driver_info=dict(REDFISH))
    with pytest.raises(OverrideRefused) as info:
        loader.resolve(task.node)
    message = info.value.message
    assert "node " + task.node.uuid in message
    assert "instance_info/configdrive_exposure" in message
    assert "[configdrive]allow_instance_overrides = configdrive_exposure" in message
    # The operator's per-node choice is never refused.
    task = make_task(driver_info={**REDFISH, "configdrive_exposure": "virtual_media"})
    assert loader.resolve(task.node).primary.name == "virtual_media"


def _patched(vm_effect: Any) -> tuple[Any, Any]:
    vm = mock.patch.object(VirtualMediaExposer, "attach", side_effect=vm_effect)
    part = mock.patch.object(PartitionExposer, "attach", return_value={"mechanism": "partition"})
    return vm, part


@pytest.mark.parametrize(("requested", "fallback", "falls_back"), [
    ("virtual_media", "partition", True),
    ("virtual_media", "fail", False),
    ("auto", "fail", True),
])
def test_attach_with_fallback(conf: Any, make_task: Callable[..., Any], requested: str,
                              fallback: str, falls_back: bool) -> None:
    conf.config(virtual_media_fallback=fallback, group="configdrive")
    task = make_task(driver_info=dict(REDFISH),
                     instance_info={"configdrive_exposure": requested})
    busy = SlotBusyError(mechanism="virtual_media", node="n", reason="busy")
    vm, part = _patched(busy)
    with vm as vm_attach, part as part_attach:
        plan = loader.resolve(task.node)
        if falls_back:
            used, record = loader.attach(task, plan, IMAGE)
            assert used == "partition"
            assert record == {"mechanism": "partition", "fallback_from": "virtual_media"}
            part_attach.assert_called_once_with(task, IMAGE)
        else:
            with pytest.raises(SlotBusyError):
                loader.attach(task, plan, IMAGE)
            part_attach.assert_not_called()
        vm_attach.assert_called_once_with(task, IMAGE)


def test_other_virtual_media_errors_do_not_fall_back(make_task: Callable[..., Any]) -> None:
    task = make_task(driver_info=dict(REDFISH),
                     instance_info={"configdrive_exposure": "virtual_media"})
    vm, part = _patched(ExposureError(mechanism="virtual_media", node="n", reason="BMC down"))
    with vm, part as part_attach, pytest.raises(ExposureError, match="BMC down"):
        loader.attach(task, loader.resolve(task.node), IMAGE)
    part_attach.assert_not_called()


def test_validate_checks_the_fallback_too(conf: Any, make_task: Callable[..., Any]) -> None:
    conf.config(virtual_media_fallback="partition", group="configdrive")
    task = make_task(driver_info=dict(REDFISH),
                     instance_info={"configdrive_exposure": "virtual_media",
                                    "configdrive_format": "ext4"})
    with pytest.raises(ExposureError, match="configdrive_format"):
        loader.validate(task)
    conf.config(virtual_media_fallback="fail", group="configdrive")
    loader.validate(task)


def test_detach_dispatches_on_the_mechanism(make_task: Callable[..., Any]) -> None:
    task = make_task()
    with mock.patch.object(PartitionExposer, "detach") as detach:
        loader.detach(task, "partition", {"mechanism": "partition", "device": "root"})
        loader.detach(task, "partition", {})
    assert detach.call_args_list == [
        mock.call(task, {"mechanism": "partition", "device": "root"}),
        mock.call(task, {"mechanism": "partition"})]
    with pytest.raises(ExposureError, match="installed: partition, virtual_media"):
        loader.detach(task, "floppy", {})
