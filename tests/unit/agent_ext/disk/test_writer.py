from __future__ import annotations

import errno
import hashlib
import os
from unittest import mock

import pytest

from agent_ext.disk import DriveWriter, Target, blockio, writer
from agent_ext.errors import DeviceError, VerificationError

MIB = 1024 * 1024
CAPACITY = 16 * MIB
OLD = b"\x5a" * CAPACITY


@pytest.fixture(params=["direct", "buffered"])
def target(request, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A regular file standing in for a partition that holds an old drive's bytes."""
    path = tmp_path / "part"
    path.write_bytes(OLD)
    if request.param == "buffered":
        real_open = os.open

        def no_direct(p, flags, *args):  # type: ignore[no-untyped-def]
            if flags & os.O_DIRECT:
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_open(p, flags, *args)

        monkeypatch.setattr(blockio.os, "open", no_direct)
    return Target(device=str(path), path=str(path), partition_number=None, capacity=CAPACITY,
                  logical_sector_size=512, action="whole-device")


def image(size: int) -> bytes:
    return (os.urandom(64) * (size // 64 + 1))[:size]


def content(target: Target, length: int) -> bytes:
    with open(target.path, "rb") as f:
        return f.read(length)


@pytest.mark.parametrize(("size", "chunk"), [
    (1000, 1), (MIB, 1), (MIB + 1, 1),
    *[(size, chunk) for size in (1000, MIB, MIB + 1, 5 * MIB + 333, 9 * MIB)
      for chunk in (7777, 3 * MIB)],
])
def test_writes_exactly_the_image(target, size, chunk):
    data = image(size)
    with DriveWriter(target, check=None) as w:
        for i in range(0, size, chunk):
            w.write(data[i : i + chunk])
        assert (w.size, w.sha256) == (size, hashlib.sha256(data).hexdigest())
        result = w.commit(hashlib.sha256(data).hexdigest(), size)
    assert result == writer.WriteResult(target.path, size, hashlib.sha256(data).hexdigest(),
                                        True)
    assert content(target, size) == data


def test_head_is_zeroed_first_and_written_last(target):
    data = image(6 * MIB)
    calls: list[tuple[int, int, bool]] = []
    real = blockio.BlockFile.write_aligned

    def spy(self, offset, view):  # type: ignore[no-untyped-def]
        mv = memoryview(view)
        calls.append((offset, len(mv), not any(mv[:4096])))
        real(self, offset, view)

    with mock.patch.object(blockio.BlockFile, "write_aligned", spy):
        with DriveWriter(target, check=None) as w:
            w.write(data)
            w.commit()
    assert calls[0] == (0, MIB, True)                     # old signature wiped
    assert all(off >= MIB for off, _n, _z in calls[1:-1])  # body never touches the head
    assert calls[-1][:2] == (0, MIB) and not calls[-1][2]  # head last


@pytest.mark.parametrize("fail", ["sha", "size", "empty"])
def test_mismatch_leaves_head_zeroed(target, fail):
    data = image(3 * MIB)
    w = DriveWriter(target, check=None)
    if fail != "empty":
        w.write(data)
    with pytest.raises(VerificationError) as err:
        if fail == "sha":
            w.commit(expected_sha256="ab" * 32)
        elif fail == "size":
            w.commit(expected_size=len(data) + 1)
        else:
            w.commit()
    assert target.path in err.value.message
    assert content(target, MIB) == bytes(MIB)
    with pytest.raises(DeviceError):
        w.write(b"more")                                  # the writer is finished


def test_exception_inside_context_aborts(target):
    with pytest.raises(RuntimeError), DriveWriter(target, check=None) as w:
        w.write(image(2 * MIB))
        raise RuntimeError("fetch failed")
    assert content(target, MIB) == bytes(MIB)


def test_leaving_context_without_commit_aborts(target):
    with DriveWriter(target, check=None) as w:
        w.write(image(2 * MIB))
    assert content(target, MIB) == bytes(MIB)


def test_read_back_mismatch_wipes_head(target):
    with mock.patch.object(blockio.BlockFile, "sha256", return_value="0" * 64):
        w = DriveWriter(target, check=None)
        w.write(image(2 * MIB))
        with pytest.raises(VerificationError) as err:
            w.commit()
    assert "read-back" in err.value.message
    assert content(target, MIB) == bytes(MIB)


def test_too_big_for_the_target(target):
    w = DriveWriter(target, check=None)
    w.write(image(CAPACITY - 10))
    with pytest.raises(DeviceError) as err:
        w.write(image(11))
    assert "larger than" in err.value.message
    assert content(target, MIB) == bytes(MIB)


def test_write_error_is_a_device_error_and_wipes(target):
    w = DriveWriter(target, check=None)
    w.write(image(MIB))
    with mock.patch.object(blockio.BlockFile, "write_aligned",
                           side_effect=OSError(errno.EIO, "Input/output error")):
        with pytest.raises(DeviceError) as err:
            w.write(image(writer.CHUNK))
    assert "Input/output error" in err.value.message and "retry" in err.value.message


def test_missing_target(tmp_path):
    t = Target(device="x", path=str(tmp_path / "gone"), partition_number=1, capacity=MIB,
               logical_sector_size=512, action="created")
    with pytest.raises(DeviceError) as err:
        DriveWriter(t).write(b"x")
    assert "cannot open" in err.value.message
