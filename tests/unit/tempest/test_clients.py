"""The Bare Metal client and the noauth provider, against a recording API on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import skip_or_fail

try:
    from ironic_configdrive_tempest import clients
except ImportError as exc:  # pragma: no cover - tempest is an optional dependency
    clients = None  # type: ignore[assignment]
    MISSING = str(exc)


@pytest.fixture(autouse=True)
def _need_tempest() -> None:
    if clients is None:
        skip_or_fail(f"tempest is not installed (pip install -e .[tempest]): {MISSING}")


class FakeIronic(http.server.BaseHTTPRequestHandler):
    """Answers the few calls the client makes and remembers every request."""

    requests: list[dict[str, Any]] = []
    states: list[str] = []
    node: dict[str, Any] = {}

    def _reply(self, code: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append({"method": self.command, "path": self.path,
                              "headers": dict(self.headers), "body": body})
        return body

    def do_GET(self) -> None:  # noqa: N802
        self._record()
        if self.states:
            self.node["provision_state"] = self.states.pop(0)
        self._reply(200, self.node)

    def do_PATCH(self) -> None:  # noqa: N802
        self._record()
        self._reply(200, self.node)

    def do_PUT(self) -> None:  # noqa: N802
        self._record()
        self._reply(202)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def api() -> Iterator[str]:
    FakeIronic.requests = []
    FakeIronic.states = []
    FakeIronic.node = {"uuid": "n-1", "provision_state": "available",
                       "target_provision_state": None, "last_error": None}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeIronic)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_noauth_client_requests(api: str) -> None:
    client = clients.noauth_client(api, "1.80")
    assert client.show_node("n-1")["uuid"] == "n-1"
    client.update_node("n-1", [{"op": "replace", "path": "/deploy_interface",
                                "value": "configdrive"}])
    client.set_provision_state("n-1", "active", configdrive={"meta_data": {"uuid": "u"}})
    get, patch, put = FakeIronic.requests
    assert (get["method"], get["path"]) == ("GET", "/v1/nodes/n-1")
    assert patch["body"] == [{"op": "replace", "path": "/deploy_interface",
                              "value": "configdrive"}]
    assert (put["path"], put["body"]) == ("/v1/nodes/n-1/states/provision",
                                          {"target": "active",
                                           "configdrive": {"meta_data": {"uuid": "u"}}})
    for request in FakeIronic.requests:
        assert request["headers"]["X-OpenStack-Ironic-API-Version"] == "1.80"
        assert "X-Auth-Token" not in request["headers"]


def test_wait_reaches_state(api: str) -> None:
    FakeIronic.states = ["deploying", "wait call-back", "active"]
    node = clients.noauth_client(api, "latest").wait_for_provision_state(
        "n-1", "active", timeout=60, interval=1, fail_states=("deploy failed",))
    assert node["provision_state"] == "active"
    assert len(FakeIronic.requests) == 3


def test_wait_fails_fast_with_last_error(api: str) -> None:
    FakeIronic.states = ["deploying", "deploy failed"]
    FakeIronic.node["last_error"] = "agent lost"
    with pytest.raises(clients.ProvisionFailed, match="deploy failed.*agent lost"):
        clients.noauth_client(api, "latest").wait_for_provision_state(
            "n-1", "active", timeout=60, interval=1, fail_states=("deploy failed",))


def test_wait_times_out_naming_node_and_state(api: str) -> None:
    FakeIronic.node["provision_state"] = "deploying"
    with pytest.raises(clients.ProvisionTimeout, match="node n-1 still 'deploying'"):
        clients.noauth_client(api, "latest").wait_for_provision_state(
            "n-1", "active", timeout=1, interval=1)


