"""VirtualMediaExposer logic with sushy resources mocked (the emulator tests cover the wire)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from unittest import mock

import pytest
import sushy
from ironic.common import exception as ironic_exc
from sushy import exceptions as sushy_exc

from ironic_configdrive.expose import virtual_media
from ironic_configdrive.expose.base import ExposureError, SlotBusyError
from ironic_configdrive.expose.virtual_media import VirtualMediaExposer
from ironic_configdrive.image import formats
from ironic_configdrive.store.base import StoredImage
from tests.unit.expose.conftest import NODE, SIG

URL = f"https://swift.example.com/v1/AUTH_a/ironic_configdrive/{NODE}?{SIG}"
MASKED = f"https://swift.example.com/v1/AUTH_a/ironic_configdrive/{NODE}?***"
IMAGE = StoredImage(store="swift", location=NODE, url=URL, sha256="ab" * 32, size=4096,
                    encoding="identity")
REDFISH = {"redfish_address": "https://bmc.example.com",
           "redfish_system_id": "/redfish/v1/Systems/1"}


class FakeVMedia:
    def __init__(self, identity: str, *types: Any, image: str = "", inserted: bool = False,
                 confirm: bool | None = True) -> None:
        self.identity = identity
        self.media_types = list(types)
        self.image = image
        self.inserted = inserted
        self.confirm = confirm
        self.insert_media = mock.Mock(side_effect=self._insert)
        self.eject_media = mock.Mock(side_effect=self._eject)
        self.refresh = mock.Mock()

    def _insert(self, url: str, inserted: bool = True, write_protected: bool = True) -> None:
        self.image, self.inserted = url, self.confirm  # type: ignore[assignment]

    def _eject(self) -> None:
        self.image, self.inserted = "", False


def system_with(*slots: FakeVMedia, via_manager: bool = False) -> Any:
    system = mock.Mock(identity="1")
    collection = mock.Mock()
    collection.get_members.return_value = list(slots)
    if via_manager:
        type(system).virtual_media = mock.PropertyMock(
            side_effect=sushy_exc.MissingAttributeError(attribute="VirtualMedia",
                                                        resource="/redfish/v1/Systems/1"))
        manager = mock.Mock(identity="BMC")
        manager.virtual_media = collection
        system.managers = [manager]
    else:
        system.virtual_media = collection
    return system


@pytest.fixture
def exposer() -> VirtualMediaExposer:
    exposer = VirtualMediaExposer()
    exposer._sleep = mock.Mock()
    return exposer


@pytest.fixture
def task(make_task: Callable[..., Any]) -> Any:
    return make_task(driver_info=dict(REDFISH))


def attach(exposer: VirtualMediaExposer, task: Any, system: Any, fmt: str = formats.ISO9660,
           image: StoredImage = IMAGE) -> dict[str, Any]:
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system", return_value=system), \
            mock.patch.object(VirtualMediaExposer, "_image_format", return_value=fmt):
        return exposer.attach(task, image)


def test_iso_prefers_cd_over_usb(exposer: VirtualMediaExposer, task: Any) -> None:
    usb = FakeVMedia("Usb", sushy.VIRTUAL_MEDIA_USBSTICK)
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_DVD, sushy.VIRTUAL_MEDIA_CD)
    record = attach(exposer, task, system_with(usb, cd))
    cd.insert_media.assert_called_once_with(URL, inserted=True, write_protected=True)
    usb.insert_media.assert_not_called()
    assert record == {"mechanism": "virtual_media", "system": "1", "resource": "system",
                      "manager": None, "device": "Cd", "media_type": "CD",
                      "format": "iso9660", "url_inserted": MASKED}


def test_dvd_only_slot_takes_iso(exposer: VirtualMediaExposer, task: Any) -> None:
    dvd = FakeVMedia("Dvd", sushy.VIRTUAL_MEDIA_DVD)
    assert attach(exposer, task, system_with(dvd))["media_type"] == "DVD"


def test_vfat_never_goes_to_a_cd(exposer: VirtualMediaExposer, task: Any) -> None:
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD)
    with pytest.raises(SlotBusyError, match="no virtual media slot for a vfat image"):
        attach(exposer, task, system_with(cd), fmt=formats.VFAT)
    cd.insert_media.assert_not_called()


def test_manager_virtual_media(exposer: VirtualMediaExposer, task: Any) -> None:
    usb = FakeVMedia("1", sushy.VIRTUAL_MEDIA_USBSTICK)
    record = attach(exposer, task, system_with(usb, via_manager=True), fmt=formats.VFAT)
    assert (record["resource"], record["manager"], record["device"]) == ("manager", "BMC", "1")


def test_busy_slots_are_never_ejected(exposer: VirtualMediaExposer, task: Any) -> None:
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, image=f"http://other/x.iso?{SIG}",
                    inserted=True)
    with pytest.raises(SlotBusyError) as info:
        attach(exposer, task, system_with(cd))
    cd.eject_media.assert_not_called()
    assert "Cd holds http://other/x.iso?***" in info.value.message
    assert "deadbeef" not in info.value.message


def test_insert_not_confirmed_ejects_and_fails(exposer: VirtualMediaExposer, task: Any) -> None:
    clock = iter([0.0, 10.0, 40.0])
    exposer._clock = lambda: next(clock)
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, confirm=False)
    with pytest.raises(ExposureError, match="did not report it inserted"):
        attach(exposer, task, system_with(cd))
    cd.eject_media.assert_called_once_with()
    assert cast(mock.Mock, exposer._sleep).call_count == 1


def test_insert_wait_comes_from_the_option(exposer: VirtualMediaExposer, task: Any,
                                          conf: Any) -> None:
    conf.config(virtual_media_insert_timeout=100, group="configdrive")
    clock = iter([0.0, 10.0, 40.0, 99.0, 101.0])
    exposer._clock = lambda: next(clock)
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, confirm=False)
    with pytest.raises(ExposureError, match="within 100 s") as info:
        attach(exposer, task, system_with(cd))
    assert "virtual_media_insert_timeout" in info.value.message
    # 40 s (past the old fixed 30 s) and 99 s were still within the configured wait.
    assert cast(mock.Mock, exposer._sleep).call_count == 3
    cd.eject_media.assert_called_once_with()


def test_insert_unknown_inserted_state_is_accepted(exposer: VirtualMediaExposer,
                                                   task: Any) -> None:
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, confirm=None)
    assert attach(exposer, task, system_with(cd))["device"] == "Cd"


def test_insert_error_is_scrubbed(exposer: VirtualMediaExposer, task: Any) -> None:
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD)
    cd.insert_media.side_effect = sushy_exc.SushyError(
        f"Failed fetching image from URL {URL}: connection refused")
    with pytest.raises(ExposureError) as info:
        attach(exposer, task, system_with(cd))
    assert "deadbeef" not in info.value.message
    assert MASKED in info.value.message


def test_unreachable_bmc(exposer: VirtualMediaExposer, task: Any) -> None:
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system",
                    side_effect=ironic_exc.RedfishConnectionError(node=NODE, error="refused")), \
            mock.patch.object(VirtualMediaExposer, "_image_format", return_value="iso9660"), \
            pytest.raises(ExposureError) as info:
        exposer.attach(task, IMAGE)
    assert "cannot reach the Redfish system" in info.value.message
    assert NODE in info.value.message


def test_compressed_store_object_is_refused_before_any_request(exposer: VirtualMediaExposer,
                                                               task: Any) -> None:
    image = StoredImage(store="swift", location=NODE, url=URL, sha256="ab" * 32, size=1)
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system") as get_system, \
            mock.patch("requests.get") as get, pytest.raises(ExposureError, match="identity"):
        exposer.attach(task, image)
    get_system.assert_not_called()
    get.assert_not_called()


def test_validate_needs_redfish_address(exposer: VirtualMediaExposer,
                                        make_task: Callable[..., Any]) -> None:
    with pytest.raises(ExposureError, match="redfish_address"):
        exposer.validate(make_task())


def test_detach_ejects_only_our_media(exposer: VirtualMediaExposer, task: Any) -> None:
    record = {"mechanism": "virtual_media", "resource": "system", "manager": None,
              "device": "Cd", "url_inserted": MASKED}
    ours = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, image=URL.replace("deadbeef", "cafe"),
                      inserted=True)
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system",
                    return_value=system_with(ours)):
        exposer.detach(task, record)
        ours.eject_media.assert_called_once_with()
        exposer.detach(task, record)  # empty now
        assert ours.eject_media.call_count == 1
    theirs = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, image="http://other/x.iso", inserted=True)
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system",
                    return_value=system_with(theirs)):
        exposer.detach(task, record)
    theirs.eject_media.assert_not_called()


def test_detach_eject_error_but_already_empty_is_success(exposer: VirtualMediaExposer,
                                                        task: Any) -> None:
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD, image=URL, inserted=True)

    def failing_eject() -> None:
        cd.image, cd.inserted = "", False
        raise sushy_exc.SushyError("400 no media")

    cd.eject_media.side_effect = failing_eject
    record = {"device": "Cd", "resource": "system", "url_inserted": MASKED}
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system",
                    return_value=system_with(cd)):
        exposer.detach(task, record)


def test_detach_slot_gone_or_no_record(exposer: VirtualMediaExposer, task: Any) -> None:
    exposer.detach(task, {})
    with mock.patch("ironic.drivers.modules.redfish.utils.get_system",
                    return_value=system_with()):
        exposer.detach(task, {"device": "Cd", "url_inserted": MASKED})


class _Resp:
    def __init__(self, body: bytes, status: int = 206) -> None:
        self.body, self.status_code = body, status

    def __enter__(self) -> _Resp:
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def raise_for_status(self) -> None:
        pass

    def iter_content(self, chunk_size: int) -> Any:
        for i in range(0, len(self.body), chunk_size):
            yield self.body[i:i + chunk_size]


@pytest.mark.parametrize(("head", "expected"), [
    (b"\0" * formats.ISO_MAGIC_OFFSET + b"CD001" + b"\0" * 4096, formats.ISO9660),
    (b"\x1f\x8b" + b"\0" * 100, "gzip"),
    (b"junk" * 100, "neither ISO9660 nor FAT"),
])
def test_image_format_sniffs_what_the_bmc_gets(exposer: VirtualMediaExposer, task: Any,
                                               head: bytes, expected: str) -> None:
    with mock.patch.object(virtual_media.requests, "get", return_value=_Resp(head)) as get:
        if expected == formats.ISO9660:
            assert exposer._image_format(task, IMAGE) == expected
        else:
            with pytest.raises(ExposureError, match=expected) as info:
                exposer._image_format(task, IMAGE)
            assert "deadbeef" not in info.value.message
    assert get.call_args.kwargs["headers"] == {"Range": f"bytes=0-{formats.SNIFF_SIZE - 1}"}


def test_image_format_unreachable_url(exposer: VirtualMediaExposer, task: Any) -> None:
    import requests

    with mock.patch.object(virtual_media.requests, "get",
                           side_effect=requests.ConnectionError(f"refused for {URL}")), \
            pytest.raises(ExposureError) as info:
        exposer._image_format(task, IMAGE)
    assert "cannot read the stored image" in info.value.message
    assert "deadbeef" not in info.value.message


def test_hardware_type_without_verify_ca_group(exposer: VirtualMediaExposer,
                                               make_task: Callable[..., Any]) -> None:
    task = make_task(driver_info=dict(REDFISH))
    task.node.driver = "fake-hardware"
    with pytest.raises(ExposureError, match="redfish_verify_ca"):
        exposer.validate(task)
    task.node.driver_info["redfish_verify_ca"] = False
    exposer.validate(task)


def test_virtual_media_boot_interface_avoids_cd(exposer: VirtualMediaExposer,
                                               task: Any) -> None:
    task.node.boot_interface = "redfish-virtual-media"
    cd = FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD)
    usb = FakeVMedia("Usb", sushy.VIRTUAL_MEDIA_USBSTICK)
    record = attach(exposer, task, system_with(cd, usb))
    assert (record["device"], record["media_type"]) == ("Usb", "USBStick")
    cd.insert_media.assert_not_called()
    with pytest.raises(SlotBusyError, match="ejects CD media"):
        attach(exposer, task, system_with(FakeVMedia("Cd", sushy.VIRTUAL_MEDIA_CD)))


def test_config_via_removable_leaves_no_usable_slot(exposer: VirtualMediaExposer,
                                                    task: Any) -> None:
    task.node.boot_interface = "redfish-virtual-media"
    task.node.driver_info["config_via_removable"] = True
    usb = FakeVMedia("Usb", sushy.VIRTUAL_MEDIA_USBSTICK)
    with pytest.raises(SlotBusyError, match="config_via_removable"):
        attach(exposer, task, system_with(usb), fmt=formats.VFAT)
    usb.insert_media.assert_not_called()
