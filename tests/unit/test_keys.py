"""Key-encryption key files (checks, atomic creation), the keyring and wrapped drive keys."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ironic_configdrive import keys
from ironic_configdrive.image import sealing

OTHER_UID = 54321


def _key_file(path: Path, content: str | None = None, mode: int = 0o600) -> Path:
    """A key file as an operator might have left it."""
    path.write_text(content if content is not None else os.urandom(32).hex() + "\n")
    path.chmod(mode)
    return path


def _assert_no_material(message: str, path: Path) -> None:
    content = path.read_text().strip() if path.is_file() else ""
    assert not content or content not in message


# -- creation -----------------------------------------------------------------------------


def test_kek_created_once_with_mode_0600_and_fingerprint_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "kek"
    with caplog.at_level(logging.DEBUG, logger="ironic_configdrive.keys"):
        first = keys.read_kek(str(path), create=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.load_kek(str(path)) == first.material and len(first.material) == 32
    assert first.fingerprint in caplog.text and "Every conductor" in caplog.text
    assert first.material.hex() not in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["kek"]  # no temporary file left
    assert first.material.hex() not in repr(first)


def _race(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        results.put(keys.read_kek(path, create=True).fingerprint)
    except Exception as exc:  # reported to the test, which fails on it
        results.put(f"error: {exc}")


def test_concurrent_creation_ends_with_one_key_for_all(tmp_path: Path) -> None:
    """Six conductors starting at once on a fresh path: every one gets the winner's key."""
    context = multiprocessing.get_context("fork")
    for attempt in range(40):
        path = str(tmp_path / f"kek-{attempt}")
        barrier = context.Barrier(6)
        results = context.Queue()
        workers = [context.Process(target=_race, args=(path, barrier, results))
                   for _ in range(6)]
        for worker in workers:
            worker.start()
        got = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join()
        assert got == [keys.read_kek(path, create=False).fingerprint] * 6, got
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"kek-{n}" for n in range(40))


def _crash_before_link(path: str) -> None:
    def crash(*_: Any) -> None:
        os._exit(9)

    os.link = crash  # type: ignore[assignment]
    keys.read_kek(path, create=True)


