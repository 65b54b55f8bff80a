"""The write path with an in-memory disk layer: decode, verify, rebuild for 4Kn, abort."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

import agent_ext
from agent_ext import pipeline
from agent_ext.errors import DeviceError, InvalidInputError, TransferError, VerificationError
from agent_ext.fetch import FetchOptions
from ironic_configdrive.image import build_image, errors, formats, read_tree, vfat
from tests.fixtures import http as http_fixture
from tests.unit.agent_ext.fakes import FakeDisk

DEV = "/dev/fake0"
META = {
    "meta_data": {"uuid": "5a1e2b2c-0000-4000-8000-000000000001", "name": "node-1"},
    "user_data": b"#cloud-config\n",
}


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FakeDisk:
    fake = FakeDisk()
    monkeypatch.setattr(agent_ext, "disk", fake, raising=False)
    return fake


@pytest.fixture(scope="module")
def iso() -> bytes:
    return build_image(META)


@pytest.fixture(scope="module")
def vfat512() -> bytes:
    return build_image(META, fmt=formats.VFAT)


def b64gz(image: bytes) -> str:
    return base64.b64encode(gzip.compress(image)).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_inline_base64_gzip(disk: FakeDisk, iso: bytes) -> None:
    result = pipeline.write_config_drive(
        DEV, data=b64gz(iso), sha256=sha(iso).upper(), size=len(iso)
    )
    assert disk.content == iso
    assert disk.prepared == [{"device": DEV, "size": len(iso), "target": "partition"}]
    assert disk.commits == [{"sha256": sha(iso), "size": len(iso)}]
    assert result["sha256"] == sha(iso) and result["size"] == len(iso)
    assert result["encoding"] == "base64+gzip" and result["format"] == "iso9660"
    assert result["rebuilt"] is False and result["path"] == DEV + "p9"
    assert result["source"].startswith("inline data")
    json.dumps(result)


def test_unknown_size_prepares_the_cap(disk: FakeDisk, iso: bytes) -> None:
    pipeline.write_config_drive(DEV, data=gzip.compress(iso), target="device")
    assert disk.prepared == [{"device": DEV, "size": formats.MAX_IMAGE_SIZE, "target": "device"}]
    assert disk.content == iso


def test_file_source_and_progress(disk: FakeDisk, tmp_path: pytest.TempPathFactory) -> None:
    image = build_image({**META, "user_data": bytes(range(256)) * 12000})
    path = tmp_path / "cd.iso"  # type: ignore[operator]
    path.write_bytes(image)
    seen: list[tuple[int, int | None]] = []
    result = pipeline.write_config_drive(
        DEV, file=str(path), size=len(image), progress=lambda d, t: seen.append((d, t))
    )
    assert disk.content == image and result["encoding"] == "raw"
    assert seen[-1] == (len(image), len(image))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_missing_file(disk: FakeDisk) -> None:
    with pytest.raises(InvalidInputError, match="cannot read config drive file /nonexistent"):
        pipeline.write_config_drive(DEV, file="/nonexistent")


def test_wrong_sha256_aborts(disk: FakeDisk, iso: bytes) -> None:
    with pytest.raises(VerificationError, match="sha256 of the received image") as info:
        pipeline.write_config_drive(DEV, data=b64gz(iso), sha256="0" * 64)
    assert DEV in info.value.message
    assert disk.aborted == 1 and disk.content is None and not disk.commits


@pytest.mark.parametrize("delta", [-2048, 2048])
def test_wrong_size_aborts(disk: FakeDisk, iso: bytes, delta: int) -> None:
    with pytest.raises(VerificationError, match="expected"):
        pipeline.write_config_drive(DEV, data=b64gz(iso), size=len(iso) + delta)
    assert disk.aborted == 1 and disk.content is None


def test_iso_on_4kn_is_rebuilt_as_vfat(disk: FakeDisk, iso: bytes) -> None:
    disk.sector_size = 4096
    result = pipeline.write_config_drive(DEV, data=b64gz(iso), sha256=sha(iso), size=len(iso))
    assert disk.content is not None
    assert formats.detect_format(disk.content) == formats.VFAT
    assert int.from_bytes(disk.content[11:13], "little") == 4096
    assert formats.read_label(disk.content) == formats.VFAT_LABEL
    # FAT keeps one copy of each file: the version directories no reader needs are left out.
    assert read_tree(disk.content) == vfat.fold_versions(read_tree(iso))
    assert result["rebuilt"] is True and "4096" in result["rebuild_reason"]
    assert result["source_sha256"] == sha(iso) and result["sha256"] == sha(disk.content)
    assert disk.prepared[0]["size"] == len(disk.content)


def test_512_byte_vfat_on_4kn_is_rebuilt(disk: FakeDisk, vfat512: bytes) -> None:
    disk.sector_size = 4096
    result = pipeline.write_config_drive(DEV, data=b64gz(vfat512))
    assert result["rebuilt"] is True
    assert disk.content is not None
    assert int.from_bytes(disk.content[11:13], "little") == 4096


def test_4kn_checks_sha256_before_rebuilding(disk: FakeDisk, iso: bytes) -> None:
    disk.sector_size = 4096
    with pytest.raises(VerificationError):
        pipeline.write_config_drive(DEV, data=b64gz(iso), sha256="1" * 64)
    assert disk.prepared == [] and disk.content is None


def test_format_preferences(disk: FakeDisk, iso: bytes, vfat512: bytes) -> None:
    result = pipeline.write_config_drive(DEV, data=b64gz(iso), image_format="vfat")
    assert result["format"] == "vfat" and result["rebuilt"] is True
    result = pipeline.write_config_drive(DEV, data=b64gz(vfat512), image_format="iso9660")
    assert result["format"] == "iso9660"
    assert disk.content is not None and formats.detect_format(disk.content) == "iso9660"
    disk.sector_size = 4096
    with pytest.raises(DeviceError, match="4096-byte logical sectors"):
        pipeline.write_config_drive(DEV, data=b64gz(iso), image_format="iso9660")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": "", "data": "x"}, "never guesses a disk"),
        ({"device": None, "data": "x"}, "never guesses a disk"),
        ({"device": DEV}, "exactly one config drive source"),
        ({"device": DEV, "data": "x", "url": "http://127.0.0.1/x"}, "exactly one"),
        ({"device": DEV, "data": "x", "sha256": "abc"}, "64 hexadecimal"),
        ({"device": DEV, "data": "x", "size": 0}, "outside"),
        ({"device": DEV, "data": "x", "size": "many"}, "number of bytes"),
        ({"device": DEV, "data": "x", "target": "disk"}, "target must be"),
        ({"device": DEV, "data": "x", "image_format": "ext4"}, "format must be"),
        ({"device": DEV, "data": {"meta_data": {}}}, "build the image on the conductor"),
        ({"device": DEV, "data": "caf\u00e9"}, "ASCII"),
    ],
)
def test_bad_arguments(disk: FakeDisk, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        pipeline.write_config_drive(**kwargs)
    assert disk.prepared == []


def test_missing_device(disk: FakeDisk, iso: bytes) -> None:
    with pytest.raises(DeviceError, match="/dev/missing"):
        pipeline.write_config_drive("/dev/missing", data=b64gz(iso))


def test_garbage_fails_before_touching_the_disk(disk: FakeDisk) -> None:
    with pytest.raises(errors.InvalidMediaError):
        pipeline.write_config_drive(DEV, data=b"\x00\x01garbage" * 10000)
    with pytest.raises(errors.InvalidMediaError):
        pipeline.write_config_drive(DEV, data=gzip.compress(b"not an image" * 5000))
    assert disk.prepared == []


def test_truncated_gzip_aborts(disk: FakeDisk, iso: bytes) -> None:
    packed = gzip.compress(iso + b"\x00" * 300000)
    with pytest.raises(errors.InvalidMediaError, match="truncated"):
        pipeline.write_config_drive(DEV, data=packed[: len(packed) - 100])
    assert disk.aborted == 1 and disk.content is None


def gzip_bomb(head: bytes, zeros: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress(head)]
    block = bytes(8 << 20)
    for _ in range(zeros // len(block)):
        out.append(comp.compress(block))
    out.append(comp.flush())
    return b"".join(out)


def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(
    disk: FakeDisk, iso: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = gzip_bomb(iso, 256 << 20)
    assert len(bomb) < 1 << 20
    # Count what reached the "disk" without keeping it.
    counted = {"n": 0}

    class CountingWriter(disk.DriveWriter):  # type: ignore[name-defined]
        def write(self, chunk: bytes) -> None:
            counted["n"] += len(chunk)

    monkeypatch.setattr(FakeDisk, "DriveWriter", property(lambda self: CountingWriter))
    tracemalloc.start()
    try:
        with pytest.raises(errors.SizeLimitExceeded, match="64 MiB"):
            pipeline.write_config_drive(DEV, data=bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counted["n"] <= formats.MAX_IMAGE_SIZE
    assert disk.aborted == 1 and disk.content is None
    assert peak < 16 << 20, f"peak traced memory {peak} bytes"


@pytest.fixture
def server() -> Iterator[http_fixture.ObjectServer]:
    yield from http_fixture.serve()


def test_url_with_resume(disk: FakeDisk, iso: bytes, server: http_fixture.ObjectServer) -> None:
    image = build_image({**META, "user_data": bytes(range(256)) * 8000})
    blob = b64gz(image).encode()
    server.objects["/cd"] = blob
    server.fault("/cd", ("drop", len(blob) // 2))
    result = pipeline.write_config_drive(
        DEV,
        url=server.url("/cd", "temp_url_sig=s3cr3t&temp_url_expires=9"),
        sha256=sha(image),
        size=len(image),
        fetch_options=FetchOptions(backoff_factor=0),
    )
    assert disk.content == image and result["resumes"] == 1
    assert "s3cr3t" not in json.dumps(result)


def test_url_404_fails_before_touching_the_disk(
    disk: FakeDisk, server: http_fixture.ObjectServer
) -> None:
    with pytest.raises(TransferError, match="404"):
        pipeline.write_config_drive(DEV, url=server.url("/gone"))
    assert disk.prepared == []


def test_remove_and_status(disk: FakeDisk, iso: bytes) -> None:
    assert pipeline.status(DEV) == {
        "device": DEV,
        "present": False,
        "path": None,
        "partition_number": None,
        "size": None,
        "label": None,
        "format": None,
        "sha256": None,
    }
    pipeline.write_config_drive(DEV, data=b64gz(iso))
    assert pipeline.status(DEV)["sha256"] == sha(iso)
    removed = pipeline.remove(DEV)
    assert removed["removed"] is True and removed["device"] == DEV
    assert pipeline.remove(DEV)["removed"] is False
    with pytest.raises(InvalidInputError):
        pipeline.status("")


def _no_pipeline_threads() -> bool:
    import threading
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = {t.name for t in threading.enumerate()}
        # The download's deadline timer too: a failed write closes the download.
        if not names & {"configdrive-fetch", "configdrive-write", "configdrive-fetch-deadline"}:
            return True
        time.sleep(0.05)
    return False


def test_download_lost_mid_body_aborts(disk: FakeDisk,
                                       server: http_fixture.ObjectServer) -> None:
    image = build_image({**META, "user_data": os.urandom(1 << 20)})
    blob = b64gz(image).encode()
    server.objects["/cd"] = blob
    server.fault("/cd", *[("drop", 200_000)] * 3)
    with pytest.raises(TransferError, match="connection lost after"):
        pipeline.write_config_drive(
            DEV, url=server.url("/cd"), sha256=sha(image),
            fetch_options=FetchOptions(backoff_factor=0, max_resumes=1))
    assert disk.prepared and disk.aborted == 1 and disk.content is None
    assert _no_pipeline_threads()


def test_disk_error_mid_stream_aborts(disk: FakeDisk, iso: bytes,
                                      server: http_fixture.ObjectServer) -> None:
    image = build_image({**META, "user_data": os.urandom(1 << 20)})
    server.objects["/cd"] = b64gz(image).encode()
    # The fake refuses writes beyond the target's capacity, like a too-small partition.
    prepare = disk.prepare_target

    def small(device: str, *, size: int, target: str = "partition") -> Any:
        return dataclasses.replace(prepare(device, size=size, target=target), capacity=65536)

    disk.prepare_target = small  # type: ignore[method-assign]
    with pytest.raises(DeviceError, match="larger than target"):
        pipeline.write_config_drive(DEV, url=server.url("/cd"),
                                    fetch_options=FetchOptions(backoff_factor=0))
    assert disk.aborted == 1 and disk.content is None
    assert _no_pipeline_threads()


def test_consumer_failure_stops_the_fetch_thread(disk: FakeDisk,
                                                 server: http_fixture.ObjectServer) -> None:
    image = build_image({**META, "user_data": bytes(range(256)) * 16000})
    server.objects["/cd"] = b64gz(image).encode()
    with pytest.raises(VerificationError, match="larger than the expected 40000"):
        pipeline.write_config_drive(DEV, url=server.url("/cd"), size=40000,
                                    fetch_options=FetchOptions(backoff_factor=0))
    assert disk.aborted == 1
    assert _no_pipeline_threads()


def test_a_download_is_unwrapped_in_the_fetch_thread(
        disk: FakeDisk, monkeypatch: pytest.MonkeyPatch,
        server: http_fixture.ObjectServer) -> None:
    # base64 decoding holds the GIL and inflating releases it: the two run in two threads.
    import threading

    from ironic_configdrive.image import stream

    threads: dict[str, set[str]] = {"unwrap": set(), "expand": set()}
    for stage in threads:
        original = getattr(stream.StreamDecoder, stage)

        def spy(self: Any, data: bytes, _stage: str = stage, _original: Any = original) -> Any:
            threads[_stage].add(threading.current_thread().name)
            return _original(self, data)

        monkeypatch.setattr(stream.StreamDecoder, stage, spy)
    image = build_image({**META, "user_data": os.urandom(1 << 20)})
    server.objects["/cd"] = b64gz(image).encode()
    result = pipeline.write_config_drive(DEV, url=server.url("/cd"), sha256=sha(image),
                                         fetch_options=FetchOptions(backoff_factor=0))
    assert disk.content == image and result["encoding"] == "base64+gzip"
    assert threads == {"unwrap": {"configdrive-fetch"},
                       "expand": {threading.current_thread().name}}


def test_a_sealed_download_is_opened_in_the_fetch_thread(
        disk: FakeDisk, server: http_fixture.ObjectServer) -> None:
    from ironic_configdrive.image import sealing

    image = build_image({**META, "user_data": os.urandom(1 << 20)})
    key = sealing.new_key()
    server.objects["/sealed"] = sealing.seal(gzip.compress(image), key)
    result = pipeline.write_config_drive(DEV, url=server.url("/sealed"), sha256=sha(image),
                                         key=key, fetch_options=FetchOptions(backoff_factor=0))
    assert disk.content == image and result["encrypted"] is True
    server.objects["/sealed"] = sealing.seal(gzip.compress(image), sealing.new_key())
    with pytest.raises(errors.ConfigDriveError):
        pipeline.write_config_drive(DEV, url=server.url("/sealed"), key=key,
                                    fetch_options=FetchOptions(backoff_factor=0))
    assert _no_pipeline_threads()
