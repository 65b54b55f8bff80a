"""What the lab verifies after a deploy and after an undeploy, on the real things.

After a deploy: the instance image on the disk; the drive where the guest finds it (one
config-2 partition, or the BMC's virtual media holding the store URL with the stored bytes);
what glean reads from it; the stored object in its store. After an undeploy: the partition
range reads zeros, the media is ejected, the store holds nothing for the node.

With several conductors the http store is host-local: a drive lives in the HTTP root of the
conductor that stored it (:func:`http_roots` lists them all). A drive left in the root of
another conductor than the one that undeployed (its host was down) is reported, not failed:
only that host can delete it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ironic_configdrive.masking import scrub
from ironic_configdrive_lab import bmc, cloud_init, disk, guest, images, objectstore
from ironic_configdrive_lab.profile import Profile
from ironic_configdrive_lab.workdir import LabError, Workdir


def http_roots(workdir: Workdir, state: dict[str, Any]) -> dict[str, Path]:
    """Where the http store may keep drives: ``{conductor name: its [deploy]http_root}``."""
    hosts = Profile.of(state).hosts(workdir)
    if not hosts:
        return {"ironic": workdir.http_root}
    return {host.name: host.http_root for host in hosts}


def _holder(workdir: Workdir, state: dict[str, Any], node: dict[str, Any] | None) -> str:
    """The conductor name of the node's ``conductor`` field (``ironic`` with one process)."""
    hostname = (node or {}).get("conductor")
    return next((host.name for host in Profile.of(state).hosts(workdir)
                 if host.address == hostname), "ironic")


def _stored_in(workdir: Workdir, state: dict[str, Any], location: str) -> list[str]:
    """The conductors whose HTTP root holds ``location``."""
    return [name for name, root in http_roots(workdir, state).items()
            if (root / location).exists()]


def deployed(workdir: Workdir, node: dict[str, Any],
                    exposure: str = "partition") -> dict[str, Any]:
    state = workdir.load_state()
    device = state["disk"]
    record = (node.get("driver_internal_info") or {}).get("configdrive") or {}
    stored = record.get("stored") or {}
    checks = []
    image = disk.read_range(device, images.ROOT_START_SECTOR * 512, len(images.ROOT_MARK))
    if image != images.ROOT_MARK:
        raise LabError(f"{device} does not carry the instance image (root partition marker "
                       "missing)")
    checks.append(f"instance image written to {device}")
    result: dict[str, Any] = {"exposure": exposure, "stored": stored}
    if exposure == "virtual_media":
        drive, media = _verify_media(workdir, state, record, stored, checks)
        result.update(media=media, sha256=stored.get("sha256"))
        root = guest.extract_image(workdir, drive)
    else:
        root = _verify_partition(workdir, device, stored, checks, result)
    try:
        _verify_guest(state, root, checks)
    finally:
        guest.discard(workdir)  # the extracted files are the drive's secrets in clear
    _verify_stored(workdir, state, stored, checks)
    result["checks"] = checks
    result["conductor"] = _holder(workdir, state, node)
    return result


def _verify_partition(workdir: Workdir, device: str, stored: dict[str, Any],
                      checks: list[str], result: dict[str, Any]) -> Any:
    from agent_ext.disk import config_drive_status

    status = config_drive_status(device)
    if not status.present or status.partition_number is None:
        raise LabError(f"{device} carries no config-2 partition after the deploy")
    if status.sha256 != stored.get("sha256"):
        raise LabError(f"config-2 partition {status.path} hashes to {status.sha256}, the "
                       f"stored drive to {stored.get('sha256')}")
    checks.append(f"one config-2 partition {status.path} ({status.format}, label "
                  f"{status.label}, {status.size} bytes) hashing to the stored sha256 "
                  f"{status.sha256}")
    table = _partition_range(device, status.partition_number)
    result.update(partition=status.path, range=table, sha256=status.sha256)
    return guest.extract(workdir, device, table[0], int(status.size or 0))


