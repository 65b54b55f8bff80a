"""No URL secret in any conductor log line at DEBUG: real Swift and the http store.

The deploy interface installs the masking when Ironic loads it; then everything that logs
while drives are stored, checked and downloaded (urllib3, requests, swiftclient, ours) is
captured at DEBUG and searched for the temp URL signatures and the http store's secret
file name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oslo_config import fixture as cfg_fixture

from ironic_configdrive import deploy, source
from ironic_configdrive.store.http import HttpStore
from ironic_configdrive.store.swift import SwiftStore
from tests.fixtures.logs import enable_all_loggers
from tests.fixtures.swift import SwiftServer

pytestmark = pytest.mark.swift

NODE = "7a4b0e52-31c6-4d0e-8f7e-2f6a0c1d9e88"


def test_no_url_secret_in_any_debug_line(
        swift_server: SwiftServer, container: str, conf: cfg_fixture.Config,
        http_server: tuple[Path, str], drive_image: bytes,
        caplog: pytest.LogCaptureFixture) -> None:
    enable_all_loggers()
    deploy.ConfigDriveDeploy()  # what Ironic does when it loads the interface
    caplog.set_level(logging.DEBUG)
    # oslo.log's default_log_levels (set up by other tests) hold urllib3's pool at WARNING.
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")

    swift = SwiftStore.from_credentials(swift_server.auth_url, swift_server.user,
                                        swift_server.key, container=container,
                                        temp_url_duration=600, delete_after=3600)
    in_swift = swift.put(NODE, drive_image, deploy_id="d1")
    resigned = swift.url_for(in_swift.location, node_uuid=NODE)  # checked with a HEAD
    # As the conductor reads back a stored drive: its own store, trusted.
    assert source.fetch(resigned, policy=source.TRUSTED) == drive_image
    # As other code on the conductor does (a BMC media check, sushy): through urllib3's
    # connection pool, which logs the request line. (The store's own check of a re-signed
    # URL may be cached by an earlier test.)
    requests.head(resigned, timeout=10).raise_for_status()
    swift.delete(in_swift.location, node_uuid=NODE)

    root, url = http_server
    conf.config(http_root=str(root), http_url=url, group="deploy")
    on_disk = HttpStore().put(NODE, drive_image, deploy_id="d2")
    assert source.fetch(on_disk.url, policy=source.TRUSTED) == drive_image
    requests.get(on_disk.url, timeout=10).raise_for_status()
    HttpStore().delete(on_disk.location, node_uuid=NODE)

    signatures = [parse_qs(urlsplit(u).query)["temp_url_sig"][0]
                  for u in (in_swift.url, resigned)]
    secret_name = Path(urlsplit(on_disk.url).path).name.split(".")[2]
    assert len(secret_name) >= 43
    lines = [record.getMessage() for record in caplog.records]
    logged = "\n".join(lines) + caplog.text
    for secret in (*signatures, secret_name):
        assert secret not in logged
    # The lines are there, masked: urllib3 quoted the temp URL check and the download.
    assert any(f"HEAD /v1/AUTH_test/{container}/{NODE}/d1?***" in line for line in lines)
    assert any(f'"GET /configdrive/{NODE}.d2.***' in line for line in lines)
