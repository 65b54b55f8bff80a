"""Write a decoded image stream to a target so that a half-written drive never looks valid.

Order of work:

1. zero the first MiB of the target (kills any old signature) and fsync;
2. keep the image's first MiB (every ISO9660/FAT superblock lives there) in memory and write
   the rest as it arrives, O_DIRECT from page-aligned buffers when the device allows it;
3. at :meth:`DriveWriter.commit`, once size and sha256 match what the caller expects, check
   that the image is a config drive cloud-init would use (:mod:`.drive_check`, on the head
   in memory plus the body read back from the disk), then write the head, fsync, read the
   whole range back bypassing the page cache and compare hashes.

Any failure zeroes the head again, so cloud-init and blkid find no config-2 filesystem, and
undoes what :func:`prepare_target` did to the table (a partition it created is deleted, one it
grew is shrunk back), so a retry never finds an orphan and never adds a second partition.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import mmap
import os
import stat
from collections.abc import Callable
from types import TracebackType

from agent_ext.disk import drive_check, partition
from agent_ext.disk.blockio import CHUNK, MIB, BlockFile, aligned_buffer, release
from agent_ext.disk.partition import Target
from agent_ext.errors import DeviceError, VerificationError
from ironic_configdrive.image.errors import ConfigDriveError

LOG = logging.getLogger(__name__)

#: Held back until everything else is on disk: all superblocks and labels live in it.
HEAD_SIZE = MIB


@dataclasses.dataclass
class WriteResult:
    path: str
    size: int
    sha256: str
    verified: bool          # the bytes read back from the device hash to ``sha256``


class _Received:
    """The received image as a :class:`.drive_check.Source`: its first MiB from the head
    buffer (not on the disk yet), the rest read back from the target, on demand."""

    def __init__(self, head: mmap.mmap, bf: BlockFile, size: int) -> None:
        self._head, self._bf, self.size = head, bf, size

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        data = bytes(self._head[offset : min(end, HEAD_SIZE)]) if offset < HEAD_SIZE else b""
        if end > HEAD_SIZE:
            start = max(offset, HEAD_SIZE)
            data += self._bf.read(start, end - start)
        return data


class DriveWriter:
    """Context manager writing one image to ``target.path``; memory stays ~5 MiB.

    ``check(source, device)`` runs on the received image (a :class:`.drive_check.Source`:
    the head from memory, the rest read back from the target) before it is made valid, and
    raises to refuse it (default: :func:`.drive_check.check_image`; ``None`` only for
    raw-byte tests of the disk layer itself).
    """

    def __init__(self, target: Target,
                 check: Callable[[drive_check.Source, str], None] | None =
                 drive_check.check_image) -> None:
        self.target = target
        self._check = check
        self._bf: BlockFile | None = None
        self._head = aligned_buffer(HEAD_SIZE)
        self._buf = aligned_buffer(CHUNK)
        self._fill = 0              # bytes waiting in _buf
        self._flushed = 0           # body bytes already on disk (after the head)
        self._size = 0
        self._sha = hashlib.sha256()
        self._state = "new"         # new → open → committed | aborted
        #: What the abort did to the partition table, for error messages ("" if nothing).
        self.cleanup_note = ""

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> DriveWriter:
        self._open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._state == "committed":
            return
        fresh = self._state != "aborted"
        self.abort()
        if fresh and exc is not None and self.cleanup_note:
            # Raised by the caller (download, hash, interrupt): tell what the table became.
            if isinstance(exc, ConfigDriveError):
                self._noted(exc)
            elif hasattr(exc, "add_note"):     # Python >= 3.11; the log has it anyway
                exc.add_note(f"config drive on {self.target.device}: {self.cleanup_note}")

    def _noted(self, exc: ConfigDriveError) -> ConfigDriveError:
        if self.cleanup_note:
            exc.message = f"{exc.message}; {self.cleanup_note}"
            exc.args = (exc.message,)
        return exc

    def _error(self, exc: OSError, doing: str) -> ConfigDriveError:
        return self._noted(DeviceError(device=self.target.path, reason=(
            f"{doing} failed ({exc.strerror}); the config drive was wiped again, so nothing "
            "half-written looks valid: check the disk (dmesg) and retry")))

    def _open(self) -> None:
        if self._state != "new":
            return
        path = self.target.path
        if self.target.action == "rolled-back":
            self._state = "aborted"
            self._release()
            raise DeviceError(device=path, reason=(
                "its partition was taken back after an earlier failed write; call "
                "prepare_target again for a new target"))
        try:
            st = os.stat(path)
            # O_EXCL on a block device refuses it while mounted or claimed by someone else.
            self._bf = BlockFile(path, write=True, exclusive=stat.S_ISBLK(st.st_mode))
        except OSError as exc:
            self.abort()
            raise self._noted(DeviceError(device=path, reason=(
                f"cannot open it for writing ({exc.strerror}); is it mounted or in use?"
            ))) from None
        self._state = "open"
        capacity = min(self.target.capacity, self._bf.size) if self._bf.is_block \
            else self.target.capacity
        self._capacity = capacity
        try:
            self._bf.zero(0, min(HEAD_SIZE, capacity))
            self._bf.sync()
        except OSError as exc:
            self.abort()
            raise self._error(exc, "wiping the start of the target") from None
        LOG.debug("Writing config drive to %s (%d bytes available, O_DIRECT=%s)",
                  path, capacity, self._bf.direct)

    # --- streaming ---------------------------------------------------------------------
    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append decoded image bytes; any chunk size, copied into bounded buffers."""
        self._open()
        if self._state != "open":
            raise DeviceError(device=self.target.path,
                              reason=f"write after the writer was {self._state}")
        data = memoryview(chunk).cast("B")
        if self._size + len(data) > self._capacity:
            self.abort()
            raise self._noted(DeviceError(device=self.target.path, reason=(
                f"the image is larger than the {self._capacity} bytes available; "
                "ask for a bigger partition (size the image correctly) or a bigger device")))
        self._sha.update(data)
        pos = 0
        while pos < len(data):
            if self._size < HEAD_SIZE:
                n = min(len(data) - pos, HEAD_SIZE - self._size)
                self._head[self._size : self._size + n] = data[pos : pos + n]
            else:
                n = min(len(data) - pos, CHUNK - self._fill)
                self._buf[self._fill : self._fill + n] = data[pos : pos + n]
                self._fill += n
                if self._fill == CHUNK:
                    self._flush()
            pos += n
            self._size += n

    def _flush(self) -> None:
        assert self._bf is not None
        if not self._fill:
            return
        length = self._fill
        if self._bf.direct and length % self._bf.align:
            # The image's last partial block: pad with zeros to what O_DIRECT needs.
            padded = -(-length // self._bf.align) * self._bf.align
            self._buf[length:padded] = bytes(padded - length)
            length = padded
        try:
            with memoryview(self._buf) as mv, mv[:length] as part:
                self._bf.write_aligned(HEAD_SIZE + self._flushed, part)
        except OSError as exc:
            offset = HEAD_SIZE + self._flushed
            self.abort()
            raise self._error(exc, f"writing at byte {offset}") from None
        self._flushed += self._fill
        self._fill = 0

    # --- finishing ---------------------------------------------------------------------
    def commit(self, expected_sha256: str | None = None,
               expected_size: int | None = None) -> WriteResult:
        """Check what was received, make the drive valid, read it back and verify."""
        self._open()
        if self._state != "open":
            raise DeviceError(device=self.target.path,
                              reason=f"commit after the writer was {self._state}")
        assert self._bf is not None
        self._flush()
        digest = self._sha.hexdigest()
        if self._size == 0:
            self.abort()
            raise self._noted(VerificationError(device=self.target.path, reason=(
                "the image is empty; nothing was written: check the source")))
        if expected_size is not None and expected_size != self._size:
            self.abort()
            raise self._noted(VerificationError(device=self.target.path, reason=(
                f"received {self._size} bytes, expected {expected_size}; the drive was left "
                "without a config-2 signature: check the source and retry")))
        if expected_sha256 is not None and \
                not hmac.compare_digest(expected_sha256.lower(), digest):
            self.abort()
            raise self._noted(VerificationError(device=self.target.path, reason=(
                f"sha256 of the received image is {digest}, expected {expected_sha256}; the "
                "drive was left without a config-2 signature: rebuild or re-send the image")))
        if self._check is not None:
            self._check_content()
        head = min(self._size, HEAD_SIZE)
        if self._bf.direct:
            head = min(-(-head // self._bf.align) * self._bf.align, HEAD_SIZE)
        try:
            with memoryview(self._head) as mv, mv[:head] as part:
                self._bf.write_aligned(0, part)
            self._bf.sync()
            if not self._bf.direct:
                self._bf.drop_cache()
            on_disk = self._bf.sha256(0, self._size)
        except OSError as exc:
            self.abort()
            raise self._error(exc, "writing the image head and reading it back") from None
        if on_disk != digest:
            self.abort()
            raise self._noted(VerificationError(device=self.target.path, reason=(
                f"read-back sha256 {on_disk} differs from the written image's {digest}; the "
                "disk returned different data (failing disk or controller?): the drive was "
                "wiped; check dmesg and retry or use another disk")))
        self._state = "committed"
        self._release()
        if self.target.action in ("created", "grown"):
            # The partition now holds this drive: a later writer given the same target
            # must not take it away again when it fails.
            self.target.action = "reused"
            self.target.previous_capacity = None
        LOG.info("Config drive written to %s: %d bytes, sha256 %s, read back and verified",
                 self.target.path, self._size, digest)
        return WriteResult(path=self.target.path, size=self._size, sha256=digest,
                           verified=True)

    def _check_content(self) -> None:
        """Run the content check on the exact bytes about to be made valid; abort if refused."""
        assert self._bf is not None and self._check is not None
        try:
            self._check(_Received(self._head, self._bf, self._size), self.target.device)
        except OSError as exc:
            self.abort()
            raise self._error(exc, "reading the image back for its content check") from None
        except ConfigDriveError as exc:
            self.abort()
            raise self._noted(exc) from None

    def abort(self) -> None:
        """Wipe what this write put on the target (no valid config-2 left behind, no part of
        the refused image either), release everything, and undo the table change
        :func:`prepare_target` made for this write (see :attr:`cleanup_note`).

        A reused partition is zeroed whole: its earlier drive is already gone (the head was
        wiped when the write began), and what it held must not linger; its entry and mark
        stay, so ``status`` reports it, the next write reuses it and ``remove`` erases it.
        """
        if self._state in ("committed", "aborted"):
            self._release()
            return
        self._state = "aborted"
        if self._bf is not None:
            written = min(HEAD_SIZE + self._flushed, self._capacity)
            if self.target.action == "reused":
                written = self._capacity
            try:
                self._bf.zero(0, max(written, min(HEAD_SIZE, self._capacity)))
                self._bf.sync()
            except OSError as exc:
                LOG.error("Could not wipe the head of %s after a failed write (%s): it may "
                          "hold a partial config drive; wipe it by hand (configdrive.remove)",
                          self.target.path, exc.strerror)
        self._release()     # the partition must be closed before the kernel drops it
        self.cleanup_note = self._undo_prepare()

    def _undo_prepare(self) -> str:
        target = self.target
        if target.action not in ("created", "grown"):
            return ""
        try:
            return partition.rollback(target, min(max(HEAD_SIZE, self._size),
                                                  target.capacity))
        except ConfigDriveError as exc:
            LOG.error("Could not undo the partition change on %s after a failed write: %s",
                      target.device, exc.message)
            number = target.partition_number
            if target.action == "rolled-back":
                return (f"the table change to partition {number} was undone but the kernel "
                        f"did not follow ({exc.message})")
            if target.action == "created":
                return (f"partition {number}, created for this write, could not be deleted "
                        f"again ({exc.message}); it holds no config drive (a GPT retry "
                        f"reuses it by its config-2 name), but on an MBR disk delete it "
                        f"(parted {target.device} rm {number}) before retrying")
            return (f"partition {number} stays grown to {target.capacity} bytes, wiped: "
                    f"shrinking it back failed ({exc.message})")

    def _release(self) -> None:
        if self._bf is not None:
            self._bf.close()
            self._bf = None
        for buf in (self._head, self._buf):
            if not buf.closed:
                release(buf)

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._size

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes received so far (callers need not hash a second time)."""
        return self._sha.hexdigest()
