"""Shared helpers for exposure unit tests: plain task/node stand-ins and config overrides."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

import ironic.conf  # noqa: F401  (registers the [agent] and [redfish] options we read)
import pytest
from oslo_config import cfg
from oslo_config import fixture as cfg_fixture

from tests.fixtures.logs import enable_all_loggers

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
SIG = "temp_url_sig=deadbeefdeadbeefdeadbeefdeadbeefdeadbeef&temp_url_expires=1999999999"


@pytest.fixture
def conf() -> Iterator[cfg_fixture.Config]:
    fixture = cfg_fixture.Config(cfg.CONF)
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def make_task() -> Callable[..., Any]:
    def make(*, instance_info: dict[str, Any] | None = None,
             driver_info: dict[str, Any] | None = None,
             driver_internal_info: dict[str, Any] | None = None) -> Any:
        node = types.SimpleNamespace(
            uuid=NODE, driver="redfish", instance_info=instance_info or {},
            driver_info=driver_info or {},
            driver_internal_info=driver_internal_info or {})
        return types.SimpleNamespace(node=node)

    return make


@pytest.fixture(autouse=True)
def enabled_loggers() -> None:
    """Log assertions must not depend on whether an Ironic DbTestCase ran before."""
    enable_all_loggers()
