"""The node's readers, the format chosen for them, and the disk's sector size."""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import types
from typing import Any
from unittest import mock

import pytest
from oslo_config import cfg

from ironic_configdrive import conf, drive_readers
from ironic_configdrive.expose.base import Capabilities
from ironic_configdrive.expose.plan import ExposurePlan, Mechanism
from ironic_configdrive.image import ISO9660, VFAT, build_image, inspect, iso9660, layout

UUID = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"


@pytest.fixture(autouse=True)
def config():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([], project="ironic")
    with mock.patch.object(drive_readers, "CONF", config):
        yield config


def node(**instance_info: Any) -> Any:
    return types.SimpleNamespace(uuid=UUID, instance_info=instance_info, driver_info={},
                                 properties={})


# -- selected ---------------------------------------------------------------------------------

def test_default_readers_come_from_the_option(config):
    assert drive_readers.selected(node()) == ("cloud-init", "glean", "cloudbase-init")
    config.set_override("readers", ["ignition"], group="configdrive")
    assert drive_readers.selected(node()) == ("ignition",)


@pytest.mark.parametrize("value,expected", [
    (["ignition", "cloud-init", "ignition"], ("ignition", "cloud-init")),
    ("glean, cloudbase-init", ("glean", "cloudbase-init")),
])
def test_a_list_or_a_comma_separated_string(value, expected):
    assert drive_readers.selected(node(configdrive_readers=value)) == expected


def test_driver_info_is_the_nodes_default():
    target = node()
    target.driver_info = {"configdrive_readers": ["ignition"]}
    assert drive_readers.selected(target) == ("ignition",)


@pytest.mark.parametrize("value,phrase", [
    (["cloud-init", "afterburn"], "names unknown readers 'afterburn'"),
    ("cloud-init,,CLOUD-INIT", "names unknown readers 'CLOUD-INIT'"),
    ([], "names no reader"),
    (",", "names no reader"),
    ([1], "names unknown readers 1"),
    ({"a": 1}, "must be a list of reader names, not dict"),
])
def test_bad_values_name_the_node_and_what_to_do(value, phrase):
    with pytest.raises(drive_readers.ReadersError) as exc:
        drive_readers.selected(node(configdrive_readers=value))
    assert exc.value.message.startswith(f"configdrive_readers of node {UUID} ")
    assert phrase in exc.value.message
    assert "instance_info/driver_info" in exc.value.message


# -- choose_format ------------------------------------------------------------------------------

def test_iso9660_by_default_and_for_everyone():
    for readers in ("cloud-init", "glean", "cloudbase-init", "ignition"):
        assert drive_readers.choose_format(node(configdrive_readers=readers)) == ISO9660


def test_the_operators_vfat_preference_holds_unless_a_reader_cannot_read_it(config):
    config.set_override("format", VFAT, group="configdrive")
    assert drive_readers.choose_format(node()) == VFAT
    assert drive_readers.choose_format(node(configdrive_readers="glean,ignition")) == ISO9660


def test_a_4k_disk_is_fine_for_readers_of_vfat():
    # The agent rebuilds the ISO as vfat there; cloud-init, glean and cloudbase-init read it.
    assert drive_readers.choose_format(node(), sector_size=4096) == ISO9660


def test_no_format_for_ignition_on_a_4k_disk():
    with pytest.raises(drive_readers.ReadersError) as exc:
        drive_readers.choose_format(node(configdrive_readers="cloud-init,ignition"),
                                    sector_size=4096)
    assert exc.value.reason == (
        "no config drive format suits its readers cloud-init, ignition: "
        "as iso9660 on its 4096-byte-sector disk, ignition: it mounts iso9660 only, and the "
        "drive is vfat, volume label is 'CONFIG-2'; it looks for config-2 / as vfat on its "
        "4096-byte-sector disk, ignition: it mounts iso9660 only, and the drive is vfat, "
        "volume label is 'CONFIG-2'; it looks for config-2")
    assert "virtual media" in exc.value.advice and "configdrive_device" in exc.value.advice


def test_an_explicit_format_no_reader_can_use_is_refused():
    target = node(configdrive_readers=["ignition"], configdrive_format=VFAT)
    with pytest.raises(drive_readers.ReadersError) as exc:
        drive_readers.validate(target)
    assert "Unset configdrive_format" in exc.value.advice
    assert exc.value.reason.startswith(f"node {UUID}: no config drive format suits its ")
    assert drive_readers.choose_format(node(configdrive_format=VFAT)) == VFAT


# -- check_image --------------------------------------------------------------------------------

