"""``configdrive.*`` commands loaded by IPA 13's extension manager, on real loop devices."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from ironic_python_agent import encoding
from oslo_config import cfg

from ironic_configdrive.image import build_image, sealing
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

SIG = "feedfacefeedfacefeedfacefeedfacefeedface"


def run(agent: Agent, command: str, **params: Any) -> dict[str, Any]:
    result = agent.execute_command(command, **params)
    result.join()
    return json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder))


def test_write_status_remove_through_ipa(
    agent: Agent, loopdisk: Callable, server: http_fixture.ObjectServer
) -> None:
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "3f0c9a2e-7777-4888-9999-000011112222"}})
    server.objects["/o"] = b64gz(image)
    url = server.url("/o", f"temp_url_sig={SIG}&temp_url_expires=9")

    out = run(agent, "configdrive.status", device=disk.device)
    assert out["command_status"] == "SUCCEEDED" and out["command_result"]["present"] is False

    out = run(
        agent,
        "configdrive.write",
        device=disk.device,
        device_from_operator=True,  # the operator's disk (driver_info/configdrive_device)
        configdrive=url,
        sha256=sha256(image),
        size=len(image),
    )
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    written = out["command_result"]
    assert SIG not in json.dumps(out)
    assert blkid_config_drives(*disk_nodes(disk.device)) == [written["path"]]
    assert read_node(written["path"], len(image)) == image

    out = run(agent, "configdrive.status", device=disk.device)
    assert out["command_result"]["sha256"] == sha256(image)

    out = run(agent, "configdrive.remove", device=disk.device)
    assert out["command_status"] == "SUCCEEDED" and out["command_result"]["removed"] is True
    assert blkid_config_drives(*disk_nodes(disk.device)) == []


def test_inline_data_and_failure_reply(agent: Agent, loopdisk: Callable) -> None:
    # 256 MiB: the failed write leaves its (wiped) 64 MiB partition behind, see
    # test_write.py::test_failed_write_then_retry.
    disk = loopdisk(256, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "u"}})
    out = run(
        agent,
        "configdrive.write",
        device=disk.device,
        device_from_operator=True,  # the operator's disk (driver_info/configdrive_device)
        configdrive=b64gz(image).decode(),
        sha256="0" * 64,
    )
    assert out["command_status"] == "FAILED"
    error = out["command_error"]
    assert error["type"] == "ConfigDriveCommandError" and error["category"] == "verification"
    assert disk.device in error["details"] and "sha256" in error["details"]
    assert blkid_config_drives(*disk_nodes(disk.device)) == []

    out = run(
        agent,
        "configdrive.write",
        device=disk.device,
        device_from_operator=True,  # the operator's disk (driver_info/configdrive_device)
        configdrive=b64gz(image).decode(),
        sha256=sha256(image),
    )
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert blkid_config_drives(*disk_nodes(disk.device)) == [out["command_result"]["path"]]


def test_missing_device_node(agent: Agent) -> None:
    out = run(agent, "configdrive.status", device="/dev/ironic-configdrive-no-such-disk")
    assert out["command_status"] == "FAILED"
    assert "/dev/ironic-configdrive-no-such-disk" in out["command_error"]["details"]


def test_tls_with_ipa_cafile(agent: Agent, loopdisk: Callable,
                             tls_server: http_fixture.ObjectServer, tls_files: TLSFiles,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """IPA's own [DEFAULT]cafile (and TLS policy) apply to config drive downloads."""
    disk = loopdisk(128, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "tls"}})
    tls_server.objects["/o"] = b64gz(image)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    cfg.CONF.set_override("image_download_connection_retries", 0)
    try:
        out = run(agent, "configdrive.write", device=disk.device, device_from_operator=True,
                  configdrive=tls_server.url("/o"))
        assert out["command_status"] == "FAILED"
        assert "TLS verification failed" in out["command_error"]["details"]
        cfg.CONF.set_override("cafile", tls_files.ca)
        out = run(agent, "configdrive.write", device=disk.device, device_from_operator=True,
                  configdrive=tls_server.url("/o"), sha256=sha256(image))
        assert out["command_status"] == "SUCCEEDED", out["command_error"]
    finally:
        cfg.CONF.clear_override("cafile")
        cfg.CONF.clear_override("image_download_connection_retries")
    assert read_node(out["command_result"]["path"], len(image)) == image


def test_sealed_drive_is_opened_while_streaming_and_its_key_never_logged(
    agent: Agent, loopdisk: Callable, server: http_fixture.ObjectServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk = loopdisk(256, layout=sgdisk("-o"))
    image = build_image({"meta_data": {"uuid": "sealed"}, "user_data": "#!/bin/sh\necho s3cr3t\n"})
    key = sealing.new_key()
    packed = gzip.compress(image)
    server.objects["/sealed"] = sealing.seal(packed, key, chunk_size=4096)
    sealed_source = {"url": server.url("/sealed", f"temp_url_sig={SIG}"),
                     "key": sealing.encode_key(key)}
    caplog.set_level(logging.DEBUG)

    # Tampered in the middle: fails without leaving a valid-looking drive.
    tampered = bytearray(server.objects["/sealed"])
    tampered[len(tampered) // 2] ^= 1
    server.objects["/tampered"] = bytes(tampered)
    out = run(agent, "configdrive.write", device=disk.device, device_from_operator=True,
              configdrive={**sealed_source, "url": server.url("/tampered")},
              sha256=sha256(image), size=len(image))
    assert out["command_status"] == "FAILED"
    assert "fails authentication" in out["command_error"]["details"]
    assert blkid_config_drives(*disk_nodes(disk.device)) == []

    out = run(agent, "configdrive.write", device=disk.device, device_from_operator=True,
              configdrive=sealed_source,
              sha256=sha256(image), size=len(image))
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert out["command_result"]["encrypted"] is True
    assert read_node(out["command_result"]["path"], len(image)) == image
    logged = caplog.text + json.dumps(out)
    assert "Executing command: configdrive.write" in caplog.text  # IPA's own debug line
    for secret in (sealing.encode_key(key), SIG, "s3cr3t"):
        assert secret not in logged


def test_sealed_drive_with_a_bad_key_field_is_refused_at_once(agent: Agent) -> None:
    with pytest.raises(Exception, match="key is not hexadecimal") as caught:
        agent.execute_command("configdrive.write", device="/dev/null",
                              configdrive={"url": "http://x/o", "key": "zz" * 32})
    assert "zz" * 32 not in str(caught.value)
    with pytest.raises(Exception, match="unknown configdrive field"):
        agent.execute_command("configdrive.write", device="/dev/null",
                              configdrive={"url": "http://x/o", "cipher": "rot13"})
