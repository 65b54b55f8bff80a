"""OpenStack WSGI applications of the Nova profile served by gunicorn on loopback.

Keystone, placement, Glance and nova-api ship WSGI applications and no server of their own
any more, so the lab runs each under gunicorn (from the Nova venv): one worker, threads,
127.0.0.1 and a free port, output to ``DIR/logs/NAME.log``, started and stopped by pid.
gunicorn's control socket is disabled (it would be created outside the workdir). The
application reads its configuration from the environment variables the caller passes.

Keep-alive is off (every response closes its connection): gunicorn's threaded worker closes
an idle kept-alive connection while a client may be sending its next request on it, and the
client gets "Connection reset by peer" (benoitc/gunicorn#1698). It hit ``openstack server
delete --wait`` polling nova-api in CI; on loopback a new connection per request costs nothing.

gunicorn is driven through its Python API by :data:`LAUNCHER` rather than its command line:
placement and nova-api hand ``sys.argv`` to oslo.config, which refuses gunicorn's options.
"""

from __future__ import annotations

from typing import Final

import requests

from ironic_configdrive_lab import nova_venv, ports, process
from ironic_configdrive_lab.workdir import Workdir

START_TIMEOUT: Final = 120.0
THREADS: Final = "4"
#: Run by the Nova venv's python: ``-c LAUNCHER NAME APP HOST:PORT THREADS TIMEOUT``.
LAUNCHER: Final = """
import sys
from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app
name, app, bind, threads, timeout = sys.argv[1:6]
sys.argv = [name]
class Lab(BaseApplication):
    def load_config(self):
        for key, value in {"bind": bind, "workers": 1, "threads": int(threads),
                           "timeout": int(timeout), "keepalive": 0, "proc_name": name,
                           "control_socket_disable": True}.items():
            self.cfg.set(key, value)
    def load(self):
        return import_app(app)
Lab().run()
"""


def start(workdir: Workdir, name: str, app: str, *, env: dict[str, str],
          port: int | None = None, timeout: int = 300) -> str:
    """Serve ``app`` (``module:callable``); its URL once it answers HTTP."""
    port = port or ports.free_port()
    nova_venv.tool("gunicorn")
    process.spawn(workdir, name, [
        str(nova_venv.tool("python")), "-c", LAUNCHER, f"lab-{name}", app,
        f"{ports.LOOPBACK}:{port}", THREADS, str(timeout)], env=nova_venv.environment(env))
    url = f"http://{ports.LOOPBACK}:{port}"
    wait_http(workdir, name, url)
    return url


def wait_http(workdir: Workdir, name: str, url: str,
              timeout: float = START_TIMEOUT) -> None:
    """Until ``url`` answers with any HTTP status (the app loaded); fail if ``name`` died."""
    def answers() -> bool:
        try:
            requests.get(url, timeout=30)
        except requests.RequestException:
            return False
        return True

    process.wait_until_ready(workdir, name, answers, where=f"at {url}", timeout=timeout,
                             interval=0.3)
