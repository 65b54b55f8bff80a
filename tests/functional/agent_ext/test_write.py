"""The write path end to end: local HTTP(S) server with faults → real loop devices."""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from agent_ext import pipeline
from agent_ext.errors import TransferError, VerificationError
from agent_ext.fetch import FetchOptions
from ironic_configdrive.image import build_image, errors, formats, read_tree, vfat
from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.conftest import (
    TLSFiles,
    b64gz,
    blkid_label_nodes,
    disk_nodes,
    read_node,
    run,
    sha256,
)
from tests.functional.agent_ext.disk.conftest import blkid_config_drives, sgdisk

pytestmark = pytest.mark.loopdev

FAST = FetchOptions(retries=2, backoff_factor=0.0, connect_timeout=5, read_timeout=10)
SIG = "5ecret5ecret5ecret5ecret5ecret5ecret5ecr"
QUERY = f"temp_url_sig={SIG}&temp_url_expires=1999999999"
META = {
    "meta_data": {"uuid": "0b5e7a1c-1111-4222-8333-444455556666", "name": "node-7"},
    "user_data": b"#cloud-config\nhostname: node-7\n",
}


def big_image() -> bytes:
    """An ISO of ~3 MiB, so a transfer can break in the middle of it."""
    import os

    return build_image({**META, "user_data": os.urandom(3 * 1024 * 1024)})