def test_a_given_image_is_judged_by_the_nodes_readers():
    vfat = inspect(build_image({}, fmt=VFAT, node_uuid=UUID))
    drive_readers.check_image(node(), vfat)
    with pytest.raises(drive_readers.ReadersError) as exc:
        drive_readers.check_image(node(configdrive_readers="ignition"), vfat)
    assert f"the config drive given for node {UUID} does not suit its readers: ignition: " \
           in exc.value.message


def test_a_given_iso_is_judged_as_the_vfat_it_becomes_on_a_4k_disk():
    iso = inspect(build_image({}, node_uuid=UUID))
    drive_readers.check_image(node(configdrive_readers="ignition"), iso, sector_size=512)
    drive_readers.check_image(node(), iso, sector_size=4096)
    with pytest.raises(drive_readers.ReadersError) as exc:
        drive_readers.check_image(node(configdrive_readers="ignition"), iso, sector_size=4096)
    assert "(rebuilt as vfat for the 4096-byte sectors of its disk)" in exc.value.message


def test_a_given_iso_with_an_upper_case_label_suits_cloudbase_init_not_ignition():
    report = inspect(iso9660.write_iso(
        layout.build_tree({}, node_uuid=UUID), label="CONFIG-2"))
    drive_readers.check_image(node(configdrive_readers="cloudbase-init"), report)
    with pytest.raises(drive_readers.ReadersError):
        drive_readers.check_image(node(configdrive_readers="ignition"), report)


# -- what the agent is told -----------------------------------------------------------------------

def test_the_agent_keeps_iso9660_only_for_readers_that_cannot_read_vfat():
    assert drive_readers.format_to_keep(node()) is None
    assert drive_readers.format_to_keep(node(configdrive_readers="glean,ignition")) == ISO9660
    assert drive_readers.format_to_keep(node(configdrive_readers="bogus")) is None


# -- sector size from inspection data -------------------------------------------------------------

def plan(writes_disk: bool) -> ExposurePlan:
    caps = Capabilities(takes_sealed=True, takes_compressed=True, needs_agent=writes_disk,
                        writes_disk=writes_disk, reads_url_while_attached=not writes_disk)
    return ExposurePlan(Mechanism("m", caps))


DISKS = [{"name": "/dev/sda", "size": 2**40, "logical_sectors": 512, "model": "big"},
         {"name": "/dev/sdb", "size": 2**39, "logical_sectors": 4096, "model": "small"}]


def sector_size(target: Any, data: Any, *, writes_disk: bool = True) -> Any:
    task = types.SimpleNamespace(node=target, context=object())
    with mock.patch("ironic.drivers.modules.inspect_utils.get_inspection_data",
                    autospec=True, return_value=data) as get:
        found = drive_readers.sector_size(task, plan(writes_disk))
    assert get.called is writes_disk
    return found


def test_the_root_disk_from_inspection():
    data = {"inventory": {"disks": DISKS}, "plugin_data": {"root_disk": DISKS[1]}}
    assert sector_size(node(), data) == 4096
    assert sector_size(node(), data, writes_disk=False) is None


def test_the_named_device():
    data = {"inventory": {"disks": DISKS}, "plugin_data": {"root_disk": DISKS[1]}}
    named = node()
    named.driver_info = {"configdrive_device": "/dev/sda"}  # the operator's choice
    assert sector_size(named, data) == 512
    named.driver_info = {"configdrive_device": "/dev/sdz"}
    assert sector_size(named, data) is None


def test_root_device_hints_pick_the_disk():
    target = node()
    target.properties = {"root_device": {"model": "small"}}
    assert sector_size(target, {"inventory": {"disks": DISKS}, "plugin_data": {}}) == 4096
    target.properties = {"root_device": {"size": "not a size"}}
    assert sector_size(target, {"inventory": {"disks": DISKS}, "plugin_data": {}}) is None


def test_unknown_without_inspection_data_or_a_choice():
    assert sector_size(node(), {"inventory": {"disks": DISKS}, "plugin_data": {}}) is None
    assert sector_size(node(), {"inventory": {"disks": DISKS[:1]}}) == 512
    assert sector_size(node(), {"inventory": {"disks": [{"name": "/dev/sda"}]}}) is None
    from ironic.common import exception

    task = types.SimpleNamespace(node=node(), context=object())
    with mock.patch("ironic.drivers.modules.inspect_utils.get_inspection_data",
                    side_effect=exception.NodeInventoryNotFound(node=UUID)):
        assert drive_readers.sector_size(task, plan(True)) is None


def test_an_unknown_explicit_format_is_left_to_the_image_core():
    assert drive_readers.choose_format(node(configdrive_format="udf")) == "udf"
