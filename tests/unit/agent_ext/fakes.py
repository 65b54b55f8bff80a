"""An in-memory stand-in for :mod:`agent_ext.disk`, for unit tests of the write path only.

Functional tests use the real disk layer on loop devices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from agent_ext.errors import DeviceError, VerificationError


@dataclass
class Target:
    device: str
    path: str
    partition_number: int | None
    capacity: int
    logical_sector_size: int
    action: str


@dataclass
class WriteResult:
    path: str
    size: int
    sha256: str
    verified: bool


@dataclass
class RemoveResult:
    removed: bool
    path: str | None
    partition_number: int | None
    zeroed_bytes: int
    message: str


@dataclass
class StatusResult:
    present: bool
    path: str | None
    partition_number: int | None
    size: int | None
    label: str | None
    format: str | None
    sha256: str | None


@dataclass
class FakeDisk:
    """Records what the pipeline does; ``content`` is what a commit left "on disk"."""

    sector_size: int = 512
    content: bytes | None = None
    prepared: list[dict[str, Any]] = field(default_factory=list)
    written: bytearray = field(default_factory=bytearray)
    aborted: int = 0
    commits: list[dict[str, Any]] = field(default_factory=list)

    # -- the module's functions -------------------------------------------------------------

    def logical_sector_size(self, device: str) -> int:
        if device == "/dev/missing":
            raise DeviceError(device=device, reason="does not exist")
        return self.sector_size

    def prepare_target(self, device: str, *, size: int, target: str = "partition") -> Target:
        self.prepared.append({"device": device, "size": size, "target": target})
        path = device if target == "device" else device + "p9"
        return Target(
            device,
            path,
            None if target == "device" else 9,
            max(size, 1 << 20),
            self.sector_size,
            "created",
        )

    def remove_config_drive(self, device: str) -> RemoveResult:
        had = self.content is not None
        self.content = None
        return RemoveResult(
            had,
            device + "p9" if had else None,
            9 if had else None,
            1 << 20 if had else 0,
            "removed" if had else f"no config drive on {device}",
        )

    def config_drive_status(self, device: str) -> StatusResult:
        if self.content is None:
            return StatusResult(False, None, None, None, None, None, None)
        return StatusResult(
            True,
            device + "p9",
            9,
            len(self.content),
            "config-2",
            "iso9660",
            hashlib.sha256(self.content).hexdigest(),
        )

    @property
    def DriveWriter(self) -> Any:  # noqa: N802 - mimics the module's class
        disk = self

        class Writer:
            def __init__(self, target: Target) -> None:
                self.target = target
                disk.written = bytearray()

            def __enter__(self) -> Writer:
                return self

            def __exit__(self, *exc: object) -> None:
                if exc[0] is not None:
                    self.abort()

            def write(self, chunk: bytes) -> None:
                if len(disk.written) + len(chunk) > self.target.capacity:
                    raise DeviceError(device=self.target.path, reason="image larger than target")
                disk.written += chunk

            def commit(
                self, expected_sha256: str | None = None, expected_size: int | None = None
            ) -> WriteResult:
                digest = hashlib.sha256(disk.written).hexdigest()
                # Like the real writer: it checks what it received before making it valid.
                if expected_size is not None and expected_size != len(disk.written):
                    raise VerificationError(device=self.target.path, reason="size mismatch")
                if expected_sha256 and digest != expected_sha256.lower():
                    raise VerificationError(device=self.target.path,
                                            reason=f"sha256 of the received image is {digest}")
                disk.commits.append({"sha256": expected_sha256, "size": expected_size})
                disk.content = bytes(disk.written)
                return WriteResult(self.target.path, len(disk.written), digest, True)

            def abort(self) -> None:
                disk.aborted += 1
                disk.written = bytearray()

        return Writer
