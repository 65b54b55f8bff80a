"""A local HTTP(S) object server on 127.0.0.1 whose faults the test scripts.

Objects are served with Content-Length, a strong ETag and Range support (``bytes=N-`` with
``If-Range``). Per-path fault scripts are consumed one per request:

* ``("status", 500)`` — answer that status with a short body,
* ``("drop", n)`` — send headers for the full body, ``n`` bytes of it, then close,
* ``("ignore_range",)`` — answer a Range request with the full body (HTTP 200),
* ``("bad_range",)`` — answer a Range request with a Content-Range starting elsewhere.

Every request is recorded (path with query, Range and If-Range headers) for assertions.
"""

from __future__ import annotations

import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass
class Recorded:
    path: str
    range: str | None
    if_range: str | None


@dataclass
class ObjectServer:
    objects: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str, query: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def fault(self, path: str, *steps: tuple[Any, ...]) -> None:
        self.faults.setdefault(path, []).extend(steps)


def _handler(state: ObjectServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            state.requests.append(
                Recorded(self.path, self.headers.get("Range"), self.headers.get("If-Range"))
            )
            steps = state.faults.get(path) or []
            step = steps.pop(0) if steps else ("ok",)
            body = state.objects.get(path)
            if step[0] == "status" or body is None:
                code = step[1] if step[0] == "status" else 404
                payload = f"error {code}\n".encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            start = 0
            rng = self.headers.get("Range")
            if rng and step[0] != "ignore_range":
                if_range = self.headers.get("If-Range")
                if if_range is None or if_range == etag:
                    start = int(rng.split("=", 1)[1].split("-", 1)[0])
            if start:
                shown = start + 1 if step[0] == "bad_range" else start
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {shown}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            limit = len(body) - start
            if step[0] == "drop":
                limit = min(limit, int(step[1]))
            view = memoryview(body)[start : start + limit]
            try:
                for offset in range(0, len(view), CHUNK):
                    self.wfile.write(view[offset : offset + CHUNK])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            if step[0] == "drop":
                self.close_connection = True
                self.connection.shutdown(2)

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(tls: tuple[str, str] | None = None) -> Iterator[ObjectServer]:
    """Generator for a fixture: yields a running server, stops it afterwards.

    :param tls: ``(certfile, keyfile)`` to serve HTTPS.
    """
    state = ObjectServer()
    server = _Server(("127.0.0.1", 0), _handler(state))
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        state.scheme = "https"
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="object-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
