"""Entry points only the lab's own processes see.

The lab's hardware manager (for the agent) and hardware type (for Ironic) must never load in
a real deployment, so they are not among the package's entry points. Instead the lab writes
a tiny distribution under ``DIR/plugins`` and puts it on those processes' PYTHONPATH.

The same directory carries a ``sitecustomize`` that, in the process started with
:data:`SECURE_DELETE_ENV` set (the lab's Ironic), turns on SQLite's ``secure_delete``: Ironic
saves a deploy's config drive in instance_info before any driver code runs, and without it
the lab's sqlite file would keep the replaced plaintext in freed pages. (A production
database has its own remnants - undo logs, binlogs - outside this project's reach.)
"""

from __future__ import annotations

import os
from pathlib import Path

from ironic_configdrive_lab.workdir import Workdir

ENTRY_POINTS = """\
[ironic_python_agent.hardware_managers]
ironic_configdrive_lab = ironic_configdrive_lab.hardware:LabHardwareManager

[ironic.hardware.types]
lab-hardware = ironic_configdrive_lab.ironic_hw:LabHardware
"""


SECURE_DELETE_ENV = "IRONIC_CONFIGDRIVE_LAB_SQLITE_SECURE_DELETE"

SITECUSTOMIZE = f"""\
import os

if os.environ.get({SECURE_DELETE_ENV!r}):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _secure_delete(dbapi_connection, connection_record):
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.execute("PRAGMA secure_delete = ON")
"""


def write(workdir: Workdir) -> Path:
    root = workdir.root / "plugins"
    dist = root / "ironic_configdrive_lab-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ironic-configdrive-lab\n"
                                   "Version: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (root / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return root


def env(workdir: Workdir, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the lab plugins importable."""
    result = dict(os.environ if base is None else base)
    plugins = str(write(workdir))
    result["PYTHONPATH"] = os.pathsep.join(p for p in (plugins, result.get("PYTHONPATH"))
                                           if p)
    return result
