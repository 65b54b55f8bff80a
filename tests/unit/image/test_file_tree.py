"""Drives read lazily (``build.open_tree``): sizes from the directories, a file read on lookup,
and the same verdicts as reading every file."""

from __future__ import annotations

import io
import struct
from unittest import mock

import pycdlib
import pytest

from ironic_configdrive.image import (
    ISO9660,
    VFAT,
    InvalidMediaError,
    build,
    build_image,
    formats,
    inspect,
    iso9660,
    read_tree,
    vfat,
    write_tree,
)
from ironic_configdrive.image.vfat import volume as fat_volume
from tests.fixtures import eager_inspect
from tests.unit.image.test_vfat import Boot

UUID = "7b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
META = b'{"uuid": "%s"}' % UUID.encode()
USER_DATA = b"#cloud-config\n" + b"".join(b"#%06d\n" % n for n in range(2048))  # 16 KiB


def drive(fmt: str) -> bytes:
    return build_image({"meta_data": {"name": "h1"}, "user_data": USER_DATA.decode()},
                       fmt=fmt, node_uuid=UUID)


def past_the_end() -> bytes:
    """An ISO whose last file's record reaches beyond the image, which pycdlib cuts short."""
    image = iso9660.write_iso({"openstack/latest/meta_data.json": META, "zz/big": b"b" * 20_000})
    cut = len(image) - 4 * formats.ISO_SECTOR
    blocks = struct.pack("<I", cut // formats.ISO_SECTOR) + struct.pack(">I", cut // 2048)
    at = formats.ISO_PVD_OFFSET + 80  # the volume space size, both byte orders
    return image[:at] + blocks + image[at + 8 : cut]


def pycdlib_iso(*, extensions: bool, eltorito: bool) -> bytes:
    """A drive made by pycdlib: plain ISO9660 names, or Rock Ridge and Joliet; optionally
    bootable (El Torito: a boot catalog pycdlib serves from memory, a boot info table it
    overlays on the boot image)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=formats.LABEL,
            **({"joliet": 3, "rock_ridge": "1.09"} if extensions else {}))
    files = {"OPENSTACK": None, "OPENSTACK/LATEST": None,
             "OPENSTACK/LATEST/META_DATA.JSON;1": META,
             "OPENSTACK/LATEST/USER_DATA.;1": USER_DATA, "BOOT.IMG;1": b"\x90" * 4096}
    for path, data in files.items():
        name = path.rsplit("/", 1)[-1].split(";")[0].rstrip(".").lower()
        names = {"rr_name": name, "joliet_path": "/" + path.split(";")[0].rstrip(".").lower()
                 } if extensions else {}
        if data is None:
            iso.add_directory("/" + path, **names)
        else:
            iso.add_fp(io.BytesIO(data), len(data), "/" + path, **names)
    if eltorito:
        iso.add_eltorito("/BOOT.IMG;1", "/BOOT.CAT;1", boot_info_table=True,
                         **({"rr_bootcatname": "boot.cat", "joliet_bootcatfile": "/boot.cat"}
                            if extensions else {}))
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


IMAGES = {"iso9660": lambda: drive(ISO9660), "vfat": lambda: drive(VFAT),
          "iso9660 record past the end": past_the_end,
          "pycdlib plain": lambda: pycdlib_iso(extensions=False, eltorito=False),
          "pycdlib El Torito": lambda: pycdlib_iso(extensions=True, eltorito=True),
          "pycdlib plain El Torito": lambda: pycdlib_iso(extensions=False, eltorito=True)}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_sizes_are_what_a_lookup_reads(name: str) -> None:
    image = IMAGES[name]()
    with build.open_tree(image) as files:
        assert dict(files.sizes) == {path: len(files[path]) for path in files}
        assert dict(files) == read_tree(image)
    assert inspect(image).as_dict() == eager_inspect.inspect(image).as_dict()


def test_the_cut_record_reads_what_the_image_holds() -> None:
    with build.open_tree(past_the_end()) as files:
        assert 0 < files.sizes["zz/big"] < 20_000


@pytest.mark.parametrize("fmt", [ISO9660, VFAT])
def test_inspect_reads_the_json_documents_and_never_user_data(fmt: str) -> None:
    image = drive(fmt)
    read: list[str] = []
    real_iso, real_fat = iso9660.IsoFiles.__getitem__, vfat.FatFiles.__getitem__

    def spy_iso(self: iso9660.IsoFiles, path: str) -> bytes:
        read.append(path)
        return real_iso(self, path)

    def spy_fat(self: vfat.FatFiles, path: str) -> bytes:
        read.append(path)
        return real_fat(self, path)

    with mock.patch.object(iso9660.IsoFiles, "__getitem__", spy_iso), \
            mock.patch.object(vfat.FatFiles, "__getitem__", spy_fat):
        report = inspect(image)
    assert report.valid, report.problems
    assert report.files["openstack/latest/user_data"] == len(USER_DATA)
    assert read and all(path.endswith(".json") for path in read), read
    assert len(read) == len(set(read))  # each document once


def _set_fat12(image: bytes, cluster: int, value: int) -> bytes:
    boot = Boot(image)
    at = boot.reserved * boot.sector_size + cluster + cluster // 2
    pair = struct.unpack_from("<H", image, at)[0]
    pair = (pair & 0x000F) | (value << 4) if cluster & 1 else (pair & 0xF000) | value
    return image[:at] + struct.pack("<H", pair) + image[at + 2:]


def test_a_broken_chain_is_refused_though_the_file_is_not_read() -> None:
    image = write_tree({"openstack/latest/meta_data.json": META,
                        "openstack/latest/user_data": USER_DATA}, fmt=VFAT)
    boot = Boot(image)
    assert boot.fs_type == b"FAT12   "
    offset = image.find(USER_DATA[:64])
    cluster = (offset // boot.sector_size - boot.data_start) // boot.spc + 2
    broken = _set_fat12(image, cluster, 0xFFF)  # the chain ends after its first cluster
    with pytest.raises(InvalidMediaError, match=f"user_data: {len(USER_DATA)} bytes need") as lazy:
        vfat.FatFiles(broken)
    with pytest.raises(InvalidMediaError) as eager:
        vfat.read_fat(broken)
    assert lazy.value.message == eager.value.message
    assert lazy.value.message in inspect(broken).problems


def test_chain_checks_match_reading_it() -> None:
    volume = fat_volume.parse_volume(drive(VFAT))
    first = volume.root_cluster or 2
    assert sum(1 for _ in volume.links(first, "x")) == len(volume.chain(first, "x"))
