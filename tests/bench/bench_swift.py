"""Swift store throughput against plain python-swiftclient, on a real Swift on loopback.

    python -m tests.bench.bench_swift [--pairs 7] [--threads 1,10,50,200] [--json]

Starts the tests' Swift (:mod:`tests.fixtures.swift`: proxy with tempauth and tempurl, real
account/container/object servers, memcached) in a temporary directory, then per thread
count runs rounds of a bounded number of operations, interleaved A B A B:

* **ours** — what the conductor does: ``loader.get_store()`` (a new ``SwiftStore`` per call,
  configured by ``[configdrive]swift_auth_url/user/key``), ``put`` (which returns the temp
  URL) and, from another ``get_store()``, ``delete``;
* **plain** — a competent python-swiftclient caller: one authenticated ``Connection`` per
  thread, kept across rounds, ``put_object`` with the same headers (ETag, Content-Type,
  X-Delete-After), ``generate_temp_url`` with a known key, ``delete_object``.

Both store the same ~60 KB of random bytes (ours with encoding ``identity``: gzip would cost
the image's compression, not the store's). Per round: throughput (ops/s), p95 latency of
one put + URL + delete, client CPU per op (this process's CPU time; Swift runs in its own
processes). Printed: medians and min-max over the pairs, and the paired ratio ours/plain.
Then 50 concurrent first puts into a fresh container without a temp URL key, as a freshly
started conductor makes them (every URL must answer 200 with the right bytes), and a
check that no object is left. Nothing is asserted; the figures are for people (the exit
status is 1 only if an operation failed, a URL was dead or objects were left).
Run it with ``nice``: Swift and the clients share the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests
from swiftclient import client as swift_client
from swiftclient import utils as swift_utils

from ironic_configdrive.store import loader
from ironic_configdrive.store import swift as swift_store
from ironic_configdrive.store.base import IDENTITY
from ironic_configdrive.store.common import ironic_conf
from tests.fixtures.swift import SwiftServer

PAYLOAD = 60 * 1024
OURS, PLAIN = "ours", "plain"
TEMP_URL_DURATION = 3600
DELETE_AFTER = 3600
RETRIES = 3
COLD_PUTS = 50


class BenchSwift(SwiftServer):
    """The tests' Swift, sized for 200 concurrent clients on a small, shared machine.

    Its defaults (0.5 s to connect to a backend, 2 memcache connections) answer 503 to
    both sides alike long before the clients are the limit.
    """

    def _write_configs(self) -> None:
        super()._write_configs()
        proxy = self.conf_dir / "proxy-server.conf"
        text = proxy.read_text(encoding="utf-8")
        text = text.replace("[app:proxy-server]\n", "[app:proxy-server]\nconn_timeout = 10\n"
                            "node_timeout = 60\nclient_timeout = 120\n")
        text = text.replace("[filter:cache]\n", "[filter:cache]\nmemcache_max_connections = 64\n")
        proxy.write_text(text, encoding="utf-8")


def ops_per_round(threads: int) -> int:
    """Enough for every thread to do a few, few enough for a short round."""
    return max(60, 2 * threads)


@dataclasses.dataclass
class Round:
    side: str
    threads: int
    ops: int
    wall: float
    cpu: float
    latencies: list[float]
    failures: int

    @property
    def throughput(self) -> float:
        return self.ops / self.wall

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1e3

    @property
    def cpu_ms_per_op(self) -> float:
        return self.cpu / self.ops * 1e3


class Bench:
    def __init__(self, server: SwiftServer, payload: bytes) -> None:
        self.server = server
        self.payload = payload
        run = uuid.uuid4().hex[:8]
        self.ours_container = f"bench-ours-{run}"
        self.plain_container = f"bench-plain-{run}"
        self.cold_container = f"bench-cold-{run}"
        self.plain_key = uuid.uuid4().hex
        self.plain_conns: list[Any] = []
        self.ids = itertools.count()

    # -- setup -------------------------------------------------------------------------
    def configure(self) -> None:
        """[configdrive] as an operator without Keystone sets it; the loader reads it."""
        conf = ironic_conf()
        for name, value in (("store", "swift"), ("swift_auth_url", self.server.auth_url),
                            ("swift_user", self.server.user),
                            ("swift_key", self.server.key),
                            ("swift_container", self.ours_container),
                            ("swift_temp_url_duration", TEMP_URL_DURATION),
                            ("swift_delete_after", DELETE_AFTER),
                            ("store_retries", RETRIES)):
            conf.set_override(name, value, group="configdrive")
        admin = self.server.connection()
        admin.put_container(self.plain_container,
                            headers={"X-Container-Meta-Temp-Url-Key": self.plain_key})

    def plain_connections(self, count: int) -> list[Any]:
        """One authenticated Connection per thread, made outside any measurement."""
        while len(self.plain_conns) < count:
            conn = swift_client.Connection(authurl=self.server.auth_url,
                                           user=self.server.user, key=self.server.key,
                                           retries=RETRIES, timeout=60.0)
            conn.get_auth()
            self.plain_conns.append(conn)
        return self.plain_conns[:count]

    # -- one operation each ----------------------------------------------------------
    def ours(self, _worker: int) -> None:
        node, deploy = f"node-{next(self.ids)}", "bench"
        stored = loader.get_store().put(node, self.payload, deploy_id=deploy,
                                        encoding=IDENTITY)
        assert stored.url
        loader.get_store().delete(stored.location, node_uuid=node)

    def plain(self, worker: int) -> None:
        conn = self.plain_conns[worker]
        name = f"node-{next(self.ids)}/bench.img"
        conn.put_object(self.plain_container, name, self.payload,
                        content_length=len(self.payload),
                        etag=hashlib.md5(self.payload, usedforsecurity=False).hexdigest(),
                        content_type="application/octet-stream",
                        headers={"X-Delete-After": str(DELETE_AFTER)})
        parts = urlsplit(conn.url)
        path = f"{parts.path}/{self.plain_container}/{name}"
        signed = swift_utils.generate_temp_url(path, int(time.time()) + TEMP_URL_DURATION,
                                               self.plain_key, "GET")
        assert f"{parts.scheme}://{parts.netloc}{signed}"
        conn.delete_object(self.plain_container, name)

    # -- rounds ------------------------------------------------------------------------
    def run_round(self, side: str, threads: int, ops: int) -> Round:
        op: Callable[[int], None] = self.ours if side == OURS else self.plain
        if side == PLAIN:
            self.plain_connections(threads)
        tickets = itertools.count()
        latencies: list[float] = []
        failures: list[str] = []
        start = threading.Barrier(threads + 1)

        def worker(index: int) -> None:
            start.wait()
            while next(tickets) < ops:
                began = time.perf_counter()
                try:
                    op(index)
                except Exception as exc:  # counted and shown, never hidden
                    failures.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - began)

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in workers:
            t.start()
        cpu0 = time.process_time()
        start.wait()
        began = time.perf_counter()
        for t in workers:
            t.join()
        wall = time.perf_counter() - began
        cpu = time.process_time() - cpu0
        for failure in failures[:3]:
            print(f"  {side} failure: {failure}", file=sys.stderr)
        return Round(side, threads, ops, wall, cpu, latencies, len(failures))

    def compare(self, threads: int, pairs: int) -> list[tuple[Round, Round]]:
        ops = ops_per_round(threads)
        self.run_round(OURS, threads, ops)  # warm-up: connections, token, cached key
        self.run_round(PLAIN, threads, ops)
        results = []
        for _ in range(pairs):
            ours = self.run_round(OURS, threads, ops)
            plain = self.run_round(PLAIN, threads, ops)
            results.append((ours, plain))
        return results

    # -- checks ------------------------------------------------------------------------
    def cold_puts(self) -> dict[str, int]:
        """50 first puts at once into a container without a key, in a 'new process'."""
        swift_store.reset_shared_state()
        images = {f"cold-{i}": os.urandom(1024) + str(i).encode() for i in range(COLD_PUTS)}

        def put(node: str) -> tuple[str, str, str]:
            stored = loader.get_store().put(node, images[node], deploy_id="cold",
                                            encoding=IDENTITY)
            return node, stored.url, stored.location

        conf = ironic_conf()
        conf.set_override("swift_container", self.cold_container, group="configdrive")
        try:
            with ThreadPoolExecutor(COLD_PUTS) as pool:
                results = list(pool.map(put, images))
        finally:
            conf.set_override("swift_container", self.ours_container, group="configdrive")
        dead = wrong = 0
        with requests.Session() as session:
            for node, url, _location in results:
                resp = session.get(url, timeout=30)
                dead += resp.status_code != 200
                wrong += resp.status_code == 200 and resp.content != images[node]
        for node, _url, location in results:
            loader.get_store().delete(location, node_uuid=node)
        return {"puts": len(results), "dead_urls": dead, "wrong_bodies": wrong}

    def leftovers(self) -> dict[str, int]:
        admin = self.server.connection()
        return {name: len(admin.get_container(name, full_listing=True)[1])
                for name in (self.ours_container, self.plain_container,
                             self.cold_container)}


def summary(values: list[float], fmt: str) -> str:
    return (f"{format(statistics.median(values), fmt)} "
            f"({format(min(values), fmt)}-{format(max(values), fmt)})")


def report(threads: int, pairs: list[tuple[Round, Round]]) -> dict[str, Any]:
    ours = [o for o, _ in pairs]
    plain = [p for _, p in pairs]
    ratios = [o.throughput / p.throughput for o, p in pairs]
    cpu_ratios = [o.cpu_ms_per_op / p.cpu_ms_per_op for o, p in pairs]
    print(f"\n{threads} thread(s), {ours[0].ops} ops per round, {len(pairs)} pairs")
    for side, rounds in ((OURS, ours), (PLAIN, plain)):
        print(f"  {side:5}  ops/s {summary([r.throughput for r in rounds], '.1f'):24}"
              f"  p95 ms {summary([r.p95_ms for r in rounds], '.1f'):24}"
              f"  CPU ms/op {summary([r.cpu_ms_per_op for r in rounds], '.2f')}")
    print(f"  ours/plain throughput {summary(ratios, '.2f')}   "
          f"CPU per op {summary(cpu_ratios, '.2f')}")
    failures = sum(r.failures for r in ours + plain)
    if failures:
        print(f"  FAILED OPERATIONS: {failures}")
    return {"threads": threads, "ops_per_round": ours[0].ops, "failures": failures,
            "ratio": ratios, "cpu_ratio": cpu_ratios,
            **{side: {"throughput": [r.throughput for r in rounds],
                      "p95_ms": [r.p95_ms for r in rounds],
                      "cpu_ms_per_op": [r.cpu_ms_per_op for r in rounds]}
               for side, rounds in ((OURS, ours), (PLAIN, plain))}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7, help="A/B pairs per thread count")
    parser.add_argument("--threads", default="1,10,50,200", help="comma-separated")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    thread_counts = [int(t) for t in args.threads.split(",")]
    results: dict[str, Any] = {"payload_bytes": PAYLOAD, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-swift-") as workdir:
        server = BenchSwift(workdir)
        server.log_level = "WARNING"  # no access log: the proxy's CPU goes to requests
        started = time.monotonic()
        server.start()
        try:
            print(f"Swift up in {time.monotonic() - started:.1f}s at {server.proxy_url}; "
                  f"payload {PAYLOAD} bytes; {os.cpu_count()} CPUs shared with Swift")
            bench = Bench(server, os.urandom(PAYLOAD))
            bench.configure()
            for threads in thread_counts:
                results["runs"].append(report(threads, bench.compare(threads, args.pairs)))
            results["cold"] = cold = bench.cold_puts()
            print(f"\ncold start: {cold['puts']} concurrent first puts into a container "
                  f"without a key: {cold['dead_urls']} dead URLs, {cold['wrong_bodies']} "
                  "wrong bodies")
            results["leftovers"] = left = bench.leftovers()
            print(f"objects left: {sum(left.values())} ({left})")
        finally:
            server.stop()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    bad = (any(run["failures"] for run in results["runs"]) or results["cold"]["dead_urls"]
           or results["cold"]["wrong_bodies"] or sum(results["leftovers"].values()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
