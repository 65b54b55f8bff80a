import base64
import gzip
import os
import random
import struct
import tracemalloc
import zlib

import pytest

from ironic_configdrive.image import errors, formats, stream
from ironic_configdrive.image.stream import (
    B64_WHITESPACE_SLACK,
    MAX_GZIP_PADDING,
    OUT_CHUNK,
    StreamDecoder,
    iter_decode,
    max_encoded_size,
)


@pytest.fixture(autouse=True, params=["stdlib", "accelerated"])
def decoders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test with binascii and zlib, and again with pybase64 and zlib-ng (the [agent]
    extra's accelerators, skipped when not installed): they must give the same results
    and the same errors."""
    if request.param == "accelerated":
        monkeypatch.setattr(stream, "_PYBASE64", pytest.importorskip("pybase64"))
        monkeypatch.setattr(stream, "_ZLIB", pytest.importorskip("zlib_ng.zlib_ng"))
    else:
        monkeypatch.setattr(stream, "_PYBASE64", None)
        monkeypatch.setattr(stream, "_ZLIB", zlib)
    return str(request.param)


def fake_iso(size: int = 64 * 1024, fill: bytes = b"") -> bytes:
    """Bytes with the ISO9660 signature where the decoder looks for it."""
    data = bytearray(size)
    data[formats.ISO_MAGIC_OFFSET : formats.ISO_MAGIC_OFFSET + 5] = formats.ISO_MAGIC
    data[formats.SNIFF_SIZE : formats.SNIFF_SIZE + len(fill)] = fill
    return bytes(data)


def fake_fat(size: int = 4096) -> bytes:
    data = bytearray(size)
    data[0:3] = b"\xeb\x3c\x90"
    struct.pack_into("<HBHB", data, 11, 512, 1, 1, 2)
    data[21] = 0xF8
    data[510:512] = b"\x55\xaa"
    return bytes(data)


def chunked(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode(chunks, cap=formats.MAX_IMAGE_SIZE):
    dec = StreamDecoder(cap)
    out = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    out.extend(dec.finish())
    return dec, b"".join(out)


IMAGE = fake_iso(200 * 1024, fill=os.urandom(50_000))


@pytest.mark.parametrize(
    "encoding,encode",
    [
        ("raw", lambda d: d),
        ("gzip", gzip.compress),
        ("base64+gzip", lambda d: base64.b64encode(gzip.compress(d))),
        ("base64", base64.b64encode),
        ("base64+gzip", lambda d: base64.encodebytes(gzip.compress(d))),  # line-wrapped
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 333, 65536, 10**7])
def test_round_trip_any_encoding_any_chunking(encoding, encode, chunk_size):
    encoded = encode(IMAGE)
    if chunk_size == 1:
        # Byte-at-a-time through the sniffing window, then bigger pieces (keeps it quick).
        encoded_chunks = [bytes([b]) for b in encoded[:50_000]] + chunked(encoded[50_000:], 4096)
    else:
        encoded_chunks = chunked(encoded, chunk_size)
    dec, out = decode(encoded_chunks)
    assert out == IMAGE
    assert dec.encoding == encoding
    assert dec.image_format == formats.ISO9660
    assert dec.bytes_out == len(IMAGE)


def test_raw_fat_recognised():
    dec, out = decode([fake_fat()])
    assert dec.image_format == formats.VFAT and out == fake_fat()


def test_multi_member_gzip():
    half = len(IMAGE) // 2
    data = gzip.compress(IMAGE[:half]) + gzip.compress(IMAGE[half:])
    assert decode(chunked(data, 1000))[1] == IMAGE


def test_trailing_zero_padding_after_gzip_is_accepted():
    assert decode([gzip.compress(IMAGE) + b"\0" * 512])[1] == IMAGE


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"\x00" * 40_000, "no gzip, ISO9660, FAT or base64 signature"),
        (b"\xff" + random.Random(7).randbytes(40_000) + b"", "signature"),
        (base64.b64encode(os.urandom(40_000)), "decodes to neither gzip nor"),
        (gzip.compress(b"hello world" * 10_000), "not an ISO9660 or FAT image"),
        (gzip.compress(IMAGE)[:-20], "truncated"),
        (gzip.compress(IMAGE) + b"garbage", "after the end of the gzip"),
        (base64.b64encode(gzip.compress(IMAGE)) + b"!!", "malformed base64"),
        (base64.b64encode(gzip.compress(IMAGE))[:-3], "truncated"),
        (b"\x1f\x8b\x08\x00" + os.urandom(1000), "corrupt gzip"),
    ],
)
def test_bad_input_is_a_clear_error(data, match):
    with pytest.raises(errors.InvalidMediaError, match=match):
        decode(chunked(data, 4096))


def test_random_text_that_decodes_as_base64_is_rejected():
    # Upstream accepts anything that b64decodes; we need the decoded bytes to be an image.
    text = base64.b64encode(b"#cloud-config\n" * 5000)
    with pytest.raises(errors.UnknownFormatError):
        decode([text])


def test_nothing_is_emitted_before_the_signature_is_confirmed():
    dec = StreamDecoder()
    pieces = list(dec.feed(gzip.compress(IMAGE)[:100]))
    assert pieces == [] and dec.image_format is None


def gzip_bomb(total: int) -> bytes:
    """gzip of an ISO signature followed by zeros, made without holding ``total`` bytes."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(fake_iso(64 * 1024))]
    zeros = bytes(4 * 1024 * 1024)
    for _ in range(total // len(zeros)):
        parts.append(packer.compress(zeros))
    parts.append(packer.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def bomb():
    return gzip_bomb(512 * 1024 * 1024)  # about 0.5 MiB of gzip


@pytest.mark.parametrize("wrap", [lambda d: d, base64.b64encode])
def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(bomb, wrap):
    cap = 8 * 1024 * 1024
    chunks = chunked(wrap(bomb), 256 * 1024)
    dec = StreamDecoder(cap)
    produced = 0
    tracemalloc.start()
    with pytest.raises(errors.SizeLimitExceeded, match="8 MiB"):
        for chunk in chunks:
            for piece in dec.feed(chunk):
                assert len(piece) <= OUT_CHUNK
                produced += len(piece)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert produced <= cap
    # Input chunk + one output chunk + sniff window, with slack; never the inflated size.
    assert peak < 6 * 1024 * 1024


def test_output_exactly_at_cap_is_accepted():
    image = fake_iso(128 * 1024)
    _, out = decode([gzip.compress(image)], cap=len(image))
    assert out == image
    with pytest.raises(errors.SizeLimitExceeded):
        decode([gzip.compress(image)], cap=len(image) - 1)


def test_raw_input_is_capped_too():
    with pytest.raises(errors.SizeLimitExceeded):
        decode(chunked(fake_iso(256 * 1024), 65536), cap=100 * 1024)


def test_iter_decode_and_feed_after_finish():
    assert b"".join(iter_decode(chunked(gzip.compress(IMAGE), 333))) == IMAGE
    dec = StreamDecoder()
    list(dec.feed(IMAGE))
    list(dec.finish())
    with pytest.raises(ValueError):
        list(dec.feed(b"x"))


def test_error_hierarchy_categories():
    assert issubclass(errors.SizeLimitExceeded, errors.InvalidInputError)
    assert issubclass(errors.UnknownFormatError, errors.InvalidMediaError)
    err = errors.SizeLimitExceeded(limit_mib=64, what="x")
    assert "64 MiB" in str(err) and err.category == "invalid_input"


@pytest.mark.parametrize("text", [b"QQ==QUFB", b"QUFBQQ=A", b"QQ==", b"QUFB" * 3 + b"QQ=="])
def test_base64_padding_only_at_the_very_end(text):
    from ironic_configdrive.image.stream import _Base64Layer

    layer = _Base64Layer()
    if text.endswith(b"==") and text.count(b"=") == 2:
        assert layer.feed(text)  # padding at the end is fine...
        with pytest.raises(errors.InvalidMediaError, match="padding"):
            layer.feed(b"QUFB")  # ...but nothing may follow it
    else:
        with pytest.raises(errors.InvalidMediaError, match="padding"):
            layer.feed(text)


# -- input bounds: the output cap alone let padding and whitespace stream in without end ----

def _feed_until_refused(dec: StreamDecoder, chunk: bytes, most: int) -> tuple[int, str]:
    """Feed ``chunk`` again and again; the input taken when the decoder refused."""
    with pytest.raises(errors.InvalidMediaError) as exc:
        while dec.bytes_in < most:
            for _ in dec.feed(chunk):
                pass
    assert dec.bytes_in < most, "the decoder never refused"
    return dec.bytes_in, exc.value.message


def test_gzip_padding_is_bounded():
    dec = StreamDecoder()
    list(dec.feed(gzip.compress(IMAGE)))
    taken, message = _feed_until_refused(dec, bytes(64 * 1024), 1 << 30)
    assert taken <= len(gzip.compress(IMAGE)) + MAX_GZIP_PADDING + 64 * 1024
    assert "zero bytes follow the end of the gzip data" in message


def test_gzip_padding_up_to_the_bound_is_accepted():
    data = gzip.compress(IMAGE) + bytes(MAX_GZIP_PADDING)
    assert decode(chunked(data, 100_000))[1] == IMAGE


def test_no_gzip_member_after_padding():
    data = gzip.compress(IMAGE) + bytes(512)
    with pytest.raises(errors.InvalidMediaError, match="after the end of the gzip"):
        decode([data, gzip.compress(b"")])


def test_base64_whitespace_is_bounded():
    dec = StreamDecoder()
    list(dec.feed(base64.b64encode(gzip.compress(IMAGE))))
    taken, message = _feed_until_refused(dec, b" \r\n\t" * 16384, 1 << 30)
    assert taken <= len(base64.b64encode(gzip.compress(IMAGE))) * 2 + B64_WHITESPACE_SLACK
    assert "more than line breaks need" in message


@pytest.mark.parametrize("line", [16, 64, 76])
def test_base64_line_breaks_are_accepted(line):
    text = base64.b64encode(gzip.compress(IMAGE))
    lines = b"\r\n".join(text[i : i + line] for i in range(0, len(text), line))
    assert decode(chunked(b"\n" * 1000 + lines + b"\r\n" * 1000, 4096))[1] == IMAGE


def test_empty_gzip_members_are_bounded_by_the_input_limit():
    cap = 1024 * 1024
    dec = StreamDecoder(cap)
    list(dec.feed(gzip.compress(IMAGE)))
    members = gzip.compress(b"") * 3000  # inflate to nothing, forever
    taken, message = _feed_until_refused(dec, members, 1 << 30)
    assert dec.max_input == max_encoded_size(cap)
    assert max_encoded_size(cap) < taken <= max_encoded_size(cap) + len(members)
    assert "more than any encoding of a 1 MiB image takes" in message


def test_max_input_can_be_given():
    dec = StreamDecoder(max_input=1000)
    with pytest.raises(errors.InvalidMediaError, match="more than 1000 bytes of input"):
        list(dec.feed(base64.b64encode(gzip.compress(IMAGE))))


def test_the_largest_valid_encoding_fits_the_input_limit():
    # Incompressible content, gzip, full padding, base64 in 16-character CRLF lines.
    image = fake_iso(256 * 1024, fill=random.Random(3).randbytes(200 * 1024))
    text = base64.b64encode(gzip.compress(image) + bytes(MAX_GZIP_PADDING))
    lines = b"\r\n".join(text[i : i + 16] for i in range(0, len(text), 16))
    assert len(lines) <= max_encoded_size(len(image))
    assert decode(chunked(lines, 65536), cap=len(image))[1] == image


# -- the agent's path: two stages, one pass over base64 without line breaks ----------------

def test_unwrap_then_expand_is_feed():
    text = base64.b64encode(gzip.compress(IMAGE))
    dec = StreamDecoder()
    binary = [dec.unwrap(chunk) for chunk in chunked(text, 65536)] + [dec.unwrap_finish()]
    assert dec.encoding == "base64+gzip" and b"".join(binary) == gzip.compress(IMAGE)
    out = [piece for data in binary for piece in dec.expand(data)]
    out.extend(dec.expand_finish())
    assert b"".join(out) == IMAGE and dec.image_format == formats.ISO9660
    assert list(dec.finish()) == []  # finished by the stages
    with pytest.raises(ValueError, match="after finish"):
        dec.unwrap(b"QUFB")


def test_base64_without_line_breaks_is_decoded_in_one_pass(monkeypatch):
    careful = []
    original = stream._Base64Layer._decode

    def spy(self, block):
        careful.append(len(block))
        return original(self, block)

    monkeypatch.setattr(stream._Base64Layer, "_decode", spy)
    text = base64.b64encode(gzip.compress(IMAGE))
    assert decode(chunked(text, 65536))[1] == IMAGE
    if stream._one_pass():
        assert careful == [], "whitespace-free text took the whitespace-removing path"
    lines = b"\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert decode(chunked(lines, 65536))[1] == IMAGE and careful


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5])
def test_whitespace_after_a_partial_quantum(cut):
    # The tail of a chunk is carried to the next one: never with whitespace in it.
    text = base64.b64encode(gzip.compress(IMAGE))
    first, rest = text[: 4096 + cut], text[4096 + cut :]
    assert decode([first + b"\r\n", rest + b"\n"])[1] == IMAGE
    assert decode([first + b" ", b"\n" + rest])[1] == IMAGE


@pytest.mark.parametrize("text,match", [(b"QUFB!QUF", "unexpected character"),
                                        (b"QUFBQUF", "truncated"),
                                        (b"QUFB\x00QUF", "unexpected character")])
def test_stray_bytes_named_by_either_path(text, match):
    layer = stream._Base64Layer()
    with pytest.raises(errors.InvalidMediaError, match=match):
        layer.feed(text)
        layer.finish()
