"""The agent's disk layer: find or make the config-2 partition and write an image safely.

Public API (what the extension and the CLI use)::

    target = prepare_target("/dev/sda", size=len(image))          # Target
    with DriveWriter(target) as writer:
        for chunk in stream:
            writer.write(chunk)
        result = writer.commit(expected_sha256=sha, expected_size=size)   # WriteResult
    remove_config_drive("/dev/sda")                                # RemoveResult
    config_drive_status("/dev/sda")                                # StatusResult

``commit`` refuses an image cloud-init could not use (:mod:`.drive_check`) before it makes
it valid. A write that fails (any exception inside the ``with``, a bad hash, a short image, a
refused image) leaves no config-2 filesystem, and the writer undoes the table change
``prepare_target`` made for it: a created partition is deleted, a grown one shrunk back
(``partition.rollback``), a reused one zeroed and kept, marked; the error message says what
was done. A retry therefore never adds a second config-2 partition.

Partitions this project creates or writes into are marked (GPT: name and unique GUID; MBR:
the last sector), so ``status``, the next write and ``remove`` find them whatever they hold.

Tables are read and changed by util-linux's sfdisk (GPT and MBR, including logical
partitions), one entry per run; the kernel is told about the one partition that changed
through BLKPG, and nodes are awaited by polling with a bounded timeout (``udevadm settle``
runs only if udevd does).
"""

from agent_ext.disk.devices import logical_sector_size, partition_node_name
from agent_ext.disk.partition import (
    RemoveResult,
    StatusResult,
    Target,
    config_drive_status,
    prepare_target,
    remove_config_drive,
)
from agent_ext.disk.writer import DriveWriter, WriteResult

__all__ = ["DriveWriter", "RemoveResult", "StatusResult", "Target", "WriteResult",
           "config_drive_status", "logical_sector_size", "partition_node_name",
           "prepare_target", "remove_config_drive"]
