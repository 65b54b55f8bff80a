import base64
import gzip

import pytest

from ironic_configdrive.image import build_image, errors, pack, unpack
from tests.fixtures.memory import one_copy, traced_peak

UUID = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture(scope="module")
def image():
    return build_image({"meta_data": {"name": "n"}, "user_data": "ud"}, node_uuid=UUID)


def test_pack_is_gzip_then_base64_and_reproducible(image):
    packed = pack(image)
    assert gzip.decompress(base64.b64decode(packed)) == image
    assert packed == pack(image)
    assert packed.startswith("H4sI")


@pytest.mark.parametrize(
    "encode",
    [
        pack,
        lambda i: pack(i).encode(),
        gzip.compress,
        base64.b64encode,
        lambda i: i,
        lambda i: base64.encodebytes(gzip.compress(i)).decode(),
    ],
)
def test_unpack_accepts_every_encoding(image, encode):
    assert unpack(encode(image)) == image


def test_pack_refuses_non_images():
    with pytest.raises(errors.InvalidMediaError, match="not an ISO9660 or FAT"):
        pack(b"#cloud-config\n" * 100)


@pytest.mark.parametrize(
    "data,error",
    [
        ("", errors.InvalidMediaError),
        ("not base64 at all é", errors.InvalidMediaError),
        (base64.b64encode(b"\x00" * 50000).decode(), errors.UnknownFormatError),
        (b"\x89PNG\r\n" + b"\0" * 40000, errors.UnknownFormatError),
    ],
)
def test_unpack_rejects_non_images(data, error):
    with pytest.raises(error):
        unpack(data)


def test_unpack_cap(image):
    with pytest.raises(errors.SizeLimitExceeded):
        unpack(pack(image), cap=len(image) - 1)


def test_a_raw_image_is_returned_as_it_is():
    big = build_image({"meta_data": {}, "user_data": "#" * (3 * 1024 * 1024)}, node_uuid=UUID)
    assert unpack(big) is big  # not decoded a megabyte at a time into a copy


def test_text_is_decoded_into_one_copy():
    """Ironic keeps the drive as text: it is encoded and decoded a piece at a time into one
    buffer, neither encoded whole nor collected as pieces joined at the end."""
    user_data = "".join(f"#{n:07d}\n" for n in range(8 * 1024 * 1024 // 9))
    big = build_image({"meta_data": {}, "user_data": user_data}, node_uuid=UUID)
    wire = pack(big)
    got, peak = traced_peak(lambda: unpack(wire))
    assert got == big
    assert peak < one_copy(len(big)), (peak, len(big))


def test_non_ascii_text_is_refused_before_decoding():
    with pytest.raises(errors.InvalidMediaError, match="non-ASCII characters; expected base64"):
        unpack("H4sI" + "A" * 100 + "é")
