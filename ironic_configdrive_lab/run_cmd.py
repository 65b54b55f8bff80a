"""``run``: the whole story on one lab (up, deploy, update, rebuild, undeploy, virtual
media, a host failure with several conductors, down) with a summary of every phase."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from ironic_configdrive_lab import conductor_cmd, nova_cmd
from ironic_configdrive_lab.node_cmd import config_drive_arg, deploy, undeploy, update
from ironic_configdrive_lab.up_cmd import down, up
from ironic_configdrive_lab.workdir import LabError, Workdir

EXAMPLE_DRIVE: dict[str, Any] = {
    "meta_data": {"name": "lab-instance", "hostname": "lab-instance",
                  "public_keys": {"lab": "ssh-ed25519 "
                                         "AAAAC3NzaC1lZDI1NTE5AAAAIH2vbGFiLWV4YW1wbGUta2V5 "
                                         "lab@example"}},
    "user_data": "#cloud-config\nhostname: lab-instance\n",
}


#: The Nova story's server and its user data (first, then after the rebuild).
NOVA_SERVER = "lab-server"
NOVA_USER_DATA = ("#cloud-config\nwrite_files: [{path: /etc/lab, content: created}]\n",
                  "#cloud-config\nwrite_files: [{path: /etc/lab, content: rebuilt}]\n")


def run(workdir: Workdir, *, config_drive: str | None, exposure: str | None,
        debug: bool, store: str = "swift", conductors: int = 1,
        with_nova: bool = False) -> dict[str, Any]:
    """up -> deploy -> verify -> undeploy -> verify -> down, with a summary at the end.

    Without ``exposure``: a partition deploy, a rebuild with another drive, an undeploy, then
    a virtual media deploy and its undeploy, all on one lab; with several conductors, the
    virtual media deploy's host fails and comes back in between (:func:`conductor_cmd.
    host_failure`). ``with_nova``: the Nova profile's story instead (server create, rebuild
    with new user data, delete; :func:`_nova_story`).
    """
    if with_nova and (config_drive or exposure):
        raise LabError("run --with-nova drives Nova, which builds the config drive itself and "
                       "exposes it as a partition: drop --config-drive and --exposure")
    # A JSON file is read, so the later phases can rename the instance in it.
    drive = config_drive_arg(config_drive) if config_drive else json.dumps(EXAMPLE_DRIVE)
    summary: dict[str, Any] = {"phases": {}, "verified": []}

    def timed(name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        mark = time.monotonic()
        result = action()
        summary["phases"][name] = time.monotonic() - mark
        summary["verified"] += [f"{name}: {line}" for line in result.get("checks", [])]
        return result

    plan: list[tuple[str, str, str]] = [(exposure or "partition", "deploy", drive)]
    if exposure is None:
        # An update must change the drive: only a JSON drive can be renamed.
        updates = _renamed(drive, "lab-updated") != drive
        if updates:
            plan.append(("partition", "update", _renamed(drive, "lab-updated")))
        plan.append(("partition", "rebuild", _renamed(drive, "lab-rebuilt")))
        plan.append(("virtual_media", "deploy", _renamed(drive, "lab-vmedia")))
        if conductors > 1:
            plan.append(("virtual_media", "host failure", drive))
        if updates:
            plan.append(("virtual_media", "update", _renamed(drive, "lab-vmedia-updated")))
    failed = True
    try:
        timed("up" + (" --with-nova" if with_nova else ""),
              lambda: up(workdir, debug=debug, store=store, conductors=conductors,
                         with_nova=with_nova))
        if with_nova:
            _nova_story(workdir, timed)
            plan = []
        for mechanism, action, text in plan:
            if action == "deploy" and workdir.load_state().get("deployed"):
                timed("undeploy+clean+verify", lambda: undeploy(workdir))
            if action == "update":
                timed(f"update {mechanism}+verify",
                      functools.partial(update, workdir, config_drive=text))
                continue
            if action == "host failure":
                timed(f"host failure, takeover {mechanism}+verify",
                      functools.partial(conductor_cmd.host_failure, workdir))
                continue
            timed(f"{action} {mechanism}+verify",
                  functools.partial(deploy, workdir, config_drive=text, exposure=mechanism))
        if plan:
            timed(f"undeploy {plan[-1][0]}+clean+verify", lambda: undeploy(workdir))
        failed = False
    finally:
        timed("down", lambda: down(workdir))
        _print_summary(workdir, summary, store=store, failed=failed)
    return summary


def _nova_story(workdir: Workdir, timed: Callable[[str, Callable[[], dict[str, Any]]],
                                                  dict[str, Any]]) -> None:
    """server create, rebuild with new user data, delete: through Nova, each verified."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    first, second = NOVA_USER_DATA
    timed("nova server create+verify", functools.partial(
        nova_cmd.create, workdir, name=NOVA_SERVER, user_data=first, public_key=key))
    timed("nova server rebuild+verify", functools.partial(
        nova_cmd.rebuild, workdir, name=NOVA_SERVER, user_data=second, public_key=key))
    timed("nova server delete+clean+verify", functools.partial(
        nova_cmd.delete, workdir, name=NOVA_SERVER))


def _renamed(drive: str, name: str) -> str:
    """The same drive JSON with another instance name (a rebuild must show the new one)."""
    try:
        data = json.loads(drive)
    except ValueError:
        return drive
    if isinstance(data, dict) and isinstance(data.get("meta_data"), dict):
        data["meta_data"]["name"] = data["meta_data"]["hostname"] = name
        if isinstance(data.get("user_data"), str):
            data["user_data"] = data["user_data"].replace(
                str(json.loads(drive)["meta_data"].get("hostname")), name)
    return json.dumps(data)


def _print_summary(workdir: Workdir, summary: dict[str, Any], *, store: str,
                   failed: bool) -> None:
    print(f"\nSummary ({store} store){' - FAILED, see the error below' if failed else ''}")
    for name, seconds in summary["phases"].items():
        print(f"  {name:<36} {seconds:6.1f} s")
    print(f"  {'total':<36} {sum(summary['phases'].values()):6.1f} s")
    print("Verified")
    for line in summary["verified"]:
        print(f"  - {line}")
    print(f"Disk kept for inspection: {workdir.disk}; logs in {workdir.logs}")
