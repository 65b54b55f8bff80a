#!/usr/bin/env python3
"""Benchmark: the agent's partition-table work alone, on loop disks, optionally before/after.

Times what a write and a removal cost in table work, without the download or the image:
``prepare_target`` (read the table, create and mark the config-2 partition, tell the
kernel) and ``remove_config_drive`` (zero it, delete the entry, tell the kernel), on a fresh
256 MiB loop disk per run (GPT with one partition, or an MBR whose four slots are taken so
the partition is a logical one). Each run is a child process importing the code of one
checkout; the time is measured around the two calls inside it, so interpreter start-up and
imports are left out. Needs root, losetup, sgdisk, parted and partx. Usage::

    python tests/bench/bench_partition_table.py [--rounds N] [--baseline-tree DIR] [--json]

Rounds interleave the trees (this one, then the baseline; the order alternates) and the
figures are medians with min-max in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
LAYOUTS = {
    "gpt": [["sgdisk", "-n", "1:2048:+20M"]],
    "mbr-logical": [["parted", "-s", "-a", "none", "{dev}", "--", "mklabel", "msdos",
                     "mkpart", "primary", "1MiB", "20MiB", "mkpart", "primary", "20MiB",
                     "40MiB", "mkpart", "primary", "40MiB", "60MiB", "mkpart", "extended",
                     "60MiB", "100%"]],
}

CHILD = """
import json, sys, time
from agent_ext.disk import prepare_target, remove_config_drive
start = time.perf_counter()
target = prepare_target(sys.argv[1], size=2 * 1024 * 1024)
prepared = time.perf_counter()
removed = remove_config_drive(sys.argv[1])
done = time.perf_counter()
assert target.action == "created" and removed.removed, (target, removed)
print(json.dumps({"prepare": prepared - start, "remove": done - prepared}))
"""


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def loop_disk(workdir: pathlib.Path, layout: str) -> Iterator[str]:
    backing = workdir / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(256 * MIB)
    device = run("losetup", "-f", "--show", "-P", str(backing)).strip()
    try:
        for step in LAYOUTS[layout]:
            argv = [a.replace("{dev}", device) for a in step]
            run(*argv, *([] if "{dev}" in " ".join(step) else [device]))
        run("partx", "--update", device)
        yield device
    finally:
        subprocess.run(["partx", "--delete", device], capture_output=True, check=False)
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
        backing.unlink()


def once(tree: pathlib.Path, workdir: pathlib.Path, layout: str) -> dict[str, float]:
    with loop_disk(workdir, layout) as device:
        out = subprocess.run([sys.executable, "-c", CHILD, device], cwd=tree, check=True,
                             capture_output=True, text=True).stdout
    figures: dict[str, float] = json.loads(out)
    return figures


def spread(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline-tree", type=pathlib.Path, metavar="DIR",
                        help="also time the checkout in DIR, interleaved with this one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    trees = {"this tree": ROOT}
    if args.baseline_tree is not None:
        trees["baseline"] = args.baseline_tree.resolve()
    results: dict[str, dict[str, dict[str, list[float]]]] = {
        name: {layout: {"prepare": [], "remove": []} for layout in LAYOUTS} for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-table-") as tmp:
        workdir = pathlib.Path(tmp)
        for round_no in range(args.rounds):
            names = list(trees)
            if round_no % 2:
                names.reverse()
            for layout in LAYOUTS:
                for name in names:
                    figures = once(trees[name], workdir, layout)
                    for key, value in figures.items():
                        results[name][layout][key].append(value)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"partition-table work per write and per removal, {args.rounds} interleaved "
          "rounds, ms: median (min-max)")
    for name in trees:
        for layout in LAYOUTS:
            got = results[name][layout]
            print(f"{name:10} {layout:12} prepare_target {spread(got['prepare']):>22}   "
                  f"remove {spread(got['remove']):>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
