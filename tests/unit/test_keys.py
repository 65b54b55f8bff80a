"""The conductor's key-encryption key and the wrapped per-drive keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ironic_configdrive import keys
from ironic_configdrive.image import sealing


def test_kek_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = str(tmp_path / "kek")
    first = keys.load_kek(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.load_kek(path) == first and len(first) == 32


def test_wrap_unwrap_round_trip_and_no_key_in_clear(tmp_path: Path) -> None:
    kek = keys.load_kek(str(tmp_path / "kek"))
    key = sealing.new_key()
    wrapped = keys.wrap(kek, key)
    assert key.hex() not in wrapped
    assert keys.unwrap(kek, wrapped, path="kek") == key


def test_another_conductors_kek_is_named(tmp_path: Path) -> None:
    wrapped = keys.wrap(keys.load_kek(str(tmp_path / "a")), sealing.new_key())
    with pytest.raises(keys.DriveKeyError, match="another key-encryption key") as caught:
        keys.unwrap(keys.load_kek(str(tmp_path / "b")), wrapped, path=str(tmp_path / "b"))
    assert "same [configdrive]key_file" in str(caught.value)


def test_corrupt_wrapped_key(tmp_path: Path) -> None:
    kek = keys.load_kek(str(tmp_path / "kek"))
    fingerprint, _, body = keys.wrap(kek, sealing.new_key()).partition(":")
    with pytest.raises(keys.DriveKeyError, match="corrupt"):
        keys.unwrap(kek, f"{fingerprint}:{body[:-4]}AAAA", path="kek")


@pytest.mark.parametrize("content", ["", "zz" * 32, "ab" * 16])
def test_bad_key_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kek"
    path.write_text(content)
    with pytest.raises(keys.DriveKeyError, match="must hold 64 hexadecimal digits"):
        keys.load_kek(str(path))


def test_key_file_in_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(keys.DriveKeyError, match="cannot create the key file"):
        keys.load_kek(str(tmp_path / "no" / "such" / "kek"))
