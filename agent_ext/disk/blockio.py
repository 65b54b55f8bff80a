"""Low-level block I/O: aligned buffers, O_DIRECT with a buffered fallback, block ioctls.

Reads and writes of tables and superblocks go through here so they bypass the page cache:
a whole disk and each of its partition nodes have separate caches in Linux, so a buffered
read of the disk can return stale bytes that were written through a partition node.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import stat
import struct
import time
from typing import Final

# <linux/fs.h> ioctl numbers (architecture independent for these).
BLKROGET: Final = 0x125E
BLKGETSIZE64: Final = 0x80081272
BLKSSZGET: Final = 0x1268
BLKFLSBUF: Final = 0x1261
BLKPG: Final = 0x1269

BLKPG_ADD_PARTITION: Final = 1
BLKPG_DEL_PARTITION: Final = 2
BLKPG_RESIZE_PARTITION: Final = 3

#: O_DIRECT needs buffer, offset and length aligned to the logical block size; a page (and
#: 1 MiB chunks) satisfies every size the kernel supports (512..4096).
ALIGN: Final = 4096
#: Writes and read-back go in 1 MiB pieces: larger ones were no faster (48 MiB drives,
#: bench_agent_write) and cost ~9 MiB of peak RSS in the ramdisk (two buffers at read-back).
CHUNK: Final = 1024 * 1024
MIB: Final = 1024 * 1024


class BlockIOError(OSError):
    """An OSError with the path attached; callers turn it into a DeviceError."""


def aligned_buffer(size: int) -> mmap.mmap:
    """Anonymous mmap: page aligned, zero filled, outside the Python heap."""
    return mmap.mmap(-1, max(size, ALIGN))


def release(buf: mmap.mmap) -> None:
    """Unmap now if nothing still views the buffer (a traceback may); else let GC do it."""
    try:
        buf.close()
    except BufferError:
        pass


class BlockFile:
    """A block device (or regular file) opened for direct I/O when the kernel allows it."""

    def __init__(self, path: str, *, write: bool = False, exclusive: bool = False) -> None:
        self.path = path
        flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC
        if exclusive:
            # On a block device O_EXCL fails with EBUSY while it is mounted or claimed.
            flags |= os.O_EXCL
        self.direct = True
        try:
            self.fd = os.open(path, flags | os.O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # tmpfs and some stacked devices refuse O_DIRECT: buffered I/O plus fsync.
            self.direct = False
            self.fd = os.open(path, flags)
        st = os.fstat(self.fd)
        self.is_block = stat.S_ISBLK(st.st_mode)
        self.sector_size = ioctl_int(self.fd, BLKSSZGET) if self.is_block else 512
        self.size = ioctl_u64(self.fd, BLKGETSIZE64) if self.is_block else st.st_size
        # O_DIRECT needs logical-block alignment on a device; a page covers any filesystem.
        self.align = self.sector_size if self.is_block else ALIGN

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> BlockFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _span(self, offset: int, length: int) -> tuple[int, int]:
        start = offset - offset % self.align
        end = -(-(offset + length) // self.align) * self.align
        return start, end

    def read(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (short only at the end of the device)."""
        start, end = self._span(offset, length)
        buf = aligned_buffer(end - start)
        try:
            got = self._preadv(buf, end - start, start)
            return bytes(buf[offset - start : min(got, offset - start + length)])
        finally:
            release(buf)

    def _preadv(self, buf: mmap.mmap, length: int, offset: int) -> int:
        view = memoryview(buf)[:length]
        try:
            done = 0
            while done < length:
                n = os.preadv(self.fd, [view[done:]], offset + done)
                if n == 0:
                    break
                done += n
            return done
        finally:
            view.release()

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset``; unaligned edges are read, patched and rewritten."""
        start, end = self._span(offset, len(data))
        buf = aligned_buffer(end - start)
        try:
            if (start, end) != (offset, offset + len(data)):
                self._preadv(buf, end - start, start)
            buf[offset - start : offset - start + len(data)] = data
            with memoryview(buf) as mv, mv[: end - start] as part:
                self.write_aligned(start, part)
        finally:
            release(buf)

    def write_aligned(self, offset: int, view: memoryview | mmap.mmap) -> None:
        """Write a buffer that is already aligned (an mmap or a prefix of one)."""
        mv = memoryview(view)
        try:
            done = 0
            while done < len(mv):
                done += os.pwritev(self.fd, [mv[done:]], offset + done)
        finally:
            mv.release()

    def zero(self, offset: int, length: int) -> None:
        """Write zeros over ``[offset, offset+length)`` in large chunks."""
        if length <= 0:
            return
        head = min(length, -offset % self.align) if offset % self.align else 0
        if head:
            self.write(offset, bytes(head))
        offset, length = offset + head, length - head
        body = length - length % self.align
        if body:
            buf = aligned_buffer(min(body, CHUNK))
            try:
                pos = 0
                while pos < body:
                    n = min(len(buf), body - pos)
                    with memoryview(buf) as mv, mv[:n] as part:
                        self.write_aligned(offset + pos, part)
                    pos += n
            finally:
                release(buf)
        if length - body:
            self.write(offset + body, bytes(length - body))

    def sha256(self, offset: int, length: int) -> str:
        """Hex sha256 of ``[offset, offset+length)`` read through large aligned reads."""
        digest = hashlib.sha256()
        start = offset - offset % self.align
        skip = offset - start
        buf = aligned_buffer(CHUNK)
        try:
            pos, remaining = start, length
            with memoryview(buf) as mv:
                while remaining > 0:
                    want = min(CHUNK, -(-(skip + remaining) // self.align) * self.align)
                    got = self._preadv(buf, want, pos)
                    usable = min(got - skip, remaining)
                    if usable <= 0:
                        raise BlockIOError(errno.EIO, f"short read at byte {pos}", self.path)
                    with mv[skip : skip + usable] as part:
                        digest.update(part)
                    remaining -= usable
                    pos += want
                    skip = 0
        finally:
            release(buf)
        return digest.hexdigest()

    def lock(self, timeout: float = 10.0) -> None:
        """Take the whole-disk flock udev honours, so it does not probe mid-change."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def sync(self) -> None:
        os.fsync(self.fd)

    def drop_cache(self) -> None:
        """Make the next buffered read come from the device, not the page cache."""
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if self.is_block:
            try:
                fcntl.ioctl(self.fd, BLKFLSBUF)
            except OSError:
                pass  # needs CAP_SYS_ADMIN; fadvise above already dropped clean pages


