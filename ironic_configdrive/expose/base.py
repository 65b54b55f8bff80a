"""The exposure plugin interface: how a node gets to see its stored config drive.

Modelled on Ironic's storage (volume) interfaces: ``attach`` makes the drive visible to the
node and returns a record of what it did, ``detach`` undoes that from the record alone (so it
works after a conductor restart), ``rollback`` undoes a half-finished ``attach``. Third parties
add mechanisms through the ``ironic_configdrive.exposers`` entry point namespace.
"""

from __future__ import annotations

import abc
from typing import Any

from ironic_configdrive.image.errors import ConfigDriveError
from ironic_configdrive.store.base import StoredImage


class ExposureError(ConfigDriveError):
    """A mechanism could not attach or detach a config drive."""

    category = "exposure"
    message_template = "config drive exposure '{mechanism}' failed for node {node}: {reason}"


class SlotBusyError(ExposureError):
    """Virtual media: the BMC has no free slot that accepts the drive."""


class ConfigDriveExposer(abc.ABC):
    """Base class of exposure plugins."""

    #: The entry point name, e.g. "partition".
    name: str = ""

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
