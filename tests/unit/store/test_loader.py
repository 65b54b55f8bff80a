"""get_store: stevedore loading by name and from [configdrive]store."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from oslo_config import fixture as cfg_fixture

from ironic_configdrive.store import loader
from ironic_configdrive.store.base import StoreError
from ironic_configdrive.store.http import HttpStore
from ironic_configdrive.store.swift import SwiftStore


def test_default_from_conf(conf: cfg_fixture.Config, tmp_path: Path) -> None:
    conf.config(http_root=str(tmp_path), http_url="http://127.0.0.1:8080", group="deploy")
    conf.config(store="http", group="configdrive")
    store = loader.get_store()
    assert isinstance(store, HttpStore)
    assert store.directory == tmp_path / "configdrive"


def test_by_name(conf: cfg_fixture.Config) -> None:
    conf.config(swift_container="c1", group="configdrive")
    store = loader.get_store("swift")
    assert isinstance(store, SwiftStore) and store.container == "c1"


def test_unknown_name_lists_installed() -> None:
    with pytest.raises(StoreError, match=r"no such store plugin \(installed: http, swift\)"):
        loader.get_store("s3")


def test_constructor_error_is_store_error(conf: cfg_fixture.Config) -> None:
    conf.config(http_subdir="../escape", group="configdrive")
    with pytest.raises(StoreError, match="http_subdir"):
        loader.get_store("http")


def test_import_failure_is_reported() -> None:
    with mock.patch("ironic_configdrive.store.swift.SwiftStore.__init__",
                    side_effect=ImportError("No module named 'swiftclient'")):
        with pytest.raises(StoreError, match="swiftclient"):
            loader.get_store("swift")


def test_non_store_plugin_refused() -> None:
    fake = mock.Mock()
    fake.driver = object()
    with mock.patch.object(loader.driver, "DriverManager", return_value=fake):
        with pytest.raises(StoreError, match="is not a ConfigDriveStore"):
            loader.get_store("http")
