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
from ironic_configdrive.store.base import StoredImage

IMAGE = StoredImage(store="http", location="x", url="http://h/x", sha256="ab" * 32, size=1)
REDFISH = {"redfish_address": "https://bmc"}


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    loader._cache.clear()
    yield
    loader._cache.clear()


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
def test_choose_mechanism(conf: Any, make_task: Callable[..., Any], default: str,
                          driver_info: dict[str, Any], instance_info: dict[str, Any],
                          expected: str) -> None:
    conf.config(exposure=default, group="configdrive")
    task = make_task(driver_info=driver_info, instance_info=instance_info)
    assert loader.choose_mechanism(task) == expected


@pytest.mark.parametrize("value", ["floppy", 3])
def test_invalid_mechanism(make_task: Callable[..., Any], value: Any) -> None:
    task = make_task(instance_info={"configdrive_exposure": value})
    with pytest.raises(ExposureError, match="instance_info/configdrive_exposure"):
        loader.choose_mechanism(task)


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
        if falls_back:
            record = loader.attach_with_fallback(task, IMAGE)
            assert record == {"mechanism": "partition", "fallback_from": "virtual_media"}
            part_attach.assert_called_once_with(task, IMAGE)
        else:
            with pytest.raises(SlotBusyError):
                loader.attach_with_fallback(task, IMAGE)
            part_attach.assert_not_called()
        vm_attach.assert_called_once_with(task, IMAGE)


def test_other_virtual_media_errors_do_not_fall_back(make_task: Callable[..., Any]) -> None:
    task = make_task(driver_info=dict(REDFISH),
                     instance_info={"configdrive_exposure": "virtual_media"})
    vm, part = _patched(ExposureError(mechanism="virtual_media", node="n", reason="BMC down"))
    with vm, part as part_attach, pytest.raises(ExposureError, match="BMC down"):
        loader.attach_with_fallback(task, IMAGE)
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


def test_detach_dispatches_on_the_record(make_task: Callable[..., Any]) -> None:
    task = make_task()
    loader.detach(task, None)
    loader.detach(task, {})
    with mock.patch.object(PartitionExposer, "detach") as detach:
        loader.detach(task, {"mechanism": "partition", "device": "root"})
    detach.assert_called_once_with(task, {"mechanism": "partition", "device": "root"})
    with pytest.raises(ExposureError, match="no mechanism"):
        loader.detach(task, {"device": "root"})
