"""The last gate before a written image is made valid: would cloud-init and glean use it?

The sha256 only proves the bytes arrived as the conductor sent them; with a URL passed
through, nobody on the conductor looked at them. So the writer runs the image core's own
:func:`~ironic_configdrive.image.inspect` (the one ``ironic-configdrive validate`` runs) on
exactly the bytes it is about to commit: the label as blkid reports it, a readable
``openstack/<version>/meta_data.json`` JSON object with a uuid for the version cloud-init
picks and ``latest`` for glean, and ISO9660/FAT structures that read without error (no
truncation, cycles, cross-links). Whatever ``validate`` rejects, ``write`` refuses.

Memory: the check holds the image once (at most the 64 MiB cap; typical drives are well
under 1 MiB and sit entirely in the writer's head buffer) plus the files the reader returns.
"""

from __future__ import annotations

from typing import Final

from agent_ext.errors import NotAConfigDriveError
from ironic_configdrive.image.inspect import inspect

#: Problems quoted in the error; the rest are counted (``validate`` lists them all).
MAX_QUOTED: Final = 3


def problems(image: bytes) -> list[str]:
    """What stops cloud-init or glean from using ``image`` (raw ISO9660/FAT); [] if fine."""
    return inspect(image).problems


def check_image(image: bytes, device: str) -> None:
    """Raise :class:`NotAConfigDriveError` naming ``device`` unless ``image`` is usable."""
    found = problems(image)
    if not found:
        return
    quoted = "; ".join(found[:MAX_QUOTED])
    more = len(found) - MAX_QUOTED
    if more > 0:
        quoted += f" (and {more} more problem{'s' if more > 1 else ''})"
    raise NotAConfigDriveError(device=device, reason=f"the image is no usable config "
                                                     f"drive: {quoted}")