def _verify_media(workdir: Workdir, state: dict[str, Any], record: dict[str, Any],
                  stored: dict[str, Any], checks: list[str]) -> tuple[bytes, str]:
    """The BMC holds our media, from the store's URL, with the stored bytes; none on disk."""
    from agent_ext.disk import config_drive_status

    exposures = [item for item in record.get("exposures") or []
                 if item.get("mechanism") == "virtual_media"]
    if not exposures:
        raise LabError(f"the node's record shows no virtual media exposure (exposures: "
                       f"{[item.get('mechanism') for item in record.get('exposures') or []]})")
    exposed = exposures[0].get("record") or {}
    device = str(exposed.get("device"))
    slots = bmc.media(workdir, state["redfish"]["redfish_address"])
    slot = slots.get(device) or {}
    if not slot.get("Inserted"):
        raise LabError(f"the Redfish emulator reports no media inserted in {device}")
    # Store URLs carry secrets (temp URL signatures, http store tokens): compare and print
    # them masked only, as the exposure records them.
    inserted = scrub(str(slot.get("Image") or ""))
    expected = scrub(str(exposed.get("url_inserted") or ""))
    if not inserted or inserted != expected:
        raise LabError(f"the media in {device} is not the stored config drive ({inserted} "
                       f"instead of {expected})")
    checks.append(f"the BMC reports our media inserted in {device} "
                  f"({exposed.get('media_type')}) from the store URL {inserted}")
    sha = stored.get("sha256")
    drives = {hashlib.sha256(data).hexdigest(): data for data in bmc.downloaded(workdir)}
    if sha not in drives:
        raise LabError(f"none of the {len(drives)} file(s) the BMC downloaded hashes to the "
                       f"stored sha256 {sha}")
    checks.append(f"the bytes the BMC downloaded hash to the stored sha256 {sha}")
    if config_drive_status(state["disk"]).present:
        raise LabError(f"{state['disk']} carries a config-2 partition although the drive is "
                       "exposed as virtual media (a guest would see two)")
    checks.append(f"no config-2 partition on {state['disk']}")
    return drives[str(sha)], device


def _verify_guest(state: dict[str, Any], root: Any, checks: list[str]) -> None:
    expected = state.get("expected_guest") or {}
    if not expected:
        return
    if expected.get("cloud_init"):
        _verify_cloud_init(expected["cloud_init"], root, checks)
    view = guest.glean_view(root)
    if expected.get("hostname") and view["hostname"] != expected["hostname"]:
        raise LabError(f"glean reads hostname {view['hostname']!r}, expected "
                       f"{expected['hostname']!r}")
    found = {guest.key_digest(line) for line in view["keys"]}
    missing = [key for key in expected.get("keys", []) if key not in found]
    if missing:
        raise LabError(f"glean does not find {len(missing)} expected SSH key(s)")
    checks.append(f"glean reads hostname {view['hostname']!r} and "
                  f"{len(view['keys'])} SSH key(s) from it")


def _verify_cloud_init(expected: dict[str, Any], root: Path, checks: list[str]) -> None:
    """Debian's cloud-init reads what Nova put in the drive (keys compared by digest)."""
    found = cloud_init.read(root / "mnt" / "config")
    for field in ("uuid", "hostname", "userdata_sha256"):
        if found.get(field) != expected.get(field):
            raise LabError(f"cloud-init reads {field} {found.get(field)!r}, expected "
                           f"{expected.get(field)!r}")
    keys = sorted(guest.key_digest(key) for key in found.get("keys") or [])
    if keys != sorted(expected.get("keys") or []):
        raise LabError(f"cloud-init reads {len(keys)} SSH key(s) that are not the expected "
                       f"{len(expected.get('keys') or [])}")
    checks.append(f"Debian's cloud-init reads instance uuid {found['uuid']}, hostname "
                  f"{found['hostname']!r}, {len(keys)} SSH key(s) and the user data "
                  f"(sha256 {str(found['userdata_sha256'])[:16]}...) from metadata version "
                  f"{found['version']}")


def _verify_stored(workdir: Workdir, state: dict[str, Any], stored: dict[str, Any],
                   checks: list[str]) -> None:
    location = stored.get("location")
    if not location:
        return
    if stored.get("store") == "http":
        holders = _stored_in(workdir, state, str(location))
        if not holders:
            raise LabError("the http store has no object for the deployed config drive")
        checks.append("stored object present in the http store" + (
            f" ({', '.join(holders)}'s HTTP root)" if Profile.of(state).multi else ""))
    elif stored.get("store") == "swift":
        container, _, name = str(location).partition("/")
        names = objectstore.list_objects(state["swift"])
        if name not in names:
            raise LabError(f"Swift container {container} has no object {name}")
        checks.append(f"stored object present in Swift container {container} (listed with "
                      "the lab's credentials)")


