"""Where the Nova profile finds Nova, placement, Glance, Keystone and the ``openstack`` CLI.

They live in a virtualenv of their own (``.venv-nova`` at the top of the source tree, made by
``tools/bootstrap.sh``): their pinned dependencies (oslo.*, SQLAlchemy, openstacksdk) must not
fight with Ironic 39's in the project's venv. The lab runs their console scripts by path;
``IRONIC_CONFIGDRIVE_LAB_NOVA_VENV`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab.workdir import LabError

ENV_VAR: Final = "IRONIC_CONFIGDRIVE_LAB_NOVA_VENV"
DEFAULT: Final = Path(__file__).resolve().parents[1] / ".venv-nova"
#: What ``tools/bootstrap.sh`` installs there.
REQUIREMENTS: Final = Path(__file__).resolve().parents[1] / "tools" / "requirements-nova.txt"


def path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT)


def tool(name: str) -> Path:
    """A console script of the Nova venv, or a clear error naming what to install."""
    found = path() / "bin" / name
    if not found.exists():
        raise LabError(f"{found} is missing: the Nova profile needs its own venv; run "
                       f"tools/bootstrap.sh (or python3 -m venv {path()} && {path()}/bin/pip "
                       f"install -r {REQUIREMENTS}), or set {ENV_VAR}")
    return found


def missing() -> list[str]:
    """The console scripts the profile runs that the venv lacks."""
    return [name for name in ("python", "gunicorn", "nova-manage", "nova-compute",
                              "keystone-manage", "glance-manage", "placement-manage",
                              "openstack") if not (path() / "bin" / name).exists()]


def environment(extra: dict[str, str]) -> dict[str, str]:
    """A child's environment: the venv's bin first; no OS_* of the caller (an exported
    ``OS_AUTH_TYPE`` or ``OS_CLOUD`` would override the lab's own settings)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("OS_") and key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{path() / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(extra)
    return env


def write_private(conf: Any, path: Path) -> Path:
    """Write a ``ConfigParser`` to ``path``, mode 0600: the Nova profile's configuration
    files hold the lab admin's and the databases' passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        conf.write(handle)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path


def run(log_path: Path, argv: list[str], *, env: dict[str, str] | None = None,
        what: str, timeout: float = 600) -> str:
    """Run a Nova-venv command to completion (a db sync, a bootstrap); its stdout.

    Its output is appended to ``log_path``; a failure raises with the output's tail (these
    commands print no secrets: passwords go in configuration files or on stdin).
    """
    import subprocess

    argv = [str(tool(argv[0])), *argv[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            env=environment(env or {}), timeout=timeout)
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(argv[:3])} ...\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip())[-1200:]
        raise LabError(f"{what} failed (exit {result.returncode}): {tail}; see {log_path}")
    return result.stdout
