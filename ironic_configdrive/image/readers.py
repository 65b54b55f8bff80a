"""What each reader of a config drive needs, and whether a drive meets it.

One frozen :class:`ReaderProfile` per reader, stating the facts read from its source:

* cloud-init (``DataSourceConfigDrive``): blkid finds an iso9660 or vfat filesystem labelled
  exactly ``config-2`` or ``CONFIG-2``; an unpartitioned device (a virtual CD) of either
  filesystem is tried whatever its label, a partition only when so labelled. Reads the
  newest dated ``openstack/<version>/`` it knows (``OS_VERSIONS`` of
  ``cloudinit/sources/helpers/openstack.py``: up to 2018-08-27, so on a Nova drive, which
  goes up to 2025-04-04, it reads 2018-08-27), else ``latest``.
* glean (``glean-early.sh``): ``blkid -t LABEL=config-2``, then ``CONFIG-2``; mounts whatever
  filesystem blkid reports; reads ``openstack/latest/`` only.
* cloudbase-init (Windows, ``osconfigdrive/windows.py``): compares the label of a CD or a
  volume case-insensitively (``mlabel`` on a whole vfat disk: ``config-2`` or ``CONFIG-2``);
  finds an ISO on a raw disk or partition by its ``CD001`` signature alone and copies
  ``volume space size * block size`` bytes, reading the size as 16 bits: an ISO of more
  than 65535 blocks is cut short. Reads ``openstack/latest/`` only. The profile keeps the
  label rule for every location (a CD needs it).
* Ignition and Afterburn (Fedora CoreOS, RHCOS): open ``/dev/disk/by-label/config-2``
  (lower case, so a vfat ``CONFIG-2`` drive is invisible to them) and Afterburn mounts it as
  iso9660 only. Read ``openstack/latest/`` only.

:class:`DriveFacts` is what a check needs to know about a drive (from an inspected image, or
the drive the conductor is about to build); :func:`check` lists why a reader cannot use it.
Pure: no I/O, no Ironic.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Sequence
from typing import Final

from . import formats, layout

CLOUD_INIT: Final = "cloud-init"
GLEAN: Final = "glean"
CLOUDBASE_INIT: Final = "cloudbase-init"
IGNITION: Final = "ignition"

#: Where a reader looks: the newest dated version it knows (else latest), or latest only.
NEWEST_KNOWN: Final = "newest known, else latest"
LATEST_ONLY: Final = "latest only"

#: ISO9660's logical block: a partition on a disk with larger sectors cannot hold one that
#: any kernel or Windows mounts (the agent rebuilds such drives as vfat).
ISO_BLOCK: Final = 2048
#: The dated versions cloud-init knows (its OS_VERSIONS; 22.4.2 as in Debian 12),
#: oldest first: fewer than Nova writes.
CLOUD_INIT_VERSIONS: Final = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15",
                              "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27")
#: Volume space size (both-endian 32 bits, little-endian first) and logical block size in the
#: primary volume descriptor.
_ISO_VOLUME_SIZE_OFFSET: Final = formats.ISO_PVD_OFFSET + 80
_ISO_BLOCK_SIZE_OFFSET: Final = formats.ISO_PVD_OFFSET + 128


@dataclasses.dataclass(frozen=True)
class ReaderProfile:
    """What one reader accepts."""

    name: str
    #: Who it is, for messages and ``--help``.
    description: str
    #: Filesystems it mounts.
    formats: frozenset[str]
    #: Volume labels it finds, compared exactly unless ``label_any_case``.
    labels: frozenset[str]
    label_any_case: bool
    #: :data:`NEWEST_KNOWN` or :data:`LATEST_ONLY`.
    versions: str
    #: With :data:`NEWEST_KNOWN`: the dated versions it knows, oldest first.
    known_versions: tuple[str, ...] = ()
    #: Largest ISO9660 volume, in blocks, it copies whole (None: no limit of its own).
    max_iso_blocks: int | None = None
    #: Whether an unpartitioned device (a virtual CD) is taken whatever its label.
    whole_device_any_label: bool = False


PROFILES: Final[dict[str, ReaderProfile]] = {
    profile.name: profile for profile in (
        ReaderProfile(
            name=CLOUD_INIT, description="cloud-init (most Linux images)",
            formats=frozenset(formats.FORMATS),
            labels=frozenset({formats.LABEL, formats.VFAT_LABEL}), label_any_case=False,
            versions=NEWEST_KNOWN, known_versions=CLOUD_INIT_VERSIONS,
            whole_device_any_label=True),
        ReaderProfile(
            name=GLEAN, description="glean (diskimage-builder's simple-init)",
            formats=frozenset(formats.FORMATS),
            labels=frozenset({formats.LABEL, formats.VFAT_LABEL}), label_any_case=False,
            versions=LATEST_ONLY),
        ReaderProfile(
            name=CLOUDBASE_INIT, description="cloudbase-init (Windows)",
            formats=frozenset(formats.FORMATS), labels=frozenset({formats.LABEL}),
            label_any_case=True, versions=LATEST_ONLY, max_iso_blocks=0xFFFF),
        ReaderProfile(
            name=IGNITION, description="Ignition and Afterburn (Fedora CoreOS, RHCOS)",
            formats=frozenset({formats.ISO9660}), labels=frozenset({formats.LABEL}),
            label_any_case=False, versions=LATEST_ONLY),
    )
}

#: Every reader this module knows, in a stable order.
READERS: Final = tuple(PROFILES)


@dataclasses.dataclass(frozen=True)
class DriveFacts:
    """What the readers' rules look at."""

    format: str | None
    #: The label as blkid reports it.
    label: str | None
    #: ``openstack/<version>/`` directories present.
    openstack_versions: tuple[str, ...]
    #: Version directories holding a meta_data.json.
    with_meta_data: tuple[str, ...] = ()
    #: ISO9660 volume space size in blocks, from the primary volume descriptor.
    iso_blocks: int | None = None
    #: Logical sector size of the disk holding the drive as a partition (None: not known or
    #: not a partition, e.g. virtual media).
    sector_size: int | None = None
    #: Whether the drive is a partition (the conservative default: the label counts) or a
    #: whole device such as a virtual CD.
    on_partition: bool = True


