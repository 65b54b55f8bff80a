"""Shared pytest helpers: environment gates that skip locally but never under CI=true."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip outside CI; under ``CI=true`` a missing prerequisite is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} not on PATH (install the bindep.txt packages)")
    return path  # type: ignore[return-value]


def require_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail("needs root for loop devices")


@pytest.fixture(autouse=True)
def _enabled_loggers() -> None:
    """Ironic's DB test base runs alembic's fileConfig, which disables existing loggers;
    log assertions must not depend on whether such a test ran earlier in the session."""
    from tests.fixtures.logs import enable_all_loggers

    enable_all_loggers()


@pytest.fixture(autouse=True)
def _no_listing_verdicts() -> Iterator[None]:
    """Each test probes the web server behind its own HTTP root afresh."""
    from ironic_configdrive.store import http

    http._verdicts.clear()
    yield
    http._verdicts.clear()


@pytest.fixture
def conf(tmp_path: Path) -> Iterator[Any]:
    """Ironic's global CONF with ``[configdrive]`` registered; overrides undone afterwards.

    The key-encryption key file lives in the test's tmp dir, not under Ironic's state_path.
    """
    from oslo_config import fixture as cfg_fixture

    from ironic_configdrive.store.common import ironic_conf

    fixture = cfg_fixture.Config(ironic_conf())
    fixture.setUp()
    fixture.config(key_file=str(tmp_path / "configdrive.key"), group="configdrive")
    try:
        yield fixture
    finally:
        fixture.cleanUp()
