"""Unit-test fixtures for the store plugins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oslo_config import fixture as cfg_fixture

from ironic_configdrive.store.common import ironic_conf
from tests.fixtures.logs import enable_all_loggers


@pytest.fixture
def conf() -> Iterator[cfg_fixture.Config]:
    """Ironic's CONF with ``[configdrive]`` registered; overrides undone after the test."""
    fixture = cfg_fixture.Config(ironic_conf())
    fixture.setUp()
    try:
        yield fixture
    finally:
        fixture.cleanUp()


@pytest.fixture(autouse=True)
def enabled_loggers() -> None:
    """Log assertions must not depend on whether an Ironic DbTestCase ran before."""
    enable_all_loggers()
