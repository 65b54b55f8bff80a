"""Find, reuse, grow, create and remove the config-2 partition of a disk.

A partition is *ours* (found by ``status``, reused by a write, erased by ``remove``) when

* it holds a config drive: its superblock is ISO9660 or FAT labelled config-2 (never udev's
  database or the type: a ramdisk may run without udevd, and drives written by other tools,
  IPA, Nova or by hand, carry no other sign); or
* it carries our mark, whatever it holds (a drive, zeros, or garbage an older version
  wrote): on GPT the name ``config-2`` and a unique GUID of ours (:data:`gpt.OWNER_TAG`),
  on MBR, whose entries have no field for it, a marker in the partition's last sector
  (:data:`mbr.MARKER_MAGIC`), which the drive never uses. Every partition this project
  creates or writes into gets the mark; or
* (left by older versions) it is a GPT partition *named* ``config-2`` whose first MiB is all
  zeros: an emptied config drive.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os

from agent_ext.disk import blockio, devices, gpt, mbr, sfdisk, superblock
from agent_ext.disk import table as tbl
from agent_ext.disk.blockio import BlockFile
from agent_ext.errors import DeviceError, InvalidInputError
from ironic_configdrive.image import formats

LOG = logging.getLogger(__name__)

TARGET_KINDS = ("partition", "device")


@dataclasses.dataclass
class Target:
    """Where an image will be written."""

    device: str                 # the whole disk, e.g. /dev/loop3
    path: str                   # node written to: the partition node or the device itself
    partition_number: int | None
    capacity: int               # bytes available at path
    logical_sector_size: int
    #: "created" | "reused" | "grown" | "whole-device"; "rolled-back" once a failed write
    #: undid the change (the target is then void: call prepare_target again)
    action: str
    start_sector: int | None = None         # first logical sector of the partition
    previous_capacity: int | None = None    # partition bytes before "grown", for the rollback
    #: Bytes after ``capacity`` that belong to the partition and hold our mark (MBR).
    reserved_tail: int = 0


@dataclasses.dataclass
class RemoveResult:
    removed: bool
    path: str | None
    partition_number: int | None
    zeroed_bytes: int
    message: str
    device: str = ""
    #: Every partition number removed (a drive, marked or emptied partitions of ours).
    partitions: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class OurPartition:
    """One partition that is ours (see the module doc), as ``status`` lists it."""

    number: int
    path: str
    size: int                   # bytes of the partition
    marked: bool                # carries our mark (GPT entry, MBR tail sector)
    label: str | None           # config-2 filesystem label, None: no config drive in it
    format: str | None


@dataclasses.dataclass
class StatusResult:
    present: bool
    path: str | None
    partition_number: int | None
    size: int | None            # bytes of the filesystem image (what sha256 covers)
    label: str | None
    format: str | None
    sha256: str | None
    device: str = ""
    partition_size: int | None = None
    #: Every partition that is ours, including those without a usable drive.
    partitions: list[OurPartition] = dataclasses.field(default_factory=list)
    #: Why no drive is reported although partitions are listed ("" when nothing to say).
    note: str = ""


@dataclasses.dataclass(frozen=True)
class _Found:
    part: tbl.Partition
    probe: superblock.Probe | None      # None: ours (marked or emptied) but no drive in it


def read_table(bf: BlockFile, device: str) -> gpt.GptTable | mbr.MbrTable | None:
    """The disk's GPT or MBR as sfdisk reads it, or ``None`` when it has neither."""
    head = bf.read(0, 512)
    if formats.detect_format(head) == formats.VFAT:
        return None        # a FAT "superfloppy": boot sector at 0, no table
    layout = sfdisk.read(device)
    if layout is None:
        return None
    if layout.label == "gpt":
        return gpt.read(bf, device, layout)
    if layout.label != "dos":
        raise DeviceError(device=device, reason=(
            f"has a {layout.label} partition table; config drives go on GPT or MBR disks: "
            "write it to another disk, or to the whole device (target 'device')"))
    if not mbr.plausible(head):
        return None        # boot code or a filesystem that happens to end in 55AA
    if any(e.type == "EE" for e in layout.entries):
        raise _protective_mbr_only(bf, device)
    return mbr.read(bf, device, layout)


