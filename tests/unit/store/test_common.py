import gzip
import hashlib

from ironic_configdrive.image import build_image, codec, sealing
from ironic_configdrive.store import common

UUID = "00000000-0000-4000-8000-000000000001"


def test_stores_compress_at_the_measured_level_reproducibly() -> None:
    image = build_image({"meta_data": {"uuid": UUID}, "user_data": "#cloud-config\n" * 500})
    data, digest, size = common.encode("test", UUID, image, common.GZIP)
    # One level for every store and for pack(): the one tests/bench/bench_conductor.py chose.
    assert data == gzip.compress(image, compresslevel=codec.GZIP_LEVEL, mtime=0)
    assert common.encode("test", UUID, image, common.GZIP)[0] == data
    assert (digest, size) == (hashlib.sha256(image).hexdigest(), len(image))


def test_sealed_data_opens_to_the_compressed_image() -> None:
    image = build_image({"meta_data": {"uuid": UUID}})
    key = sealing.new_key()
    data, _, _ = common.encode("test", UUID, image, common.GZIP, key)
    assert gzip.decompress(sealing.open_sealed(data, key)) == image
