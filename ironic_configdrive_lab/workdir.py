"""The layout of a lab's working directory and its persisted state.

Everything a lab writes lives under one directory, so ``down`` (even after a crash) finds
every process by its pid file and every loop device in ``state.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LabError(Exception):
    """A lab command failed; the message says what, why and what to do."""


@dataclass(frozen=True)
class Workdir:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> Workdir:
        return cls(Path(path).resolve())

    # -- files ----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def http_root(self) -> Path:
        """Served at the lab's HTTP URL: instance image and the http store's drives."""
        return self.root / "http"

    @property
    def disk(self) -> Path:
        """The node's disk, kept between commands so it can be inspected."""
        return self.root / "disk.img"

    @property
    def shims(self) -> Path:
        """Prepended to the agent's PATH: host power commands that do nothing."""
        return self.root / "shims"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def create(self) -> None:
        for directory in (self.root, self.logs, self.pids, self.etc, self.http_root,
                          self.shims):
            directory.mkdir(parents=True, exist_ok=True)

    # -- identity -------------------------------------------------------------------------

    @property
    def tag(self) -> str:
        """Short stable id of this workdir, used in interface names and the node's MAC."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:6]

    # -- state ----------------------------------------------------------------------------

    def load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {self.state_file}: {exc}; remove it after checking "
                           "`losetup -a` and `ip link` for leftovers of this lab") from None
        return data if isinstance(data, dict) else {}

    def save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self.state_file)

    def update_state(self, **values: Any) -> dict[str, Any]:
        state = self.load_state()
        for key, value in values.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        self.save_state(state)
        return state
