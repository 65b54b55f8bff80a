"""Bad inputs to the ``ironic-configdrive`` console script, run as a real process.

Every case checks the exit code, that stderr names the cause in one message without a
traceback, that the drive's user_data marker never shows, and that nothing was left: no
output file (nor the atomic writer's temporary file) for ``build``, a byte-identical disk
for ``write``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.disk.conftest import LoopDisk, sgdisk
from tests.functional.bad_input import corpus
from tests.functional.bad_input.corpus import snapshot

CLI = os.path.join(os.path.dirname(sys.executable), "ironic-configdrive")


def cli(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    assert os.access(CLI, os.X_OK), f"console script missing: {CLI}"
    return subprocess.run([CLI, *args], capture_output=True, text=True, cwd=cwd, check=False,
                          timeout=300)


def assert_failed(result: subprocess.CompletedProcess[str], code: int, phrase: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert phrase in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert corpus.SECRET not in result.stderr + result.stdout


# -- build --------------------------------------------------------------------------------

def _drive(**meta_data: Any) -> dict[str, Any]:
    return {**corpus.DRIVE, "meta_data": {"uuid": corpus.NODE_UUID, **meta_data}}


BUILD_CASES: dict[str, tuple[Callable[[], str], list[str], int, str]] = {
    "invalid_json": (lambda: '{"user_data": "' + corpus.SECRET + '", "meta_data": {',
                     [], 2, "is not valid JSON"),
    "json_not_utf8": (lambda: '{"user_data": "\udcff"}', [], 2, "is not valid JSON"),
    "traversal_in_path": (lambda: json.dumps(corpus.traversal_drive()),
                          ["--node-uuid", corpus.NODE_UUID], 1,
                          "escapes the config drive tree"),
    "traversal_in_content_path": (
        lambda: json.dumps(_drive(files=[{"path": "/etc/motd", "contents": "x",
                                          "content_path": "/content/../../etc/passwd"}])),
        [], 1, "'..' components are not allowed"),
    "missing_uuid": (lambda: json.dumps({**corpus.DRIVE, "meta_data": {"name": "a"}}), [], 1,
                     "meta_data.uuid is missing and no node UUID was given"),
    "meta_data_not_object": (lambda: json.dumps({**corpus.DRIVE, "meta_data": "x"}), [], 1,
                             "meta_data must be a JSON object, not str"),
    "unknown_format": (lambda: json.dumps(_drive()), ["--format", "udf"], 2,
                       "argument --format: invalid choice: 'udf'"),
    "unknown_sector_size": (lambda: json.dumps(_drive()), ["--sector-size", "1024"], 2,
                            "argument --sector-size: invalid choice: 1024"),
    "iso_with_4k_sectors": (lambda: json.dumps(_drive()), ["--sector-size", "4096"], 1,
                            "ISO9660 has no sector-size option"),
    "oversize": (lambda: json.dumps({**_drive(), "user_data": corpus.SECRET
                                     + "x" * (corpus.CAP_MIB * corpus.MIB)}),
                 [], 1, f"larger than the {corpus.CAP_MIB} MiB limit"),
    # The hardening review's findings: each once a traceback or a drive validate refuses.
    "deep_json_900": (lambda: corpus.deep_json(900), [], 1,
                      "nests arrays and objects deeper than 65 levels"),
    "deep_json_100000": (lambda: corpus.deep_json(100_000), [], 1,
                         "nests arrays and objects deeper than 65 levels"),
    "user_data_lone_surrogate": (
        lambda: json.dumps({**_drive(), "user_data": corpus.SECRET + "\ud800"}), [], 1,
        "user_data is not valid Unicode text: a lone surrogate U+D800 at character 29"),
    "hostname_nul": (lambda: json.dumps(_drive(hostname="web\x00")), [], 1,
                     "meta_data.hostname contains the control character U+0000"),
    "file_path_root": (lambda: json.dumps(_drive(files=[{"path": "/", "contents": "x"}])),
                       [], 1, "meta_data.files[0].path names a directory ('/')"),
    "file_encoding_unknown": (
        lambda: json.dumps(_drive(files=[{"path": "/x", "contents": "eA==",
                                          "encoding": "gzip"}])),
        [], 1, 'meta_data.files[0].encoding must be "base64" or left out'),
    "public_keys_list": (lambda: json.dumps(_drive(public_keys=["ssh-ed25519 AAAA"])), [], 1,
                         "meta_data.public_keys must map key names to key strings"),
    "network_links_object": (
        lambda: json.dumps({**_drive(), "network_data": {"links": {"id": "l0"}}}), [], 1,
        "network_data.links must be a list of objects"),
}


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_build_refuses(tmp_path: pathlib.Path, case: str) -> None:
    make, extra, code, phrase = BUILD_CASES[case]
    source = tmp_path / "in.json"
    source.write_bytes(make().encode("utf-8", "surrogateescape"))
    result = cli("build", str(source), "-o", str(tmp_path / "out.iso"), *extra)
    assert_failed(result, code, phrase)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]  # no output, no temp


def test_build_into_missing_directory(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_drive()))
    result = cli("build", str(source), "-o", str(tmp_path / "no" / "such" / "out.iso"))
    assert_failed(result, 2, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def test_build_warns_of_a_uuid_that_is_not_one(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps({**corpus.DRIVE, "meta_data": {"uuid": "not-a-uuid"}}))
    result = cli("build", str(source), "-o", str(tmp_path / "out.iso"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: meta_data.uuid 'not-a-uuid' is not a UUID")
    assert corpus.SECRET not in result.stderr + result.stdout


# -- inspect / validate ---------------------------------------------------------------------

IMAGE_CASES: dict[str, tuple[Callable[[], bytes | str], str]] = {
    "malformed_base64": (corpus.malformed_base64, "malformed base64 text"),
    "corrupt_gzip": (corpus.corrupt_gzip, "corrupt gzip data"),
    "truncated_gzip": (corpus.truncated_gzip, "gzip data is truncated"),
    "gzip_bomb": (corpus.gzip_bomb, f"larger than the {corpus.CAP_MIB} MiB limit"),
    "no_filesystem": (corpus.not_a_filesystem, "no gzip, ISO9660, FAT or base64 signature"),
    "iso_wrong_label": (corpus.iso_wrong_label, "volume label is 'WRONG-LABEL'"),
    "vfat_missing_label": (corpus.vfat_without_label, "volume label is None"),
    "iso_joliet_label_differs": (corpus.iso_joliet_label_differs,
                                 "volume label is 'config-2' in the primary volume descriptor "
                                 "but 'WRONG-JOLIET' in the Joliet one"),
}


def _image_file(tmp_path: pathlib.Path, case: str) -> pathlib.Path:
    data = IMAGE_CASES[case][0]()
    path = tmp_path / "drive.img"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_validate_reports_problem(tmp_path: pathlib.Path, case: str) -> None:
    result = cli("validate", str(_image_file(tmp_path, case)))
    assert_failed(result, 1, IMAGE_CASES[case][1])
    assert result.stderr.startswith("problem: ") and result.stdout == ""


@pytest.mark.parametrize("command", ["inspect", "validate"])
def test_unreadable_image(tmp_path: pathlib.Path, command: str) -> None:
    assert_failed(cli(command, str(tmp_path / "missing.img")), 2, "cannot read image")


@pytest.mark.parametrize("case", ["corrupt_gzip", "no_filesystem"])
def test_inspect_undecodable_image(tmp_path: pathlib.Path, case: str) -> None:
    result = cli("inspect", str(_image_file(tmp_path, case)))
    assert_failed(result, 1, IMAGE_CASES[case][1])


# -- write on a loop device ----------------------------------------------------------------

WRITE_FILE_CASES: dict[str, tuple[Callable[[], bytes | str], list[str], str]] = {
    "corrupt_gzip": (corpus.corrupt_gzip, [], "corrupt gzip data"),
    "gzip_bomb": (corpus.gzip_bomb, [], f"larger than the {corpus.CAP_MIB} MiB limit"),
    "no_filesystem": (corpus.not_a_filesystem, [],
                      "no gzip, ISO9660, FAT or base64 signature"),
    "sha256_mismatch": (corpus.iso, ["--sha256", "cd" * 32], "expected " + "cd" * 32),
    "size_mismatch": (corpus.iso, ["--size", "4096"],
                      "larger than the expected 4096 bytes"),
    "size_zero": (corpus.iso, ["--size", "0"], "size 0 is outside"),
    "certfile_without_key": (corpus.packed, ["--certfile", "/etc/hostname"],
                             "--client-cert and --client-key go together"),
}


@pytest.mark.loopdev
@pytest.mark.parametrize("case", list(WRITE_FILE_CASES))
def test_write_refuses(tmp_path: pathlib.Path, loopdisk: Callable[..., LoopDisk],
                       case: str) -> None:
    make, extra, phrase = WRITE_FILE_CASES[case]
    data = make()
    source = tmp_path / "drive.bin"
    source.write_bytes(data.encode() if isinstance(data, str) else data)
    disk = loopdisk(128, layout=sgdisk("-o"))
    before = snapshot(disk)
    result = cli("write", "--device", disk.device, "--file", str(source), "--quiet", *extra)
    assert_failed(result, 1, phrase)
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(disk) == before


@pytest.mark.loopdev
def test_write_url_404(loopdisk: Callable[..., LoopDisk],
                       server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    before = snapshot(disk)
    result = cli("write", "--device", disk.device, "--quiet",
                 "--url", server.url("/gone", "temp_url_sig=" + corpus.SECRET))
    assert_failed(result, 1, "HTTP 404 Not Found")
    assert snapshot(disk) == before


@pytest.mark.loopdev
def test_write_unsupported_scheme(loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    before = snapshot(disk)
    result = cli("write", "--device", disk.device, "--url", "ftp://127.0.0.1/drive.gz")
    assert_failed(result, 1, "is not http(s)")
    assert snapshot(disk) == before


@pytest.mark.loopdev
def test_write_missing_file(tmp_path: pathlib.Path, loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    before = snapshot(disk)
    result = cli("write", "--device", disk.device, "--file", str(tmp_path / "nope.gz"))
    assert_failed(result, 2, "cannot read config drive file")
    assert snapshot(disk) == before


def test_write_missing_device(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "drive.b64"
    source.write_text(corpus.packed())
    device = "/dev/ironic-configdrive-corpus-no-such-disk"
    result = cli("write", "--device", device, "--file", str(source), "--quiet")
    assert_failed(result, 1, f"device {device}: no such device")
