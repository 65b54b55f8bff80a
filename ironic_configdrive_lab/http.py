"""The lab's HTTP servers: ``http`` serves ``DIR/http`` (images and, with one Ironic process,
the http store) on 127.0.0.1; with several conductors each also gets ``http-N`` serving its
own ``DIR/conductor-N/http`` on its own address (see :mod:`.profile`).

Each stands in for the web server behind a conductor's ``[deploy]http_url``. It never lists a
directory (403, like Apache with ``Options -Indexes``) and its access log masks the random
part of stored drive names (whoever has the name can fetch the drive), as an operator's web
server should; ``python -m ironic_configdrive_lab.http DIR PORT [ADDRESS]`` runs one.
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests

from ironic_configdrive.masking import scrub
from ironic_configdrive_lab import process
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME = "http"


def start(workdir: Workdir, port: int, *, name: str = NAME, root: Path | None = None,
          host: str = "127.0.0.1") -> str:
    """Serve ``root`` (default ``DIR/http``) at ``host:port`` as process ``name``; its URL."""
    root = workdir.http_root if root is None else root
    process.spawn(workdir, name, [sys.executable, "-m", "ironic_configdrive_lab.http",
                                  str(root), str(port), host])
    url = f"http://{host}:{port}"
    for _ in range(100):
        try:
            requests.head(url + "/", timeout=1)
            return url
        except requests.RequestException:
            if process.running_pid(workdir, name) is None:
                break
            time.sleep(0.1)
    raise LabError(f"the lab HTTP server {name} did not start on {host}:{port}:\n"
                   + process.log_tail(workdir, name))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def list_directory(self, path: str | os.PathLike[str]) -> None:
        # File names under the HTTP root are secrets: a directory without an index is
        # forbidden, never listed.
        self.send_error(HTTPStatus.FORBIDDEN, "Directory listings are off")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        sys.stderr.write(scrub(f"{self.address_string()} - - [{self.log_date_time_string()}] "
                               f"{format % args}") + "\n")


def make_server(root: str, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """The lab's HTTP server for ``root`` bound to ``host:port`` (0: any free port)."""
    handler = functools.partial(_Handler, directory=root)
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv: list[str]) -> None:
    root, port, *rest = argv
    with make_server(root, int(port), *rest[:1]) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
