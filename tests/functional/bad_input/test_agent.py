"""Bad inputs to ``configdrive.write`` through IPA's extension manager, on real loop devices.

Each case snapshots the disk (sha256 of the whole backing file, the kernel's partition list)
before the command and checks both are unchanged afterwards: a refused write leaves no byte
behind, not even a wiped partition. The disks are small, so hashing all of them is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ironic_python_agent import encoding
from oslo_config import cfg

from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.conftest import Agent, loaded_agent
from tests.functional.agent_ext.disk.conftest import LoopDisk, parted, sgdisk
from tests.functional.bad_input import corpus
from tests.functional.bad_input.corpus import snapshot

pytestmark = pytest.mark.loopdev

SIG = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2"


@pytest.fixture
def agent() -> Iterator[Agent]:
    cfg.CONF.set_override("image_download_connection_retries", 0)  # 5xx: fail, no backoff
    try:
        with loaded_agent() as loaded:
            yield loaded
    finally:
        cfg.CONF.clear_override("image_download_connection_retries")


def write(agent: Agent, **params: Any) -> dict[str, Any]:
    params.setdefault("device_from_operator", True)  # the operator's disk: inputs are the point
    try:
        result = agent.execute_command("configdrive.write", **params)
    except Exception as exc:  # a synchronous parameter error (HTTP 400 in IPA's API)
        return {"command_status": "FAILED", "command_error": json.loads(
            json.dumps(exc, cls=encoding.RESTJSONEncoder))}
    result.join()
    return dict(json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder)))


def refused(agent: Agent, disk: LoopDisk, phrase: str, *, category: str | None = None,
            names_device: bool = False, **params: Any) -> str:
    """Run the write; assert it failed naming the cause and the disk is byte-identical."""
    before = snapshot(disk)
    out = write(agent, device=disk.device, **params)
    assert out["command_status"] == "FAILED", out
    error = out["command_error"]
    details = error["details"]
    assert phrase in details
    if category is not None:
        assert error["category"] == category
    if names_device:
        assert disk.device in details
    assert "Traceback" not in json.dumps(out)
    for secret in (corpus.SECRET, SIG):
        assert secret not in json.dumps(out)
    assert snapshot(disk) == before
    return str(details)


GPT = sgdisk("-o")


def test_snapshot_sees_a_good_write(agent: Agent, loopdisk: Callable[..., LoopDisk]) -> None:
    """Control: the snapshot the cases compare does change when a write succeeds."""
    disk = loopdisk(128, layout=GPT)
    before = snapshot(disk)
    out = write(agent, device=disk.device, configdrive=corpus.packed(),
                sha256=corpus.sha256(corpus.iso()))
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    after = snapshot(disk)
    assert after[0] != before[0] and list(after[1]) == [1]


@pytest.fixture
def gpt_disk(loopdisk: Callable[..., LoopDisk]) -> LoopDisk:
    return loopdisk(128, layout=GPT)


# -- the source: HTTP answers and TLS ---------------------------------------------------------

@pytest.mark.parametrize(("status", "phrase"), [
    (403, "HTTP 403 Forbidden: the temp URL has likely expired"),
    (404, "HTTP 404 Not Found: the stored config drive is gone"),
    (500, "HTTP 500 Internal Server Error after 0 retries"),
    (503, "HTTP 503 Service Unavailable after 0 retries"),
])
def test_http_error(agent: Agent, gpt_disk: LoopDisk, server: http_fixture.ObjectServer,
                    status: int, phrase: str) -> None:
    server.objects["/o"] = corpus.b64(corpus.corrupt_gzip())  # never reached
    server.fault("/o", ("status", status))
    details = refused(agent, gpt_disk, phrase, category="transfer",
                      configdrive=server.url("/o", f"temp_url_sig={SIG}"))
    assert "/o?***" in details


def test_tls_untrusted(agent: Agent, gpt_disk: LoopDisk, tls_server: http_fixture.ObjectServer,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    tls_server.objects["/o"] = corpus.packed().encode()
    refused(agent, gpt_disk, "TLS verification failed", category="transfer",
            configdrive=tls_server.url("/o", f"temp_url_sig={SIG}"))


# -- the stream: encoding, size and hash --------------------------------------------------------

STREAM_CASES = {
    "malformed_base64": (corpus.malformed_base64, "malformed base64 text"),
    "text_in_no_encoding": (corpus.garbage_text, "no gzip, ISO9660, FAT or base64 signature"),
    "corrupt_gzip": (lambda: corpus.b64(corpus.corrupt_gzip()), "corrupt gzip data"),
    "truncated_gzip": (lambda: corpus.b64(corpus.truncated_gzip()), "gzip data is truncated"),
    "gzip_bomb": (lambda: corpus.b64(corpus.gzip_bomb()),
                  f"larger than the {corpus.CAP_MIB} MiB limit"),
    "no_filesystem": (lambda: corpus.b64(corpus.not_a_filesystem()),
                      "decodes to neither gzip nor a filesystem image"),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_bad_stream_inline(agent: Agent, gpt_disk: LoopDisk, case: str) -> None:
    make, phrase = STREAM_CASES[case]
    refused(agent, gpt_disk, phrase, configdrive=make())


def test_gzip_bomb_by_url(agent: Agent, gpt_disk: LoopDisk,
                          server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = corpus.gzip_bomb()
    refused(agent, gpt_disk, f"larger than the {corpus.CAP_MIB} MiB limit",
            configdrive=server.url("/o", f"temp_url_sig={SIG}"))


def test_sha256_mismatch(agent: Agent, gpt_disk: LoopDisk,
                         server: http_fixture.ObjectServer) -> None:
    server.objects["/o"] = corpus.packed().encode()
    refused(agent, gpt_disk, "expected " + "ab" * 32, category="verification",
            configdrive=server.url("/o", f"temp_url_sig={SIG}"), sha256="ab" * 32)


@pytest.mark.parametrize("delta", [-1, 1], ids=["smaller", "larger"])
def test_size_mismatch(agent: Agent, gpt_disk: LoopDisk, delta: int) -> None:
    size = len(corpus.iso()) + delta
    refused(agent, gpt_disk, f"expected {size}", category="verification",
            configdrive=corpus.packed(), size=size)


def test_sha256_not_hex_is_refused_at_once(agent: Agent, gpt_disk: LoopDisk) -> None:
    refused(agent, gpt_disk, "sha256 must be 64 hexadecimal digits",
            configdrive=corpus.packed(), sha256="not-a-digest")


# -- the disk ---------------------------------------------------------------------------------

def test_tiny_disk(agent: Agent, loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(2, layout=GPT)
    refused(agent, disk, "too small", category="device", names_device=True,
            configdrive=corpus.packed(), sha256=corpus.sha256(corpus.iso()))


def test_mbr_four_primaries(agent: Agent, loopdisk: Callable[..., LoopDisk]) -> None:
    steps = ["mklabel", "msdos"]
    for i in range(4):
        steps += ["mkpart", "primary", f"{1 + 20 * i}MiB", f"{20 * (i + 1)}MiB"]
    disk = loopdisk(128, layout=parted(*steps))
    refused(agent, disk, "#4 primary", category="device", names_device=True,
            configdrive=corpus.packed())


def test_no_partition_table(agent: Agent, loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(128)
    refused(agent, disk, "no partition table", category="device", names_device=True,
            configdrive=corpus.packed())


def test_read_only_device(agent: Agent, loopdisk: Callable[..., LoopDisk]) -> None:
    disk = loopdisk(128, file_layout=GPT, read_only=True)
    refused(agent, disk, "read-only", category="device", names_device=True,
            configdrive=corpus.packed())


def test_device_does_not_exist(agent: Agent) -> None:
    device = "/dev/ironic-configdrive-corpus-no-such-disk"
    out = write(agent, device=device, configdrive=corpus.packed())
    assert out["command_status"] == "FAILED"
    details = out["command_error"]["details"]
    assert device in details and "no such device" in details
    assert corpus.SECRET not in json.dumps(out)
