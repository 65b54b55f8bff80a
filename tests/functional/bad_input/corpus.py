"""The bad inputs shared by the API, CLI and agent corpus tests, built once per process.

Every blob carries ``SECRET`` in its user_data where it holds a real drive at all, so tests
can check that no error text ever quotes the content.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import os
import subprocess
from typing import Any

from ironic_configdrive import image
from ironic_configdrive.image import formats

SECRET = "SECRET-corpus-userdata-5e1f9a"
NODE_UUID = "6c0a53d2-95cb-4d63-a1f4-1b7c0f6f0b55"
DRIVE = {"meta_data": {"name": "corpus"}, "user_data": f"#cloud-config\npassword: {SECRET}\n"}
MIB = 1024 * 1024
#: The README's promise: a gzip bomb stops at this cap.
CAP_MIB = formats.MAX_IMAGE_SIZE // MIB


@functools.cache
def iso() -> bytes:
    return image.build_image(DRIVE, node_uuid=NODE_UUID)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def packed() -> str:
    return image.pack(iso())


def malformed_base64() -> str:
    # The start of base64 gzip ("H4sI") with '=' padding in the middle of the text.
    return "H4sIAAAAAAAA/+3O====" + b64(gzip.compress(b"x"))


def garbage_text() -> str:
    # Text in no accepted encoding at all (characters base64 never uses).
    return "H4sIAAAAAAAA/+3O!!!*not base64*!!!"


def corrupt_gzip() -> bytes:
    gz = bytearray(gzip.compress(iso(), mtime=0))
    gz[10:40] = b"\xff" * 30  # deflate block header garbage right after the gzip header
    return bytes(gz)


def truncated_gzip() -> bytes:
    gz = gzip.compress(iso(), mtime=0)
    return gz[: len(gz) // 2]


@functools.cache
def gzip_bomb() -> bytes:
    """A real ISO head (so the decoder passes its format check) inflating past 64 MiB."""
    return gzip.compress(iso() + bytes((CAP_MIB + 1) * MIB), compresslevel=9, mtime=0)


def not_a_filesystem() -> bytes:
    return bytes(range(256)) * 256  # 64 KiB, no ISO9660 or FAT signature anywhere


def iso_wrong_label() -> bytes:
    raw = bytearray(iso())
    start = formats.ISO_PVD_OFFSET + 40  # the primary volume descriptor's volume identifier
    raw[start : start + 32] = b"WRONG-LABEL".ljust(32)
    return bytes(raw)


def iso_joliet_label_differs() -> bytes:
    """The primary descriptor says config-2, the Joliet one (which blkid reads) does not."""
    raw = bytearray(iso())
    for sector in range(17, 32):
        start = sector * formats.ISO_SECTOR
        if raw[start] == 2 and raw[start + 88 : start + 91] == b"%/E":  # Joliet SVD
            raw[start + 40 : start + 72] = ("WRONG-JOLIET".encode("utf-16-be")
                                            + b"\x00 " * 16)[:32]
            return bytes(raw)
    raise AssertionError("no Joliet volume descriptor")


def deep_json(depth: int) -> str:
    """A drive whose meta_data nests ``depth`` arrays (its user_data carries the secret)."""
    nested = "[" * depth + "]" * depth
    return f'{{"user_data": "{SECRET}", "meta_data": {{"uuid": "{NODE_UUID}", "x": {nested}}}}}'


@functools.cache
def vfat_without_label() -> bytes:
    """Our vfat drive with the boot sector label blanked and the root label entry deleted."""
    raw = bytearray(image.build_image(DRIVE, node_uuid=NODE_UUID, fmt=formats.VFAT))
    at = 0
    while (at := raw.find(b"CONFIG-2   ", at)) != -1:
        if raw[at + 11] == 0x08:     # volume-label directory entry: mark it deleted
            raw[at] = 0xE5
        else:                        # boot sector copy: what mkfs.fat writes for no label
            raw[at : at + 11] = b"NO NAME    "
        at += 11
    return bytes(raw)


def traversal_drive(path: str = "/etc/../../root/.ssh/authorized_keys") -> dict[str, object]:
    return {**DRIVE, "meta_data": {"files": [{"path": path, "contents": "ssh-rsa AAAA x"}]}}


def make_self_signed(directory: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that no trust store knows (cert, key)."""
    cert, key = os.path.join(directory, "self.pem"), os.path.join(directory, "self.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def snapshot(disk: Any) -> tuple[str, dict[int, tuple[int, int]]]:
    """sha256 of a loop disk's whole backing file (a protective MBR's ending CHS blanked:
    ``without_pmbr_end_chs``) and the kernel's partitions of it."""
    from tests.functional.agent_ext.disk.conftest import without_pmbr_end_chs

    digest = hashlib.sha256()
    with open(disk.backing, "rb") as f:
        digest.update(without_pmbr_end_chs(f.read(512)))
        while block := f.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest(), disk.kernel_partitions()
