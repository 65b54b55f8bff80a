"""A config drive partition made by IPA 13 is found, reported and reused by us."""

from __future__ import annotations

import base64
import gzip
import hashlib
import subprocess
import sys
import textwrap
import uuid

import pytest

from agent_ext.disk import DriveWriter, config_drive_status, gpt, prepare_target
from tests.conftest import require_tool
from tests.functional.agent_ext.disk.conftest import (
    blkid_config_drives,
    nodes_of,
    parted,
    run,
    sgdisk,
)

pytestmark = [pytest.mark.loopdev, pytest.mark.interop]

# IPA runs in a child process so its global oslo.config state and eventlet stay out of ours.
# Its mount self-test needs a kernel iso9660 module this machine lacks, so it is patched out.
IPA_SCRIPT = textwrap.dedent("""
    import sys
    from unittest import mock
    from ironic_python_agent import config
    config.populate_config()
    from ironic_python_agent import partition_utils
    with mock.patch.object(partition_utils, "_does_config_drive_work", return_value=True):
        partition_utils.create_config_drive_partition("interop-node", sys.argv[1],
                                                      sys.stdin.read())
""")


def ipa_create(device: str, image: bytes) -> None:
    pytest.importorskip("ironic_python_agent")
    for tool in ("sgdisk", "parted", "partprobe", "lsblk", "blkid"):
        require_tool(tool)
    blob = base64.b64encode(gzip.compress(image)).decode()
    proc = subprocess.run(
        [sys.executable, "-c", IPA_SCRIPT, device],
        input=blob,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("scheme", ["gpt", "mbr"])
def test_ipa_config_drive_is_found_and_reused(loopdisk, make_iso, scheme):
    if scheme == "gpt":
        layout = sgdisk("-n", "1:2048:+50M")
    else:
        layout = parted("mklabel", "msdos", "mkpart", "primary", "1MiB", "50MiB")
    disk = loopdisk(256, layout=layout)
    ipa_image = make_iso()
    ipa_create(disk.device, ipa_image)
    table_before = run("parted", "-s", "-m", disk.device, "unit", "s", "print").stdout

    status = config_drive_status(disk.device)
    assert status.present and status.partition_number == 2
    assert status.sha256 == hashlib.sha256(ipa_image).hexdigest()

    ours = make_iso(extra_bytes=100_000)
    target = prepare_target(disk.device, size=len(ours))
    assert (target.action, target.partition_number) == ("reused", 2)
    with DriveWriter(target) as writer:
        writer.write(ours)
        writer.commit(expected_sha256=hashlib.sha256(ours).hexdigest())
    if scheme == "gpt":
        # Written into, IPA's partition now carries our mark (name and unique GUID) and
        # nothing else changed; an MBR entry has no field for one.
        table_before = "".join(
            line.replace(":::;", "::config-2:;") if line.startswith("2:") else line
            for line in table_before.splitlines(keepends=True))
        unique = run("sgdisk", "-i", "2", disk.device).stdout.split("unique GUID: ")[1]
        assert gpt.is_owned(uuid.UUID(unique.split()[0]))
    assert run("parted", "-s", "-m", disk.device, "unit", "s", "print").stdout == table_before
    assert blkid_config_drives(*nodes_of(disk)) == [target.path]
    assert config_drive_status(disk.device).sha256 == hashlib.sha256(ours).hexdigest()
