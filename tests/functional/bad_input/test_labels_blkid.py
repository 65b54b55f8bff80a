"""``validate`` sees the volume label as blkid does: checked against ``blkid -p`` itself.

cloud-init finds a config drive with blkid (``LABEL=config-2``); for ISO9660 blkid reports
the Joliet descriptor's label when it differs from the primary one. Each image here has the
labels patched differently; the label ``inspect`` reports must be blkid's, and ``validate``
must find a problem exactly when blkid would not report ``config-2`` or the two differ.
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from ironic_configdrive import image
from ironic_configdrive.image import formats
from tests.conftest import require_tool
from tests.functional.bad_input import corpus

pytestmark = pytest.mark.interop


def _with_label(label: str, *, joliet: bool) -> bytes:
    raw = bytearray(corpus.iso())
    for sector in range(16, 32):
        start = sector * formats.ISO_SECTOR
        if joliet and raw[start] == 2 and raw[start + 88 : start + 91] == b"%/E":
            raw[start + 40 : start + 72] = (label.encode("utf-16-be") + b"\x00 " * 16)[:32]
            return bytes(raw)
        if not joliet and raw[start] == 1:
            raw[start + 40 : start + 72] = label.encode("ascii").ljust(32)
            return bytes(raw)
    raise AssertionError("no such volume descriptor")


#: name -> (image, label blkid reports, valid)
CASES = {
    "as_built": (corpus.iso, "config-2", True),
    "joliet_differs": (corpus.iso_joliet_label_differs, "WRONG-JOLIET", False),
    "primary_differs": (lambda: _with_label("WRONG-LABEL", joliet=False), "config-2", False),
    "joliet_upper_case": (lambda: _with_label("CONFIG-2", joliet=True), "config-2", False),
    "joliet_prefix": (lambda: _with_label("config-", joliet=True), "config-", False),
    "joliet_blank": (lambda: _with_label("", joliet=True), None, False),
}


def _blkid_label(path: pathlib.Path) -> str | None:
    out = subprocess.run([require_tool("blkid"), "-p", "-o", "export", str(path)],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    assert "TYPE=iso9660" in out.splitlines(), out
    labels = [line[len("LABEL="):] for line in out.splitlines() if line.startswith("LABEL=")]
    return labels[0] if labels else None


@pytest.mark.parametrize("case", list(CASES))
def test_validate_reads_the_label_blkid_reads(tmp_path: pathlib.Path, case: str) -> None:
    make, label, valid = CASES[case]
    path = tmp_path / "drive.iso"
    path.write_bytes(make())
    assert _blkid_label(path) == label
    report = image.inspect(path.read_bytes())
    assert report.label == label
    assert report.valid is valid, report.problems
    assert all(corpus.SECRET not in problem for problem in report.problems)
