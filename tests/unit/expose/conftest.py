"""Shared helpers for exposure unit tests: plain task/node stand-ins and config overrides."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import ironic.conf  # noqa: F401  (registers the [agent] and [redfish] options we read)
import pytest

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
SIG = "temp_url_sig=deadbeefdeadbeefdeadbeefdeadbeefdeadbeef&temp_url_expires=1999999999"



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

