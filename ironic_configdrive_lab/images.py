"""The instance image: a small whole-disk raw image with a GPT, made by the lab itself."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ironic_configdrive_lab.workdir import LabError, Workdir

IMAGE_SIZE = 64 * 1024 * 1024
#: ".raw" names the format for clients that read it from the URL (metalsmith sets
#: ``image_disk_format=raw`` from it). Without a format, Ironic 39's inspection calls this GPT
#: image "gpt" and the agent's qemu-img refuses it ("Unknown driver 'gpt'").
IMAGE_NAME = "instance.raw"
#: Written at the start of the root partition so a deploy is visibly the image's bytes.
ROOT_MARK = b"ironic-configdrive lab instance image\n"
ROOT_START_SECTOR = 2048


@dataclass(frozen=True)
class InstanceImage:
    path: Path
    sha256: str
    size: int

    def url(self, http_url: str) -> str:
        return f"{http_url.rstrip('/')}/images/{self.path.name}"


def make(workdir: Workdir) -> InstanceImage:
    """Build (once) a GPT disk image with one Linux partition carrying a marker."""
    directory = workdir.http_root / "images"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / IMAGE_NAME
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.truncate(IMAGE_SIZE)
        result = subprocess.run(
            ["sgdisk", "--clear", f"--new=1:{ROOT_START_SECTOR}:0", "--typecode=1:8300",
             "--change-name=1:root", str(tmp)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise LabError(f"sgdisk could not partition the instance image: "
                           f"{result.stderr.strip()}; install gdisk")
        with open(tmp, "r+b") as handle:
            handle.seek(ROOT_START_SECTOR * 512)
            handle.write(ROOT_MARK)
        tmp.rename(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return InstanceImage(path=path, sha256=digest.hexdigest(), size=path.stat().st_size)