def _protective_mbr_only(bf: BlockFile, device: str) -> DeviceError:
    """Why sfdisk found a protective MBR but no GPT behind it."""
    header = gpt.read_header(bf)
    if header is None:
        why = (f"no GPT header at LBA 1 for its {bf.sector_size}-byte sectors (an image "
               "made for another sector size, or a damaged GPT)")
    elif header.alternate_lba >= bf.size // bf.sector_size:
        why = ("a GPT that describes partitions beyond the end of the disk (the disk is "
               "smaller than the image written to it)")
    else:
        why = "a GPT whose header and backup sfdisk cannot read (damaged)"
    return DeviceError(device=device, reason=(
        f"has a protective MBR but {why}; repair it with gdisk"))


def _ours(bf: BlockFile, table: tbl.Table) -> list[_Found]:
    """Every partition that is ours (see the module doc), in table order."""
    found = []
    for part in table.data_partitions():
        length = min(formats.SNIFF_SIZE, part.sectors * table.sector_size)
        probe = superblock.probe(bf.read(part.start * table.sector_size, length))
        if probe is not None or part.marked or _is_emptied_drive(bf, table, part):
            found.append(_Found(part, probe))
    return found


def _is_emptied_drive(bf: BlockFile, table: tbl.Table, part: tbl.Partition) -> bool:
    """A GPT partition named ``config-2`` whose first MiB is zeros: ours, wiped.

    Zeros, not "no known superblock": no list of signatures is complete, and a partition
    someone named config-2 but filled with their own data must never be overwritten.
    """
    if table.scheme != "gpt" or part.name != tbl.PART_NAME:
        return False
    length = min(tbl.MIB, part.sectors * table.sector_size)
    return not any(bf.read(part.start * table.sector_size, length))


def _find_config_drive(device: str, bf: BlockFile, table: tbl.Table) -> _Found | None:
    """The partition a write reuses: the disk's config drive; else a partition of ours
    without one (marked ones first, then the largest), so a failed or refused write never
    leads to a second partition."""
    ours = _ours(bf, table)
    drive = _only_drive(device, [f for f in ours if f.probe is not None])
    if drive is not None:
        return drive
    if not ours:
        return None
    found = max(ours, key=lambda f: (f.part.marked, f.part.sectors, -f.part.number))
    LOG.info("Partition %s of %s is ours (%s) and holds no config drive: reusing it",
             found.part.number, device, "marked" if found.part.marked else "named config-2")
    return found


def _whole_device_drive(bf: BlockFile) -> superblock.Probe | None:
    return superblock.probe(bf.read(0, formats.SNIFF_SIZE))


def _only_drive(device: str, drives: list[_Found]) -> _Found | None:
    if len(drives) > 1:
        numbers = ", ".join(str(d.part.number) for d in drives)
        raise DeviceError(device=device, reason=(
            f"carries several config-2 partitions ({numbers}); cloud-init would pick one at "
            "random: remove them (configdrive.remove, repeatedly) and write again"))
    return drives[0] if drives else None


def _os_error(device: str, exc: OSError, doing: str) -> DeviceError:
    hint = {errno.EBUSY: "it is in use (mounted?); unmount it first",
            errno.EROFS: "it is read-only",
            errno.EACCES: "permission denied; run as root",
            errno.EIO: "I/O error; check the disk's health (dmesg)"}.get(
        exc.errno or 0, "check the disk and retry")
    return DeviceError(device=device, reason=f"{doing} failed ({exc.strerror}): {hint}")


def prepare_target(device: str, *, size: int, target: str = "partition") -> Target:
    """Find or make the place a ``size``-byte image will be written on ``device``.

    ``target="partition"``: reuse the disk's config-2 partition if it holds ``size`` bytes,
    grow it when it is too small and nothing follows it, else create one (whole MiB, at the
    end of the free space). Never a second config-2 partition: an emptied GPT partition
    named config-2 (a failed write whose rollback could not run) is reused too.
    ``target="device"``: the whole device (a USB stick or a virtual disk of its own).
    """
    if target not in TARGET_KINDS:
        raise InvalidInputError(reason=f"target must be one of {TARGET_KINDS}, not {target!r}")
    if size <= 0:
        raise InvalidInputError(reason=f"image size must be positive, not {size}")
    disk = devices.open_disk(device)
    if target == "device":
        return _whole_device_target(disk, size)
    try:
        with BlockFile(disk.path, write=True) as bf:
            bf.lock()
            return _partition_target(disk, bf, size)
    except OSError as exc:
        raise _os_error(disk.path, exc, "preparing the config drive partition") from None


