"""The lab's HTTP server on 127.0.0.1: serves ``DIR/http`` (images and the http store)."""

from __future__ import annotations

import sys
import time

import requests

from ironic_configdrive.lab import process
from ironic_configdrive.lab.workdir import LabError, Workdir

NAME = "http"


def start(workdir: Workdir, port: int) -> str:
    process.spawn(workdir, NAME, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                  "--directory", str(workdir.http_root), str(port)])
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
