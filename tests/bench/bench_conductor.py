#!/usr/bin/env python3
"""Benchmark: the conductor's path for a JSON config drive, ours against upstream's.

    python -m tests.bench.bench_conductor [--pairs N] [--json]     (or: tox -e bench)

* **ours** — what :class:`~ironic_configdrive.lifecycle.DriveLifecycle` does before it stores
  a drive: ``_normalise`` (build, and validate when the drive was not built here), then the
  store's ``encode`` (gzip at the level the store uses, then seal with a fresh key).
* **openstacksdk** — ``openstack.baremetal.configdrive.build``: what Ironic runs for the
  JSON form (files in a temporary directory, ``genisoimage``, gzip, base64).

Two drives: the typical one (``ironic-configdrive example``) and the same with 8 MiB of
user_data. Every sample is a fresh child process (imports done, then the path run several
times; its median per call is the sample), and the two methods alternate for ``--pairs``
rounds (default 7). Printed: medians with min-max, the per-round ratio, and memory: the
child's peak RSS (each child first imports Ironic's conductor manager, as a conductor has,
which loads openstacksdk too), and how much of it the path added after imports and input
(openstacksdk's
``genisoimage`` runs in a process of its own, not counted: a forked child's peak would repeat
its parent's). Nothing is asserted; ``--check`` exits 1 when a target of issue 13 is missed
(>= 4x on the typical drive, >= 2.5x with 8 MiB, peak RSS no higher than openstacksdk's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from tests.bench.figures import child_sample, spread

TARGETS = {"typical": 4.0, "8 MiB user_data": 2.5}
#: Calls per child: enough to take a stable median, few enough for 14 children per case.
CALLS = {"typical": 25, "8 MiB user_data": 3}
LARGE_USER_DATA = 8 * 1024 * 1024
LEVELS = (1, 3, 6, 9)

CHILD = r"""
import json, os, resource, statistics, sys, time, types, uuid
method, case, calls, large = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# Both paths run inside an Ironic conductor, which has Ironic and openstacksdk loaded: so
# does either child, before its method's own imports.
import ironic.conductor.manager  # noqa: F401
from importlib import resources
doc = json.loads(resources.files("ironic_configdrive.examples").joinpath(
    "configdrive.json").read_text())
if case != "typical":
    doc["user_data"] = os.urandom(large // 2).hex()
node_uuid = str(uuid.UUID(int=1))
if method == "ours":
    from oslo_config import cfg
    from ironic_configdrive import conf, lifecycle
    from ironic_configdrive.image import sealing
    from ironic_configdrive.store import common
    conf.register_opts(cfg.CONF)
    cfg.CONF([], project="ironic")
    node = types.SimpleNamespace(uuid=node_uuid, name="bench", driver_info={},
                                 instance_info={})
    drive = lifecycle.DriveLifecycle.__new__(lifecycle.DriveLifecycle)
    drive.node = node
    # a node whose network interface gives no network data (noop): nothing to repair
    drive.task = types.SimpleNamespace(node=node, driver=types.SimpleNamespace(
        network=types.SimpleNamespace(capabilities=[])))
    def path():
        src = drive._normalise(doc)
        common.encode("bench", node_uuid, src.image, common.GZIP, sealing.new_key())
else:
    from openstack.baremetal import configdrive as sdk
    def path():
        meta = dict(doc["meta_data"], uuid=node_uuid)
        sdk.build(meta, user_data=doc["user_data"].encode(),
                  network_data=doc.get("network_data"), vendor_data=doc.get("vendor_data"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
walls = []
for _ in range(calls):
    start = time.perf_counter()
    path()
    walls.append(time.perf_counter() - start)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall": statistics.median(walls), "peak_kib": after,
                  "path_kib": after - before}))