def test_write_status_remove_end_to_end(
    loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = big_image()
    server.objects["/v1/AUTH_t/c/o"] = b64gz(image)

    before = pipeline.status(disk.device)
    assert before["present"] is False

    result = pipeline.write_config_drive(
        disk.device,
        url=server.url("/v1/AUTH_t/c/o", QUERY),
        sha256=sha256(image),
        size=len(image),
        fetch_options=FAST,
    )
    assert result["verified"] is True and result["sha256"] == sha256(image)
    assert result["encoding"] == "base64+gzip" and result["rebuilt"] is False
    assert SIG not in repr(result) and result["source"].endswith("?***")
    part = result["path"]
    # cloud-init's way of finding it, and the bytes on the partition are the image.
    assert blkid_config_drives(*disk_nodes(disk.device)) == [part]
    assert read_node(part, len(image)) == image
    assert read_tree(read_node(part, len(image))) == read_tree(image)

    status = pipeline.status(disk.device)
    assert status["present"] is True and status["path"] == part
    assert status["sha256"] == sha256(image) and status["label"] == "config-2"

    start, size = disk.kernel_partitions()[result["partition_number"]]
    removed = pipeline.remove(disk.device)
    assert removed["removed"] is True and removed["zeroed_bytes"] >= len(image)
    assert disk.read(start, size) == bytes(size)
    assert pipeline.status(disk.device)["present"] is False
    assert pipeline.remove(disk.device)["removed"] is False
    run("sgdisk", "-v", disk.device)


def test_resume_after_connection_drop(
    loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = big_image()
    blob = b64gz(image)
    server.objects["/o"] = blob
    server.fault("/o", ("drop", len(blob) // 3), ("drop", len(blob) // 3))
    result = pipeline.write_config_drive(
        disk.device, url=server.url("/o"), sha256=sha256(image), fetch_options=FAST
    )
    assert result["resumes"] == 2
    assert [r.range is not None for r in server.requests] == [False, True, True]
    assert read_node(result["path"], len(image)) == image
    assert blkid_config_drives(*disk_nodes(disk.device)) == [result["path"]]


def test_500_then_200_is_retried(loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image(META)
    server.objects["/o"] = b64gz(image)
    server.fault("/o", ("status", 500))
    result = pipeline.write_config_drive(
        disk.device, url=server.url("/o"), sha256=sha256(image), fetch_options=FAST
    )
    assert len(server.requests) == 2 and result["verified"] is True


def test_404_leaves_the_disk_alone(loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    with pytest.raises(TransferError, match="404.*redeploy") as info:
        pipeline.write_config_drive(
            disk.device, url=server.url("/gone", QUERY), fetch_options=FAST
        )
    assert SIG not in info.value.message
    assert disk.kernel_partitions() == {}


def test_403_says_the_temp_url_expired(
    loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    server.objects["/o"] = b"x"
    server.fault("/o", ("status", 403))
    with pytest.raises(TransferError) as info:
        pipeline.write_config_drive(disk.device, url=server.url("/o", QUERY), fetch_options=FAST)
    assert "temp URL has likely expired" in info.value.message
    assert "re-run the deploy step" in info.value.message and SIG not in info.value.message
    assert disk.kernel_partitions() == {}


def test_wrong_sha256_leaves_no_config_drive(
    loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = big_image()
    server.objects["/o"] = b64gz(image)
    with pytest.raises(VerificationError, match="sha256"):
        pipeline.write_config_drive(
            disk.device, url=server.url("/o"), sha256="ab" * 32, fetch_options=FAST
        )
    nodes = disk_nodes(disk.device)
    assert nodes == [disk.device]  # the partition made for it was deleted again
    assert blkid_config_drives(*nodes) == [] and blkid_label_nodes(*nodes) == []
    assert pipeline.status(disk.device)["present"] is False


def test_gzip_bomb_fails_at_the_cap(loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(build_image(META))]
    zeros = bytes(8 << 20)
    parts += [comp.compress(zeros) for _ in range(32)]  # 256 MiB of zeros
    parts.append(comp.flush())
    server.objects["/bomb"] = b"".join(parts)
    assert len(server.objects["/bomb"]) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(errors.SizeLimitExceeded, match="64 MiB"):
            pipeline.write_config_drive(disk.device, url=server.url("/bomb"), fetch_options=FAST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak traced memory {peak} bytes"
    nodes = disk_nodes(disk.device)
    assert blkid_config_drives(*nodes) == [] and blkid_label_nodes(*nodes) == []


def test_tls_with_private_ca(
    loopdisk: Callable,
    tls_server: http_fixture.ObjectServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A system bundle in the environment must not override the CA file we were given.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image(META)
    tls_server.objects["/o"] = b64gz(image)
    url = tls_server.url("/o", QUERY)
    with pytest.raises(TransferError, match="TLS verification failed.*CA bundle") as info:
        pipeline.write_config_drive(disk.device, url=url, fetch_options=FAST)
    assert SIG not in info.value.message
    assert disk.kernel_partitions() == {}
    options = FetchOptions(verify=tls_files.ca, retries=1, backoff_factor=0.0)
    result = pipeline.write_config_drive(
        disk.device, url=url, sha256=sha256(image), fetch_options=options
    )
    assert read_node(result["path"], len(image)) == image


def test_4kn_disk_gets_a_vfat_drive(loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"), sector_size=4096)
    image = build_image(META)
    server.objects["/o"] = b64gz(image)
    result = pipeline.write_config_drive(
        disk.device,
        url=server.url("/o"),
        sha256=sha256(image),
        size=len(image),
        fetch_options=FAST,
    )
    assert result["rebuilt"] is True and result["format"] == "vfat"
    assert result["logical_sector_size"] == 4096 and result["source_sha256"] == sha256(image)
    part = result["path"]
    probe = run("blkid", "-p", "-o", "export", part).stdout
    assert "TYPE=vfat" in probe and "LABEL=CONFIG-2" in probe
    on_disk = read_node(part, result["size"])
    assert int.from_bytes(on_disk[11:13], "little") == 4096
    # FAT keeps one copy of each file: the version directories no reader needs are left out.
    assert read_tree(on_disk) == vfat.fold_versions(read_tree(image))
    fsck = run("fsck.vfat", "-n", part, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert pipeline.status(disk.device)["format"] == formats.VFAT


def test_whole_device_target(loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(64)
    image = build_image(META)
    server.objects["/o"] = b64gz(image)
    result = pipeline.write_config_drive(
        disk.device,
        url=server.url("/o"),
        target="device",
        sha256=sha256(image),
        fetch_options=FAST,
    )
    assert result["path"] == disk.device
    assert disk.read(0, len(image)) == image
    assert blkid_config_drives(disk.device) == [disk.device]


def test_download_lost_for_good_leaves_no_config_drive(
        loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = big_image()
    blob = b64gz(image)
    server.objects["/o"] = blob
    server.fault("/o", *[("drop", len(blob) // 4)] * 4)
    options = FetchOptions(retries=1, backoff_factor=0.0, max_resumes=2)
    with pytest.raises(TransferError, match="connection lost after .* 2 resumes"):
        pipeline.write_config_drive(disk.device, url=server.url("/o"), size=len(image),
                                    fetch_options=options)
    nodes = disk_nodes(disk.device)
    assert blkid_config_drives(*nodes) == [] and blkid_label_nodes(*nodes) == []
    assert pipeline.status(disk.device)["present"] is False


def test_failed_write_leaves_no_orphan_partition(
        loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image(META)
    server.objects["/o"] = b64gz(image)
    with pytest.raises(VerificationError) as err:
        pipeline.write_config_drive(disk.device, url=server.url("/o"), sha256="cd" * 32,
                                    fetch_options=FAST)
    assert "partition 1, created for this write, was deleted again" in err.value.message
    assert disk.kernel_partitions() == {}
    result = pipeline.write_config_drive(disk.device, url=server.url("/o"),
                                         sha256=sha256(image), fetch_options=FAST)
    assert (result["action"], result["partition_number"]) == ("created", 1)
    assert list(disk.kernel_partitions()) == [1]
