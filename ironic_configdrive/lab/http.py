"""The lab's HTTP server on 127.0.0.1: serves ``DIR/http`` (images and the http store).

It stands in for the web server behind ``[deploy]http_url``. Its access log masks the
random part of stored drive names (whoever has the name can fetch the drive), as an
operator's web server should; ``python -m ironic_configdrive.lab.http DIR PORT`` runs it.
"""

from __future__ import annotations

import functools
import http.server
import sys
import time
from typing import Any

import requests

from ironic_configdrive.lab import process
from ironic_configdrive.lab.workdir import LabError, Workdir
from ironic_configdrive.masking import scrub

NAME = "http"


def start(workdir: Workdir, port: int) -> str:
    process.spawn(workdir, NAME, [sys.executable, "-m", "ironic_configdrive.lab.http",
                                  str(workdir.http_root), str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.head(url + "/", timeout=1)
            return url
        except requests.RequestException:
            if process.running_pid(workdir, NAME) is None:
                break
            time.sleep(0.1)
    raise LabError(f"the lab HTTP server did not start on port {port}:\n"
                   + process.log_tail(workdir, NAME))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        sys.stderr.write(scrub(f"{self.address_string()} - - [{self.log_date_time_string()}] "
                               f"{format % args}") + "\n")


def main(argv: list[str]) -> None:
    root, port = argv
    handler = functools.partial(_Handler, directory=root)
    with http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
