#!/usr/bin/env bash
# Set up everything the demo and the tests need on a fresh Debian/Ubuntu machine:
# the system packages named in bindep.txt (apt-get, as root) and a virtualenv in .venv
# holding this project with all its extras (conductor, agent, lab, test, tempest), and
# .venv-nova holding what the lab's Nova profile runs (tools/requirements-nova.txt).
# Safe to re-run: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*" >&2; }

missing=()
while read -r name _; do
    [ -n "$name" ] || continue
    dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$name")
done < <(grep -v '^\s*#' bindep.txt)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing system packages: ${missing[*]}; run as root or install them with apt-get"
        exit 2
    fi
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.bootstrap-stamp
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "creating .venv and installing ironic-configdrive[conductor,agent,test]"
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[conductor,agent,lab,test,tempest]"
    echo "$want" > "$stamp"
fi

# The lab's Nova profile: Nova, placement, Glance, Keystone and the openstack CLI in a venv of
# their own (their pins differ from Ironic's); the lab finds it at .venv-nova.
nova_stamp=.venv-nova/.bootstrap-stamp
nova_want=$(sha256sum tools/requirements-nova.txt | cut -d' ' -f1)
if [ ! -x .venv-nova/bin/python ] || [ "$(cat "$nova_stamp" 2>/dev/null)" != "$nova_want" ]; then
    log "creating .venv-nova and installing tools/requirements-nova.txt"
    "$PYTHON" -m venv .venv-nova
    .venv-nova/bin/python -m pip install -q --upgrade pip
    .venv-nova/bin/python -m pip install -q -r tools/requirements-nova.txt
    echo "$nova_want" > "$nova_stamp"
fi