def _whole_device_target(disk: devices.Disk, size: int) -> Target:
    parts = devices.kernel_partitions(disk)
    if parts:
        try:
            with BlockFile(disk.path) as bf:
                ours = _whole_device_drive(bf)
        except OSError as exc:
            raise _os_error(disk.path, exc, "reading the device") from None
        if ours is None:
            raise DeviceError(device=disk.path, reason=(
                f"holds {len(parts)} partition(s); writing the whole device would destroy "
                "them: use target=partition or wipe the device first"))
    if size > disk.size:
        raise DeviceError(device=disk.path, reason=(
            f"is too small ({disk.size} bytes) for a {size}-byte config drive; "
            "use a bigger device"))
    return Target(device=disk.path, path=disk.path, partition_number=None,
                  capacity=disk.size, logical_sector_size=disk.logical_sector_size,
                  action="whole-device")


def _partition_target(disk: devices.Disk, bf: BlockFile, size: int) -> Target:
    table = read_table(bf, disk.path)
    if table is None:
        raise DeviceError(device=disk.path, reason=(
            "has no partition table (neither GPT nor MBR); deploy the instance image first, "
            "or write the config drive to the whole device (target 'device': --target "
            "device on the command line)"))
    reserve = table.reserved_tail
    sectors = tbl.sectors_for(size + reserve, table.sector_size)
    if sectors * table.sector_size + tbl.MIB > disk.size:
        raise DeviceError(device=disk.path, reason=(
            f"is too small ({disk.size // tbl.MIB} MiB) for a {size}-byte config drive "
            "and its partition table"))
    if table.needs_repair():
        LOG.info("Moving the backup GPT of %s to the end of the disk", disk.path)
        table.repair()
    found = _find_config_drive(disk.path, bf, table)
    old_sectors = None
    if found is None:
        part = table.add(table.plan_new(sectors))
        action = "created"
    elif found.part.sectors * table.sector_size - reserve >= size:
        part, action = found.part, "reused"
    else:
        old = found.part
        new_end = old.start + sectors - 1
        if table.grow_limit(old) < new_end:
            raise DeviceError(device=disk.path, reason=(
                f"config-2 partition {old.number} ({tbl.mib(old.sectors, table.sector_size)})"
                f" is smaller than the image ({size} bytes) and cannot grow (another "
                f"partition or the end of the usable space follows it; {table.describe()}); "
                "remove it with configdrive.remove and write again"))
        part, action, old_sectors = table.grow(old, new_end), "grown", old.sectors
    if not part.marked or (action == "grown" and table.reserved_tail):
        # Created, grown (the MBR marker moves to the new end) or a drive another tool
        # wrote: from now on it is ours, whatever happens to the write.
        part = table.mark(part)
    bf.sync()
    ss = table.sector_size
    try:
        kernel = devices.sync_partition(disk, part.number, part.start * ss, part.sectors * ss)
    except DeviceError:
        _undo_table_change(bf, table, part, old_sectors)
        raise
    LOG.info("Config drive partition %s (%s) on %s: %s", part.number, kernel.node, disk.path,
             action)
    return Target(device=disk.path, path=kernel.node, partition_number=part.number,
                  capacity=part.sectors * ss - reserve, logical_sector_size=ss, action=action,
                  start_sector=part.start, reserved_tail=reserve,
                  previous_capacity=None if old_sectors is None else old_sectors * ss)


def _undo_table_change(bf: BlockFile, table: tbl.Table, part: tbl.Partition,
                       old_sectors: int | None) -> None:
    """The kernel refused the partition: take the table change back so no orphan stays."""
    try:
        if old_sectors is None:
            table.remove([part])
            _drop_mark(bf, table, part)
        else:
            shrunk = table.grow(part, part.start + old_sectors - 1)
            if table.reserved_tail:
                table.mark(shrunk)
    except (OSError, DeviceError) as exc:
        LOG.error("Could not undo the table change to partition %s of %s: %s", part.number,
                  table.describe(), exc)


def _drop_mark(bf: BlockFile, table: tbl.Table, part: tbl.Partition) -> None:
    """Zero the MBR marker of a partition just deleted: free space keeps no trace.

    Only after the deletion: a partition whose deletion failed keeps its mark, so it is
    still ours (``status`` lists it, ``remove`` erases it) rather than an orphan.
    """
    if table.reserved_tail:
        bf.zero(part.end * table.sector_size, table.reserved_tail)
        bf.sync()


