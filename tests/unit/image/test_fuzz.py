"""Property-based fuzzing: whatever comes in, a result or a ConfigDriveError comes out.

Covers what takes outside input: ``source.normalise`` (the JSON form as an object, text,
bytes, other types), ``image.build_image`` (where a drive built must also pass ``validate``),
``image.inspect``/``validate`` (random bytes, mutated and truncated images, random JSON
inside a drive) and ``StreamDecoder`` (any bytes, any chunking, any cap). A ``TypeError``,
``UnicodeEncodeError``, ``RecursionError``... anywhere fails the test.

Bounded for CI: each test has a fixed number of examples, no deadline and a derandomised
seed, so every run tries the same inputs (about half a minute for the module on one core).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ironic_configdrive import image, source
from ironic_configdrive.image import ConfigDriveError, formats, iso9660, layout, vfat
from tests.fixtures import eager_inspect

UUID = "2b0a7f5e-5a51-4c1e-9d0c-3c8f3f0e2b11"


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# -- strategies -------------------------------------------------------------------------------

#: Any code point, lone surrogates and NUL included.
ANY_CHAR = st.characters(exclude_categories=())
SPECIAL = st.sampled_from([
    "", "/", "//", "/.", "/..", "..", "/etc/../x", "/etc/", "/etc/motd", "relative", "\x00",
    "/a\x00b", "\ud800", "a\udcffb", "config-2", "base64", "gzip", "/content/0001",
    "content/7", "/content/", "/content/..", "/content/a/b", "/content/A", "/content/a",
    "/openstack/latest/meta_data.json", "AAEC", "AA\nEC", "!!", "\n", "\x1b[2J", "é" * 3,
    "a" * 300, UUID, "not-a-uuid", "NaN", "{", "[", '{"a": ', "ssh-ed25519 AAAA k",
])
TEXT = st.one_of(st.text(ANY_CHAR, max_size=12), SPECIAL)


def _huge_int() -> int:
    """More digits than Python (and so json) converts to text (a built strategy: its repr
    must not print the number)."""
    return 10 ** 5000


SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.builds(_huge_int),
                   st.floats(allow_nan=True, allow_infinity=True), TEXT,
                   st.binary(max_size=6))
JSONISH = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(TEXT, st.integers(), st.none(), st.builds(_huge_int)), inner,
                        max_size=3)),
    max_leaves=12)


def _nest(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


DEEP = st.builds(_nest, st.sampled_from([63, 64, 65, 66, 900, 5000]),
                 st.sampled_from(["list", "dict"]))
VALUE = st.one_of(JSONISH, DEEP)

FILE_ENTRY = st.fixed_dictionaries({}, optional={
    "path": st.one_of(TEXT, VALUE),
    "contents": st.one_of(TEXT, st.binary(max_size=8), VALUE),
    "content": TEXT,
    "encoding": st.one_of(st.sampled_from([None, "base64", "gzip", "", "BASE64"]), VALUE),
    "content_path": st.one_of(TEXT, VALUE),
})
META_DATA = st.fixed_dictionaries({}, optional={
    "uuid": st.one_of(st.just(UUID), TEXT, VALUE),
    "name": st.one_of(TEXT, VALUE),
    "hostname": st.one_of(TEXT, VALUE),
    "public_keys": st.one_of(st.dictionaries(TEXT, st.one_of(TEXT, VALUE), max_size=2),
                             VALUE),
    "files": st.one_of(st.lists(st.one_of(FILE_ENTRY, VALUE), max_size=3), VALUE),
    "admin_pass": st.one_of(TEXT, VALUE),
    "availability_zone": st.one_of(TEXT, VALUE),
    "launch_index": VALUE,
    "meta": VALUE,
})
NETWORK_DATA = st.fixed_dictionaries({}, optional={
    "links": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({"id": TEXT}), VALUE),
                                max_size=2), VALUE),
    "networks": VALUE,
    "services": VALUE,
})
DRIVE = st.fixed_dictionaries({}, optional={
    "meta_data": st.one_of(META_DATA, VALUE),
    "user_data": st.one_of(TEXT, st.binary(max_size=16), VALUE),
    "network_data": st.one_of(NETWORK_DATA, VALUE),
    "vendor_data": VALUE,
}).flatmap(lambda drive: st.one_of(
    st.just(drive),
    st.dictionaries(st.one_of(TEXT, st.integers(), st.builds(_huge_int)), VALUE,
                    max_size=2).map(
        lambda extra: {**extra, **drive})))


# -- reference images -------------------------------------------------------------------------

GOOD = {"meta_data": {"name": "fuzz", "files": [{"path": "/etc/motd", "contents": "hi"}]},
        "user_data": "#cloud-config\n", "network_data": {"links": [{"id": "l0"}]}}
ISO = image.build_image(GOOD, node_uuid=UUID)
VFAT = image.build_image(GOOD, node_uuid=UUID, fmt=image.VFAT)
TREE = layout.build_tree(GOOD, node_uuid=UUID)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    raw = bytearray(data)
    for at, value in edits:
        raw[at % len(raw)] = value
    return bytes(raw[:cut] if cut is not None else raw)


#: Offsets worth hitting: volume descriptors, directory records, boot sector, FATs.
HOT = st.one_of(st.integers(0, 1024), st.integers(formats.ISO_PVD_OFFSET,
                                                  formats.ISO_PVD_OFFSET + 3 * 2048),
                st.integers(0, 1 << 20))
EDITS = st.lists(st.tuples(HOT, st.integers(0, 255)), max_size=6)
CUT = st.one_of(st.none(), st.integers(0, len(ISO)))

ENCODINGS = {
    "raw": lambda raw: raw,
    "gzip": lambda raw: gzip.compress(raw, mtime=0),
    "base64": lambda raw: base64.b64encode(raw),
    "base64+gzip": lambda raw: image.pack(raw).encode(),
    "wrapped": lambda raw: base64.encodebytes(gzip.compress(raw, mtime=0)),
}
IMAGE_BYTES = st.one_of(
    st.binary(max_size=256),
    st.builds(_mutate, st.sampled_from([ISO, VFAT]), EDITS, CUT),
    st.builds(lambda enc, raw, edits, cut: _mutate(ENCODINGS[enc](raw), edits, cut),
              st.sampled_from(sorted(ENCODINGS)), st.sampled_from([ISO, VFAT]), EDITS,
              st.one_of(st.none(), st.integers(0, 4096))),
)

def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=True, default=repr)
    except (TypeError, ValueError):  # keys of mixed types, integers of 5000 digits
        return "null"


#: JSON-looking text: brackets, quotes, escapes (lone surrogates too), numbers and names.
JSON_TEXT = st.one_of(
    st.lists(st.sampled_from([*'[]{}",:\\ 0123456789-.eEaunltrfsxd', "\\ud800", "\\u0000",
                              '"uuid"', "NaN", "1e400", UUID]), max_size=60).map("".join),
    st.builds(lambda n: "[" * n + "]" * n, st.sampled_from([64, 65, 900, 100_000])),
    st.builds(_dumps, JSONISH),
)


# -- properties -------------------------------------------------------------------------------

@_settings(400)
@given(drive=DRIVE, fmt=st.sampled_from([image.ISO9660, image.VFAT]), cloudstack=st.booleans(),
       node_name=st.one_of(st.none(), TEXT))
def test_build_refuses_in_the_hierarchy_or_builds_a_valid_drive(
        drive: dict[str, Any], fmt: str, cloudstack: bool, node_name: str | None) -> None:
    warnings: list[str] = []
    try:
        built = image.build_image(drive, fmt=fmt, node_uuid=UUID, node_name=node_name,
                                  cloudstack=cloudstack, warnings=warnings)
    except ConfigDriveError as exc:
        assert exc.message and "Traceback" not in exc.message
        event(f"refused: {type(exc).__name__}")
        return
    event("built")  # --hypothesis-show-statistics: how many drives were built and validated
    assert image.validate(built) == []
    assert all(isinstance(text, str) for text in warnings)


@_settings(300)
@given(value=st.one_of(DRIVE, TEXT, st.binary(max_size=64), JSON_TEXT, IMAGE_BYTES,
                       JSON_TEXT.map(str.encode), VALUE))
def test_normalise_ends_in_a_source_or_the_hierarchy(value: Any) -> None:
    try:
        # Pass-through: a URL is handed on, never fetched, so the test stays offline.
        src = source.normalise(value, node_uuid=UUID, allow_url_passthrough=True)
    except ConfigDriveError:
        return
    assert src.image is not None or src.passthrough


@_settings(300)
@given(data=st.one_of(IMAGE_BYTES, st.text(ANY_CHAR, max_size=64)))
def test_inspect_never_raises(data: bytes | str) -> None:
    report = image.inspect(data)
    assert report.valid == (image.validate(data) == [])
    json.dumps(report.as_dict())  # the CLI's --json output


@_settings(400)
@given(data=IMAGE_BYTES)
def test_inspect_reads_lazily_with_the_verdicts_of_reading_everything(data: bytes) -> None:
    """Reading only the JSON documents changes nothing in the report: problems, warnings,
    file sizes, readers, for any mutated or truncated drive."""
    assert image.inspect(data).as_dict() == eager_inspect.inspect(data).as_dict()


@_settings(200)
@given(name=st.sampled_from(["meta_data.json", "network_data.json", "vendor_data2.json"]),
       text=JSON_TEXT, writer=st.sampled_from([vfat.write_fat, iso9660.write_iso]))
def test_validate_reads_any_json_inside_a_drive(name: str, text: str, writer: Any) -> None:
    files = dict(TREE)
    for version in (layout.LATEST, layout.OPENSTACK_VERSIONS[-1]):
        files[f"openstack/{version}/{name}"] = text.encode("utf-8", "surrogatepass")
    report = image.inspect(writer(files))
    assert all(isinstance(problem, str) for problem in report.problems)


@_settings(400)
@given(data=IMAGE_BYTES, cuts=st.lists(st.integers(0, 70_000), max_size=8),
       cap=st.sampled_from([1, 4096, 100_000, formats.MAX_IMAGE_SIZE]))
def test_stream_decoder_any_bytes_any_chunking(data: bytes, cuts: list[int], cap: int) -> None:
    points = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    decoder = image.StreamDecoder(cap=cap)
    out = []
    try:
        for start, end in zip(points, points[1:], strict=False):
            out.extend(decoder.feed(data[start:end]))
        out.extend(decoder.finish())
    except ConfigDriveError:
        return
    assert 0 < sum(map(len, out)) <= cap


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_stream_decoder_control(encoding: str) -> None:
    """The fuzzed decoder does decode: the unmutated encodings give the image back."""
    decoder = image.StreamDecoder()
    data = ENCODINGS[encoding](ISO)
    out = b"".join([*decoder.feed(data[:1000]), *decoder.feed(data[1000:]), *decoder.finish()])
    assert out == ISO