def test_a_crash_while_creating_leaves_no_key_file(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    crashed = multiprocessing.get_context("fork").Process(target=_crash_before_link,
                                                          args=(str(path),))
    crashed.start()
    crashed.join()
    assert crashed.exitcode == 9
    assert not path.exists()  # never an empty or partial key under the final name
    kek = keys.read_kek(str(path), create=True)  # the next start simply creates it
    assert keys.read_kek(str(path), create=False) == kek


def test_creation_failure_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "kek"
    with pytest.raises(keys.DriveKeyError, match="cannot be created") as caught:
        keys.load_kek(str(path))
    assert str(path) in str(caught.value) and "create its directory" in str(caught.value)


def test_missing_file_without_creation_explains_the_shared_key(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.read_kek(str(path), create=False)
    message = str(caught.value)
    assert f"{path} does not exist and [configdrive]key_file_create is off" in message
    assert "same file on every conductor" in message
    assert f"ironic-configdrive-keys generate {path}" in message
    assert not path.exists()


def test_generate_never_replaces_a_key(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    kek = keys.generate(str(path))
    with pytest.raises(keys.DriveKeyError, match="already exists"):
        keys.generate(str(path))
    assert keys.load_kek(str(path), create=False) == kek.material


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o601, 0o610])
def test_group_or_other_permissions_are_refused(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path / "kek", mode=mode)
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.load_kek(str(path))
    message = str(caught.value)
    assert f"the key file {path} has mode {mode:04o}" in message
    assert f"run: chmod 600 {path}" in message
    _assert_no_material(message, path)


def test_stricter_modes_are_accepted(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "kek", mode=0o400)
    assert len(keys.load_kek(str(path))) == 32


def test_another_owner_is_refused(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "kek")
    os.chown(path, OTHER_UID, -1)
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.load_kek(str(path))
    message = str(caught.value)
    assert f"{path} is owned by uid {OTHER_UID}, not by the conductor's user" in message
    assert f"run: chown {keys._user()} {path}" in message
    _assert_no_material(message, path)


@pytest.mark.parametrize("dangling", [False, True])
def test_symbolic_links_are_not_followed(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "real"
    if not dangling:
        _key_file(target)
    link = tmp_path / "kek"
    link.symlink_to(target)
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.load_kek(str(link))
    assert f"the key file {link} is a symbolic link" in str(caught.value)
    assert "set [configdrive]key_file to the real file" in str(caught.value)
    assert dangling is not target.exists()  # nothing created through the link


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(keys.DriveKeyError, match="is not a regular file"):
        keys.load_kek(str(tmp_path))


def test_an_empty_file_says_what_to_do(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "kek", content="")
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.load_kek(str(path))
    message = str(caught.value)
    assert f"the key file {path} is empty" in message
    assert "copy the key file every conductor uses" in message


@pytest.mark.parametrize("content", ["zz" * 32, "ab" * 16, "ab" * 33, "SECRET-not-a-key\n",
                                     "é" * 64, "a" * 10000])
def test_a_malformed_file_says_what_to_do(tmp_path: Path, content: str) -> None:
    path = _key_file(tmp_path / "kek", content=content)
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.load_kek(str(path))
    message = str(caught.value)
    assert f"the key file {path} does not hold a key (64 hexadecimal digits" in message
    assert "copy the key file every conductor uses" in message
    assert content.strip()[:16] not in message


# -- wrapping and rotation -----------------------------------------------------------------


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


def test_keyring_unwraps_old_keys_and_rewraps_with_the_current_one(tmp_path: Path) -> None:
    old = keys.read_kek(str(tmp_path / "old"), create=True)
    key = sealing.new_key()
    wrapped = keys.Keyring(old).wrap(key)
    ring = keys.load_keyring(str(tmp_path / "new"), [str(tmp_path / "old")], create=True)
    assert keys.fingerprint_of(wrapped) == old.fingerprint != ring.current.fingerprint
    assert not ring.is_current(wrapped)
    assert ring.unwrap(wrapped) == key
    rewrapped = ring.rewrap(wrapped)
    assert keys.fingerprint_of(rewrapped) == ring.current.fingerprint
    assert ring.unwrap(rewrapped) == key
    assert ring.rewrap(rewrapped) == rewrapped  # current keys are left alone
    assert keys.Keyring(ring.current).unwrap(rewrapped) == key  # old file no longer needed


def test_unknown_fingerprint_lists_what_this_conductor_has(tmp_path: Path) -> None:
    stranger = keys.read_kek(str(tmp_path / "stranger"), create=True)
    key = sealing.new_key()
    wrapped = keys.Keyring(stranger).wrap(key)
    keys.read_kek(str(tmp_path / "old"), create=True)
    ring = keys.load_keyring(str(tmp_path / "new"), [str(tmp_path / "old")], create=True)
    with pytest.raises(keys.DriveKeyError) as caught:
        ring.unwrap(wrapped)
    message = str(caught.value)
    assert f"fingerprint {stranger.fingerprint}" in message
    for kek in (ring.current, *ring.old):
        assert f"{kek.fingerprint} in {kek.path}" in message
    assert "[configdrive]old_key_files" in message
    for secret in (key.hex(), stranger.material.hex(), ring.current.material.hex()):
        assert secret not in message


def test_old_key_files_are_checked_and_never_created(tmp_path: Path) -> None:
    with pytest.raises(keys.DriveKeyError) as caught:
        keys.load_keyring(str(tmp_path / "new"), [str(tmp_path / "gone")], create=True)
    assert f"{tmp_path / 'gone'} is listed in [configdrive]old_key_files but does not " \
           "exist" in str(caught.value)
    assert not (tmp_path / "gone").exists()
    _key_file(tmp_path / "loose", mode=0o644)
    with pytest.raises(keys.DriveKeyError, match="chmod 600"):
        keys.load_keyring(str(tmp_path / "new"), [str(tmp_path / "loose")], create=True)
