"""A Neutron stand-in for the Nova profile: a read-only Networking API with nothing in it.

Why a stand-in and not neutron-server: the lab's servers are created with ``--nic none`` (no
networking service exists to plug a bare-metal port into), yet Nova asks Neutron for the
instance's ports anyway (building the network info cache, ``server show``, deleting a
server). A real neutron-server would need its own database, its ML2 plugin and its agents'
absence tolerated, for answers that are always empty here. So this answers every
``GET /v2.0/<collection>`` with an empty list and refuses every change (405): Nova never
asks for one with ``--nic none``, and if it ever did, the build fails loudly instead of
pretending to have plugged a network. Registered in Keystone's catalog as the ``network``
service and set as Nova's ``[neutron]endpoint_override``.

Run as ``python -m ironic_configdrive_lab.neutron_standin PORT`` (127.0.0.1 only).
"""

from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from ironic_configdrive_lab import ports

NAME: Final = "neutron-standin"
#: ``/v2.0/ports``, ``/v2.0/security-groups.json``, ... (a collection, not one item).
COLLECTION: Final = re.compile(r"^/v2\.0/([a-z_-]+?)(?:\.json)?/?$")
VERSIONS: Final[dict[str, object]] = {
    "versions": [{"id": "v2.0", "status": "CURRENT", "links": []}]}


def answer(method: str, path: str) -> tuple[int, dict[str, object]]:
    """The stand-in's status and body for a request (pure, unit-tested)."""
    path = path.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return 405, {"NeutronError": {"type": "HTTPMethodNotAllowed", "detail": "",
                                      "message": "the lab's Neutron stand-in is read-only "
                                                 "(servers are created with --nic none)"}}
    if path in ("", "/"):
        return 200, VERSIONS
    if path.rstrip("/") == "/v2.0":
        return 200, {"resources": []}
    match = COLLECTION.match(path)
    if match:
        return 200, {match.group(1).replace("-", "_"): []}
    return 404, {"NeutronError": {"type": "HTTPNotFound", "detail": "",
                                  "message": f"no {path} in the lab's Neutron stand-in"}}


class _Handler(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        status, body = answer(self.command, self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._reply()

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply()

    def do_POST(self) -> None:  # noqa: N802
        self._reply()

    def do_PUT(self) -> None:  # noqa: N802
        self._reply()

    def do_DELETE(self) -> None:  # noqa: N802
        self._reply()


def main(argv: list[str] | None = None) -> None:
    port = int((argv if argv is not None else sys.argv[1:])[0])
    ThreadingHTTPServer((ports.LOOPBACK, port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
