"""Driving Ironic the way an operator does: the real ``baremetal`` CLI (python-ironicclient).

Reads go through the REST API directly (one GET per poll is cheaper than a CLI start).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import requests

from ironic_configdrive_lab.workdir import LabError

API_VERSION = "latest"


def baremetal_bin() -> str:
    candidate = Path(sys.executable).with_name("baremetal")
    found = str(candidate) if candidate.exists() else shutil.which("baremetal")
    if not found:
        raise LabError("the baremetal CLI is missing; pip install python-ironicclient")
    return found


def cli_environment(api_url: str) -> dict[str, str]:
    """What the ``baremetal`` CLI needs to reach the lab's Ironic (noauth)."""
    return {"OS_AUTH_TYPE": "none", "OS_ENDPOINT": api_url,
            "OS_BAREMETAL_API_VERSION": API_VERSION}


class Client:
    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def baremetal(self, *args: str, parse: bool = False, stdin: str | None = None) -> Any:
        env = dict(os.environ, **cli_environment(self.api_url))
        argv = [baremetal_bin(), *args]
        if parse:
            argv += ["-f", "json"]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False,
                                input=stdin)
        if result.returncode != 0:
            # The CLI echoes no config drive content in its errors, only Ironic's message.
            raise LabError(f"baremetal {args[0]} {args[1] if len(args) > 1 else ''} failed: "
                           f"{result.stderr.strip()[-1500:]}")
        return json.loads(result.stdout) if parse and result.stdout.strip() else None

    def node(self, ident: str) -> dict[str, Any] | None:
        try:
            response = requests.get(f"{self.api_url}/v1/nodes/{ident}",
                                    headers={"X-OpenStack-Ironic-API-Version": API_VERSION},
                                    timeout=10)
        except requests.RequestException as exc:
            raise LabError(f"Ironic API at {self.api_url} unreachable: {exc}") from None
        if response.status_code == 404:
            return None
        if not response.ok:
            raise LabError(f"GET node {ident} from {self.api_url}: HTTP "
                           f"{response.status_code}")
        data = response.json()
        return data if isinstance(data, dict) else None

    def has_port(self, mac: str) -> bool:
        try:
            response = requests.get(f"{self.api_url}/v1/ports", params={"address": mac},
                                    headers={"X-OpenStack-Ironic-API-Version": API_VERSION},
                                    timeout=10)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise LabError(f"Ironic API at {self.api_url}: listing ports failed: {exc}") \
                from None
        return bool(response.json().get("ports"))

    def answers(self) -> bool:
        try:
            return requests.get(f"{self.api_url}/v1", timeout=2).ok
        except requests.RequestException:
            return False

    def wait_for(self, ident: str, targets: Collection[str], *, timeout: float,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the node's provision state is one of ``targets``; fail on *failed."""
        deadline = time.monotonic() + timeout
        seen: tuple[Any, ...] = ()
        while True:
            node = self.node(ident)
            if node is None:
                raise LabError(f"node {ident} disappeared from Ironic")
            key = (node["provision_state"], node["power_state"],
                   (node.get("deploy_step") or {}).get("step"),
                   (node.get("clean_step") or {}).get("step"))
            if key != seen and on_change is not None:
                on_change(node)
            seen = key
            state = node["provision_state"]
            if state in targets:
                return node
            if (state.endswith("failed") or state == "error") and state not in targets:
                raise LabError(f"node {ident} went to '{state}': {node.get('last_error')}")
            if time.monotonic() > deadline:
                raise LabError(f"node {ident} still '{state}' after {timeout:.0f} s "
                               f"(wanted {', '.join(sorted(targets))})")
            time.sleep(0.5)
