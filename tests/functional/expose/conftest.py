"""Fixtures for the exposure tests: a real Redfish emulator and a local image server.

Ironic's test base forbids subprocesses during a test, so everything that starts a process
runs here, before the test case's setUp, and the imports below happen at collection time:
``ironic.tests.unit`` selects the oslo.service backend, and importing the fake hardware type
pulls in zeroconf, whose import runs ``ldconfig``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import ironic.tests.unit  # noqa: F401  (selects the oslo.service threading backend)
import pytest

from tests.fixtures import http as http_fixture
from tests.fixtures import redfish
from tests.fixtures.redfish import RedfishEmulator

# Only after the backend is chosen; its zeroconf import runs ldconfig, which Ironic's test
# base would refuse inside a test.
importlib.import_module("ironic.drivers.fake_hardware")

SINGLE_CD = {"Cd": {"Name": "Virtual CD", "MediaTypes": ["CD", "DVD"]}}


@pytest.fixture(scope="module")
def redfish_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishEmulator]:
    """sushy-emulator with the default CD and USB/floppy slots."""
    yield from redfish.running(tmp_path_factory.mktemp("redfish"))


@pytest.fixture(scope="module")
def single_slot_emulator(tmp_path_factory: pytest.TempPathFactory
                         ) -> Iterator[RedfishEmulator]:
    """sushy-emulator whose only virtual media slot is a CD."""
    yield from redfish.running(tmp_path_factory.mktemp("redfish-1slot"),
                               vmedia_devices=SINGLE_CD)


@pytest.fixture(scope="module")
def image_server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()


@pytest.fixture(scope="class")
def redfish_env(request: pytest.FixtureRequest, redfish_emulator: RedfishEmulator,
                image_server: http_fixture.ObjectServer) -> None:
    """Binds the emulator and image server to a unittest-style (Ironic DbTestCase) class."""
    request.cls.emulator = redfish_emulator
    request.cls.server = image_server


@pytest.fixture(scope="class")
def single_slot_env(request: pytest.FixtureRequest, single_slot_emulator: RedfishEmulator,
                    image_server: http_fixture.ObjectServer) -> None:
    request.cls.emulator = single_slot_emulator
    request.cls.server = image_server

