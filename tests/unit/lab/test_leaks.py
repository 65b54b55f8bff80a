"""The lab's secret scanner: every form a leak takes is found, nothing else is."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from ironic_configdrive_lab import leaks

SECRET = "PW-3f9a1c77e2"


@pytest.mark.parametrize("content", [
    SECRET.encode(),
    json.dumps({"user_data": f'say "{SECRET}"\n'}).encode(),
    base64.b64encode(f"x{SECRET}yz".encode()),
    base64.b64encode(f"xy{SECRET}".encode()),
    gzip.compress(f"#cloud-config\npassword: {SECRET}\n".encode()),
    b"\0" * 100 + SECRET.encode() + b"\0" * 100,
])
def test_finds_each_form(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.bin").write_bytes(content)
    assert leaks.scan(tmp_path, {"pw": SECRET}) == {"pw": [str(tmp_path / "sub" / "f.bin")]}


def test_masked_and_unrelated_text_is_clean(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("password: ***\nGET /o?temp_url_sig=***&temp_url_expires=1\n")
    assert leaks.scan(tmp_path, {"pw": SECRET}) == {}


def test_signature_pattern(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("GET /v1/a/c/o?temp_url_sig=" + "ab" * 20 + "&x=1\n")
    assert leaks.scan(tmp_path, {}) == {"temp URL signature": [str(tmp_path / "log")]}


def test_secret_across_a_piece_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaks, "_PIECE", 64)
    (tmp_path / "big").write_bytes(b"a" * 60 + SECRET.encode() + b"b" * 200)
    assert leaks.scan(tmp_path, {"pw": SECRET}) == {"pw": [str(tmp_path / "big")]}


def test_scan_files_searches_only_the_files_given(tmp_path: Path) -> None:
    (tmp_path / "ours.log").write_text(f"user_data: {SECRET}\n")
    (tmp_path / "theirs.log").write_text(f"user_data: {SECRET}\n")
    (tmp_path / "clean.log").write_text("user_data: ***\n")
    assert leaks.scan_files([tmp_path / "ours.log", tmp_path / "clean.log"],
                            {"pw": SECRET}) == {"pw": [str(tmp_path / "ours.log")]}