def ioctl_int(fd: int, request: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, request, buf)
    return int(struct.unpack("i", buf)[0])


def ioctl_u64(fd: int, request: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, request, buf)
    return int(struct.unpack("Q", buf)[0])


class _BlkpgPartition(ctypes.Structure):
    _fields_ = [("start", ctypes.c_longlong), ("length", ctypes.c_longlong),
                ("pno", ctypes.c_int), ("devname", ctypes.c_char * 64),
                ("volname", ctypes.c_char * 64)]


class _BlkpgIoctlArg(ctypes.Structure):
    _fields_ = [("op", ctypes.c_int), ("flags", ctypes.c_int), ("datalen", ctypes.c_int),
                ("data", ctypes.c_void_p)]


def blkpg(fd: int, op: int, number: int, start: int = 0, length: int = 0) -> None:
    """Tell the kernel about one partition (bytes), without re-reading the whole table.

    BLKRRPART (what partprobe and sgdisk use) fails while any partition of the disk is in use
    and makes every node vanish and reappear; BLKPG touches only the partition named.
    """
    part = _BlkpgPartition(start=start, length=length, pno=number)
    arg = _BlkpgIoctlArg(op=op, flags=0, datalen=ctypes.sizeof(part),
                         data=ctypes.cast(ctypes.pointer(part), ctypes.c_void_p))
    fcntl.ioctl(fd, BLKPG, arg)
