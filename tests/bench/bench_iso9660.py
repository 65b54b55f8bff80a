"""ISO9660 writer timing: write_iso against pycdlib and openstacksdk's genisoimage path.

    python -m tests.bench.bench_iso9660

Nothing here is asserted; the numbers are for people.
"""

from __future__ import annotations

import gzip
import io
import timeit

from ironic_configdrive.image import iso9660
from tests.functional.test_iso9660_tools import all_dirs
from tests.unit.image.test_iso9660 import typical_drive


def benchmark() -> None:
    """Print write_iso time against pycdlib and openstacksdk's genisoimage path."""
    import pycdlib

    files = typical_drive()
    dirs = all_dirs(files)

    def with_pycdlib() -> bytes:
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="config-2")
        for d in sorted(dirs):
            iso.add_directory(
                "/" + d.upper().replace("-", "_"),
                rr_name=d.rsplit("/", 1)[-1],
                joliet_path="/" + d,
            )
        for p, data in sorted(files.items()):
            name = p.rsplit("/", 1)[-1]
            iso_path = "/" + p.upper().replace("-", "_") + ("" if "." in name else ".") + ";1"
            iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=name, joliet_path="/" + p)
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
        return out.getvalue()

    def best(fn, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e3

    ours = best(lambda: iso9660.write_iso(files), 200)
    packed = best(lambda: gzip.compress(iso9660.write_iso(files), 9, mtime=0), 100)
    theirs = best(with_pycdlib, 10)
    image = iso9660.write_iso(files)
    print(f"typical drive: {len(files)} files in {len(dirs) + 1} directories")
    print(f"write_iso:          {ours:7.3f} ms  ({len(image)} bytes)")
    print(f"write_iso + gzip:   {packed:7.3f} ms")
    print(f"pycdlib new/write:  {theirs:7.3f} ms  ({theirs / ours:.1f}x slower)")
    try:
        from openstack.baremetal import configdrive
    except ImportError:
        return
    meta = {"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "name": "node-1"}
    sdk = best(lambda: configdrive.build(meta, user_data=b"#cloud-config\n"), 5)
    print(f"openstacksdk build: {sdk:7.3f} ms  (genisoimage, 2 versions, gzip+base64)")


if __name__ == "__main__":
    benchmark()
