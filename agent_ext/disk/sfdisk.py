"""util-linux ``sfdisk`` (libfdisk): reads partition tables and changes one entry at a time.

Every change is one sfdisk run that edits single entries (``-N n`` with a one-line script,
or ``--delete``); libfdisk writes the GPT (both copies and the protective MBR) or the MBR and
its EBR chain, including logical partitions. It never tells the kernel here: sfdisk (2.38 as
in Debian 12, and util-linux to this day) re-reads the *whole* table with BLKRRPART after a
250 ms pause and a global ``sync()``, which fails while any partition of the disk is in use.
So it runs with ``--no-reread --no-tell-kernel`` and :func:`.devices.sync_partition` tells
the kernel about the one partition that changed (BLKPG). sfdisk must not lock the disk
itself: the caller already holds the whole-disk flock udev honours, which sfdisk's lock
(``--lock``, or ``$LOCK_BLOCK_DEVICE``) would wait for; ``--lock=no`` would say so but
needs util-linux 2.36, so the variable is cleared instead. Moving a misplaced backup GPT
(``--relocate``) needs 2.36 too; the rest works from 2.29 (``--no-tell-kernel``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
from collections.abc import Sequence
from typing import Final

from agent_ext.errors import DeviceError

LOG = logging.getLogger(__name__)

SFDISK: Final = "sfdisk"
#: Bound on one sfdisk run (it normally takes a few ms); never reached unless the disk hangs.
TIMEOUT: Final = 60.0
#: For every change: no wiping of signatures (the drive writer owns the partition's bytes),
#: no kernel update and no in-use check (see the module doc).
_CHANGE_OPTIONS: Final = ("--no-reread", "--no-tell-kernel", "--wipe", "never",
                          "--wipe-partitions", "never", "--quiet")
#: sfdisk's messages are matched in English.
_ENV: Final = {"LC_ALL": "C", "LANG": "C"}
#: Set, it makes sfdisk take the disk's flock, which the caller holds (see the module doc).
_LOCK_VARIABLE: Final = "LOCK_BLOCK_DEVICE"
_NO_TABLE: Final = "does not contain a recognized partition table"
_TRAILING_NUMBER: Final = re.compile(r"(\d+)$")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One partition as ``sfdisk --json`` lists it (sectors of the table's sector size)."""

    number: int
    start: int
    size: int
    type: str                   # upper case; GPT: type GUID; MBR: hex byte, e.g. "83", "F"
    uuid: str = ""              # GPT unique partition GUID
    name: str = ""              # GPT partition name


@dataclasses.dataclass(frozen=True)
class Layout:
    """A partition table as ``sfdisk --json`` reports it."""

    label: str                  # "gpt", "dos", or another libfdisk label ("sun", "sgi", ...)
    #: The unit of every sector number (the disk's logical sector size); ``None`` from
    #: sfdisk before 2.35, whose listings do not state it.
    sector_size: int | None
    entries: tuple[Entry, ...]
    first_lba: int | None = None    # GPT: first and last usable sector
    last_lba: int | None = None
    #: What sfdisk warned about while reading (e.g. a corrupt primary GPT it read around).
    warnings: tuple[str, ...] = ()


def _run(device: str, args: Sequence[str], *, script: str | None = None) -> \
        subprocess.CompletedProcess[str]:
    argv = [SFDISK, *args]
    LOG.debug("Running %s", " ".join(argv))
    try:
        return subprocess.run(argv, input=script, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False, env=_environment())
    except FileNotFoundError:
        raise DeviceError(device=device, reason=(
            "sfdisk (util-linux) is not installed; install it (Debian and Ubuntu: package "
            "fdisk; Red Hat family: util-linux) in the agent ramdisk")) from None
    except subprocess.TimeoutExpired:
        raise DeviceError(device=device, reason=(
            f"sfdisk did not finish within {TIMEOUT:.0f} s; check the disk's health (dmesg) "
            "and its table (sfdisk --verify)")) from None


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != _LOCK_VARIABLE}
    return {**env, **_ENV}


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    """sfdisk's own explanation: its last lines on stderr, without the program name."""
    lines = [line.removeprefix("sfdisk: ").strip() for line in proc.stderr.splitlines()]
    lines = [line for line in lines if line and not line.startswith("warning: ")]
    return "; ".join(lines[-2:]) or f"exit status {proc.returncode}"


