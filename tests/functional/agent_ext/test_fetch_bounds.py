"""``configdrive.write`` through IPA 13's extension manager against hostile or broken servers.

A real loopback server (``tests/fixtures/http.py``) sends endless, trickling or re-encoded
bodies; the agent must stop at its wire cap or deadline, refuse encodings it did not ask for,
leave no config drive behind, and log no URL secret even at DEBUG.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ironic_python_agent import encoding
from ironic_python_agent import errors as ipa_errors

from agent_ext.errors import DownloadDeadlineExceeded
from agent_ext.fetch import CHUNK_SIZE, WIRE_CAP, FetchOptions, HTTPSource
from ironic_configdrive.image import build_image
from tests.fixtures import http as http_fixture
from tests.functional.agent_ext.conftest import (
    Agent,
    TLSFiles,
    b64gz,
    disk_nodes,
    read_node,
    sha256,
)
from tests.functional.agent_ext.disk.conftest import blkid_config_drives, sgdisk

pytestmark = pytest.mark.loopdev

SIG = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
#: The http store's file name: node uuid, deploy id, then 256 random bits (the only secret).
SECRET_NAME = "Qm9vdHN0cmFwU2VjcmV0TmFtZU9mVGhlRHJpdmUxMjM"
NODE = "5d0c7ac1-8e8e-4a3c-9b53-0f3c2b8f7f11"
STORE_PATH = f"/configdrive/{NODE}.0f1e2d3c4b5a69788796a5b4c3d2e1f0.{SECRET_NAME}.gz"
META = {"meta_data": {"uuid": NODE, "name": "bounded"}, "user_data": "#cloud-config\n"}


def run(agent: Agent, command: str, **params: Any) -> dict[str, Any]:
    if command == "configdrive.write":
        # The loop disk is the operator's choice here (driver_info/configdrive_device).
        params.setdefault("device_from_operator", True)
    result = agent.execute_command(command, **params)
    result.join()
    return json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder))


def endless_members(image: bytes) -> Iterator[bytes]:
    """base64 of ``image`` gzipped, then of empty gzip members forever (valid gzip: members
    follow one another), so the decoded output never reaches its cap."""
    empty = gzip.compress(b"", mtime=0)
    head = gzip.compress(image, mtime=0)
    while len(head) % 3:  # whole base64 quanta, so the pieces concatenate
        head += empty
    yield base64.b64encode(head)
    tail = base64.b64encode(empty * 3 * 1024)
    while True:
        yield tail


def test_a_body_longer_than_the_wire_cap_is_cut_there(
        agent: Agent, loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    # A valid 2 MiB drive, then empty gzip members without end, sent chunked without
    # Content-Length: the decoded output stays at 2 MiB, so its 64 MiB cap never trips, and
    # the decoder's own input bound (the largest encoding of a 64 MiB image) lies above
    # the agent's cap on wire bytes, which is what stops it.
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({**META, "user_data": os.urandom(2 * 1024 * 1024)})
    server.fault("/o", ("chunked", lambda: endless_members(image)))
    out = run(agent, "configdrive.write", device=disk.device, configdrive=server.url("/o"),
              sha256=sha256(image))
    assert out["command_status"] == "FAILED"
    assert out["command_error"]["error_type"] == "DownloadTooLarge"
    assert f"more than {WIRE_CAP} bytes" in out["command_error"]["details"]
    # What the server got out before the agent hung up: the cap, plus what socket buffers
    # and the one-chunk prefetch queue hold.
    assert WIRE_CAP < server.sent["/o"] < WIRE_CAP + 16 * 1024 * 1024 + 2 * CHUNK_SIZE
    assert blkid_config_drives(*disk_nodes(disk.device)) == []


def test_a_trickling_store_fails_the_write_at_its_deadline(
        agent: Agent, loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    # One byte every 10 ms: every read gets data long before IPA's 60 s socket timeout, and
    # the whole drive would take well over 10 s. The conductor's 1 s deadline ends it.
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image(META)
    server.objects["/o"] = b64gz(image)
    assert len(server.objects["/o"]) > 1000
    server.fault("/o", ("trickle", 0.01))
    out = run(agent, "configdrive.write", device=disk.device,
              configdrive=server.url("/o", f"temp_url_sig={SIG}"), download_timeout=1)
    assert out["command_status"] == "FAILED"
    assert out["command_error"]["error_type"] == "DownloadDeadlineExceeded"
    assert "did not finish within 1 s" in out["command_error"]["details"]
    assert SIG not in json.dumps(out)
    assert server.sent["/o"] < len(server.objects["/o"])
    assert disk.kernel_partitions() == {}


def test_a_compressed_answer_is_refused_before_the_disk_is_touched(
        agent: Agent, loopdisk: Callable, server: http_fixture.ObjectServer) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image(META)
    server.objects["/o"] = b64gz(image)
    server.fault("/o", ("encoding", "gzip"))
    out = run(agent, "configdrive.write", device=disk.device, configdrive=server.url("/o"))
    assert out["command_status"] == "FAILED"
    assert out["command_error"]["error_type"] == "TransferError"
    assert "Content-Encoding 'gzip'" in out["command_error"]["details"]
    assert [r.accept_encoding for r in server.requests] == ["identity"]
    assert disk.kernel_partitions() == {}


def test_an_unusable_download_timeout_is_refused_at_once(agent: Agent) -> None:
    with pytest.raises(ipa_errors.InvalidCommandParamsError,
                       match="download_timeout 0 is outside"):
        agent.execute_command("configdrive.write", device="/dev/null",
                              configdrive="http://127.0.0.1:9/o", download_timeout=0)


def test_no_url_secret_in_any_debug_line_of_a_write(
        agent: Agent, loopdisk: Callable, server: http_fixture.ObjectServer,
        caplog: pytest.LogCaptureFixture) -> None:
    # A retried 500 and a resumed drop make urllib3 and the agent log the request path in
    # several ways; the drive's URL carries a temp URL signature and a secret file name.
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({**META, "user_data": os.urandom(1024 * 1024)})
    blob = b64gz(image)
    server.objects[STORE_PATH] = blob
    server.fault(STORE_PATH, ("status", 500), ("drop", len(blob) // 2))
    caplog.set_level(logging.DEBUG)
    # oslo.log's default_log_levels (set up by other tests) hold urllib3's pool at WARNING.
    for name in ("urllib3.connectionpool", "urllib3.util.retry"):
        caplog.set_level(logging.DEBUG, logger=name)
    out = run(agent, "configdrive.write", device=disk.device,
              configdrive=server.url(STORE_PATH, f"temp_url_sig={SIG}&temp_url_expires=9"),
              sha256=sha256(image), download_timeout=60)
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert out["command_result"]["resumes"] == 1
    assert read_node(out["command_result"]["path"], len(image)) == image
    lines = [record.getMessage() for record in caplog.records]
    logged = "\n".join(lines) + caplog.text + json.dumps(out)
    assert SIG not in logged and SECRET_NAME not in logged
    # urllib3 did log the request (masked), the retry and the resume did happen.
    masked_path = f"{NODE}.0f1e2d3c4b5a69788796a5b4c3d2e1f0.***.gz?***"
    assert any(f'"GET /configdrive/{masked_path} HTTP/1.1" 500' in line for line in lines)
    assert any(line.startswith("Incremented Retry") for line in lines)
    assert any("resuming" in line for line in lines)


def test_the_deadline_also_cuts_a_tls_trickle(tls_server: http_fixture.ObjectServer,
                                              tls_files: TLSFiles) -> None:
    # The watchdog shuts the TLS connection's socket down under the SSL layer.
    tls_server.objects["/o"] = os.urandom(400)
    tls_server.fault("/o", ("trickle", 0.01))
    options = FetchOptions(verify=tls_files.ca, retries=2, backoff_factor=0.0,
                           connect_timeout=30, read_timeout=30, download_timeout=0.5)
    source = HTTPSource(tls_server.url("/o"), options)
    with pytest.raises(DownloadDeadlineExceeded):
        list(source)
    assert tls_server.sent["/o"] < 400
