"""The exposure plan: which mechanism shows a node its drive, its fallback, and what they need.

Resolved once per operation from the node and ``[configdrive]`` (:func:`resolve`) and passed
down, so the deploy interface, the update step and the lifecycle ask the plan (does it need
the agent? a raw image? will bytes reach the disk?) instead of naming plugins.
"""

from __future__ import annotations

import dataclasses

from ironic_configdrive.expose.base import Capabilities
from ironic_configdrive.store.base import GZIP, IDENTITY


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """An exposure plugin by name, with what it declares."""

    name: str
    capabilities: Capabilities


@dataclasses.dataclass(frozen=True)
class ExposurePlan:
    """The mechanism to try first and the one to fall back to when its slots are busy."""

    primary: Mechanism
    fallback: Mechanism | None = None

    @property
    def mechanisms(self) -> tuple[Mechanism, ...]:
        return (self.primary,) if self.fallback is None else (self.primary, self.fallback)

    @property
    def needs_agent(self) -> bool:
        """Whether exposing talks to the agent (a fallback's need is not counted: booting
        the ramdisk in case a BMC is busy would cost every update a reboot)."""
        return self.primary.capabilities.needs_agent

    @property
    def may_write_disk(self) -> bool:
        """Whether the drive's bytes may reach the node's disk (then erase at cleaning)."""
        return any(m.capabilities.writes_disk for m in self.mechanisms)

    def store_encoding(self, *, sealed: bool) -> str:
        """How to store the drive: compressed unless the first mechanism needs it raw.

        A sealed drive is always compressed: a mechanism that cannot open it gets a plain
        copy (:meth:`needs_plain_copy`), made raw for it.
        """
        if sealed or self.primary.capabilities.takes_compressed:
            return GZIP
        return IDENTITY

    def needs_plain_copy(self, *, sealed: bool) -> bool:
        """Whether the first mechanism needs a decrypted copy of a sealed drive."""
        return sealed and not self.primary.capabilities.takes_sealed
