"""The sealed (AES-256-GCM, chunked) form of stored config drives."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from ironic_configdrive.image import sealing
from ironic_configdrive.image.errors import InvalidInputError
from ironic_configdrive.image.sealing import SealedMediaError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _frames(sealed: bytes) -> tuple[bytes, list[bytes]]:
    """Split a sealed stream into its header and its whole frames."""
    header, rest = sealed[: sealing.HEADER_SIZE], sealed[sealing.HEADER_SIZE :]
    frames = []
    while rest:
        length = int.from_bytes(rest[:4], "big") & 0x7FFF_FFFF
        frames.append(rest[: 4 + length])
        rest = rest[4 + length :]
    return header, frames


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 4097, 3 * 4096])
def test_round_trip_in_any_piece_size(size: int) -> None:
    data = os.urandom(size)
    sealed = sealing.seal(data, KEY, chunk_size=4096)
    assert sealing.is_sealed(sealed)
    # A byte or two of random plaintext turns up in any ciphertext by chance (flaky at 1).
    assert data not in sealed or size < 16
    for piece in (1, 7, 4096, len(sealed)):
        chunks = [sealed[i : i + piece] for i in range(0, len(sealed), piece)]
        assert b"".join(sealing.iter_open(chunks, KEY)) == data


def test_each_seal_is_different_even_for_the_same_key_and_data() -> None:
    assert sealing.seal(b"x" * 100, KEY) != sealing.seal(b"x" * 100, KEY)


def test_wrong_key_is_refused() -> None:
    sealed = sealing.seal(b"secret user data", KEY)
    with pytest.raises(SealedMediaError, match="chunk 0 fails authentication"):
        sealing.open_sealed(sealed, OTHER_KEY)


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    header, frames = _frames(sealing.seal(os.urandom(10000), KEY, chunk_size=4096))
    assert len(frames) == 3
    with pytest.raises(SealedMediaError, match="truncated"):
        sealing.open_sealed(header + b"".join(frames[:2]), KEY)


def test_truncation_inside_a_chunk_is_detected() -> None:
    sealed = sealing.seal(os.urandom(10000), KEY, chunk_size=4096)
    with pytest.raises(SealedMediaError, match="truncated"):
        sealing.open_sealed(sealed[:-5], KEY)


def test_reordered_chunks_are_detected() -> None:
    header, frames = _frames(sealing.seal(os.urandom(12288), KEY, chunk_size=4096))
    swapped = header + frames[1] + frames[0] + frames[2]
    with pytest.raises(SealedMediaError, match="chunk 0 fails authentication"):
        sealing.open_sealed(swapped, KEY)


def test_a_middle_chunk_cannot_pass_for_the_last() -> None:
    header, frames = _frames(sealing.seal(os.urandom(12288), KEY, chunk_size=4096))
    forged = bytearray(frames[0])
    forged[0] |= 0x80
    with pytest.raises(SealedMediaError, match="fails authentication"):
        sealing.open_sealed(header + bytes(forged), KEY)


def test_flipped_bit_and_trailing_data_are_detected() -> None:
    sealed = bytearray(sealing.seal(b"a" * 5000, KEY, chunk_size=4096))
    tampered = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealedMediaError, match="fails authentication"):
        sealing.open_sealed(tampered, KEY)
    with pytest.raises(SealedMediaError, match="data follows the last chunk"):
        sealing.open_sealed(bytes(sealed) + b"x", KEY)


def test_header_of_another_stream_is_refused() -> None:
    first = sealing.seal(b"a" * 100, KEY)
    second = sealing.seal(b"a" * 100, KEY)
    spliced = second[: sealing.HEADER_SIZE] + first[sealing.HEADER_SIZE :]
    with pytest.raises(SealedMediaError, match="fails authentication"):
        sealing.open_sealed(spliced, KEY)


@pytest.mark.parametrize("data, reason", [
    (b"\x1f\x8b\x08\x00 plain gzip", "not encrypted by ironic-configdrive"),
    (sealing.MAGIC + b"\x00\x00\x00\x00" + b"12345678", "invalid chunk size 0"),
    (sealing.MAGIC + b"\x7f\x00\x00\x00" + b"12345678", "invalid chunk size"),
])
def test_bad_headers_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(SealedMediaError, match=reason):
        sealing.open_sealed(data, KEY)


def test_oversized_frame_length_is_refused_before_buffering() -> None:
    header, _ = _frames(sealing.seal(b"a", KEY, chunk_size=4096))
    opener = sealing.Opener(KEY)
    with pytest.raises(SealedMediaError, match="invalid length"):
        opener.feed(header + (10**6).to_bytes(4, "big"))


def test_opening_streams_in_bounded_memory() -> None:
    sealed = sealing.seal(os.urandom(8 * 1024 * 1024), KEY)
    pieces = [sealed[i : i + 65536] for i in range(0, len(sealed), 65536)]
    tracemalloc.start()
    try:
        total = sum(len(chunk) for chunk in sealing.iter_open(pieces, KEY))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 8 * 1024 * 1024
    assert peak < 8 * sealing.CHUNK_SIZE  # a whole-stream reader would hold 32 chunks


@pytest.mark.parametrize("text, reason", [
    ("zz" * 32, "not hexadecimal"),
    ("ab" * 16, "must be 32 bytes, not 16"),
    (None, "must be a hex string"),
])
def test_bad_keys_are_refused_without_echoing_them(text: object, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        sealing.decode_key(text)
    if isinstance(text, str):
        assert text not in str(caught.value)


def test_key_round_trip() -> None:
    key = sealing.new_key()
    assert len(key) == 32 and sealing.decode_key(sealing.encode_key(key)) == key
    assert sealing.new_key() != key


def test_seal_holds_its_output_once() -> None:
    """Joining the sealed pieces would hold the output twice for a moment (the conductor
    seals drives up to 64 MiB)."""
    data = os.urandom(4 * 1024 * 1024)
    key = sealing.new_key()
    tracemalloc.start()
    try:
        sealed = sealing.seal(data, key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * len(sealed), peak  # joined pieces: twice
