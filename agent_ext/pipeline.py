"""Fetch → decode → hash → write: the one write path shared by the agent and the CLI.

Bytes flow through in pieces of at most 1 MiB: the download (or inline text, or a file) is
decoded on the fly by the image core's :class:`StreamDecoder` (64 MiB cap enforced while
inflating; a download's base64 is undone in the thread that reads it, :mod:`.overlap`) and
handed to the disk layer's :class:`DriveWriter`, which hashes what it gets,
writes the label-carrying blocks last and verifies by read-back. Nothing is made valid before
the expected size and sha256 (those of the *decoded* image) match and the image passed
``validate``'s label and content rules on what Linux reads of it
(:mod:`agent_ext.disk.drive_check`): an intact download of something cloud-init cannot use
is refused, not written. Nothing is
prepared on the disk before the first decoded bytes prove the data is a config drive (a 404,
an expired temp URL or garbage fail without touching it).

The one exception to streaming: a filesystem the disk cannot serve as-is (ISO9660 or a
512-byte-sector FAT on a 4Kn disk, or a format preference that differs from the image) has
to be rebuilt, which needs the whole image (at most 64 MiB) in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agent_ext.errors import DeviceError, InvalidInputError, VerificationError
from agent_ext.fetch import CHUNK_SIZE, FetchOptions
from agent_ext.overlap import BackgroundWriter, Prefetch
from agent_ext.sources import Source, open_source
from ironic_configdrive.image import StreamDecoder, formats, rebuild_image

LOG = logging.getLogger(__name__)

#: ``progress(done_bytes, total_bytes_or_None)``, called after each piece is written.
ProgressCallback = Callable[[int, "int | None"], None]

TARGETS = ("partition", "device")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
#: ISO9660's logical block; a disk with larger sectors cannot serve it.
_ISO_BLOCK = 2048


def as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass / namedtuple result of the disk layer as a JSON-serialisable dict."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "_asdict"):
        return dict(obj._asdict())
    if isinstance(obj, dict):
        return dict(obj)
    return dict(vars(obj))


# -- argument checking ------------------------------------------------------------------------

def check_device(device: Any) -> str:
    if not isinstance(device, str) or not device.strip():
        raise InvalidInputError(
            reason="no target device given: the agent never guesses a disk; pass the "
                   "device the conductor chose (e.g. device=/dev/sda)")
    return device.strip()


def _check_sha256(sha256: Any) -> str | None:
    if sha256 in (None, ""):
        return None
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InvalidInputError(reason="sha256 must be 64 hexadecimal digits")
    return sha256.lower()


def _check_size(size: Any) -> int | None:
    if size in (None, ""):
        return None
    try:
        value = int(size)
    except (TypeError, ValueError):
        raise InvalidInputError(reason=f"size must be a number of bytes, not {size!r}") from None
    if value <= 0 or value > formats.MAX_IMAGE_SIZE:
        raise InvalidInputError(
            reason=f"size {value} is outside 1..{formats.MAX_IMAGE_SIZE} bytes (64 MiB cap)")
    return value


def _check_format(image_format: Any) -> str | None:
    if image_format in (None, "", "auto"):
        return None
    if image_format not in formats.FORMATS:
        raise InvalidInputError(
            reason=f"format must be one of {', '.join(formats.FORMATS)} or unset, "
                   f"not {image_format!r}")
    return str(image_format)


def _unwrapped(chunks: Iterator[bytes], decoder: StreamDecoder,
               source: Iterator[bytes]) -> Iterator[bytes]:
    """The decoder's first stage (input caps, sniffing, base64) over ``chunks``, which
    read ``source`` (the download, maybe through the opener of a sealed drive)."""
    try:
        for chunk in chunks:
            yield decoder.unwrap(chunk)
        yield decoder.unwrap_finish()
    finally:
        # Stop the download (its connection, its deadline's timer) now, also when a later
        # stage failed, rather than whenever the collector finds it.
        for iterator in (chunks, source):
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def _expanded(data: Iterable[bytes], decoder: StreamDecoder) -> Iterator[bytes]:
    """The decoder's second stage (gzip, output cap, image signature) over stage one's
    output."""
    for binary in data:
        yield from decoder.expand(binary)
    yield from decoder.expand_finish()


# -- planning ---------------------------------------------------------------------------------

def _fat_sector_size(head: bytes) -> int:
    return int(struct.unpack_from("<H", head, 11)[0])


def _plan(found: str, head: bytes, sector_size: int, wanted: str | None,
          device: str) -> tuple[str, str | None]:
    """Return (format to write, reason to rebuild or None to write as received)."""
    if wanted == formats.ISO9660 and sector_size > _ISO_BLOCK:
        raise DeviceError(
            device=device,
            reason=f"has {sector_size}-byte logical sectors and ISO9660 (2048-byte blocks) "
                   "cannot be read there; leave the format unset or ask for vfat")
    if found == formats.ISO9660:
        if sector_size > _ISO_BLOCK:
            return formats.VFAT, (f"ISO9660 cannot be read on {sector_size}-byte sectors; "
                                  f"rebuilt as vfat with {sector_size}-byte sectors")
        if wanted == formats.VFAT:
            return formats.VFAT, "vfat requested; rebuilt from the ISO9660 image"
        return formats.ISO9660, None
    # vfat
    if wanted == formats.ISO9660:
        return formats.ISO9660, "iso9660 requested; rebuilt from the vfat image"
    if _fat_sector_size(head) < sector_size:
        return formats.VFAT, (f"the vfat image has {_fat_sector_size(head)}-byte sectors, "
                              f"the disk {sector_size}; rebuilt with {sector_size}-byte "
                              "sectors")
    return formats.VFAT, None


def _verify_size(device: str, data_size: int, size: int | None) -> None:
    if size is not None and data_size != size:
        raise VerificationError(
            device=device,
            reason=f"the decoded image is {data_size} bytes, expected {size}; the stored "
                   "image does not match what the conductor recorded, rebuild the node")


def _verify(device: str, data_size: int, digest: str, size: int | None,
            sha256: str | None) -> None:
    _verify_size(device, data_size, size)
    if sha256 is not None and digest != sha256:
        raise VerificationError(
            device=device,
            reason=f"sha256 of the decoded image is {digest}, expected {sha256}; the "
                   "stored image is corrupt or was replaced, rebuild the node")


# -- the write path ---------------------------------------------------------------------------

def write_config_drive(device: str, *, url: str | None = None, data: str | bytes | None = None,
                       file: str | None = None, sha256: str | None = None,
                       size: int | None = None, target: str = "partition",
                       image_format: str | None = None,
                       progress: ProgressCallback | None = None,
                       fetch_options: FetchOptions | None = None,
                       key: bytes | None = None) -> dict[str, Any]:
    """Write a config drive from ``url``, inline ``data`` or a local ``file`` to ``device``.

    :param sha256: expected sha256 of the decoded image (what the conductor built).
    :param size: expected size in bytes of the decoded image.
    :param target: ``"partition"`` (a config-2 partition on ``device``) or ``"device"``
        (the whole device, e.g. a USB or virtual disk).
    :param image_format: ``"iso9660"`` / ``"vfat"`` to insist on a format (the image is
        rebuilt when needed), ``None`` to keep it unless the disk cannot serve it.
    :param key: the source is sealed (encrypted at rest); it is opened with this key on the
        fly, chunk by chunk, before decoding, and anything else is refused.
    :returns: a JSON-serialisable summary (device, partition path, sizes, hashes, ...).
    :raises ConfigDriveError: a subclass saying what failed and what to do; the device then
        holds no valid config-2 filesystem from this call.
    """
    from agent_ext import disk

    device = check_device(device)
    expected_sha = _check_sha256(sha256)
    expected_size = _check_size(size)
    wanted = _check_format(image_format)
    if target not in TARGETS:
        raise InvalidInputError(reason=f"target must be one of {', '.join(TARGETS)}, "
                                       f"not {target!r}")
    source = open_source(url, data, file, fetch_options)
    sector_size = int(disk.logical_sector_size(device))
    LOG.info("Writing config drive from %s to %s (%s, %d-byte sectors)",
             source.description, device, target, sector_size)

    decoder = StreamDecoder(cap=formats.MAX_IMAGE_SIZE)
    raw = iter(source.chunks)
    chunks = raw
    if key is not None:
        # Imported here: cryptography costs every unencrypted write ~7 MiB of RSS.
        from ironic_configdrive.image import sealing

        chunks = sealing.iter_open(raw, key)
    binary = _unwrapped(chunks, decoder, raw)
    # A download is read, opened and base64-decoded in a thread of its own while this one
    # inflates (zlib releases the GIL) and the writer's thread hashes and writes.
    prefetch = Prefetch(binary) if source.http is not None else None
    try:
        summary = _write(disk, device, target, source,
                         prefetch if prefetch is not None else binary, decoder, sector_size,
                         expected_size, expected_sha, wanted, progress)
        summary["encrypted"] = key is not None
        return summary
    finally:
        if prefetch is not None:
            prefetch.close()


def _write(disk: Any, device: str, target: str, source: Source, binary: Iterable[bytes],
           decoder: StreamDecoder, sector_size: int, expected_size: int | None,
           expected_sha: str | None, wanted: str | None,
           progress: ProgressCallback | None) -> dict[str, Any]:
    pieces = _expanded(binary, decoder)
    # The decoder holds output back until the filesystem signature is known, so the first
    # piece tells the format before anything touches the disk (and a 404 or a corrupt
    # image fails before a partition is created).
    first = next(pieces, b"")
    found = decoder.image_format or formats.detect_format(first[: formats.SNIFF_SIZE])
    if not first or found is None:  # the decoder guarantees both; stay clear if that changes
        raise InvalidInputError(reason="the decoded data is not an ISO9660 or FAT image")
    out_format, rebuild_reason = _plan(found, first, sector_size, wanted, device)

    summary: dict[str, Any] = {
        "device": device,
        "target": target,
        "source": source.description,
        "encoding": decoder.encoding,
        "source_format": found,
        "format": out_format,
        "logical_sector_size": sector_size,
        "rebuilt": rebuild_reason is not None,
        "rebuild_reason": rebuild_reason,
    }
    if rebuild_reason is None:
        written = _stream_write(disk, device, target, first, pieces, expected_size,
                                expected_sha, progress, summary)
    else:
        LOG.info("Config drive for %s: %s", device, rebuild_reason)
        written = _rebuild_write(disk, device, target, first, pieces, out_format, sector_size,
                                 expected_size, expected_sha, progress, summary)
    summary.update(written)
    if source.http is not None:
        summary["resumes"] = source.http.resumes
    LOG.info("Config drive written to %s (%d bytes, sha256 %s)", summary.get("path"),
             summary.get("size", 0), summary.get("sha256"))
    return summary


def _stream_write(disk: Any, device: str, target: str, first: bytes, pieces: Iterator[bytes],
                  expected_size: int | None, expected_sha: str | None,
                  progress: ProgressCallback | None, summary: dict[str, Any]) -> dict[str, Any]:
    prepared = disk.prepare_target(device, size=expected_size or formats.MAX_IMAGE_SIZE,
                                   target=target)
    summary.update(_target_summary(prepared))
    done = 0
    # DriveWriter aborts on any exception leaving the block (download failure, bad hash,
    # cap exceeded, interrupt): the target then holds no valid config-2 filesystem. It also
    # hashes what it receives, so the sha256 is computed once, in the writing thread.
    with disk.DriveWriter(prepared) as writer:
        background = BackgroundWriter(writer)
        try:
            piece: bytes | None = first
            while piece is not None:
                done += len(piece)
                if expected_size is not None and done > expected_size:
                    raise VerificationError(
                        device=device,
                        reason=f"the decoded image is larger than the expected "
                               f"{expected_size} bytes; the stored image does not match "
                               "what the conductor recorded, rebuild the node")
                background.write(piece)
                if progress is not None:
                    progress(done, expected_size)
                piece = next(pieces, None)
        except BaseException:
            background.stop()  # no thread may write while the writer aborts
            raise
        background.finish()
        _verify_size(device, done, expected_size)
        result = writer.commit(expected_sha256=expected_sha, expected_size=done)
    out = as_dict(result)
    out["source_size"] = done
    out["source_sha256"] = out.get("sha256")
    return out


def _rebuild_write(disk: Any, device: str, target: str, first: bytes, pieces: Iterator[bytes],
                   out_format: str, sector_size: int, expected_size: int | None,
                   expected_sha: str | None, progress: ProgressCallback | None,
                   summary: dict[str, Any]) -> dict[str, Any]:
    collected = bytearray(first)
    for piece in pieces:  # the decoder's cap bounds this at 64 MiB
        collected += piece
        if progress is not None:
            progress(len(collected), expected_size)
    image = bytes(collected)
    del collected
    source_size = len(image)
    digest = hashlib.sha256(image).hexdigest()
    _verify(device, source_size, digest, expected_size, expected_sha)
    # A rebuild would paper over a wrong label: refuse what cloud-init could not use first.
    from agent_ext.disk import drive_check

    drive_check.check_image(image, device)
    rebuilt = rebuild_image(image, fmt=out_format,
                            sector_size=sector_size if out_format == formats.VFAT else 512)
    del image
    rebuilt_sha = hashlib.sha256(rebuilt).hexdigest()
    prepared = disk.prepare_target(device, size=len(rebuilt), target=target)
    summary.update(_target_summary(prepared))
    with disk.DriveWriter(prepared) as writer:
        view = memoryview(rebuilt)
        for start in range(0, len(view), CHUNK_SIZE):
            writer.write(bytes(view[start : start + CHUNK_SIZE]))
        result = writer.commit(expected_sha256=rebuilt_sha, expected_size=len(rebuilt))
    out = as_dict(result)
    out["source_size"] = source_size
    out["source_sha256"] = digest
    return out


def _target_summary(prepared: Any) -> dict[str, Any]:
    info = as_dict(prepared)
    return {"path": info.get("path"), "partition_number": info.get("partition_number"),
            "capacity": info.get("capacity"), "action": info.get("action")}


def remove(device: str) -> dict[str, Any]:
    """Remove the config-2 partition of ``device`` (zeroed first); idempotent."""
    from agent_ext import disk

    device = check_device(device)
    return {"device": device, **as_dict(disk.remove_config_drive(device))}


def status(device: str) -> dict[str, Any]:
    """What config drive ``device`` holds: present, partition, size, label, format, sha256."""
    from agent_ext import disk

    device = check_device(device)
    return {"device": device, **as_dict(disk.config_drive_status(device))}
