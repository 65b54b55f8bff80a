#!/usr/bin/env bash
# The main job: set up, then run the local bare-metal lab end to end (as root): a real Ironic
# with the configdrive deploy interface, a real Swift, sushy-tools' Redfish emulator and a real
# ironic-python-agent on a loop disk. It deploys with a config drive written to a partition,
# rebuilds, undeploys with cleaning, deploys again through Redfish virtual media, undeploys,
# verifies every step and prints a summary. Before that, a quick look at the image CLI.
# Everything it writes goes to ./out/ (the node's disk stays at out/lab/disk.img).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
cli=.venv/bin/ironic-configdrive
input=${CONFIG_DRIVE:-ironic_configdrive/examples/configdrive.json}
mkdir -p out

printf '== the image CLI: build and inspect a config drive from %s\n' "$input"
# A drive without meta_data.uuid gets a made-up one here; the lab gives it the node's, as Ironic does.
$cli build "$input" -o out/configdrive.iso --node-uuid "$(cat /proc/sys/kernel/random/uuid)" --node-name demo
$cli inspect out/configdrive.iso | sed -n '1,9p'
$cli validate out/configdrive.iso

printf '\n== the lab: up, deploy, update, rebuild, undeploy, virtual media (deploy, update, undeploy), down\n'
exec .venv/bin/ironic-configdrive-lab run --workdir out/lab --config-drive "$input" "$@"
