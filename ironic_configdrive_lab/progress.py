"""Progress lines of lab commands: one line per phase with its duration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """One line per phase with its duration; the figures are kept for the summary."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.times: dict[str, float] = {}

    def say(self, text: str) -> None:
        print(f"[{self.command}] {text}", flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        self.say(f"{name} ...")
        yield
        self.times[name] = time.monotonic() - start
        self.say(f"{name}: done in {self.times[name]:.1f} s")
