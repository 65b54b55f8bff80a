"""Which per-node settings a deploy (instance_info) may choose, and where values come from."""

from __future__ import annotations

import types
from typing import Any

import pytest

from ironic_configdrive import node_options
from ironic_configdrive.node_options import OverrideRefused

NODE = "6a1a4a4e-90a3-4a0c-8f55-7d1d2c3b4a5f"


def node(instance_info: dict[str, Any] | None = None,
         driver_info: dict[str, Any] | None = None) -> Any:
    return types.SimpleNamespace(uuid=NODE, instance_info=instance_info,
                                 driver_info=driver_info)


def test_defaults_refuse_every_guarded_key(conf: Any) -> None:
    assert conf.conf.configdrive.allow_instance_overrides == []
    for key in ("configdrive_device", "configdrive_exposure"):
        with pytest.raises(OverrideRefused) as info:
            node_options.check_instance_overrides(node({key: "x"}))
        assert info.value.message == (
            f"node {NODE}: instance_info/{key} is set but deploys may not choose it; remove "
            f"it from instance_info (the operator may set driver_info/{key} instead), or "
            f"allow it for every node with [configdrive]allow_instance_overrides = {key}")
        with pytest.raises(OverrideRefused):
            node_options.node_option(node({key: "x"}, {key: "y"}), key)


def test_unguarded_and_empty_values_pass(conf: Any) -> None:
    harmless = node({"configdrive_format": "vfat", "configdrive_device": "",
                     "configdrive_exposure": None}, {"configdrive_device": "/dev/sdb"})
    node_options.check_instance_overrides(harmless)
    assert node_options.node_option_source(harmless, "configdrive_format") == (
        "vfat", "instance_info")
    assert node_options.node_option_source(harmless, "configdrive_device") == (
        "/dev/sdb", "driver_info")
    assert node_options.node_option_source(harmless, "configdrive_exposure") == (None, None)
    node_options.check_instance_overrides(node(None, None))


def test_allowed_keys_win_over_driver_info(conf: Any) -> None:
    conf.config(allow_instance_overrides=["configdrive_exposure"], group="configdrive")
    both = node({"configdrive_exposure": "virtual_media", "configdrive_device": "/dev/sdc"},
                {"configdrive_exposure": "partition", "configdrive_device": "/dev/sdb"})
    assert node_options.node_option_source(both, "configdrive_exposure") == (
        "virtual_media", "instance_info")
    # Allowing one key does not allow the other.
    with pytest.raises(OverrideRefused, match="instance_info/configdrive_device"):
        node_options.check_instance_overrides(both)
    conf.config(allow_instance_overrides=["configdrive_exposure", "configdrive_device"],
                group="configdrive")
    node_options.check_instance_overrides(both)
    assert node_options.node_option(both, "configdrive_device") == "/dev/sdc"


def test_only_guarded_keys_may_be_listed(conf: Any) -> None:
    with pytest.raises(ValueError, match="configdrive_device, configdrive_exposure"):
        conf.config(allow_instance_overrides=["configdrive_format"], group="configdrive")
