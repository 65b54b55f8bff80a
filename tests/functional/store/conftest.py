"""Fixtures for store tests against real services: a Swift cluster and an HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ironic_configdrive.image import build_image
from tests.fixtures.swift import SwiftServer, running


@pytest.fixture(scope="session")
def swift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """One real Swift (proxy + tempauth + tempurl, memcached) for the whole session."""
    yield from running(SwiftServer(tmp_path_factory.mktemp("swift")))


@pytest.fixture
def container() -> str:
    """A container name no other test uses (so each test sees it created from scratch)."""
    return f"cd-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def drive_image() -> bytes:
    """A real config drive (ISO9660) as the conductor would store it."""
    return build_image({"meta_data": {"uuid": "0b3e9b8a-2c63-4f4e-9d0a-4a51b2f6e0c1",
                                      "hostname": "store-test",
                                      "public_keys": {"k": "ssh-ed25519 AAAA test"}},
                        "user_data": "#cloud-config\nhostname: store-test\n"})


class ListingHandler(http.server.SimpleHTTPRequestHandler):
    """Python's own file server: it lists directories that have no index file."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietHandler(ListingHandler):
    """The same, configured as a production web server must be: no listings."""

    def list_directory(self, path: object) -> None:
        self.send_error(403, "Directory listings are off")


def serve_directory(root: Path, handler: type[http.server.BaseHTTPRequestHandler]
                    ) -> Iterator[tuple[Path, str]]:
    """(root, url): ``handler`` serving ``root`` on 127.0.0.1, stopped after."""
    root.mkdir(exist_ok=True)
    bound = functools.partial(handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(root, url): a stdlib HTTP server on 127.0.0.1 serving ``root``, no listings."""
    yield from serve_directory(tmp_path / "httpboot", _QuietHandler)


