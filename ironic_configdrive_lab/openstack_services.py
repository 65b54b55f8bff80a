"""placement and Glance for the Nova profile: configuration, schema, gunicorn.

Both authenticate requests through keystonemiddleware against the lab's Keystone (as in a
cloud; Glance's default policies then see the admin's roles). Their databases live on the
lab's MariaDB. Glance keeps images in a file store under ``DIR/glance``.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Final

from ironic_configdrive_lab import keystone, nova_venv, wsgi
from ironic_configdrive_lab.workdir import Workdir

PLACEMENT: Final = "placement"
PLACEMENT_APP: Final = "placement.wsgi.api:application"
GLANCE: Final = "glance"
GLANCE_APP: Final = "glance.wsgi.api:application"
#: The Glance store's name in ``enabled_backends`` (a file store).
GLANCE_BACKEND: Final = "lab"


def authtoken(workdir: Workdir, auth_url: str) -> dict[str, str]:
    """``[keystone_authtoken]`` of an API served by the lab (no memcached: no cache)."""
    return {"www_authenticate_uri": auth_url, **keystone.auth_section(workdir, auth_url)}


def _write(conf: configparser.ConfigParser, path: Path) -> Path:
    return nova_venv.write_private(conf, path)


def placement_config(workdir: Workdir, *, database: str, auth_url: str,
                     debug: bool) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {"debug": str(debug)}
    conf["api"] = {"auth_strategy": "keystone"}
    conf["keystone_authtoken"] = authtoken(workdir, auth_url)
    conf["placement_database"] = {"connection": database}
    return conf


def start_placement(workdir: Workdir, *, database: str, auth_url: str, debug: bool) -> str:
    """Schema (idempotent) and the API; its URL."""
    directory = workdir.etc / PLACEMENT
    path = _write(placement_config(workdir, database=database, auth_url=auth_url,
                                   debug=debug), directory / "placement.conf")
    nova_venv.run(workdir.log("placement-manage"),
                  ["placement-manage", "--config-file", str(path), "db", "sync"],
                  what="placement-manage db sync")
    # placement reads DIR/etc/placement/placement.conf from this variable.
    return wsgi.start(workdir, PLACEMENT, PLACEMENT_APP,
                      env={"OS_PLACEMENT_CONFIG_DIR": str(directory)})


def glance_root(workdir: Workdir) -> Path:
    return workdir.root / GLANCE


def glance_config(workdir: Workdir, *, database: str, auth_url: str,
                  debug: bool) -> configparser.ConfigParser:
    root = glance_root(workdir)
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {"debug": str(debug), "log_file": str(workdir.log(GLANCE)),
                       "use_stderr": "False",
                       "enabled_backends": f"{GLANCE_BACKEND}:file"}
    conf["database"] = {"connection": database}
    conf["glance_store"] = {"default_backend": GLANCE_BACKEND}
    conf[GLANCE_BACKEND] = {"filesystem_store_datadir": str(root / "images")}
    conf["os_glance_staging_store"] = {"filesystem_store_datadir": str(root / "staging")}
    conf["os_glance_tasks_store"] = {"filesystem_store_datadir": str(root / "tasks")}
    conf["paste_deploy"] = {"flavor": "keystone", "config_file": str(
        nova_venv.path() / "etc" / "glance" / "glance-api-paste.ini")}
    conf["keystone_authtoken"] = authtoken(workdir, auth_url)
    conf["oslo_concurrency"] = {"lock_path": str(root / "locks")}
    return conf


def start_glance(workdir: Workdir, *, database: str, auth_url: str, debug: bool) -> str:
    """Schema (idempotent), store directories and the API; its URL."""
    root = glance_root(workdir)
    for name in ("images", "staging", "tasks", "locks"):
        (root / name).mkdir(parents=True, exist_ok=True)
    directory = workdir.etc / GLANCE
    path = _write(glance_config(workdir, database=database, auth_url=auth_url, debug=debug),
                  directory / "glance-api.conf")
    nova_venv.run(workdir.log("glance-manage"),
                  ["glance-manage", "--config-file", str(path), "db_sync"],
                  what="glance-manage db_sync")
    # Glance reads DIR/etc/glance/glance-api.conf from this variable.
    return wsgi.start(workdir, GLANCE, GLANCE_APP,
                      env={"OS_GLANCE_CONFIG_DIR": str(directory)})
