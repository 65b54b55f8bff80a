#!/usr/bin/env python3
"""Benchmark: write a 48 MiB config drive to a partition, three ways, and compare.

A 48 MiB ISO9660 config drive (half random, half zeros) is served as gzip+base64 over HTTP
on 127.0.0.1 and written to a partition of a fresh 1 GiB loop disk (empty GPT) by

* **ours** — ``python -m ironic_configdrive.cli write --url ... --sha256 ... --size ...``
  (stream, decode, hash, O_DIRECT write, read-back verify);
* **IPA 13** — ``partition_utils.create_config_drive_partition`` (its mount self-test is
  patched out: the kernel here cannot mount iso9660);
* **shell** — ``curl | base64 -d | gunzip | dd oflag=direct`` into a pre-made partition
  (no partitioning, no verification: the floor).

Each runs in a child process; wall time is measured here, peak RSS comes from ``wait4``
(through GNU time, see :func:`measure`). The bytes on
the partition are checked against the image after every run. Needs root, losetup, sgdisk,
partx, curl, base64, gunzip and dd. Usage::

    python tests/bench/bench_agent_write.py [--pairs N] [--json] [--check] [--baseline-tree DIR]

Our packages are byte-compiled first, as ``pip install`` does: run from a source tree
with ``PYTHONDONTWRITEBYTECODE`` set, every run would compile them again (about 0.1 s of
CPU), which no installed agent pays; the upstream packages are compiled in site-packages.
The figures name the base64 decoder used (pybase64 from the ``[agent]`` extra when
installed, else binascii).

Every method runs once per round, in a rotating order, for ``--pairs`` rounds (default 7);
the figures are medians with min-max, and the ratios are taken per round (the methods of a
round shared the machine's load). ``--check`` exits 1 when a target is missed at the median
(ours ≤ 1.4x the shell pipeline, ≥ 10x faster than IPA, peak RSS ≤ ``import requests`` +
12 MiB). ``--baseline-tree DIR`` adds ours as checked out in DIR (e.g. ``git archive`` of an
earlier commit) to every round, so a change is measured against its parent interleaved.
"""

from __future__ import annotations

import argparse
import base64
import compileall
import contextlib
import functools
import gzip
import hashlib
import http.server
import json
import os
import pathlib
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MIB = 1024 * 1024
ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = ("losetup", "sgdisk", "partx", "curl", "base64", "gunzip", "dd", "bash")
# Optional: GNU time (Debian package "time") for exact peak RSS figures.
TARGET_VS_SHELL = 1.4
TARGET_VS_IPA = 10.0
TARGET_RSS_OVER_REQUESTS = 12
#: Interpreters doing nothing but imports: what our peak RSS is compared with.
BASELINES = {
    "bare interpreter (python -c pass)": "pass",
    "import requests": "import requests",
    "ours, imports only (nothing written)":
        "import ironic_configdrive.cli, agent_ext.pipeline, agent_ext.disk",
}

IPA_CHILD = """
import sys
from unittest import mock
from ironic_python_agent import config
config.populate_config()
from ironic_python_agent import partition_utils
with mock.patch.object(partition_utils, "_does_config_drive_work", return_value=True):
    partition_utils.create_config_drive_partition("bench-node", sys.argv[1], sys.argv[2])
"""


@dataclass
class Measure:
    wall: float
    rss_kib: int
    returncode: int
    output: str


@dataclass
class Row:
    name: str
    walls: list[float]
    rss_kib: list[int]

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rss_mib(self) -> float:
        return statistics.median(self.rss_kib) / 1024


