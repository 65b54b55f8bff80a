"""Incremental decoder: any accepted config drive encoding in, raw image bytes out.

Accepted encodings, recognised by magic bytes only:

* base64 text (whitespace and line breaks allowed) of any of the below,
* gzip (one or more members),
* a raw ISO9660 or FAT image.

Base64 is accepted only when the *decoded* prefix is itself gzip or an image: text that merely
happens to decode is rejected rather than written to a disk. The output cap is enforced while
inflating, so a gzip bomb stops after at most ``cap`` bytes with memory bounded by the chunk
size. The input is bounded too, or a source could keep a reader busy forever while the output
stays small: at most :data:`MAX_GZIP_PADDING` zero bytes after the gzip data, base64
whitespace in proportion to the text (:data:`B64_CHARS_PER_WHITESPACE`), and in all at most
:func:`max_encoded_size` bytes (which also bounds gzip members or deflate blocks that inflate
to nothing).
"""

from __future__ import annotations

import binascii
import importlib
import io
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Final

from . import formats
from .errors import InvalidMediaError, SizeLimitExceeded, UnknownFormatError

#: Largest piece of output handed out at once (bounds memory while inflating).
OUT_CHUNK = 1024 * 1024

_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_WHITESPACE = b" \t\r\n\v\f"
# Enough base64 text to decode a full sniffing window (4 chars per 3 bytes).
_B64_SNIFF_CHARS = (formats.SNIFF_SIZE + 2) // 3 * 4

#: Zero bytes accepted after the last gzip member: writers pad to a sector or a block, not
#: more.
MAX_GZIP_PADDING: Final = 1024 * 1024
#: Base64 text may hold one whitespace byte per this many base64 characters (lines of 16
#: characters ended by CRLF; MIME, PEM and ``base64`` write 64 or 76), ...
B64_CHARS_PER_WHITESPACE: Final = 8
#: ... plus this much (leading and trailing blank lines).
B64_WHITESPACE_SLACK: Final = 64 * 1024
# Room for gzip's own overhead on incompressible data (stored blocks cost 5 bytes per 64 KiB)
# and for headers of a few members.
_GZIP_OVERHEAD_SLACK = 64 * 1024


