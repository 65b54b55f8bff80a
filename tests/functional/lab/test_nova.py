"""`nova boot --config-drive` for real: the lab's Nova profile (marker lab).

One lab with Nova for the module (Swift store): Keystone, Glance, placement, RabbitMQ,
MariaDB and Nova 34 with the ironic driver in front of the lab's Ironic. Nova is driven with
the ``openstack`` CLI of the Nova venv, as a person types it; every check is on the real
things (the node's loop disk read back, Debian's cloud-init, Swift listed, the HTTP roots).
The scenarios run in order on one server: create, rebuild, delete; then a server whose drive
the node's operator has set to virtual media. The drive Nova built is compared with the one
Ironic's functional tests deploy (``tests/fixtures/nova_drive.py``). After ``down``, the logs
of the lab's Ironic, its agent and HTTP server are searched for the user data's secret, the
admin_pass Nova put in the drive and temp URL signatures (Nova's own logs and databases are
Nova's business: its database keeps user data by design).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_ext.disk import superblock
from ironic_configdrive import image
from ironic_configdrive.image import formats
from ironic_configdrive_lab import (
    cli,
    disk,
    leaks,
    nova_cmd,
    nova_profile,
    nova_venv,
    objectstore,
    openstack_env,
    process,
    up_cmd,
    verify,
)
from ironic_configdrive_lab.workdir import Workdir
from tests.conftest import skip_or_fail
from tests.fixtures import nova_drive
from tests.functional.lab.test_lab import _leftovers, _require_lab

pytestmark = pytest.mark.lab

SERVER = "nova-lab"
SECRET = "NOVA-UD-SECRET-4c19e7b2a8"
#: Searched for in our logs after ``down``: the user data's, and what Nova put in the drive.
SECRETS: dict[str, str] = {"user data": SECRET}
USER_DATA = f"#cloud-config\nwrite_files: [{{path: /etc/lab, content: {SECRET}}}]\n"
NEW_USER_DATA = "#cloud-config\nwrite_files: [{path: /etc/lab, content: two}]\n"
#: What each phase took, printed at the end of the module (`pytest -s` or the -ra summary).
TIMES: dict[str, float] = {}


def _require_nova() -> None:
    _require_lab()
    lacking = nova_profile.missing()
    if lacking:
        skip_or_fail("the Nova profile needs: " + "; ".join(lacking))
    if subprocess.run(["/usr/bin/python3", "-c", "import cloudinit"],
                      capture_output=True, check=False).returncode != 0:
        skip_or_fail("Debian's cloud-init is not installed (bindep.txt: cloud-init)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workdir]:
    _require_nova()
    # Short: MariaDB's socket path must fit AF_UNIX.
    workdir = Workdir.at(tmp_path_factory.mktemp("nova"))
    mark = time.monotonic()
    try:
        assert cli.main(["up", "--with-nova", "--workdir", str(workdir.root)]) == 0, \
            process.log_tail(workdir, "nova-compute")
        TIMES["up --with-nova"] = time.monotonic() - mark
        yield workdir
    finally:
        up_cmd.down(workdir)
        print("\nNova profile times: " + ", ".join(
            f"{name} {seconds:.1f} s" for name, seconds in TIMES.items()))
    assert _leftovers(workdir) == []
    assert [name for name, pid in nova_profile.running(workdir).items() if pid] == []
    assert _leaks(workdir) == {}


#: The logs of what this project runs in the lab (Ironic with our interfaces, the agent
#: with our extension, the HTTP store's server), by name prefix.
OUR_LOGS = ("ironic", "agent", "http")


def _leaks(workdir: Workdir) -> dict[str, list[str]]:
    ours = sorted(path for path in workdir.logs.glob("*.log") if path.name.startswith(OUR_LOGS))
    assert ours, f"no logs of ours under {workdir.logs}"
    return leaks.scan_files(ours, SECRETS)


@pytest.fixture(scope="module")
def key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{public} lab@nova"


def _cloud_init_line(checks: list[str]) -> str:
    [line] = [line for line in checks if line.startswith("Debian's cloud-init reads")]
    return line


def test_env_prints_what_the_openstack_cli_needs(
        lab: Workdir, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["env", "--workdir", str(lab.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"export OS_CLIENT_CONFIG_FILE={lab.root / 'clouds.yaml'}" in lines
    assert f"export OS_CLOUD={openstack_env.CLOUD}" in lines
    assert lines[0].startswith("unset OS_AUTH_TYPE ")
    assert (lab.root / "clouds.yaml").stat().st_mode & 0o077 == 0
    # What a person types after pasting those lines.
    flavors = openstack_env.openstack(lab, "flavor", "list")
    assert [item["Name"] for item in flavors] == [nova_profile.FLAVOR]
    assert nova_venv.path() in Path(lines[-1].split("=", 1)[1].split(":", 1)[0]).parents


def test_second_up_with_nova_changes_nothing(lab: Workdir) -> None:
    before = nova_profile.running(lab)
    assert all(before.values())
    assert cli.main(["up", "--with-nova", "--workdir", str(lab.root)]) == 0
    assert nova_profile.running(lab) == before


def test_server_create_with_a_config_drive(lab: Workdir, key: str) -> None:
    mark = time.monotonic()
    result = nova_cmd.create(lab, name=SERVER, user_data=USER_DATA, public_key=key)
    TIMES["server create"] = time.monotonic() - mark
    server = openstack_env.openstack(lab, "server", "show", SERVER)
    assert server["status"] == "ACTIVE" and server["config_drive"] == "True"
    checks = result["checks"]
    # cloud-init reads the uuid Nova assigned, the hostname, the key and the user data.
    line = _cloud_init_line(checks)
    assert f"instance uuid {server['id']}" in line
    assert f"hostname '{SERVER}.novalocal'" in line and "1 SSH key(s)" in line
    assert hashlib.sha256(USER_DATA.encode()).hexdigest()[:16] in line
    assert any(line.startswith("blkid finds one config-2 partition") for line in checks)
    assert any(line.startswith("exposed by the configdrive deploy interface (partition ")
               for line in checks)
    assert any("Ironic's node shows no drive" in line for line in checks)
    stored = result["stored"]
    # Encrypted at rest (the lab's conductor has a key file): Swift holds a sealed drive.
    assert stored["store"] == "swift" and stored["sealed"] is True
    assert objectstore.list_objects(lab.load_state()["swift"]) == [
        stored["location"].split("/", 1)[1]]
    # Ironic's functional tests deploy a drive Nova built here: it must still be Nova's shape.
    start, size = result["range"]
    partition = disk.read_range(lab.load_state()["disk"], start, size)
    found = superblock.probe(partition[:formats.SNIFF_SIZE])
    assert found is not None and found.format == formats.ISO9660
    built = partition[:found.size]
    meta_data = image.read_tree(built)["openstack/latest/meta_data.json"]
    SECRETS["admin_pass Nova generated"] = json.loads(meta_data)["admin_pass"]
    if os.environ.get(nova_drive.RECORD_VAR) == "1":
        nova_drive.record(built)
    assert nova_drive.shape(built) == nova_drive.shape(nova_drive.recorded()), (
        f"Nova's drive no longer has the files of {nova_drive.PATH}; record it again with "
        f"{nova_drive.RECORD_VAR}=1 and check what changed")


def test_server_rebuild_with_new_user_data(lab: Workdir, key: str) -> None:
    before = lab.load_state()["deployed"]
    mark = time.monotonic()
    result = nova_cmd.rebuild(lab, name=SERVER, user_data=NEW_USER_DATA, public_key=key)
    TIMES["server rebuild"] = time.monotonic() - mark
    assert result["sha256"] != before["sha256"]
    assert hashlib.sha256(NEW_USER_DATA.encode()).hexdigest()[:16] in _cloud_init_line(
        result["checks"])
    # Only the new drive is stored: the first object is gone.
    assert objectstore.list_objects(lab.load_state()["swift"]) == [
        result["stored"]["location"].split("/", 1)[1]]


def test_server_delete_cleans_the_drive_away(lab: Workdir) -> None:
    deployed = lab.load_state()["deployed"]
    mark = time.monotonic()
    result = nova_cmd.delete(lab, name=SERVER)
    TIMES["server delete (+ node free again)"] = time.monotonic() - mark
    state = lab.load_state()
    start, size = deployed["range"]
    assert f"config drive range {start}+{size} of {state['disk']} reads zeros" \
        in result["checks"]
    assert objectstore.list_objects(state["swift"]) == []
    for root in verify.http_roots(lab, state).values():
        assert [path for path in root.rglob("*")
                if path.is_file() and path.parent.name != "images"
                and path.name != "index.html"] == []
    assert openstack_env.openstack(lab, "server", "list") == []


def test_virtual_media_exposure_through_nova(lab: Workdir, key: str) -> None:
    """The operator sets the node's exposure; Nova's drive reaches the BMC instead of the
    disk, sealed in Swift, and is ejected and deleted with the server."""
    nova_cmd.expose_as(lab, "virtual_media")
    try:
        mark = time.monotonic()
        result = nova_cmd.create(lab, name="nova-vmedia", user_data=USER_DATA,
                                 public_key=key)
        TIMES["server create (virtual media)"] = time.monotonic() - mark
        checks = result["checks"]
        assert result["exposure"] == "virtual_media" and result["stored"]["sealed"] is True
        assert any(line.startswith("the BMC reports our media inserted") for line in checks)
        assert any(line.startswith("no config-2 partition on") for line in checks)
        assert any(line.startswith("exposed by the configdrive deploy interface "
                                   "(virtual_media ") for line in checks)
        assert "instance uuid" in _cloud_init_line(checks)
        mark = time.monotonic()
        deleted = nova_cmd.delete(lab, name="nova-vmedia")
        TIMES["server delete (virtual media)"] = time.monotonic() - mark
        assert any(line.endswith("ejected") for line in deleted["checks"])
        assert objectstore.list_objects(lab.load_state()["swift"]) == []
    finally:
        nova_cmd.expose_as(lab, None)