def read(device: str) -> Layout | None:
    """The table of ``device`` (a disk or an image file), or ``None`` when it has none."""
    proc = _run(device, ["--json", device])
    if proc.returncode != 0:
        if _NO_TABLE in proc.stderr:
            return None
        raise DeviceError(device=device, reason=(
            f"sfdisk could not read its partition table ({_why(proc)}); check the disk "
            "(dmesg) and its table (sfdisk --verify)"))
    try:
        layout = parse(json.loads(proc.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        raise DeviceError(device=device, reason=(
            f"sfdisk's listing of its table could not be understood ({exc}); is sfdisk "
            "from util-linux 2.27 or later?")) from None
    warnings = tuple(line.strip() for line in proc.stderr.splitlines() if line.strip())
    return dataclasses.replace(layout, warnings=warnings)


def parse(listing: dict[str, object]) -> Layout:
    """A :class:`Layout` from the document ``sfdisk --json`` prints."""
    table = listing["partitiontable"]
    if not isinstance(table, dict):
        raise TypeError("partitiontable is not an object")
    if table.get("unit", "sectors") != "sectors":
        raise ValueError(f"unexpected unit {table.get('unit')!r}")
    entries = []
    for item in table.get("partitions", []):
        match = _TRAILING_NUMBER.search(str(item["node"]))
        if match is None:
            raise ValueError(f"no partition number in {item['node']!r}")
        entries.append(Entry(number=int(match.group(1)), start=int(item["start"]),
                             size=int(item["size"]), type=str(item["type"]).upper(),
                             uuid=str(item.get("uuid", "")).upper(),
                             name=str(item.get("name", ""))))
    first, last = table.get("firstlba"), table.get("lastlba")
    size = table.get("sectorsize")
    return Layout(label=str(table["label"]), sector_size=None if size is None else int(size),
                  entries=tuple(sorted(entries, key=lambda e: e.number)),
                  first_lba=None if first is None else int(first),
                  last_lba=None if last is None else int(last))


def script_line(**fields: int | str) -> str:
    """An sfdisk script line: ``start=2048, size=4096, type=83, name="config-2"``."""
    parts = []
    for key, value in fields.items():
        text = str(value)
        if key == "name":
            if '"' in text or "\n" in text:
                raise ValueError(f"unsupported partition name {text!r}")
            text = f'"{text}"'
        parts.append(f"{key}={text}")
    return ", ".join(parts) + "\n"


def set_partition(device: str, number: int, doing: str, **fields: int | str) -> None:
    """Create partition ``number`` or change the given fields of it (others stay)."""
    proc = _run(device, [*_CHANGE_OPTIONS, "-N", str(number), device],
                script=script_line(**fields))
    _check(device, proc, doing)


def delete(device: str, numbers: Sequence[int], doing: str) -> None:
    """Delete partitions in the order given (highest first: deleting a logical partition
    renumbers those after it)."""
    proc = _run(device, [*_CHANGE_OPTIONS, "--delete", device, *map(str, numbers)])
    _check(device, proc, doing)


def relocate_backup(device: str) -> None:
    """Move a GPT's backup header and entries to the end of the disk (``sgdisk -e``)."""
    proc = _run(device, [*_CHANGE_OPTIONS, "--relocate", "gpt-bak-std", device])
    _check(device, proc, "move the backup GPT to the end of the disk")


def _check(device: str, proc: subprocess.CompletedProcess[str], doing: str) -> None:
    if proc.returncode != 0:
        raise DeviceError(device=device, reason=(
            f"sfdisk could not {doing} ({_why(proc)}); check the table with "
            f"`sfdisk --verify {device}`"))
