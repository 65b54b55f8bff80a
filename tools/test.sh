#!/usr/bin/env bash
# The test command: set-up, lint, type check, then every test (unit, functional, interop,
# loop devices). Extra arguments go to pytest, e.g. `tools/test.sh -m loopdev`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
echo "== ruff" && .venv/bin/ruff check ironic_configdrive ironic_configdrive_lab ironic_configdrive_tempest agent_ext tests
echo "== mypy" && .venv/bin/mypy
echo "== pytest" && exec .venv/bin/python -m pytest "$@"
