"""A real ironic-python-agent process playing the node's ramdisk.

The agent runs on the host, listens on 127.0.0.1, sees only the lab disk and veth (through
:mod:`.hardware`), and finds host power commands replaced by no-op shims: the lab's node is
powered by Ironic's fake power interface, never by the host's ``poweroff``.
"""

from __future__ import annotations

import configparser
import os
import shutil
import sys
from pathlib import Path

from ironic_configdrive_lab import plugins, process
from ironic_configdrive_lab.workdir import Workdir

NAME = "agent"
#: How the lab tells its hardware manager which devices are the node's (see .hardware).
DISK_ENV = "IRONIC_CONFIGDRIVE_LAB_DISK"
IFACE_ENV = "IRONIC_CONFIGDRIVE_LAB_INTERFACE"
#: IPA falls back to /proc/sysrq-trigger when these fail, so the shims must succeed.
SHIMMED = ("poweroff", "reboot", "shutdown", "halt", "hwclock")


def _bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def write_shims(workdir: Workdir) -> None:
    for name in SHIMMED:
        shim = workdir.shims / name
        shim.write_text("#!/bin/sh\n# ironic-configdrive lab: the node's power is Ironic's "
                        "fake power, not this host's.\n"
                        f"echo \"lab: ignored {name} $*\" >&2\nexit 0\n")
        shim.chmod(0o755)
    _fuser_shim(workdir)


def _fuser_shim(workdir: Workdir) -> None:
    """Real fuser, minus complaints about processes this host's /proc will not show us.

    In containers fuser cannot inspect some foreign processes (e.g. pid 1) and says so on
    stderr, which IPA takes for "device busy". Holders fuser can see are still reported.
    """
    search = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                             if p and Path(p) != workdir.shims)
    real = shutil.which("fuser", path=search or None)
    if real is None:
        return
    shim = workdir.shims / "fuser"
    shim.write_text(
        "#!/bin/sh\n"
        "err=$(mktemp) || exit 2\n"
        f"{real} \"$@\" 2>\"$err\"\nrc=$?\n"
        "grep -v '^Cannot stat file /proc/.*: Permission denied$' \"$err\" >&2\n"
        "rm -f \"$err\"\nexit $rc\n")
    shim.chmod(0o755)


def write_conf(workdir: Workdir, *, api_url: str, port: int, debug: bool) -> Path:
    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {
        "api_url": api_url,
        "listen_host": "127.0.0.1",
        "listen_port": str(port),
        "advertise_host": "127.0.0.1",
        "advertise_port": str(port),
        "insecure": "True",
        # Ironic requires TLS to agents: the agent makes its own certificate, as deployed.
        "enable_auto_tls": "True",
        "debug": str(debug),
        "log_file": str(workdir.log(NAME)),
        "use_stderr": "False",
        "lookup_timeout": "120",
        "lookup_interval": "1",
        "hardware_initialization_delay": "0",
        "disk_wait_attempts": "1",
        "disk_wait_delay": "0",
        "collect_lldp": "False",
    }
    path = workdir.etc / "agent.conf"
    with open(path, "w") as handle:
        conf.write(handle)
    return path


def start(workdir: Workdir, *, conf_path: Path, disk: str, interface: str) -> int:
    env = plugins.env(workdir)
    env[DISK_ENV] = disk
    env[IFACE_ENV] = interface
    env["PATH"] = f"{workdir.shims}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    return process.spawn(workdir, NAME, [_bin("ironic-python-agent"), "--config-file",
                                         str(conf_path)], env=env)


def stop(workdir: Workdir) -> bool:
    return process.stop(workdir, NAME)


def running(workdir: Workdir) -> bool:
    return process.running_pid(workdir, NAME) is not None