"""


def sample(method: str, case: str) -> dict[str, float]:
    return child_sample(CHILD, [method, case, str(CALLS[case]), str(LARGE_USER_DATA)],
                        f"{method} / {case}")


def gzip_levels(repeat: int) -> dict[str, dict[int, tuple[float, int]]]:
    """Median time (ms) and size (bytes) of gzip at each level, for both drives' images:
    the evidence behind :data:`ironic_configdrive.image.codec.GZIP_LEVEL`."""
    import gzip
    import os
    import time
    from importlib import resources

    from ironic_configdrive.image import build_image

    doc = json.loads(resources.files("ironic_configdrive.examples").joinpath(
        "configdrive.json").read_text())
    large = dict(doc, user_data=os.urandom(LARGE_USER_DATA // 2).hex())
    table: dict[str, dict[int, tuple[float, int]]] = {}
    for case, drive in (("typical", doc), ("8 MiB user_data", large)):
        image = build_image(drive, node_uuid="00000000-0000-0000-0000-000000000001")
        row: dict[int, list[float]] = {level: [] for level in LEVELS}
        sizes: dict[int, int] = {}
        for _ in range(repeat):
            for level in LEVELS:  # interleaved, like the methods
                start = time.perf_counter()
                sizes[level] = len(gzip.compress(image, compresslevel=level, mtime=0))
                row[level].append((time.perf_counter() - start) * 1000)
        table[case] = {level: (statistics.median(row[level]), sizes[level]) for level in LEVELS}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=7, help="rounds of ours, then theirs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    figures: dict[str, dict[str, object]] = {}
    met: dict[str, bool] = {}
    for case, target in TARGETS.items():
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "openstacksdk": []}
        for round_no in range(args.pairs):
            order = ("ours", "openstacksdk") if round_no % 2 == 0 else ("openstacksdk", "ours")
            for method in order:
                runs[method].append(sample(method, case))
        ratios = [theirs["wall"] / ours["wall"]
                  for ours, theirs in zip(runs["ours"], runs["openstacksdk"], strict=True)]
        memory = {m: statistics.median(r["path_kib"] for r in rs) / 1024
                  for m, rs in runs.items()}
        figures[case] = {
            "ours_ms": [r["wall"] * 1000 for r in runs["ours"]],
            "openstacksdk_ms": [r["wall"] * 1000 for r in runs["openstacksdk"]],
            "speedup": ratios,
            "path_memory_mib": memory,
            "peak_rss_mib": {m: statistics.median(r["peak_kib"] for r in rs) / 1024
                             for m, rs in runs.items()},
        }
        met[f"{case}: >= {target}x"] = statistics.median(ratios) >= target
        peaks = figures[case]["peak_rss_mib"]
        assert isinstance(peaks, dict)
        met[f"{case}: peak RSS <= openstacksdk's"] = peaks["ours"] <= peaks["openstacksdk"]
    levels = gzip_levels(args.pairs)
    if args.json:
        print(json.dumps({"pairs": args.pairs, "cases": figures, "targets": met,
                          "gzip_levels": levels}, indent=2))
    else:
        print(f"conductor path, JSON config drive: {args.pairs} interleaved rounds, "
              "median (min-max)")
        for case, fig in figures.items():
            ours_ms, sdk_ms = fig["ours_ms"], fig["openstacksdk_ms"]
            mem, peak = fig["path_memory_mib"], fig["peak_rss_mib"]
            assert isinstance(ours_ms, list) and isinstance(sdk_ms, list)
            assert isinstance(mem, dict) and isinstance(peak, dict)
            speed = fig["speedup"]
            assert isinstance(speed, list)
            print(f"{case}:")
            print(f"  ours          {spread(ours_ms):>24} ms   path memory "
                  f"{mem['ours']:6.1f} MiB  (process peak {peak['ours']:.1f} MiB)")
            print(f"  openstacksdk  {spread(sdk_ms):>24} ms   path memory "
                  f"{mem['openstacksdk']:6.1f} MiB  (process peak "
                  f"{peak['openstacksdk']:.1f} MiB)")
            print(f"  ours is {spread(speed)}x faster (per round)")
        for target, ok in met.items():
            print(f"  target {target}: {'met' if ok else 'MISSED'}")
        from ironic_configdrive.image.codec import GZIP_LEVEL

        print(f"gzip level (the stores use {GZIP_LEVEL}): median ms / bytes")
        for case, row in levels.items():
            print(f"  {case:16} " + "   ".join(f"{level}: {ms:7.2f} ms {size:>9}"
                                                for level, (ms, size) in row.items()))
    return 1 if args.check and not all(met.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
