"""The node's NIC: a veth pair on the host whose agent end carries the node port's MAC.

The agent reports this interface (and only this one, see :mod:`.hardware`) in its lookup,
so Ironic finds the node by its port the way it would on real hardware. Traffic itself goes
over 127.0.0.1; the veth carries no addresses.
"""

from __future__ import annotations

import subprocess

from ironic_configdrive_lab.workdir import LabError, Workdir


def names(workdir: Workdir) -> tuple[str, str]:
    return f"cdl{workdir.tag}", f"cdl{workdir.tag}p"


def mac(workdir: Workdir) -> str:
    tag = workdir.tag
    # Locally administered, unicast.
    return f"52:54:00:{tag[0:2]}:{tag[2:4]}:{tag[4:6]}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LabError(f"cannot run ip: {exc.strerror}; install iproute2") from None
    if check and result.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def create(workdir: Workdir) -> str:
    node_end, peer = names(workdir)
    if not exists(node_end):
        _ip("link", "add", node_end, "address", mac(workdir), "type", "veth",
            "peer", "name", peer)
    _ip("link", "set", node_end, "up")
    _ip("link", "set", peer, "up")
    return node_end


def delete(workdir: Workdir) -> bool:
    node_end, _peer = names(workdir)
    if not exists(node_end):
        return False
    _ip("link", "del", node_end)  # removes the peer too
    return True