def remove_config_drive(device: str) -> RemoveResult:
    """Zero every block of the config drive on ``device`` and drop its partition entry.

    Idempotent: with no config drive there it reports ``removed=False`` and changes nothing.
    """
    disk = devices.open_disk(device)
    try:
        with BlockFile(disk.path, write=True) as bf:
            bf.lock()
            return _remove(disk, bf)
    except OSError as exc:
        raise _os_error(disk.path, exc, "removing the config drive") from None


def _remove(disk: devices.Disk, bf: BlockFile) -> RemoveResult:
    whole = _whole_device_drive(bf)
    table = None if whole is not None else read_table(bf, disk.path)
    if whole is not None:
        length = min(disk.size, tbl.round_up(max(whole.size, formats.SNIFF_SIZE), bf.align))
        bf.zero(0, length)
        bf.sync()
        return RemoveResult(removed=True, path=disk.path, partition_number=None,
                            zeroed_bytes=length, device=disk.path,
                            message=f"zeroed the {whole.format} config drive on {disk.path}")
    if table is None:
        return RemoveResult(removed=False, path=None, partition_number=None, zeroed_bytes=0,
                            device=disk.path,
                            message=f"{disk.path} has no partition table and no config drive; "
                                    "nothing to remove")
    ours = _ours(bf, table)
    if not ours:
        return RemoveResult(removed=False, path=None, partition_number=None, zeroed_bytes=0,
                            device=disk.path,
                            message=f"no config-2 partition on {disk.path}; nothing to remove")
    ss = table.sector_size
    kernel = devices.kernel_partitions(disk)
    for found in ours:
        node = kernel.get(found.part.number)
        if node is not None:
            # O_EXCL fails while a partition is mounted: refuse before zeroing anything.
            try:
                os.close(os.open(node.node, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC))
            except OSError as exc:
                raise _os_error(node.node, exc, "claiming the config drive partition") from None
    # Highest number first: deleting a logical MBR partition renumbers those after it.
    doomed = sorted((f.part for f in ours), key=lambda p: -p.number)
    zeroed = 0
    for part in doomed:
        # The MBR marker goes last (below): a failed deletion leaves the partitions ours.
        bf.zero(part.start * ss, part.sectors * ss - table.reserved_tail)
        zeroed += part.sectors * ss
    bf.sync()
    table.remove(doomed)
    for part in doomed:
        _drop_mark(bf, table, part)
    for part in doomed:
        devices.forget_partition(disk, part.number)
        LOG.info("Removed config drive partition %s of %s", part.number, disk.path)
    first = ours[0].part.number
    known = kernel.get(first)
    path = known.node if known else devices.partition_path(disk.path, first)
    numbers = [f.part.number for f in ours]
    listed = ", ".join(map(str, numbers))
    return RemoveResult(removed=True, path=path, partition_number=first, zeroed_bytes=zeroed,
                        device=disk.path, partitions=numbers,
                        message=f"zeroed and deleted config-2 partition"
                                f"{'s' if len(numbers) > 1 else ''} {listed} of {disk.path}")


def rollback(target: Target, written: int) -> str:
    """Undo what :func:`prepare_target` did to the table for a write that then failed.

    ``created``: zero the ``written`` bytes (so no image data lingers in free space), delete
    the entry (the same table code as remove) and tell the kernel, leaving the entries and
    the backup GPT as they were. ``grown``: shrink the partition back to its old size.
    ``reused`` and ``whole-device`` change nothing (the writer already wiped the head).
    Call it after the writer closed the partition. Returns a sentence for error messages;
    raises :class:`DeviceError` when the table could not be restored.
    """
    if target.action not in ("created", "grown") or target.partition_number is None:
        return ""
    disk = devices.open_disk(target.device)
    try:
        with BlockFile(disk.path, write=True) as bf:
            bf.lock()
            return _rollback(disk, bf, target, written)
    except OSError as exc:
        raise _os_error(disk.path, exc, f"restoring the partition table after the failed "
                                        f"write ({target.action} partition "
                                        f"{target.partition_number})") from None