def _partition_range(device: str, number: int) -> list[int]:
    name = device.rsplit("/", 1)[1]
    sys_dir = Path("/sys/block", name, f"{name}p{number}")
    start = int((sys_dir / "start").read_text()) * 512
    size = int((sys_dir / "size").read_text()) * 512
    return [start, size]


def undeployed(workdir: Workdir, state: dict[str, Any],
               node: dict[str, Any] | None = None) -> list[str]:
    """Checks after cleaning, against what :func:`deployed` recorded in the state.

    ``node``: the node after the undeploy (which conductor did it).
    """
    checks: list[str] = []
    deployed = state.get("deployed") or {}
    if deployed.get("range"):
        start, size = deployed["range"]
        data = disk.read_range(state["disk"], start, size)
        if data.count(0) != len(data):
            raise LabError(f"the config drive range {start}+{size} of {state['disk']} "
                           "still holds data after cleaning")
        checks.append(f"config drive range {start}+{size} of {state['disk']} reads "
                      "zeros")
    if deployed.get("media"):
        slot = bmc.media(workdir, state["redfish"]["redfish_address"])[deployed["media"]]
        if slot.get("Inserted") or slot.get("Image"):
            raise LabError(f"the BMC still holds media in {deployed['media']} after the "
                           "undeploy")
        checks.append(f"the BMC reports {deployed['media']} ejected")
    stored = deployed.get("stored") or {}
    if stored.get("store") == "http" and stored.get("location"):
        checks += _http_deleted(workdir, state, str(stored["location"]),
                                _holder(workdir, state, node), "stored config drive")
    if state.get("store") == "swift":
        names = objectstore.list_objects(state["swift"])
        if names:
            raise LabError(f"Swift container {state['swift']['container']} still holds "
                           f"{len(names)} object(s) after the undeploy")
        checks.append(f"Swift container {state['swift']['container']} is empty")
    return checks


def replaced(workdir: Workdir, state: dict[str, Any], before: dict[str, Any],
             after: dict[str, Any]) -> list[str]:
    """Checks after an update: a new drive is in place and the old object is gone."""
    old, new = before.get("stored") or {}, after.get("stored") or {}
    if not new.get("sha256") or new.get("sha256") == old.get("sha256"):
        raise LabError("the node still has its previous config drive after the update")
    checks = [f"the drive changed: sha256 {old.get('sha256')} -> {new.get('sha256')}"]
    if old.get("store") == "http" and old.get("location"):
        checks += _http_deleted(workdir, state, str(old["location"]),
                                str(after.get("conductor") or "ironic"),
                                "previous config drive")
    if state.get("store") == "swift":
        names = objectstore.list_objects(state["swift"])
        if len(names) != 1:
            raise LabError(f"Swift holds {len(names)} object(s) after the update, expected "
                           "only the new drive")
        checks.append("Swift holds only the new drive (the previous object was deleted)")
    return checks


def _http_deleted(workdir: Workdir, state: dict[str, Any], location: str, holder: str,
                  what: str) -> list[str]:
    """The http store's file is gone from every HTTP root the acting conductor can reach.

    A copy in another conductor's root (it stored the drive, then its host went down) is
    only reported: the host-local store leaves it to that host.
    """
    left = _stored_in(workdir, state, location)
    if holder in left or (left and not Profile.of(state).multi):
        raise LabError(f"the {what} was not deleted from the http store")
    if left:
        return [f"NOTE: the {what} is still in {', '.join(left)}'s HTTP root (host-local "
                f"http store; {holder} did the work and cannot reach it)"]
    return [f"{what} deleted from the http store"]


def media_served_by(workdir: Workdir, device: str, http_url: str, sha256: str) -> bool:
    """The BMC's media in ``device`` comes from ``http_url`` and answers with the drive."""
    import requests

    state = workdir.load_state()
    url = str(bmc.media(workdir, state["redfish"]["redfish_address"])[device].get("Image")
              or "")
    if not url.startswith(http_url.rstrip("/") + "/"):
        return False
    try:
        response = requests.get(url, timeout=10)
    except requests.RequestException:
        return False
    return response.ok and hashlib.sha256(response.content).hexdigest() == sha256
