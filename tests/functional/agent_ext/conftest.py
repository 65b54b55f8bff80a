"""Fixtures for the agent write path on real loop devices and a local HTTP(S) server.

The loop-disk fixtures are the disk layer's (tests/functional/agent_ext/disk/conftest.py),
re-exported here so these tests share one implementation and its detach-always finalisers.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from ironic_python_agent import config
from ironic_python_agent.extensions import base

from tests.conftest import require_tool
from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.disk.conftest import loopdisk, make_iso, run  # noqa: F401


class Agent(base.ExecuteCommandMixin):
    """IPA's command executor, without the heartbeat of a running agent."""

    def force_heartbeat(self) -> None:
        pass


@contextlib.contextmanager
def loaded_agent() -> Iterator[Agent]:
    """An agent whose extensions IPA 13's own manager loaded (ours by its entry point)."""
    config.populate_config()  # as IPA's main does, so its own extensions load too
    agent = Agent()
    agent.ext_mgr = base.init_ext_manager(agent)
    try:
        yield agent
    finally:
        base._EXT_MANAGER = None


@pytest.fixture
def agent() -> Iterator[Agent]:
    with loaded_agent() as loaded:
        yield loaded


@dataclass(frozen=True)
class TLSFiles:
    ca: str
    cert: str
    key: str


@pytest.fixture
def server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    openssl = require_tool("openssl")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        openssl,
        "req",
        "-x509",
        *ec,
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=ironic-configdrive test CA",
    )
    run(
        openssl,
        "req",
        *ec,
        "-keyout",
        str(d / "srv.key"),
        "-out",
        str(d / "srv.csr"),
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        openssl,
        "x509",
        "-req",
        "-in",
        str(d / "srv.csr"),
        "-CA",
        str(d / "ca.pem"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-out",
        str(d / "srv.pem"),
        "-days",
        "2",
        "-extfile",
        str(d / "ext.cnf"),
    )
    return TLSFiles(ca=str(d / "ca.pem"), cert=str(d / "srv.pem"), key=str(d / "srv.key"))


@pytest.fixture
def tls_server(tls_files: TLSFiles) -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve(tls=(tls_files.cert, tls_files.key))


def b64gz(image: bytes) -> bytes:
    return base64.b64encode(gzip.compress(image))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_node(path: str, length: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(length)


def blkid_label_nodes(*nodes: str) -> list[str]:
    """Nodes whose superblock says LABEL=config-2 (either case), probing directly."""
    require_tool("blkid")
    found = []
    for node in nodes:
        label = run("blkid", "-p", "-o", "value", "-s", "LABEL", node, check=False).stdout
        if label.strip().lower() == "config-2":
            found.append(node)
    return found


def disk_nodes(device: str) -> list[str]:
    name = pathlib.Path(device).name
    base = pathlib.Path("/sys/block") / name
    return [device] + sorted(
        f"/dev/{c.name}" for c in base.iterdir() if (c / "partition").exists()
    )
