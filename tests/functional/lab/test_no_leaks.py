"""No secret leaks: complete lab flows at DEBUG, then every file of the workdir searched.

Seeded secrets (user_data, admin_pass, an SSH public key, a network secret) go through a
partition deploy, an update on the ACTIVE node, a rebuild, an undeploy with cleaning, a
virtual media deploy, its update and undeploy. Secrets only known at run time are collected
on the way: each drive's encryption key (unwrapped with the lab's key file), the agent
tokens, and the decrypted copies' secret file names. Swift's object files are searched while
drives are stored (they must hold ciphertext only), and the whole workdir (logs, sqlite,
Swift data, http root, BMC downloads, the loop disk) after ``down``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ironic_configdrive import keys
from ironic_configdrive.image import sealing
from ironic_configdrive_lab import leaks, node_cmd, up_cmd
from ironic_configdrive_lab.workdir import Workdir
from tests.functional.lab.test_lab import _require_lab

pytestmark = pytest.mark.lab

SECRETS = {
    "user_data": "UD-SECRET-7f3a91c2e4",
    "admin_pass": "ADMINPASS-5b8e2d1f90",
    "public key": "AAAAC3NzaC1lZDI1NTE5AAAAIPUBKEYSECRETb64c0ffee00000000000000000",
    "network secret": "NETPSK-9c4e1a7b3d",
}


def _drive(name: str) -> str:
    return json.dumps({
        "meta_data": {"name": name, "hostname": name, "admin_pass": SECRETS["admin_pass"],
                      "public_keys": {"k": f"ssh-ed25519 {SECRETS['public key']} lab@x"}},
        "user_data": f"#cloud-config\nhostname: {name}\npassword: {SECRETS['user_data']}\n",
        "network_data": {"links": [], "networks": [],
                         "services": [{"type": "dns", "address": "192.0.2.53",
                                       "psk": SECRETS["network secret"]}]},
    })


class Collector:
    """Run-time secrets, read from the lab's own state while the flow runs."""

    def __init__(self, workdir: Workdir) -> None:
        self.workdir = workdir
        self.found: dict[str, str] = {}

    def _driver_internal_info(self) -> dict[str, Any]:
        db = sqlite3.connect(f"file:{self.workdir.root / 'ironic.sqlite'}?mode=ro", uri=True)
        try:
            (value,) = db.execute("SELECT driver_internal_info FROM nodes").fetchone()
        finally:
            db.close()
        return dict(json.loads(value or "{}"))

    def collect(self, label: str) -> None:
        info = self._driver_internal_info()
        token = info.get("agent_secret_token")
        if token:
            self.found[f"agent token ({label})"] = str(token)
        stored = (info.get("configdrive") or {}).get("stored") or {}
        wrapped = stored.get("wrapped_key")
        assert wrapped, f"{label}: the stored drive is not encrypted: {stored}"
        kek_path = str(self.workdir.etc / "configdrive.key")
        key = keys.unwrap(keys.load_kek(kek_path), wrapped, path=kek_path)
        self.found[f"drive key hex ({label})"] = sealing.encode_key(key)
        for path in (self.workdir.http_root / "configdrive").glob("*.iso"):
            self.found[f"http store name ({label})"] = path.name.split(".")[2]

    def assert_store_holds_ciphertext(self, label: str) -> None:
        assert list((self.workdir.root / "swift").rglob("*.data")), \
            f"{label}: no Swift object file to search"
        hits = leaks.scan(self.workdir.root / "swift", SECRETS)
        assert hits == {}, f"{label}: secrets in Swift's files: {hits}"


def test_complete_flows_at_debug_leak_nothing(tmp_path: Path) -> None:
    _require_lab()
    workdir = Workdir.at(tmp_path / "lab")
    collector = Collector(workdir)
    try:
        up_cmd.up(workdir, debug=True, store="swift")
        node_cmd.deploy(workdir, config_drive=_drive("p1"), exposure="partition")
        collector.collect("partition deploy")
        collector.assert_store_holds_ciphertext("partition deploy")
        node_cmd.update(workdir, config_drive=_drive("p2"))
        collector.collect("partition update")
        collector.assert_store_holds_ciphertext("partition update")
        node_cmd.deploy(workdir, config_drive=_drive("p3"), exposure="partition")  # a rebuild
        collector.collect("rebuild")
        node_cmd.undeploy(workdir)
        node_cmd.deploy(workdir, config_drive=_drive("v1"), exposure="virtual_media")
        collector.collect("virtual media deploy")
        collector.assert_store_holds_ciphertext("virtual media deploy")
        node_cmd.update(workdir, config_drive=_drive("v2"))
        collector.collect("virtual media update")
        node_cmd.undeploy(workdir)
    finally:
        up_cmd.down(workdir, quiet=True)

    assert any(name.startswith("http store name") for name in collector.found)
    logs = sorted(p.name for p in workdir.logs.glob("*.log"))
    assert {"agent.log", "ironic.log"} <= set(logs)
    assert "DEBUG" in (workdir.logs / "ironic.log").read_text(errors="replace")
    needles = {**SECRETS, **collector.found}
    hits = leaks.scan(workdir.root, needles)
    assert hits == {}, (f"secrets found in {leaks.count_files(workdir.root)} files: "
                        + json.dumps(hits, indent=1))
