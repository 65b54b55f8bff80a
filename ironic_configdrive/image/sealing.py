"""Config drives sealed for storage: AES-256-GCM in independently authenticated chunks.

A stored object is ``HEADER || frame || frame || ...``. The header is a magic string, the
plaintext chunk size and a random 8-byte stream id; each frame is a 4-byte big-endian length
(top bit: last frame) and the chunk's ciphertext with its 16-byte tag. Chunk ``i`` uses the
nonce ``stream id || i`` and authenticates the header and its last-frame flag, so a reader that
opens chunk by chunk (bounded memory, decrypting while downloading) detects every change:
altered or swapped chunks fail their tag, a missing tail has no last frame, and bytes after
the last frame are refused. Keys are 32 random bytes, one per stored drive, never reused.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import InvalidInputError, InvalidMediaError

MAGIC = b"ICDSEAL1"
#: Plaintext bytes per chunk: 20 bytes of overhead per 256 KiB, and the reader's buffer.
CHUNK_SIZE = 256 * 1024
KEY_SIZE = 32
TAG_SIZE = 16
_HEADER = struct.Struct(">8sI8s")
_FRAME = struct.Struct(">I")
_LAST = 0x8000_0000
HEADER_SIZE = _HEADER.size
#: A frame can never be longer than this (a header naming a larger chunk size is refused).
MAX_CHUNK_SIZE = 16 * 1024 * 1024


class SealedMediaError(InvalidMediaError):
    """A sealed config drive failed to open: wrong key, corrupt, truncated or reordered."""

    message_template = (
        "the encrypted config drive cannot be opened: {reason}; the stored object is corrupt, "
        "incomplete or was replaced, rebuild the node so a new one is stored"
    )


def new_key() -> bytes:
    """A fresh 256-bit key."""
    return secrets.token_bytes(KEY_SIZE)


def encode_key(key: bytes) -> str:
    return _check_key(key).hex()


def decode_key(text: object) -> bytes:
    """The key from its hex form, as it travels in the agent command."""
    if not isinstance(text, str):
        raise InvalidInputError(reason="the config drive key must be a hex string")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise InvalidInputError(reason="the config drive key is not hexadecimal") from None
    return _check_key(key)


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        # The length only: the key itself must never reach an error message.
        raise InvalidInputError(reason=f"the config drive key must be {KEY_SIZE} bytes, "
                                       f"not {len(key)}")
    return key


def is_sealed(head: bytes) -> bool:
    """Whether data starting with ``head`` is a sealed drive (``head``: 8 bytes or more)."""
    return head[: len(MAGIC)] == MAGIC


def _nonce(stream_id: bytes, index: int) -> bytes:
    return stream_id + struct.pack(">I", index)


def _aad(header: bytes, last: bool) -> bytes:
    return header + (b"\x01" if last else b"\x00")


def iter_seal(data: bytes, key: bytes, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the sealed form of ``data`` piece by piece."""
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidInputError(reason=f"chunk size {chunk_size} is outside "
                                       f"1..{MAX_CHUNK_SIZE}")
    aead = AESGCM(_check_key(key))
    stream_id = os.urandom(8)
    header = _HEADER.pack(MAGIC, chunk_size, stream_id)
    yield header
    view = memoryview(data)
    count = max(1, -(-len(view) // chunk_size))
    if count >= 2**32:
        raise InvalidInputError(reason="too much data for one sealed stream")
    for index in range(count):
        last = index == count - 1
        chunk = bytes(view[index * chunk_size : (index + 1) * chunk_size])
        sealed = aead.encrypt(_nonce(stream_id, index), chunk, _aad(header, last))
        yield _FRAME.pack(len(sealed) | (_LAST if last else 0)) + sealed


def seal(data: bytes, key: bytes, chunk_size: int = CHUNK_SIZE) -> bytes:
    """The sealed form of ``data`` in one piece, written as it is made (joining the pieces
    would hold the output twice)."""
    out = io.BytesIO()
    for piece in iter_seal(data, key, chunk_size):
        out.write(piece)
    return out.getvalue()


class Opener:
    """Open a sealed stream fed in arbitrary pieces; plaintext comes out chunk by chunk.

    Memory stays within about two chunks whatever the stream's size.
    """

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(_check_key(key))
        self._buffer = bytearray()
        self._header: bytes | None = None
        self._stream_id = b""
        self._chunk_size = 0
        self._index = 0
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, data: bytes) -> list[bytes]:
        if self._done:
            if data:
                raise SealedMediaError(reason="data follows the last chunk")
            return []
        self._buffer += data
        out: list[bytes] = []
        if self._header is None and not self._read_header():
            return out
        while not self._done:
            plain = self._next_frame()
            if plain is None:
                break
            out.append(plain)
        if self._done and self._buffer:
            raise SealedMediaError(reason="data follows the last chunk")
        return out

    def finish(self) -> None:
        if not self._done:
            raise SealedMediaError(reason="the stream ends before its last chunk (truncated)")

    def _read_header(self) -> bool:
        if len(self._buffer) < len(MAGIC):
            return False
        if not is_sealed(bytes(self._buffer)):
            raise SealedMediaError(reason="it does not start with the sealed-drive header "
                                          "(not encrypted by ironic-configdrive)")
        if len(self._buffer) < HEADER_SIZE:
            return False
        header = bytes(self._buffer[:HEADER_SIZE])
        _, chunk_size, stream_id = _HEADER.unpack(header)
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise SealedMediaError(reason=f"its header names an invalid chunk size "
                                          f"{chunk_size}")
        del self._buffer[:HEADER_SIZE]
        self._header, self._chunk_size, self._stream_id = header, chunk_size, stream_id
        return True

    def _next_frame(self) -> bytes | None:
        if len(self._buffer) < _FRAME.size:
            return None
        (word,) = _FRAME.unpack_from(self._buffer)
        last, length = bool(word & _LAST), word & ~_LAST
        if not TAG_SIZE <= length <= self._chunk_size + TAG_SIZE:
            raise SealedMediaError(reason=f"chunk {self._index} has an invalid length "
                                          f"{length}")
        if len(self._buffer) < _FRAME.size + length:
            return None
        sealed = bytes(self._buffer[_FRAME.size : _FRAME.size + length])
        del self._buffer[: _FRAME.size + length]
        assert self._header is not None
        try:
            plain = self._aead.decrypt(_nonce(self._stream_id, self._index), sealed,
                                       _aad(self._header, last))
        except InvalidTag:
            raise SealedMediaError(
                reason=f"chunk {self._index} fails authentication (wrong key, corrupted, "
                       "reordered or cut short)") from None
        if not last and len(plain) != self._chunk_size:
            raise SealedMediaError(reason=f"chunk {self._index} is short but not the last")
        self._index += 1
        self._done = last
        return plain


def iter_open(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    """Plaintext of a sealed stream given as ``chunks``; raises at the first problem."""
    opener = Opener(key)
    for chunk in chunks:
        yield from opener.feed(chunk)
    opener.finish()


def open_sealed(data: bytes, key: bytes) -> bytes:
    return b"".join(iter_open([data], key))
