"""Fixtures of the fault suite: one stallable real Swift, loop disks, a local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import http as http_fixture
from tests.fixtures.swift import running
from tests.fixtures.swift_slow import slow_swift_server
from tests.functional.agent_ext.disk.conftest import loopdisk  # noqa: F401


@pytest.fixture(scope="session")
def slow_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real Swift (tempauth, tempurl, status faults, stalls) for the fault suite."""
    yield from running(slow_swift_server(tmp_path_factory.mktemp("swift-faults")))


@pytest.fixture(scope="class")
def bind_swift(request: pytest.FixtureRequest, slow_swift: Any) -> None:
    """Binds the Swift server to a (unittest-style) Ironic test class as ``swift``."""
    request.cls.swift = slow_swift


@pytest.fixture
def server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()