def spread(values: list[float], digits: int = 3) -> str:
    """``median (min-max)`` of one method's or one ratio's figures over the rounds."""
    return (f"{round(statistics.median(values), digits)} "
            f"({round(min(values), digits)}-{round(max(values), digits)})")


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def measure(argv: list[str], workdir: pathlib.Path,
            cwd: pathlib.Path | None = None) -> Measure:
    """Run ``argv`` as a child; wall time and the peak RSS of it and its descendants.

    A child forked from this (large) process would report this process's RSS as its own
    peak, since Linux keeps the pre-exec high-water mark. So the child is started by GNU
    time, a tiny process that forks it and reads its ``ru_maxrss`` with wait4; without
    GNU time, ``os.wait4`` on the direct child is used and small figures are inflated.
    """
    log = workdir / "child.log"
    report = workdir / "rusage.txt"
    gnu_time = shutil.which("time") if os.path.exists("/usr/bin/time") else None
    wrapped = (["/usr/bin/time", "-o", str(report), "-f", "%M", *argv] if gnu_time
               else argv)
    with open(log, "w+b") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd or workdir, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    rss_kib = int(usage.ru_maxrss)
    if gnu_time:
        lines = report.read_text().split()
        rss_kib = int(lines[-1]) if lines and lines[-1].isdigit() else rss_kib
    return Measure(wall, rss_kib, proc.returncode, output)


def compile_ours() -> None:
    """Byte-compile our packages in place (``__pycache__``, ignored by git), as an install
    does; an already compiled, unchanged module is left alone."""
    for package in ("ironic_configdrive", "agent_ext"):
        if not compileall.compile_dir(str(ROOT / package), quiet=1):
            raise SystemExit(f"bench_agent_write: cannot byte-compile {package}")


