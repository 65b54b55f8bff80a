"""What the instance would see: the config-2 partition read back and handed to glean.

glean (the light cloud-init alternative) reads ``openstack/latest/`` of the mounted drive;
the kernel here cannot mount ISO9660, so the drive's files are extracted with our own reader
into ``DIR/guest/mnt/config``, which is where glean looks under its ``--root``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

from ironic_configdrive.image import read_tree
from ironic_configdrive_lab import disk
from ironic_configdrive_lab.workdir import LabError, Workdir


def extract(workdir: Workdir, device: str, offset: int, size: int) -> Path:
    return extract_image(workdir, disk.read_range(device, offset, size))


def extract_image(workdir: Workdir, image: bytes) -> Path:
    """The drive's files under ``DIR/guest/mnt/config``; the guest root to hand to glean."""
    root = workdir.root / "guest"
    shutil.rmtree(root, ignore_errors=True)
    config = root / "mnt" / "config"
    config.mkdir(parents=True)
    (root / "root").mkdir()  # glean checks /root/.ssh under its --root
    for name, data in read_tree(image).items():
        target = config / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def discard(workdir: Workdir) -> None:
    """Remove what :func:`extract_image` wrote (passwords and keys in clear)."""
    shutil.rmtree(workdir.root / "guest", ignore_errors=True)


def key_digest(key: str) -> str:
    """An SSH public key by type and body only (the comment is free text), hashed.

    The lab's state remembers keys to compare this way, never the keys themselves.
    """
    return hashlib.sha256(" ".join(str(key).split()[:2]).encode()).hexdigest()


def glean_view(root: Path) -> dict[str, Any]:
    """Hostname and SSH keys as glean takes them from the drive under ``root``."""
    try:
        from glean import cmd as glean
    except ImportError:
        raise LabError("glean is not installed (pip install glean); cannot check what a "
                       "guest reads") from None
    path = root / "mnt" / "config" / "openstack" / "latest" / "meta_data.json"
    try:
        meta_data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"the config drive has no readable openstack/latest/meta_data.json "
                       f"({exc})") from None
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            # noop: glean prints the authorized_keys it would write instead of writing them.
            glean.write_ssh_keys(argparse.Namespace(root=str(root), noop=True), meta_data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"glean could not read the SSH keys of the drive extracted to {root}: "
                       f"{type(exc).__name__}: {exc}") from None
    keys = [line for line in out.getvalue().splitlines() if line.startswith("ssh-")]
    return {"hostname": meta_data.get("name"), "keys": keys}