def _rollback(disk: devices.Disk, bf: BlockFile, target: Target, written: int) -> str:
    number, ss = target.partition_number, target.logical_sector_size
    assert number is not None
    table = read_table(bf, disk.path)
    part = next((p for p in table.data_partitions() if p.number == number), None) \
        if table is not None else None
    if table is None or part is None or part.start != target.start_sector or \
            part.sectors * ss != target.capacity + target.reserved_tail or \
            table.sector_size != ss:
        raise DeviceError(device=disk.path, reason=(
            f"partition {number} changed while the config drive was written; it was left "
            "as it is: check the layout"))
    kernel = devices.kernel_partitions(disk).get(part.number)
    if kernel is not None:
        # Someone holds the partition (mounted?): change nothing rather than pull it away.
        try:
            os.close(os.open(kernel.node, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC))
        except OSError as exc:
            raise _os_error(kernel.node, exc, f"claiming partition {number}") from None
    if target.action == "created":
        bf.zero(part.start * ss, min(tbl.round_up(max(written, 1), bf.align), target.capacity))
        bf.sync()
        table.remove([part])
        _drop_mark(bf, table, part)
        target.action = "rolled-back"
        devices.forget_partition(disk, part.number)
        LOG.info("Deleted partition %s of %s again after the failed write", number, disk.path)
        return f"partition {number}, created for this write, was deleted again"
    assert target.previous_capacity is not None
    old_sectors = target.previous_capacity // ss
    shrunk = table.grow(part, part.start + old_sectors - 1)
    if table.reserved_tail:
        shrunk = table.mark(shrunk)     # the marker moves back to the old end
    target.action = "rolled-back"
    devices.sync_partition(disk, number, shrunk.start * ss, shrunk.sectors * ss)
    LOG.info("Shrank partition %s of %s back to %s after the failed write", number,
             disk.path, tbl.mib(old_sectors, ss))
    return (f"partition {number}, grown for this write, was shrunk back to "
            f"{tbl.mib(old_sectors, ss)}")


def config_drive_status(device: str) -> StatusResult:
    """Whether ``device`` carries a config drive, where, and the sha256 of its image."""
    disk = devices.open_disk(device, writable=False)
    try:
        with BlockFile(disk.path) as bf:
            return _status(disk, bf)
    except OSError as exc:
        raise _os_error(disk.path, exc, "reading the config drive") from None


def _status(disk: devices.Disk, bf: BlockFile) -> StatusResult:
    whole = _whole_device_drive(bf)
    if whole is not None:
        size = min(whole.size, disk.size)
        return StatusResult(present=True, path=disk.path, partition_number=None, size=size,
                            label=whole.label, format=whole.format,
                            sha256=bf.sha256(0, size), device=disk.path,
                            partition_size=disk.size)
    table = read_table(bf, disk.path)
    if table is None:
        return StatusResult(present=False, path=None, partition_number=None, size=None,
                            label=None, format=None, sha256=None, device=disk.path)
    ss = table.sector_size
    kernel = devices.kernel_partitions(disk)

    def path_of(number: int) -> str:
        known = kernel.get(number)
        return known.node if known else devices.partition_path(disk.path, number)

    ours = _ours(bf, table)
    listed = [OurPartition(number=f.part.number, path=path_of(f.part.number),
                           size=f.part.sectors * ss, marked=f.part.marked,
                           label=f.probe.label if f.probe else None,
                           format=f.probe.format if f.probe else None) for f in ours]
    drives = [f for f in ours if f.probe is not None]
    if len(drives) != 1:
        note = ""
        if drives:
            numbers = ", ".join(str(d.part.number) for d in drives)
            note = (f"several config-2 partitions ({numbers}); cloud-init would pick one at "
                    "random: remove them and write again")
        elif ours:
            note = ("partitions of ours hold no config drive; the next write reuses one, "
                    "remove erases them")
        return StatusResult(present=False, path=None, partition_number=None, size=None,
                            label=None, format=None, sha256=None, device=disk.path,
                            partitions=listed, note=note)
    part, probe = drives[0].part, drives[0].probe
    assert probe is not None
    size = min(probe.size, part.sectors * ss)
    return StatusResult(
        present=True, path=path_of(part.number), partition_number=part.number, size=size,
        label=probe.label, format=probe.format, sha256=bf.sha256(part.start * ss, size),
        device=disk.path, partition_size=part.sectors * ss, partitions=listed)


__all__ = ["OurPartition", "RemoveResult", "StatusResult", "Target", "blockio",
           "config_drive_status", "prepare_target", "read_table", "remove_config_drive",
           "rollback"]
