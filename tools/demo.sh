#!/usr/bin/env bash
# The main job (until the local bare-metal lab exists): set up, then build config drives from
# examples/configdrive.json in every form Ironic accepts, and inspect and validate each one.
# Everything it writes goes to ./out/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
cli=.venv/bin/ironic-configdrive
input=${1:-examples/configdrive.json}
mkdir -p out

step() { printf '\n== %s\n' "$*"; }

step "build an ISO9660 config drive from $input"
$cli build "$input" -o out/configdrive.iso
step "inspect it (what cloud-init and glean will see)"
$cli inspect out/configdrive.iso
step "the wire form Ironic's API takes: gzip + base64"
$cli build "$input" -o out/configdrive.b64 --pack
$cli validate out/configdrive.b64
step "vfat with 4096-byte sectors, for 4Kn disks"
$cli build "$input" -o out/configdrive-4k.vfat --format vfat --sector-size 4096
$cli validate out/configdrive-4k.vfat
step "reproducible: building again gives the same bytes"
$cli build "$input" -o out/configdrive-again.iso
cmp out/configdrive.iso out/configdrive-again.iso && echo "identical ($(sha256sum < out/configdrive.iso | cut -c1-16)...)"
step "bad input is refused with a clear message and no output file"
echo '{"meta_data": {"files": [{"path": "/etc/x", "contents": "x", "content_path": "/content/../../etc"}]}}' \
    > out/bad.json
if $cli build out/bad.json -o out/bad.iso --node-uuid 00000000-0000-0000-0000-000000000001; then
    echo "unexpected success" >&2; exit 1
fi
[ ! -e out/bad.iso ] && echo "no out/bad.iso written"
step "summary"
ls -l out/configdrive.iso out/configdrive.b64 out/configdrive-4k.vfat
