#!/usr/bin/env python3
"""Benchmark: the conductor's path for a drive it did not build, reading it whole or lazily.

    python -m tests.bench.bench_foreign [--pairs N] [--json]

What runs is :meth:`~ironic_configdrive.lifecycle.DriveLifecycle._normalise` on a drive
given as gzip+base64 text (what ``instance_info['configdrive']`` holds): decode, ``inspect``,
the readers' check. Two versions of it:

* **new** — the code as it stands: the text decoded a megabyte at a time into one buffer,
  the tree listed from its directories, only the JSON documents read.
* **old** — the same path with ``image.unpack`` and ``image.inspect`` swapped for how they
  read a drive before (``tests/fixtures/eager_inspect.py``: the text encoded whole, pieces
  joined, every file of every version directory read).

Drives: ours (``ironic-configdrive example``) as built, with 8 MiB and with 60 MiB of
user_data (ISO9660; and 60 MiB on vfat), given as foreign; openstacksdk's
(``openstack.baremetal.configdrive.build``: genisoimage, two version directories, a copy of
user_data in each) typical and with 8 MiB, when it is installed. Every sample is a fresh
child process; old and new alternate for ``--pairs`` rounds (default 7). Printed per drive:
median (min-max) ms per call of the whole path and of ``inspect`` alone on the decoded image,
the per-round speed-up, and memory: the child's peak RSS while the path ran (its peak is
reset after imports and loading the input, which alone peaks at twice the text) and how much
the path added to the process holding the text, after its first call and after all of them
(the allocator's heap, fragmented by earlier calls, keeps more than one call needs). Linux
only (``/proc``). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from tests.bench.figures import child_sample, spread

MIB = 1024 * 1024
NODE_UUID = "00000000-0000-0000-0000-000000000001"
#: name: (builder, user_data bytes, format, calls per child)
CASES = {
    "typical": ("ours", 0, "iso9660", 25),
    "8 MiB user_data": ("ours", 8 * MIB, "iso9660", 5),
    "60 MiB user_data": ("ours", 60 * MIB, "iso9660", 2),
    "60 MiB user_data, vfat": ("ours", 60 * MIB, "vfat", 2),
    "openstacksdk typical": ("openstacksdk", 0, "iso9660", 25),
    "openstacksdk 8 MiB user_data": ("openstacksdk", 8 * MIB, "iso9660", 5),
}

CHILD = r"""
import json, statistics, sys, time, types
method, wire_path, calls, node_uuid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from oslo_config import cfg
from ironic_configdrive import conf, image, lifecycle
conf.register_opts(cfg.CONF)
cfg.CONF([], project="ironic")
if method == "old":
    from tests.fixtures import eager_inspect
    image.unpack, image.inspect = eager_inspect.unpack, eager_inspect.inspect
drive = lifecycle.DriveLifecycle.__new__(lifecycle.DriveLifecycle)
drive.node = types.SimpleNamespace(uuid=node_uuid, name="bench", driver_info={},
                                   instance_info={})
# a node whose network interface gives no network data (noop): nothing to repair
drive.task = types.SimpleNamespace(node=drive.node, driver=types.SimpleNamespace(
    network=types.SimpleNamespace(capabilities=[])))
with open(wire_path) as wire_file:
    wire = wire_file.read()
def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))
# Loading the input peaks at twice its size: reset the peak (Linux >= 4.0) so that what is
# measured is the path's own, over the process as it stands with its input.
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
before = status("VmRSS")
walls, first = [], None
for _ in range(calls):
    start = time.perf_counter()
    src = drive._normalise(wire)
    walls.append(time.perf_counter() - start)
    assert src.kind == "encoded" and src.image
    del src
    first = status("VmHWM") if first is None else first
after = status("VmHWM")
raw = image.unpack(wire)
inspects = []
for _ in range(calls):
    start = time.perf_counter()
    assert image.inspect(raw).valid
    inspects.append(time.perf_counter() - start)
print(json.dumps({"wall": statistics.median(walls), "inspect": statistics.median(inspects),
                  "peak_kib": after, "first_kib": first - before, "path_kib": after - before}))