def iso_blocks(image: bytes) -> int | None:
    """The volume space size of an ISO9660 image, or None when it is no ISO9660 image."""
    if formats.detect_format(image[: formats.SNIFF_SIZE]) != formats.ISO9660:
        return None
    if len(image) < _ISO_BLOCK_SIZE_OFFSET + 2:
        return None
    return int(struct.unpack_from("<I", image, _ISO_VOLUME_SIZE_OFFSET)[0])


def version_read(profile: ReaderProfile, versions: Iterable[str]) -> str | None:
    """The ``openstack/<version>/`` directory ``profile``'s reader reads, or None."""
    present = set(versions)
    if profile.versions == NEWEST_KNOWN:
        known = [v for v in profile.known_versions if v in present]
        if known:
            return known[-1]
    return layout.LATEST if layout.LATEST in present else None


def _label_found(profile: ReaderProfile, label: str | None) -> bool:
    if label is None:
        return False
    if profile.label_any_case:
        return label.lower() in {wanted.lower() for wanted in profile.labels}
    return label in profile.labels


def check(profile: ReaderProfile, facts: DriveFacts) -> list[str]:
    """Why ``profile``'s reader cannot use the drive ``facts`` describe (empty: it can)."""
    reasons: list[str] = []
    if facts.format not in profile.formats:
        reasons.append(f"it mounts {' or '.join(sorted(profile.formats))} only, and the drive "
                       f"is {facts.format or 'no known filesystem'}")
    elif (facts.format == formats.ISO9660 and facts.sector_size is not None
          and facts.sector_size > ISO_BLOCK):
        reasons.append(f"an ISO9660 partition cannot be read on a disk with "
                       f"{facts.sector_size}-byte sectors")
    label_counts = facts.on_partition or not profile.whole_device_any_label
    if label_counts and not _label_found(profile, facts.label):
        case = " in any case" if profile.label_any_case else ""
        reasons.append(f"volume label is {facts.label!r}; it looks for "
                       f"{' or '.join(sorted(profile.labels))}{case}")
    if (facts.format == formats.ISO9660 and profile.max_iso_blocks is not None
            and facts.iso_blocks is not None and facts.iso_blocks > profile.max_iso_blocks):
        reasons.append(f"it reads the ISO9660 volume size as 16 bits, so a volume of "
                       f"{facts.iso_blocks} blocks (more than {profile.max_iso_blocks}) is "
                       "cut short")
    version = version_read(profile, facts.openstack_versions)
    if version is None:
        reasons.append("it reads the newest dated openstack/<version>/ it knows, else "
                       "openstack/latest/, and the drive has neither"
                       if profile.versions == NEWEST_KNOWN
                       else "it reads openstack/latest/ only, which is missing")
    elif version not in facts.with_meta_data:
        reasons.append(f"it reads openstack/{version}/meta_data.json, which is missing")
    return reasons


def unknown(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are no known reader."""
    return [name for name in names if name not in PROFILES]


def profiles(names: Sequence[str] | None = None) -> list[ReaderProfile]:
    """The profiles named (all of them for None); unknown names raise KeyError."""
    return [PROFILES[name] for name in (READERS if names is None else names)]


def built_drive_facts(fmt: str, *, sector_size: int | None = None) -> DriveFacts:
    """Facts of a drive this project builds in ``fmt``, as it lands on the node.

    An ISO9660 partition on a disk with sectors larger than its blocks is rebuilt as vfat
    by the agent, so that is what the readers see there.
    """
    if fmt == formats.ISO9660 and sector_size is not None and sector_size > ISO_BLOCK:
        fmt = formats.VFAT
    versions = (*layout.OPENSTACK_VERSIONS, layout.LATEST)
    label = formats.LABEL if fmt == formats.ISO9660 else formats.VFAT_LABEL
    return DriveFacts(format=fmt, label=label, openstack_versions=versions,
                      with_meta_data=versions, sector_size=sector_size)
