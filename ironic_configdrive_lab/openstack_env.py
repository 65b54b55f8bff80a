"""The ``openstack`` CLI's view of the Nova profile: ``DIR/clouds.yaml``, the ``export``
lines of ``ironic-configdrive-lab env``, and running the CLI the way a person types it.

The cloud entry authenticates as the lab's Keystone admin (password in the file, mode 0600).
``OS_AUTH_TYPE`` and friends must not be set in the shell: the ``baremetal`` lines of
``status`` export ``OS_AUTH_TYPE=none``, which would override ``clouds.yaml``; the ``env``
output unsets them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab import keystone, nova_venv
from ironic_configdrive_lab.workdir import LabError, Workdir

CLOUD: Final = "ironic-configdrive-lab"
#: Variables of the baremetal lines (and of a person's shell) that override clouds.yaml.
OVERRIDING: Final = ("OS_AUTH_TYPE", "OS_ENDPOINT", "OS_TOKEN", "OS_URL", "OS_AUTH_URL",
                     "OS_BAREMETAL_API_VERSION")
#: The rebuild with new user data needs compute API 2.57 or later.
COMPUTE_API_VERSION: Final = "2.57"
CLI_TIMEOUT: Final = 900.0


def clouds_path(workdir: Workdir) -> Path:
    return workdir.root / "clouds.yaml"


def cloud(workdir: Workdir, auth_url: str) -> dict[str, Any]:
    """The clouds.yaml entry (also openstacksdk's ``connect`` arguments)."""
    auth = keystone.auth_section(workdir, auth_url)
    return {
        "auth": {key: auth[key] for key in ("auth_url", "username", "password",
                                            "project_name", "user_domain_name",
                                            "project_domain_name")},
        "region_name": keystone.REGION,
        "identity_api_version": "3",
        "compute_api_version": COMPUTE_API_VERSION,
    }


def write_clouds(workdir: Workdir, auth_url: str) -> Path:
    """``DIR/clouds.yaml`` (JSON is YAML), mode 0600: it holds the admin password."""
    path = clouds_path(workdir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"clouds": {CLOUD: cloud(workdir, auth_url)}}, handle, indent=2)
    return path


def exports(workdir: Workdir) -> list[str]:
    """What ``env`` prints: paste into a shell, then type ``openstack ...``."""
    if not clouds_path(workdir).exists():
        raise LabError(f"{clouds_path(workdir)} does not exist: bring the lab up with "
                       f"`up --with-nova --workdir {workdir.root}` first")
    return [f"unset {' '.join(OVERRIDING)}",
            f"export OS_CLIENT_CONFIG_FILE={clouds_path(workdir)}",
            f"export OS_CLOUD={CLOUD}",
            f"export PATH={nova_venv.path() / 'bin'}:$PATH"]


def environment(workdir: Workdir) -> dict[str, str]:
    """A child's environment for the ``openstack`` CLI, as :func:`exports` sets it."""
    return nova_venv.environment({"OS_CLIENT_CONFIG_FILE": str(clouds_path(workdir)),
                                  "OS_CLOUD": CLOUD})


def openstack(workdir: Workdir, *args: str, parse: bool = True) -> Any:
    """``openstack ARGS`` (with ``-f json`` when ``parse``); its output, parsed."""
    argv = [str(nova_venv.tool("openstack")), *args, *(["-f", "json"] if parse else [])]
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            env=environment(workdir), timeout=CLI_TIMEOUT)
    if result.returncode != 0:
        raise LabError(f"`openstack {' '.join(args[:3])} ...` failed: "
                       f"{result.stderr.strip()[-1500:]}")
    if not parse or not result.stdout.strip():
        return result.stdout
    return parse_json(result.stdout)


def parse_json(text: str) -> Any:
    """The CLI's JSON output; ``--wait`` prints its progress ("Complete") before it."""
    starts = [index for index in (text.find("{"), text.find("[")) if index >= 0]
    if not starts:
        raise LabError(f"the openstack CLI printed no JSON: {text.strip()[-300:]!r}")
    return json.loads(text[min(starts):])
