"""Reading a node's disk from a raw image file the tempest host can open (the lab's disk.img).

Partitions come from ``sfdisk --json`` (util-linux reads GPT and MBR from plain files); the
config drive is the partition whose filesystem is labelled config-2, as cloud-init finds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from collections.abc import Iterator

from ironic_configdrive.image import formats

_SNIFF = 64 * 1024
_CHUNK = 1024 * 1024


class DiskCheckError(Exception):
    """The disk image could not be read or does not look as expected."""


@dataclasses.dataclass(frozen=True)
class Partition:
    node: str
    offset: int
    size: int


def partitions(disk_image: str) -> list[Partition]:
    try:
        out = subprocess.run(["sfdisk", "--json", disk_image], check=True,
                             capture_output=True, text=True, timeout=60).stdout
    except FileNotFoundError as exc:
        raise DiskCheckError("sfdisk (util-linux) is needed to read the partition table of "
                             f"{disk_image}") from exc
    except subprocess.CalledProcessError as exc:
        raise DiskCheckError(f"sfdisk could not read a partition table from {disk_image}: "
                             f"{exc.stderr.strip()}") from exc
    table = json.loads(out)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    return [Partition(str(p["node"]), int(p["start"]) * sector, int(p["size"]) * sector)
            for p in table.get("partitions", [])]


def read_at(disk_image: str, offset: int, length: int) -> bytes:
    with open(disk_image, "rb") as disk:
        disk.seek(offset)
        data = disk.read(length)
    if len(data) != length:
        raise DiskCheckError(f"{disk_image} ends before byte {offset + length}")
    return data


def find_config_drive(disk_image: str) -> Partition:
    """The one partition labelled config-2; an error if there is none or more than one."""
    found = [part for part in partitions(disk_image)
             if formats.is_config_drive_label(
                 formats.read_label(read_at(disk_image, part.offset, min(part.size, _SNIFF))))]
    if len(found) != 1:
        raise DiskCheckError(f"{disk_image} has {len(found)} partitions labelled config-2, "
                             "expected exactly one")
    return found[0]


def _read_range(disk_image: str, offset: int, length: int) -> Iterator[bytes]:
    """The bytes ``offset .. offset+length`` of the image, in chunks."""
    with open(disk_image, "rb") as disk:
        disk.seek(offset)
        left = length
        while left:
            chunk = disk.read(min(_CHUNK, left))
            if not chunk:
                raise DiskCheckError(f"{disk_image} ends before byte {offset + length}")
            yield chunk
            left -= len(chunk)


def sha256_at(disk_image: str, offset: int, length: int) -> str:
    digest = hashlib.sha256()
    for chunk in _read_range(disk_image, offset, length):
        digest.update(chunk)
    return digest.hexdigest()


def is_zero(disk_image: str, offset: int, length: int) -> bool:
    return all(chunk.count(0) == len(chunk)
               for chunk in _read_range(disk_image, offset, length))
