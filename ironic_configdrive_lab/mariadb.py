"""MariaDB (the Debian package) as a plain process of the lab: the conductors' shared database.

Everything lives under ``DIR/mariadb`` (data directory, socket, the ironic user's password)
and its output goes to ``DIR/logs/mariadb.log``. It listens on 127.0.0.1 only, at a port
picked at every start, and on its socket; root logs in through the socket only (unix socket
authentication), Ironic as ``ironic`` with a random password over TCP. Started by
:func:`start`, stopped by pid (``down``) like every other lab process. The data directory is
kept between ``down`` and ``up``, like the single profile's sqlite file.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ironic_configdrive_lab import ports, process
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME = "mariadb"
DATABASE = "ironic"
USER = "ironic"
START_TIMEOUT = 60.0
#: AF_UNIX paths are limited to 108 bytes.
MAX_SOCKET_PATH = 100
PACKAGE_HINT = "apt-get install mariadb-server-core mariadb-client-core (see bindep.txt)"


@dataclass(frozen=True)
class Paths:
    workdir: Workdir

    @property
    def root(self) -> Path:
        return self.workdir.root / NAME

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        return self.root / "mariadbd.sock"

    @property
    def password_file(self) -> Path:
        return self.root / "ironic.password"


def find(tool: str) -> str | None:
    """``mariadbd`` lives in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def missing_tools() -> list[str]:
    return [tool for tool in ("mariadbd", "mariadb-install-db", "mariadb") if not find(tool)]


def url(host: str, port: int, password: str) -> str:
    """Ironic's ``[database]connection`` (PyMySQL over TCP)."""
    return f"mysql+pymysql://{USER}:{password}@{host}:{port}/{DATABASE}?charset=utf8"


def running(workdir: Workdir) -> int | None:
    return process.running_pid(workdir, NAME)


def start(workdir: Workdir) -> str:
    """Start MariaDB (initialising its data directory once) unless it runs; Ironic's
    database URL."""
    missing = missing_tools()
    if missing:
        raise LabError(f"{', '.join(missing)} missing: {PACKAGE_HINT}")
    _require_pymysql()
    paths = Paths(workdir)
    if len(str(paths.socket)) > MAX_SOCKET_PATH:
        raise LabError(f"the MariaDB socket path {paths.socket} is too long for AF_UNIX; use "
                       "a shorter --workdir")
    paths.root.mkdir(parents=True, exist_ok=True)
    if running(workdir) is not None:
        # Already started for another part of the lab (the conductors, the Nova profile).
        port = int(sql(workdir, "SELECT @@port;\n").strip())
    else:
        if not (paths.data / "mysql").is_dir():
            _install_db(workdir, paths)
        port = ports.free_port()
        paths.socket.unlink(missing_ok=True)
        process.spawn(workdir, NAME, [
            str(find("mariadbd")), "--no-defaults", f"--datadir={paths.data}",
            f"--socket={paths.socket}", f"--port={port}", "--bind-address=127.0.0.1",
            "--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M", f"--pid-file={paths.root / 'mariadbd.pid'}"])
        _wait_ready(workdir, paths)
    password = _password(paths)
    # On stdin: the password must not show in any process list.
    sql(workdir, f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb3;\n"
                 f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
                 f"ALTER USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
                 f"GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{USER}'@'127.0.0.1';\n")
    return url("127.0.0.1", port, password)


def database(workdir: Workdir, name: str, port: int) -> str:
    """Create database ``name`` (once) for the Nova profile's services; its URL.

    The services share the ``ironic`` user and its password (one lab, one owner).
    """
    password = _password(Paths(workdir))
    sql(workdir, f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb3;\n"
                 f"GRANT ALL PRIVILEGES ON {name}.* TO '{USER}'@'127.0.0.1';\n")
    return f"mysql+pymysql://{USER}:{password}@127.0.0.1:{port}/{name}?charset=utf8"


def port_of(connection: str) -> int:
    """The TCP port in a URL made by :func:`url` (the lab picks one at every start)."""
    return int(connection.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def stop(workdir: Workdir) -> bool:
    """SIGTERM (MariaDB shuts down cleanly in about a second), SIGKILL after the grace."""
    return process.stop(workdir, NAME)


def sql(workdir: Workdir, statements: str) -> str:
    """Run ``statements`` as root through the socket; the output (tab-separated, no names)."""
    result = subprocess.run(
        [str(find("mariadb")), "--no-defaults", f"--socket={Paths(workdir).socket}",
         "--user=root", "--batch", "--skip-column-names"],
        input=statements, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise LabError(f"MariaDB refused the lab's SQL: {result.stderr.strip()[-500:]}")
    return result.stdout


def has_schema(workdir: Workdir) -> bool:
    """True once ``ironic-dbsync create_schema`` has run on this data directory."""
    count = sql(workdir, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                         "table_schema = 'ironic' AND table_name = 'nodes';\n")
    return count.strip() == "1"


def _require_pymysql() -> None:
    try:
        import pymysql  # noqa: F401
    except ImportError:
        raise LabError("PyMySQL is missing: pip install PyMySQL (the lab extra)") from None


def _install_db(workdir: Workdir, paths: Paths) -> None:
    shutil.rmtree(paths.data, ignore_errors=True)
    result = subprocess.run(
        [str(find("mariadb-install-db")), "--no-defaults", f"--datadir={paths.data}",
         "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
        capture_output=True, text=True, check=False, timeout=300)
    with open(workdir.log(NAME), "a") as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        shutil.rmtree(paths.data, ignore_errors=True)
        raise LabError(f"mariadb-install-db failed under {paths.data}: "
                       f"{(result.stderr or result.stdout).strip()[-800:]}")


def _wait_ready(workdir: Workdir, paths: Paths) -> None:
    def answers() -> bool:
        if not paths.socket.exists():
            return False
        try:
            sql(workdir, "SELECT 1;\n")
        except LabError:
            return False
        return True

    process.wait_until_ready(workdir, NAME, answers, where=f"on {paths.socket}",
                             timeout=START_TIMEOUT, interval=0.2)


def _password(paths: Paths) -> str:
    """Ironic's password, made once (mode 0600) and kept with the data directory."""
    try:
        return paths.password_file.read_text().strip()
    except FileNotFoundError:
        pass
    password = secrets.token_hex(16)
    fd = os.open(paths.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password
