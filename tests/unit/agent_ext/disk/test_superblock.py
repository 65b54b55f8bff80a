from __future__ import annotations

import struct

from agent_ext.disk import superblock
from ironic_configdrive.image import formats


def iso_head(label: str, blocks: int) -> bytes:
    head = bytearray(formats.SNIFF_SIZE)
    pvd = formats.ISO_PVD_OFFSET
    head[pvd] = 1
    head[pvd + 1 : pvd + 6] = b"CD001"
    head[pvd + 40 : pvd + 72] = label.encode().ljust(32)
    struct.pack_into("<I", head, pvd + 80, blocks)
    struct.pack_into(">I", head, pvd + 84, blocks)
    struct.pack_into("<H", head, pvd + 128, 2048)
    return bytes(head)


def fat_head(label: str, total16: int, total32: int = 0, sector: int = 512) -> bytes:
    head = bytearray(512)
    head[0:3] = b"\xeb\x3c\x90"
    struct.pack_into("<HBHBHHB", head, 11, sector, 4, 1, 2, 512, total16, 0xF8)
    struct.pack_into("<H", head, 22, 8)            # FAT12/16: sectors per FAT
    struct.pack_into("<I", head, 32, total32)
    head[0x26] = 0x29
    head[0x2B : 0x2B + 11] = label.encode().ljust(11)
    head[510:512] = b"\x55\xaa"
    return bytes(head)


def test_iso_config_drive():
    probe = superblock.probe(iso_head("config-2", 200))
    assert probe == superblock.Probe(format="iso9660", label="config-2", size=200 * 2048)


def test_fat_config_drive_16_and_32_bit_totals():
    assert superblock.probe(fat_head("CONFIG-2", 8192)) == superblock.Probe(
        "vfat", "CONFIG-2", 8192 * 512)
    assert superblock.probe(fat_head("CONFIG-2", 0, 100_000, 4096)) == superblock.Probe(
        "vfat", "CONFIG-2", 100_000 * 4096)


def test_other_labels_and_garbage_are_not_config_drives():
    assert superblock.probe(iso_head("ubuntu", 10)) is None
    assert superblock.probe(fat_head("EFI", 100)) is None
    assert superblock.probe(bytes(formats.SNIFF_SIZE)) is None
    assert superblock.probe(iso_head("config-2", 10)[:4096]) is None    # truncated read