def max_encoded_size(cap: int) -> int:
    """Most input bytes any accepted encoding of a ``cap``-byte image takes.

    That is base64 text, with the most whitespace allowed, of gzip data of incompressible
    content with padding. A source sending more is not sending a config drive.
    """
    binary = cap + cap // 4096 + _GZIP_OVERHEAD_SLACK + MAX_GZIP_PADDING
    text = -(-binary // 3) * 4
    return text + text // B64_CHARS_PER_WHITESPACE + B64_WHITESPACE_SLACK


#: binascii checks the base64 alphabet itself from Python 3.11 (strict_mode), saving a pass
#: over every byte; before, characters are checked first.
_STRICT_A2B: Final = sys.version_info >= (3, 11)


def _optional(module: str) -> Any:
    """An accelerator from the [agent] extra, or None (a conductor, an agent without it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# Base64 and inflating took about half each of the agent's decoding (0.2 s of CPU for a
# 48 MiB drive): SIMD base64 decodes (and checks the alphabet) about 20x faster than
# binascii, zlib-ng inflates about 5x faster than zlib, with the same results and errors
# (the tests run both).
_PYBASE64: Final = _optional("pybase64")
#: A module with zlib's interface: zlib-ng's when installed, else zlib.
_ZLIB: Final = _optional("zlib_ng.zlib_ng") or zlib


def _one_pass() -> bool:
    """Whether a decoder refuses stray bytes itself, so no separate pass looks for them."""
    return _STRICT_A2B or _PYBASE64 is not None


def _a2b_strict(block: bytes | memoryview) -> bytes:
    """Decode whole base64 quantums; ``binascii.Error`` on any byte outside the alphabet
    (whitespace included) and on bad padding. Needs :func:`_one_pass`."""
    if _PYBASE64 is not None:
        return bytes(_PYBASE64.b64decode(block, validate=True))
    return binascii.a2b_base64(block, strict_mode=True)  # type: ignore[call-arg]


def _refuse_stray(text: bytes) -> None:
    stray = text.translate(None, _B64_CHARS)
    if stray:
        raise InvalidMediaError(
            reason=f"malformed base64 text (unexpected character {stray[:1]!r})")


class _Base64Layer:
    """Strict streaming base64: whitespace is dropped, anything else non-alphabet fails."""

    def __init__(self) -> None:
        self._carry = b""
        self._seen_padding = False
        self._chars = 0
        self._whitespace = 0

    def feed(self, data: bytes) -> bytes:
        if not self._carry and _one_pass():
            decoded = self._feed_unwrapped(data)
            if decoded is not None:
                return decoded
        text = data.translate(None, _WHITESPACE)
        self._chars += len(text)
        self._whitespace += len(data) - len(text)
        if self._whitespace > self._chars // B64_CHARS_PER_WHITESPACE + B64_WHITESPACE_SLACK:
            raise InvalidMediaError(
                reason=f"base64 text with {self._whitespace} whitespace bytes in "
                       f"{self._chars} characters, more than line breaks need; re-encode "
                       "it (e.g. with base64 -w 0)")
        data = self._carry + text
        if not _one_pass():
            _refuse_stray(data)
        usable = len(data) - len(data) % 4
        self._carry = data[usable:]
        return self._decode(data[:usable])

    def _feed_unwrapped(self, data: bytes) -> bytes | None:
        """Base64 without line breaks (what Ironic and our conductor send) in one pass.

        Strict decoding refuses whitespace as it refuses any other stray byte, so a chunk it
        accepts holds none and needs no separate pass to remove it. ``None``: the chunk has
        whitespace or an error, which the careful path removes or names.
        """
        usable = len(data) - len(data) % 4
        carry = data[usable:]
        if carry.translate(None, _WHITESPACE) != carry:
            return None
        with memoryview(data) as view, view[:usable] as block:
            try:
                decoded = _a2b_strict(block)
            except binascii.Error:
                return None
        self._check_padding(data, usable)
        self._chars += len(data)
        self._carry = carry
        return decoded

    def finish(self) -> bytes:
        if self._carry:
            _refuse_stray(self._carry)
            raise InvalidMediaError(
                reason=f"base64 text ends with {len(self._carry)} stray character(s); "
                "the data is truncated")
        return b""

    def _decode(self, block: bytes) -> bytes:
        if not block:
            return b""
        self._check_padding(block, len(block))
        try:
            if _one_pass():  # one pass checks and decodes
                return _a2b_strict(block)
            return binascii.a2b_base64(block)
        except binascii.Error as exc:
            _refuse_stray(block)
            raise InvalidMediaError(reason=f"malformed base64 text ({exc})") from None

    def _check_padding(self, text: bytes, end: int) -> None:
        """``=`` only as the last one or two characters of the whole text."""
        if not end:
            return
        padding = text.find(b"=", 0, end)
        if self._seen_padding or (padding != -1 and padding < end - 2) or (
                padding == end - 2 and text[end - 1 : end] != b"="):
            raise InvalidMediaError(reason="malformed base64 text ('=' padding inside the data)")
        self._seen_padding = padding != -1


class _GzipLayer:
    """Inflate gzip members one after another, never producing more than asked for."""

    def __init__(self) -> None:
        self._zlib = _ZLIB
        self._inflater = self._zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""
        self._member_done = False
        self._padding = 0

    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        """Inflate ``data``; each piece is at most OUT_CHUNK and all pieces at most ``limit+1``.

        Producing one byte past the limit is how the caller learns the cap was crossed.
        """
        self._pending += data
        budget = limit + 1
        while self._pending and budget > 0:
            if self._member_done and not self._start_next_member():
                return
            try:
                out = self._inflater.decompress(self._pending, min(OUT_CHUNK, budget))
            except self._zlib.error as exc:
                raise InvalidMediaError(reason=f"corrupt gzip data ({exc})") from None
            self._pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                self._member_done = True
                self._pending = self._inflater.unused_data + self._pending
            if out:
                budget -= len(out)
                yield out
            elif not self._inflater.eof:
                return  # zlib wants more input before it can produce output

    def _start_next_member(self) -> bool:
        """After a member ends: allow zero padding, or start the next member."""
        if self._pending.strip(b"\x00") == b"":
            self._padding += len(self._pending)
            self._pending = b""
            if self._padding > MAX_GZIP_PADDING:
                raise InvalidMediaError(
                    reason=f"more than {MAX_GZIP_PADDING} zero bytes follow the end of the "
                           "gzip data; that is not padding: send the gzip data alone")
            return False
        if self._padding or not self._pending.startswith(formats.GZIP_MAGIC[: len(self._pending)]):
            raise InvalidMediaError(reason="unexpected bytes after the end of the gzip data")
        if len(self._pending) < len(formats.GZIP_MAGIC):
            return False
        self._inflater = self._zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member_done = False
        return True

    def finish(self) -> None:
        if not self._member_done or self._pending.strip(b"\x00"):
            raise InvalidMediaError(reason="gzip data is truncated (no end of stream)")


class StreamDecoder:
    """Feed encoded chunks, get raw image chunks, with a hard cap on the output size.

    >>> dec = StreamDecoder()
    >>> for chunk in source:
    ...     for piece in dec.feed(chunk):
    ...         sink.write(piece)
    >>> for piece in dec.finish():
    ...     sink.write(piece)
    """

    def __init__(self, cap: int = formats.MAX_IMAGE_SIZE, max_input: int | None = None) -> None:
        """:param max_input: most input bytes accepted; default :func:`max_encoded_size`."""
        if cap <= 0:
            raise ValueError("cap must be positive")
        self.cap = cap
        self.max_input = max_encoded_size(cap) if max_input is None else max_input
        #: "base64+gzip", "gzip", "base64", "raw" once known, else None.
        self.encoding: str | None = None
        #: formats.ISO9660 or formats.VFAT once the image's start has been seen.
        self.image_format: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self._sniff_buffer = b""
        self._image_head = b""
        self._base64: _Base64Layer | None = None
        self._gzip: _GzipLayer | None = None
        self._finished = False

    # -- public -----------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """Decode one chunk of input, yielding raw image pieces (each at most 1 MiB)."""
        yield from self.expand(self.unwrap(chunk))

    def finish(self) -> Iterator[bytes]:
        """Flush buffered input; raise if the data was truncated or never recognised."""
        if self._finished:
            return
        yield from self.expand(self.unwrap_finish())
        yield from self.expand_finish()

    # The two stages of :meth:`feed` and :meth:`finish`, for a caller that runs them in two
    # threads: base64 decoding holds the GIL, inflating releases it, so a thread unwrapping
    # the next chunk overlaps the one inflating this one. Stage one's output goes to stage
    # two in order; each stage is called from one thread.

    def unwrap(self, chunk: bytes) -> bytes:
        """Stage one: count and sniff the input and undo base64; the gzip or image bytes
        for :meth:`expand` (empty while the encoding is still being sniffed)."""
        if self._finished:
            raise ValueError("feed() after finish()")
        self.bytes_in += len(chunk)
        if self.bytes_in > self.max_input:
            raise InvalidMediaError(
                reason=f"more than {self.max_input} bytes of input, more than any encoding "
                       f"of a {self.cap // (1024 * 1024)} MiB image takes (padding, "
                       "whitespace or empty gzip data); send the drive as gzip+base64 "
                       "without filler")
        if self.encoding is None:
            self._sniff_buffer += chunk
            if not self._enough_to_decide() or not self._decide(final=False):
                return b""
            chunk, self._sniff_buffer = self._sniff_buffer, b""
        return self._base64.feed(chunk) if self._base64 is not None else chunk

    def unwrap_finish(self) -> bytes:
        """Stage one at the end of the input: what is left for :meth:`expand`; raises if the
        encoding was never recognised or the base64 text is truncated."""
        if self._finished:
            return b""
        self._finished = True
        rest = b""
        if self.encoding is None:
            self._decide(final=True)
            rest, self._sniff_buffer = self._sniff_buffer, b""
            if self._base64 is not None:
                rest = self._base64.feed(rest)
        if self._base64 is not None:
            rest += self._base64.finish()
        return rest

    def expand(self, data: bytes) -> Iterator[bytes]:
        """Stage two: inflate (when gzip) and check, yielding raw image pieces."""
        if self._gzip is None:
            yield from self._emit(data)
            return
        for piece in self._gzip.feed(data, self.cap - self.bytes_out):
            yield from self._emit(piece)

    def expand_finish(self) -> Iterator[bytes]:
        """Stage two at the end: raise if the gzip data or the image is truncated or empty."""
        if self._gzip is not None:
            self._gzip.finish()
        if self.image_format is None:
            yield from self._check_image_head(final=True)
        if self.bytes_out == 0:
            raise InvalidMediaError(reason="the config drive data is empty")

    # -- sniffing ---------------------------------------------------------------------------

    def _enough_to_decide(self) -> bool:
        # Re-sniffing on every tiny chunk would be quadratic; wait for a full window.
        data = self._sniff_buffer
        return data.startswith(formats.GZIP_MAGIC) or len(data) >= _B64_SNIFF_CHARS

    def _decide(self, *, final: bool) -> bool:
        """Pick the encoding from the buffered prefix; False means "need more input"."""
        data = self._sniff_buffer
        if not data:
            if final:
                raise InvalidMediaError(reason="the config drive data is empty")
            return False
        if data.startswith(formats.GZIP_MAGIC):
            self.encoding = "gzip"
            self._gzip = _GzipLayer()
            return True
        if formats.detect_format(data[: formats.SNIFF_SIZE]) is not None:
            self.encoding = "raw"
            return True
        if self._looks_like_base64(data):
            if len(data) < _B64_SNIFF_CHARS and not final:
                return False
            inner = self._base64_prefix(data)
            if inner.startswith(formats.GZIP_MAGIC):
                self.encoding = "base64+gzip"
                self._gzip = _GzipLayer()
            elif formats.detect_format(inner) is not None:
                self.encoding = "base64"
            else:
                raise UnknownFormatError(
                    reason="base64 text that decodes to neither gzip nor a filesystem image")
            self._base64 = _Base64Layer()
            return True
        if final or len(data) >= formats.SNIFF_SIZE:
            raise UnknownFormatError(reason="no gzip, ISO9660, FAT or base64 signature")
        return False

    @staticmethod
    def _looks_like_base64(data: bytes) -> bool:
        sample = data[:_B64_SNIFF_CHARS].translate(None, _WHITESPACE)
        # One C pass (deleting the alphabet leaves nothing), not a Python loop per byte.
        return bool(sample) and not sample.translate(None, _B64_CHARS)

    @staticmethod
    def _base64_prefix(data: bytes) -> bytes:
        sample = data[:_B64_SNIFF_CHARS].translate(None, _WHITESPACE)
        sample = sample[: len(sample) - len(sample) % 4]
        try:
            return binascii.a2b_base64(sample)
        except binascii.Error:
            return b""

    # -- decoding ---------------------------------------------------------------------------

    def _emit(self, piece: bytes) -> Iterator[bytes]:
        if not piece:
            return
        if self.bytes_out + len(piece) > self.cap:
            raise SizeLimitExceeded(limit_mib=self.cap // (1024 * 1024),
                                    what="decoded image exceeds the cap")
        self.bytes_out += len(piece)
        if self.image_format is None:
            # Hold output back until the filesystem signature is confirmed, so a caller
            # never writes bytes of something that is not a config drive image.
            self._image_head += piece
            yield from self._check_image_head(final=False)
            return
        for start in range(0, len(piece), OUT_CHUNK):
            yield piece[start : start + OUT_CHUNK]

    def _check_image_head(self, *, final: bool) -> Iterator[bytes]:
        head = self._image_head
        if not head and final:
            return
        fmt = formats.detect_format(head[: formats.SNIFF_SIZE])
        if fmt is None:
            if len(head) < formats.SNIFF_SIZE and not final:
                return
            raise UnknownFormatError(
                reason=f"decoded {self.encoding} data is not an ISO9660 or FAT image")
        self.image_format = fmt
        self._image_head = b""
        for start in range(0, len(head), OUT_CHUNK):
            yield head[start : start + OUT_CHUNK]


def passes_through(data: bytes, cap: int = formats.MAX_IMAGE_SIZE) -> bool:
    """Whether a :class:`StreamDecoder` would hand ``data`` on unchanged: a raw image of at
    most ``cap`` bytes. A caller holding the whole of it then uses it as it is (decoding it
    would copy every byte)."""
    return (len(data) <= cap and not data.startswith(formats.GZIP_MAGIC)
            and formats.detect_format(data[: formats.SNIFF_SIZE]) is not None)


def pieces(data: bytes | str, size: int = OUT_CHUNK) -> Iterator[bytes]:
    """``data`` a piece at a time, text as ASCII (the caller checks :meth:`str.isascii`).

    Fed to a :class:`StreamDecoder` whole, a large blob would be encoded or filtered whole,
    and the inflater's unconsumed input copied again for every megabyte it puts out.
    """
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        yield piece.encode("ascii") if isinstance(piece, str) else piece


def decode_whole(chunks: Iterable[bytes], decoder: StreamDecoder) -> bytes:
    """The image ``chunks`` decode to, as one bytes object.

    Written into one growing buffer that is handed out without a copy (a BytesIO's), not
    collected as pieces and joined, which holds the image twice at the end.
    """
    sink = io.BytesIO()
    for chunk in chunks:
        for piece in decoder.feed(chunk):
            sink.write(piece)
    for piece in decoder.finish():
        sink.write(piece)
    return sink.getvalue()


def iter_decode(chunks: Iterable[bytes], cap: int = formats.MAX_IMAGE_SIZE,
                max_input: int | None = None) -> Iterator[bytes]:
    """Decode an iterable of encoded chunks into raw image pieces (see :class:`StreamDecoder`)."""
    decoder = StreamDecoder(cap, max_input)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.finish()
