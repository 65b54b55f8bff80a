"""The exposure plugin interface: how a node gets to see its stored config drive.

Modelled on Ironic's storage (volume) interfaces: ``attach`` makes the drive visible to the
node and returns a record of what it did, ``detach`` undoes that from the record alone (so it
works after a conductor restart), ``rollback`` undoes a half-finished ``attach``. Third parties
add mechanisms through the ``ironic_configdrive.exposers`` entry point namespace.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.store.base import StoredImage


class ExposureError(ConfigDriveError):
    """A mechanism could not attach or detach a config drive."""

    category = "exposure"
    message_template = "config drive exposure '{mechanism}' failed for node {node}: {reason}"


class SlotBusyError(ExposureError):
    """Virtual media: the BMC has no free slot that accepts the drive."""


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a mechanism needs and leaves behind; the plan is resolved from these alone."""

    #: It can be handed a sealed (encrypted) image together with its key.
    takes_sealed: bool
    #: It decodes a gzip-compressed image itself (a BMC cannot).
    takes_compressed: bool
    #: It talks to the agent running on the node.
    needs_agent: bool
    #: It leaves the drive's bytes on the node's disk: erase them at cleaning.
    writes_disk: bool
    #: The node keeps reading the URL while attached (a BMC serving virtual media): a URL
    #: that dies with its conductor must be re-served by the conductor taking over.
    reads_url_while_attached: bool


class ConfigDriveExposer(abc.ABC):
    """Base class of exposure plugins."""

    #: The entry point name, e.g. "partition".
    name: str = ""
    capabilities: ClassVar[Capabilities]

    @abc.abstractmethod
    def validate(self, task: Any) -> None:
        """Check the node can use this mechanism; raise ExposureError saying what is missing."""

    @abc.abstractmethod
    def attach(self, task: Any, image: StoredImage) -> dict[str, Any]:
        """Expose ``image`` to ``task.node``; return a JSON-able record for detach."""

    @abc.abstractmethod
    def detach(self, task: Any, record: dict[str, Any]) -> None:
        """Undo an attach from its record; idempotent."""

    def rollback(self, task: Any, record: dict[str, Any]) -> None:
        """Undo a failed or partial attach; by default the same as detach."""
        self.detach(task, record)
