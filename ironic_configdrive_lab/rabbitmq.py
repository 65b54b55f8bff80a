"""RabbitMQ (the Debian package) as plain processes of the lab: Nova's message bus.

No broker-free oslo.messaging transport carries Nova's RPC, so the Nova profile runs a real
broker. Debian's ``rabbitmq-server`` is started without its system service: its own
``epmd`` on 127.0.0.1 and a free port, its own node name, AMQP and distribution ports on
127.0.0.1, and every file (mnesia database, logs, pid file, config, the Erlang cookie in
``HOME``) under ``DIR/rabbitmq``. Both processes are started and stopped by pid like every
other lab process. The broker's ``guest`` user is kept: RabbitMQ lets it in from loopback
only, which is all the lab listens on.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Final

from ironic_configdrive_lab import ports, process
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME: Final = "rabbitmq"
EPMD_NAME: Final = "epmd"
SERVER: Final = "/usr/lib/rabbitmq/bin/rabbitmq-server"
START_TIMEOUT: Final = 90.0
PACKAGE_HINT: Final = "apt-get install rabbitmq-server (see bindep.txt)"


def root(workdir: Workdir) -> Path:
    return workdir.root / NAME


def transport_url(port: int) -> str:
    """oslo.messaging's ``transport_url`` for the lab's broker."""
    return f"rabbit://guest:guest@127.0.0.1:{port}/"


def environment(workdir: Workdir, *, amqp_port: int, dist_port: int,
                epmd_port: int) -> dict[str, str]:
    """The variables that keep the broker off the system's files, names and ports."""
    base = root(workdir)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "RABBITMQ_NODENAME": f"lab-{workdir.tag}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": ports.LOOPBACK,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": ports.LOOPBACK,
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        # Not /etc/rabbitmq/rabbitmq-env.conf: nothing of the system's broker applies.
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
    }


def start(workdir: Workdir) -> str:
    """Start epmd and the broker; the transport URL once the broker accepts connections."""
    epmd = shutil.which("epmd")
    if not (epmd and Path(SERVER).exists()):
        raise LabError(f"RabbitMQ is not installed: {PACKAGE_HINT}")
    base = root(workdir)
    for directory in (base, base / "mnesia", base / "log"):
        directory.mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq-env.conf").write_text("")
    (base / "enabled_plugins").write_text("[].\n")
    amqp_port, dist_port, epmd_port = (ports.free_port() for _ in range(3))
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {ports.LOOPBACK}:{amqp_port}\n"
        "loopback_users.guest = true\n")
    env = environment(workdir, amqp_port=amqp_port, dist_port=dist_port, epmd_port=epmd_port)
    process.spawn(workdir, EPMD_NAME, [epmd, "-port", str(epmd_port), "-address",
                                       ports.LOOPBACK], env=env)
    process.spawn(workdir, NAME, [SERVER], env=env)
    _wait_ready(workdir, amqp_port)
    return transport_url(amqp_port)


def stop(workdir: Workdir) -> list[str]:
    """The broker, then its epmd; the names of those that ran."""
    return [name for name in (NAME, EPMD_NAME) if process.stop(workdir, name)]


def _wait_ready(workdir: Workdir, port: int) -> None:
    """The AMQP listener answers the protocol header (the port opens before the broker is
    ready to take logins, and a client connecting too early is refused)."""
    process.wait_until_ready(workdir, NAME, lambda: _speaks_amqp(port),
                             where=f"on {ports.LOOPBACK}:{port}", timeout=START_TIMEOUT,
                             interval=0.5)


def _speaks_amqp(port: int) -> bool:
    try:
        with socket.create_connection((ports.LOOPBACK, port), timeout=2) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(8).startswith(b"\x01\x00\x00")
    except OSError:
        return False
