"""What the benchmarks run as modules (``python -m tests.bench.<name>``) share: one timed
child process per sample, and figures printed as ``median (min-max)``."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child_sample(code: str, args: list[str], label: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter with ``args``; its last stdout line is the JSON
    sample (a fresh process per sample keeps peak RSS and caches per run)."""
    done = subprocess.run([sys.executable, "-c", code, *args],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """``median (min-max)`` of ``values`` times ``scale``."""
    scaled = [v * scale for v in values]
    return (f"{round(statistics.median(scaled), digits)} "
            f"({round(min(scaled), digits)}-{round(max(scaled), digits)})")
