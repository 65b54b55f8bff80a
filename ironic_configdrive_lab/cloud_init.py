"""What Debian's cloud-init reads from a config drive's files (the system python's package).

cloud-init's own config drive reader (``read_config_drive``) runs in ``/usr/bin/python3``,
where Debian installs it, against the directory the drive was extracted to. What it read
comes back as JSON: the instance uuid, hostname, SSH keys, a digest of the user data (the
user data itself never leaves the child or reaches a log) and the metadata version.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Final

from ironic_configdrive_lab.workdir import LabError

SYSTEM_PYTHON: Final = "/usr/bin/python3"
READER: Final = """
import hashlib, json, sys
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
found = read_config_drive(sys.argv[1])
meta = found["metadata"]
print(json.dumps({
    "uuid": meta.get("uuid"), "hostname": meta.get("hostname"), "name": meta.get("name"),
    "keys": sorted((meta.get("public_keys") or {}).values()),
    "userdata_sha256": hashlib.sha256(found["userdata"] or b"").hexdigest(),
    "version": found["version"], "networkdata": found.get("networkdata") is not None,
}))
"""


def read(directory: Path) -> dict[str, Any]:
    """cloud-init's reading of the drive extracted to ``directory`` (its ``openstack/``)."""
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", READER, str(directory)],
                                capture_output=True, text=True, check=False, timeout=120)
    except OSError as exc:
        raise LabError(f"cannot run {SYSTEM_PYTHON} for cloud-init: {exc.strerror}; install "
                       "cloud-init (bindep.txt)") from None
    if result.returncode != 0:
        raise LabError(f"cloud-init could not read the config drive extracted to "
                       f"{directory}: {result.stderr.strip()[-800:]}")
    found: dict[str, Any] = json.loads(result.stdout)
    return found
