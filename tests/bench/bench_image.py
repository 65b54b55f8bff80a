"""Image core benchmark: ours vs upstream's path, measured in the same run, ratios printed.

    python tests/bench/bench_image.py        (or: tox -e bench)

1. build_image + pack vs openstacksdk's configdrive.build (genisoimage, gzip, base64), which
   is what Ironic runs for a JSON config drive: a typical drive (a few KB) and 8 MB of
   user_data. Ours writes every Nova metadata version; upstream writes two.
2. The streaming decoder vs gzip.decompress(base64.b64decode(...)) of the same drive.

Targets (issue 2): >= 4x on the typical drive, >= 2x on the large one. Nothing here is
asserted; the numbers are for people.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from openstack.baremetal import configdrive as sdk

from ironic_configdrive.image import build_image, pack
from ironic_configdrive.image.stream import iter_decode

EXAMPLE = (Path(__file__).resolve().parents[2] / "ironic_configdrive" / "examples"
           / "configdrive.json")


def best_of(func: Callable[[], object], *, repeat: int, number: int) -> float:
    """Best per-call time over ``repeat`` rounds of ``number`` calls (least noisy estimate)."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        rounds.append((time.perf_counter() - start) / number)
    return min(rounds)


def upstream_build(configdrive: dict) -> str:
    """What Ironic's build_configdrive does with the JSON form (defaults already applied)."""
    user_data = configdrive.get("user_data")
    if isinstance(user_data, str):
        user_data = user_data.encode()
    return sdk.build(configdrive["meta_data"], user_data=user_data,
                     network_data=configdrive.get("network_data"),
                     vendor_data=configdrive.get("vendor_data"))


def our_build(configdrive: dict) -> str:
    return pack(build_image(configdrive))


def compare_build(name: str, configdrive: dict, repeat: int, number: int) -> float:
    ours = best_of(lambda: our_build(configdrive), repeat=repeat, number=number)
    theirs = best_of(lambda: upstream_build(configdrive), repeat=repeat, number=number)
    ratio = theirs / ours
    print(f"{name:<34} ours {ours * 1000:8.2f} ms   openstacksdk {theirs * 1000:8.2f} ms   "
          f"ours is {ratio:5.1f}x faster")
    return ratio


def compare_decode(packed: str, repeat: int) -> float:
    data = packed.encode()
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]

    def ours() -> None:
        for _ in iter_decode(chunks):
            pass

    def plain() -> None:
        gzip.decompress(base64.b64decode(data))

    t_ours = best_of(ours, repeat=repeat, number=3)
    t_plain = best_of(plain, repeat=repeat, number=3)
    size = len(gzip.decompress(base64.b64decode(data)))
    print(f"{'decode ' + str(size // 1024) + ' KiB image':<34} ours {t_ours * 1000:8.2f} ms "
          f"({size / t_ours / 2**20:6.0f} MiB/s)   gzip.decompress {t_plain * 1000:8.2f} ms   "
          f"ratio {t_plain / t_ours:4.2f}")
    return t_plain / t_ours


def main() -> int:
    typical = json.loads(EXAMPLE.read_text())
    large = dict(typical, user_data=base64.b64encode(os.urandom(6 * 1024 * 1024)).decode())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    ratios = {
        "typical": compare_build("build+pack, typical drive", typical, repeat=7, number=20),
        "large": compare_build("build+pack, 8 MB user_data", large, repeat=5, number=2),
    }
    decode = compare_decode(our_build(large), repeat=5)
    print(f"summary: typical {ratios['typical']:.1f}x (target >= 4x), "
          f"large {ratios['large']:.1f}x (target >= 2x), "
          f"streaming decode at {decode:.2f}x the speed of gzip.decompress")
    return 0


if __name__ == "__main__":
    sys.exit(main())