def base64_decoder() -> str:
    """Which base64 decoder our children use (they run with this interpreter)."""
    found = subprocess.run(
        [sys.executable, "-c", "from ironic_configdrive.image import stream; "
         "print(getattr(stream._PYBASE64, '__version__', ''))"],
        capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    return f"pybase64 {found}" if found else "binascii (pybase64 not installed)"


def make_image() -> bytes:
    sys.path.insert(0, str(ROOT))
    from ironic_configdrive.image import write_tree

    half = 24 * MIB
    return write_tree({
        "openstack/latest/meta_data.json": b'{"uuid": "bench-node", "name": "bench"}',
        "openstack/content/0000": os.urandom(half),
        "openstack/content/0001": bytes(half),
    })


@contextlib.contextmanager
def serve(directory: pathlib.Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def loop_disk(workdir: pathlib.Path, size: int = 1024 * MIB) -> Iterator[str]:
    """A fresh loop disk with an empty GPT over a file in ``workdir``; always detached."""
    backing = workdir / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(size)
    run("sgdisk", "-o", str(backing))
    device = run("losetup", "-f", "--show", "-P", str(backing)).strip()
    try:
        yield device
    finally:
        subprocess.run(["partx", "--delete", device], capture_output=True, check=False)
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
        backing.unlink()


def partitions(device: str) -> dict[int, str]:
    base = pathlib.Path("/sys/block") / pathlib.Path(device).name
    found = {}
    for child in base.iterdir():
        if (child / "partition").exists():
            found[int((child / "partition").read_text())] = f"/dev/{child.name}"
    return found


def check_written(device: str, image: bytes, name: str) -> None:
    parts = partitions(device)
    if len(parts) != 1:
        raise SystemExit(f"{name}: expected one partition on {device}, found {parts}")
    digest = hashlib.sha256()
    left = len(image)
    with open(next(iter(parts.values())), "rb") as f:
        while left and (block := f.read(min(left, 4 * MIB))):
            digest.update(block)
            left -= len(block)
    if digest.digest() != hashlib.sha256(image).digest():
        raise SystemExit(f"{name}: the partition does not hold the image")


def bench_ours(workdir: pathlib.Path, url: str, image: bytes,
               tree: pathlib.Path = ROOT) -> Measure:
    """``tree``: the checkout whose code runs (``python -m`` imports from the cwd first)."""
    with loop_disk(workdir) as device:
        result = measure([sys.executable, "-m", "ironic_configdrive.cli", "write",
                          "--device", device, "--url", url,
                          "--sha256", hashlib.sha256(image).hexdigest(),
                          "--size", str(len(image)), "--quiet", "--json"], workdir,
                         cwd=tree)
        if result.returncode == 0:
            check_written(device, image, "ours")
    return result


def bench_ours_sealed(workdir: pathlib.Path, url: str, image: bytes) -> Measure:
    """The encrypted-at-rest path: the same drive sealed (AES-256-GCM), opened while streamed."""
    with loop_disk(workdir) as device:
        result = measure([sys.executable, "-m", "ironic_configdrive.cli", "write",
                          "--device", device, "--url", url.replace("/configdrive", "/sealed"),
                          "--key-file", str(workdir / "key"),
                          "--sha256", hashlib.sha256(image).hexdigest(),
                          "--size", str(len(image)), "--quiet", "--json"], workdir,
                         cwd=ROOT)
        if result.returncode == 0:
            check_written(device, image, "ours sealed")
    return result


def bench_ipa(workdir: pathlib.Path, url: str, image: bytes) -> Measure:
    with loop_disk(workdir) as device:
        result = measure([sys.executable, "-c", IPA_CHILD, device, url], workdir)
        if result.returncode == 0:
            check_written(device, image, "IPA")
    return result


def bench_shell(workdir: pathlib.Path, url: str, image: bytes) -> Measure:
    with loop_disk(workdir) as device:
        run("sgdisk", "-n", "1:0:+64M", device)
        run("partx", "--update", device)
        part = partitions(device)[1]
        script = (f"set -o pipefail; curl -sSf {shlex.quote(url)} | base64 -d | gunzip | "
                  f"dd of={shlex.quote(part)} bs=1M iflag=fullblock oflag=direct status=none")
        result = measure(["bash", "-c", script], workdir)
        if result.returncode == 0:
            check_written(device, image, "shell")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=7,
                        help="rounds; each runs every method once, in a rotating order "
                             "(default 7: the machine is shared, single runs prove nothing)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--baseline-tree", type=pathlib.Path, metavar="DIR",
                        help="also run ours from this checkout in every round (before/after)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_agent_write: needs root (loop devices)", file=sys.stderr)
        return 2
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"bench_agent_write: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2

    methods: list[tuple[str, Callable[[pathlib.Path, str, bytes], Measure]]] = [
        ("ours (ironic-configdrive write)", bench_ours),
        ("IPA 13 create_config_drive_partition", bench_ipa),
        ("curl | base64 -d | gunzip | dd", bench_shell),
        ("ours, sealed (AES-256-GCM, gzip)", bench_ours_sealed),
    ]
    if args.baseline_tree is not None:
        tree = args.baseline_tree.resolve()
        methods.append((f"ours from {tree.name} (baseline)",
                        functools.partial(bench_ours, tree=tree)))
    compile_ours()
    decoder = base64_decoder()
    rows = [Row(name, [], []) for name, _ in methods]
    baselines = {name: Row(name, [], []) for name in BASELINES}
    with tempfile.TemporaryDirectory(prefix="bench-agent-write-") as tmp:
        workdir = pathlib.Path(tmp)
        served = workdir / "www"
        served.mkdir()
        image = make_image()
        (served / "configdrive").write_bytes(base64.b64encode(gzip.compress(image, 6)))
        # What the conductor stores with encryption at rest: gzip, then sealed.
        from ironic_configdrive.image import sealing

        key = sealing.new_key()
        (workdir / "key").write_text(sealing.encode_key(key))
        (served / "sealed").write_bytes(sealing.seal(gzip.compress(image, 6), key))
        with serve(served) as base_url:
            url = f"{base_url}/configdrive"
            for round_no in range(args.pairs):
                # Interleaved (A B C D, B C D A, ...): a noisy neighbour hits every method.
                shift = round_no % len(methods)
                for index in [*range(shift, len(methods)), *range(shift)]:
                    name, func = methods[index]
                    result = func(workdir, url, image)
                    if result.returncode != 0:
                        print(f"{name} failed (exit {result.returncode}):\n"
                              f"{result.output[-3000:]}", file=sys.stderr)
                        return 1
                    rows[index].walls.append(result.wall)
                    rows[index].rss_kib.append(result.rss_kib)
                for name, code in BASELINES.items():
                    result = measure([sys.executable, "-c", code], workdir, cwd=ROOT)
                    baselines[name].walls.append(result.wall)
                    baselines[name].rss_kib.append(result.rss_kib)
    ours, ipa, shell, sealed = rows[:4]
    vs_shell = [a / b for a, b in zip(ours.walls, shell.walls, strict=True)]
    vs_ipa = [b / a for a, b in zip(ours.walls, ipa.walls, strict=True)]
    sealed_vs_ours = [b / a for a, b in zip(ours.walls, sealed.walls, strict=True)]
    requests_rss = baselines["import requests"].rss_mib
    rss_over_requests = round(ours.rss_mib - requests_rss, 1)
    figures: dict[str, object] = {
        "image_bytes": len(image),
        "base64_decoder": decoder,
        "pairs": args.pairs,
        "methods": {row.name: {"wall_s_median": round(row.wall, 3),
                               "wall_s_min": round(min(row.walls), 3),
                               "wall_s_max": round(max(row.walls), 3),
                               "walls_s": [round(w, 3) for w in row.walls],
                               "peak_rss_mib_median": round(row.rss_mib, 1)}
                    for row in [*rows, *baselines.values()]},
        "ours_vs_shell_wall": {"median": round(statistics.median(vs_shell), 2),
                               "min": round(min(vs_shell), 2), "max": round(max(vs_shell), 2)},
        "ipa_vs_ours_wall": {"median": round(statistics.median(vs_ipa), 2),
                             "min": round(min(vs_ipa), 2), "max": round(max(vs_ipa), 2)},
        "sealed_vs_ours_wall": round(statistics.median(sealed_vs_ours), 2),
        "ours_rss_over_import_requests_mib": rss_over_requests,
    }
    vs_baseline: list[float] = []
    if len(rows) > 4:
        vs_baseline = [a / b for a, b in zip(ours.walls, rows[4].walls, strict=True)]
        figures["ours_vs_baseline_wall"] = {"median": round(statistics.median(vs_baseline), 3),
                                            "min": round(min(vs_baseline), 3),
                                            "max": round(max(vs_baseline), 3)}
    met = {
        f"ours <= {TARGET_VS_SHELL}x shell (median)": statistics.median(vs_shell)
        <= TARGET_VS_SHELL,
        f"IPA >= {TARGET_VS_IPA}x ours (median)": statistics.median(vs_ipa) >= TARGET_VS_IPA,
        f"ours RSS <= import requests + {TARGET_RSS_OVER_REQUESTS} MiB":
            rss_over_requests <= TARGET_RSS_OVER_REQUESTS,
    }
    figures["targets"] = met
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"48 MiB config drive ({len(image)} bytes), gzip+base64 over HTTP, 1 GiB loop "
              f"disk; {args.pairs} interleaved rounds: median (min-max); base64: {decoder}")
        print(f"{'method':40} {'wall s':>22} {'peak RSS MiB':>22}")
        for row in [*rows, *baselines.values()]:
            print(f"{row.name:40} {spread(row.walls):>22} "
                  f"{spread([k / 1024 for k in row.rss_kib], 1):>22}")
        print(f"per round, ours / shell wall: {spread(vs_shell, 2)}")
        print(f"per round, IPA / ours wall:   {spread(vs_ipa, 2)}")
        print(f"per round, sealed / ours wall: {spread(sealed_vs_ours, 2)}")
        if vs_baseline:
            print(f"per round, ours / baseline wall: {spread(vs_baseline, 3)}")
        print(f"ours peak RSS - 'import requests': {rss_over_requests} MiB")
        for target, ok in met.items():
            print(f"  target {target}: {'met' if ok else 'MISSED'}")
    return 1 if args.check and not all(met.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
