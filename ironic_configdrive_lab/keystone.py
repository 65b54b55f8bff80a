"""Keystone (PyPI ``keystone``) for the Nova profile: the lab's identity service.

Nova 34 has no ``noauth2`` pipeline any more, so nova-api authenticates tokens through
keystonemiddleware against a real Keystone, as a cloud does. The lab's Keystone: fernet
tokens, its database on the lab's MariaDB, keys under ``DIR/keystone``, bootstrapped once
(``keystone-manage bootstrap``: the ``admin`` user, project and role, region ``RegionOne``
and the identity endpoint), served by gunicorn on loopback. The admin password is random,
kept in ``DIR/keystone/admin.password`` (mode 0600) and in ``DIR/clouds.yaml``; every
service of the lab authenticates as that admin (one lab, one operator).
"""

from __future__ import annotations

import configparser
import os
import secrets
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab import nova_venv, ports, wsgi
from ironic_configdrive_lab.workdir import LabError, Workdir

NAME: Final = "keystone"
APP: Final = "keystone.wsgi.api:application"
REGION: Final = "RegionOne"
ADMIN: Final = "admin"


def root(workdir: Workdir) -> Path:
    return workdir.root / NAME


def conf_path(workdir: Workdir) -> Path:
    return workdir.etc / "keystone.conf"


def admin_password(workdir: Workdir) -> str:
    """Made once (mode 0600) and kept with the database it was bootstrapped into."""
    path = root(workdir) / "admin.password"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def config(workdir: Workdir, *, database: str, debug: bool) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {"debug": str(debug), "log_file": str(workdir.log(NAME)),
                       "use_stderr": "False"}
    conf["database"] = {"connection": database}
    conf["token"] = {"provider": "fernet"}
    conf["fernet_tokens"] = {"key_repository": str(root(workdir) / "fernet-keys")}
    conf["fernet_receipts"] = {"key_repository": str(root(workdir) / "fernet-keys")}
    conf["credential"] = {"key_repository": str(root(workdir) / "credential-keys")}
    return conf


def start(workdir: Workdir, *, database: str, debug: bool) -> str:
    """Sync, set up keys, bootstrap (idempotent), serve; the identity URL (``.../v3``)."""
    conf = config(workdir, database=database, debug=debug)
    nova_venv.write_private(conf, conf_path(workdir))
    port = ports.free_port()
    url = f"http://{ports.LOOPBACK}:{port}/v3"
    log = workdir.log(f"{NAME}-manage")
    manage = ["keystone-manage", "--config-file", str(conf_path(workdir))]
    nova_venv.run(log, [*manage, "db_sync"], what="keystone-manage db_sync")
    for command in ("fernet_setup", "credential_setup"):
        nova_venv.run(log, [*manage, command, "--keystone-user", "root",
                            "--keystone-group", "root"], what=f"keystone-manage {command}")
    # The bootstrap updates the identity endpoint to this start's port on every `up`; the
    # password comes through the environment, never argv.
    nova_venv.run(log, [*manage, "bootstrap", "--bootstrap-admin-url", url,
                        "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
                        "--bootstrap-region-id", REGION],
                  env={"OS_BOOTSTRAP_PASSWORD": admin_password(workdir)},
                  what="keystone-manage bootstrap")
    wsgi.start(workdir, NAME, APP, port=port,
               env={"OS_KEYSTONE_CONFIG_FILES": str(conf_path(workdir))})
    return url


def auth_section(workdir: Workdir, auth_url: str) -> dict[str, str]:
    """keystoneauth ``password`` options as the admin (a service's ``[keystone_authtoken]``,
    ``[placement]``, ``[neutron]``, ``[glance]`` sections)."""
    return {"auth_type": "password", "auth_url": auth_url, "username": ADMIN,
            "password": admin_password(workdir), "project_name": ADMIN,
            "user_domain_name": "Default", "project_domain_name": "Default",
            "region_name": REGION}


def token(workdir: Workdir, auth_url: str) -> str:
    """A project-scoped admin token (for the lab's own checks against placement)."""
    import requests

    body: dict[str, Any] = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": ADMIN, "domain": {"name": "Default"},
            "password": admin_password(workdir)}}},
        "scope": {"project": {"name": ADMIN, "domain": {"name": "Default"}}}}}
    reply = requests.post(f"{auth_url}/auth/tokens", json=body, timeout=30)
    if reply.status_code != 201:
        raise LabError(f"Keystone at {auth_url} refused the lab's admin "
                       f"(HTTP {reply.status_code}); see {workdir.log(NAME)}")
    return str(reply.headers["X-Subject-Token"])