"""


def make_wire(builder: str, user_data_size: int, fmt: str) -> str:
    """The drive as Ironic holds it (gzip+base64 text)."""
    from importlib import resources

    doc = json.loads(resources.files("ironic_configdrive.examples").joinpath(
        "configdrive.json").read_text())
    if user_data_size:
        doc["user_data"] = os.urandom(user_data_size // 2).hex()
    if builder == "openstacksdk":
        from openstack.baremetal import configdrive as sdk

        # It writes meta_data as given: injected files (Ironic's JSON form) have no place.
        meta = {key: value for key, value in doc["meta_data"].items() if key != "files"}
        meta["uuid"] = NODE_UUID
        wire = sdk.build(meta, user_data=doc["user_data"].encode(),
                         network_data=doc.get("network_data"),
                         vendor_data=doc.get("vendor_data"))
        return wire if isinstance(wire, str) else wire.decode()
    from ironic_configdrive.image import build_image, pack

    return pack(build_image(doc, fmt=fmt, node_uuid=NODE_UUID))


def sdk_installed() -> bool:
    try:
        import openstack.baremetal.configdrive  # noqa: F401
    except ImportError:
        return False
    return True


def sample(method: str, wire_path: Path, calls: int) -> dict[str, float]:
    return child_sample(CHILD, [method, str(wire_path), str(calls), NODE_UUID],
                        f"{method} / {wire_path.name}")


def run_case(wire_path: Path, calls: int, pairs: int) -> dict[str, object]:
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for round_no in range(pairs):
        for method in ("old", "new") if round_no % 2 == 0 else ("new", "old"):
            runs[method].append(sample(method, wire_path, calls))
    return {
        **{f"{m}_ms": [r["wall"] * 1000 for r in rs] for m, rs in runs.items()},
        **{f"{m}_inspect_ms": [r["inspect"] * 1000 for r in rs] for m, rs in runs.items()},
        "speedup": [old["wall"] / new["wall"]
                    for old, new in zip(runs["old"], runs["new"], strict=True)],
        "peak_rss_mib": {m: [r["peak_kib"] / 1024 for r in rs] for m, rs in runs.items()},
        "first_call_mib": {m: [r["first_kib"] / 1024 for r in rs] for m, rs in runs.items()},
        "path_memory_mib": {m: [r["path_kib"] / 1024 for r in rs] for m, rs in runs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=7, help="rounds of old and new")
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="only these drives (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cases = args.case or list(CASES)
    if not sdk_installed():
        cases = [case for case in cases if CASES[case][0] != "openstacksdk"]
    figures: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            builder, size, fmt, calls = CASES[case]
            wire_path = Path(tmp) / "wire.txt"
            wire_path.write_text(make_wire(builder, size, fmt))
            figures[case] = run_case(wire_path, calls, args.pairs)
            figures[case]["wire_kib"] = wire_path.stat().st_size / 1024
            if not args.json:
                show(case, figures[case])
    if args.json:
        print(json.dumps({"pairs": args.pairs, "cases": figures}, indent=2))
    return 0


def show(case: str, fig: dict[str, object]) -> None:
    print(f"{case} (wire {fig['wire_kib']:.0f} KiB): median (min-max)")
    peak, first, path = fig["peak_rss_mib"], fig["first_call_mib"], fig["path_memory_mib"]
    assert isinstance(peak, dict) and isinstance(first, dict) and isinstance(path, dict)
    for method in ("old", "new"):
        wall, alone = fig[f"{method}_ms"], fig[f"{method}_inspect_ms"]
        assert isinstance(wall, list) and isinstance(alone, list)
        print(f"  {method}  path {spread(wall):>24} ms   inspect {spread(alone):>24} ms")
        print(f"       peak RSS {spread(peak[method], digits=1):>20} MiB   added by the first "
              f"call {spread(first[method], digits=1):>18} MiB, by all "
              f"{spread(path[method], digits=1):>18} MiB")
    speed = fig["speedup"]
    assert isinstance(speed, list)
    print(f"  new is {spread(speed)}x faster (per round)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
