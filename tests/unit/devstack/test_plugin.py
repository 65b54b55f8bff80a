"""devstack/plugin.sh run phase by phase under bash against a stand-in function library.

``fake_devstack_functions.sh`` implements devstack's ini functions with devstack's semantics
and records install/clone calls; ``disk-image-create`` is a recording double on PATH. The
ironic.conf the phases leave behind is read back with configparser.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[3]
SHIM = Path(__file__).with_name("fake_devstack_functions.sh")
PLUGIN = REPO / "devstack" / "plugin.sh"
SETTINGS = REPO / "devstack" / "settings"
ELEMENT = REPO / "elements" / "ironic-configdrive-agent"

START_CONF = """\
[DEFAULT]
debug = True
enabled_hardware_types = ipmi,fake-hardware
enabled_deploy_interfaces = fake,direct,ramdisk

[conductor]
automated_clean = True

[deploy]
http_root = /opt/stack/data/ironic/httpboot
http_url = http://192.0.2.1:3928

[swift]
auth_type = password
"""

FAKE_OPENSTACK = """\
#!/bin/bash
# Test double for the openstack CLI: only "image show NAME -f value -c id".
[[ "$1 $2" == "image show" ]] || exit 2
echo "glance-id-of-$3"
"""

FAKE_DIB = """\
#!/bin/bash
# Test double for disk-image-create: records its arguments and the environment it got,
# then writes the outputs the real one would.
{
    echo "ARGS $*"
    echo "ELEMENTS_PATH $ELEMENTS_PATH"
    echo "SOURCE $DIB_IRONIC_CONFIGDRIVE_SOURCE"
} >> "$FAKE_DIB_LOG"
out=""
while [[ $# -gt 0 ]]; do
    if [[ "$1" == "-o" ]]; then out=$2; shift; fi
    shift
done
echo kernel > "$out.kernel"
echo initramfs > "$out.initramfs"
"""


class Stack:
    """One devstack host: a data dir, an ironic.conf, the environment stack.sh would give."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "etc" / "ironic.conf"
        self.conf.parent.mkdir()
        self.conf.write_text(START_CONF)
        self.calls = root / "calls.log"
        self.dib_log = root / "dib.log"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        dib = bin_dir / "disk-image-create"
        dib.write_text(FAKE_DIB)
        dib.chmod(0o755)
        openstack = bin_dir / "openstack"
        openstack.write_text(FAKE_OPENSTACK)
        openstack.chmod(0o755)
        self.tempest_conf = root / "tempest.conf"
        self.tempest_conf.write_text("[DEFAULT]\nlog_file = tempest.log\n")
        (root / "files").mkdir()
        self.wholedisk = root / "files" / "cirros-0.6.2-x86_64-disk.img"
        self.wholedisk.write_bytes(b"whole disk image")
        (root / "data").mkdir()
        self.kernel = root / "files" / "ir-deploy-ipmi.kernel"
        self.ramdisk = root / "files" / "ir-deploy-ipmi.initramfs"
        self.env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root),
            "DEST": str(root),
            "DATA_DIR": str(root / "data"),
            "ENABLED_SERVICES": "key,g-api,ir-api,ir-cond,s-proxy,s-object",
            "IRONIC_CONF_FILE": str(self.conf),
            "IRONIC_CONFIGDRIVE_DIR": str(REPO),
            "IRONIC_CONFIGDRIVE_PYTHON": sys.executable,
            # What ironic's lib/ironic defines before our phases run.
            "IRONIC_DEPLOY_KERNEL": str(self.kernel),
            "IRONIC_DEPLOY_RAMDISK": str(self.ramdisk),
            "IRONIC_RAMDISK_TYPE": "dib",
            "IRONIC_DIB_RAMDISK_OPTIONS": "debian-minimal",
            "IRONIC_DIB_RAMDISK_RELEASE": "bookworm",
            "IRONIC_PYTHON_AGENT_BUILDER_REPO": "https://opendev.org/openstack/"
                                                "ironic-python-agent-builder",
            "IRONIC_PYTHON_AGENT_BUILDER_BRANCH": "master",
            "IRONIC_PYTHON_AGENT_BUILDER_DIR": str(root / "ironic-python-agent-builder"),
            "IRONIC_DEPLOY_DRIVER": "ipmi",
            "IRONIC_WHOLEDISK_IMAGE_NAME": "cirros-0.6.2-x86_64-disk",
            "IRONIC_HTTP_SERVER": "192.0.2.1",
            "IRONIC_HTTP_PORT": "3928",
            "IRONIC_HOSTPORT": "192.0.2.1:6385",
            "FILES": str(root / "files"),
            "TEMPEST_CONFIG": str(self.tempest_conf),
            "FAKE_DEVSTACK_CALLS": str(self.calls),
            "FAKE_DIB_LOG": str(self.dib_log),
            "IRONIC_HTTP_DIR": str(root / "data" / "ironic" / "httpboot"),
            "FAKE_APACHE_SITES": str(root / "apache"),
        }
        (root / "apache").mkdir()

    def run(self, *phases: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Source the settings, then the plugin once per phase, in one shell as stack.sh does."""
        lines = ["set -e", f"source {shlex.quote(str(SHIM))}",
                 f"source {shlex.quote(str(SETTINGS))}"]
        lines += [f"source {shlex.quote(str(PLUGIN))} {phase}" for phase in phases]
        result = subprocess.run(["bash", "-c", "\n".join(lines)],
                                env={**self.env, **(env or {})}, text=True,
                                capture_output=True, timeout=120)
        if check and result.returncode != 0:
            pytest.fail(f"plugin phases {phases} failed ({result.returncode}):\n"
                        f"{result.stdout}\n{result.stderr}")
        return result

    def stack(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        # stack/extra only imports the deploy interface (seconds each): its own tests below.
        return self.run("stack install", "stack post-config", env=overrides)

    def parsed(self) -> configparser.ConfigParser:
        return _parse(self.conf.read_text())

    def recorded(self, path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []


def _parse(text: str) -> configparser.ConfigParser:
    # oslo.config's DEFAULT is an ordinary section: no inheritance into the others.
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    parser.read_string(text)
    return parser


def _sections(parser: configparser.ConfigParser) -> dict[str, dict[str, str]]:
    return {name: dict(parser[name]) for name in parser.sections()}


@pytest.fixture
def host(tmp_path: Path) -> Stack:
    require_tool("bash")
    require_tool("awk")
    return Stack(tmp_path)


def _interfaces(parser: configparser.ConfigParser) -> list[str]:
    return parser.get("DEFAULT", "enabled_deploy_interfaces").split(",")


def test_stack_with_swift_configures_ironic(host: Stack) -> None:
    host.stack()

    conf = host.parsed()
    interfaces = _interfaces(conf)
    assert interfaces == ["fake", "direct", "ramdisk", "configdrive"]
    assert interfaces.count("direct") == 1 and interfaces.count("configdrive") == 1
    sections = _sections(conf)
    assert sections.pop("configdrive") == {
        "store": "swift",
        "swift_container": "ironic_configdrive",
        "swift_temp_url_duration": "3600",
        "exposure": "partition",
        # tempest.conf gets the exposure too, and the scenario sets it in instance_info
        "allow_instance_overrides": "configdrive_exposure",
        "format": "iso9660",
    }
    # Everything else is as ironic wrote it, but for our one option.
    expected = _sections(_parse(START_CONF))
    expected["DEFAULT"]["enabled_deploy_interfaces"] = "fake,direct,ramdisk,configdrive"
    expected["DEFAULT"]["enabled_hardware_types"] = "ipmi,fake-hardware,ipmi-configdrive"
    assert sections == expected


def test_configdrive_variants_of_hardware_types(host: Stack) -> None:
    host.conf.write_text(START_CONF.replace(
        "ipmi,fake-hardware", "redfish, manual-management,fake-hardware"))
    host.stack()
    assert host.parsed().get("DEFAULT", "enabled_hardware_types").split(",") == [
        "redfish", "manual-management", "fake-hardware", "redfish-configdrive",
        "manual-management-configdrive"]


def test_fake_hardware_alone_is_left_as_is(host: Stack) -> None:
    # fake-hardware accepts any deploy interface: nothing to add.
    host.conf.write_text(START_CONF.replace("ipmi,fake-hardware", "fake-hardware"))
    host.stack()
    assert host.parsed().get("DEFAULT", "enabled_hardware_types") == "fake-hardware"


def test_tempest_config_without_glance(host: Stack) -> None:
    host.run("stack install", "stack post-config", "stack test-config",
             env={"ENABLED_SERVICES": "key,ir-api,ir-cond,s-proxy,tempest"})
    tempest = _parse(host.tempest_conf.read_text())
    assert dict(tempest["ironic_configdrive"]) == {
        "enabled": "True",
        "auth": "keystone",
        "node": "node-0",
        "driver": "ipmi-configdrive",
        "exposure": "partition",
        "image_source": "http://192.0.2.1:3928/cirros-0.6.2-x86_64-disk.img",
        "image_checksum": hashlib.md5(b"whole disk image").hexdigest(),
    }
    assert dict(tempest["DEFAULT"]) == {"log_file": "tempest.log"}


def test_tempest_config_with_glance_and_noauth(host: Stack) -> None:
    host.run("stack install", "stack post-config", "stack test-config",
             env={"ENABLED_SERVICES": "key,g-api,ir-api,ir-cond,tempest",
                  "IRONIC_AUTH_STRATEGY": "noauth", "IRONIC_CONFIGDRIVE_EXPOSURE": "auto"})
    section = dict(_parse(host.tempest_conf.read_text())["ironic_configdrive"])
    assert section["auth"] == "noauth"
    assert section["endpoint"] == "http://192.0.2.1:6385"
    assert section["image_source"] == "glance-id-of-cirros-0.6.2-x86_64-disk"
    assert "image_checksum" not in section and "exposure" not in section


def test_no_tempest_config_without_tempest(host: Stack) -> None:
    host.run("stack install", "stack post-config", "stack test-config")
    assert "ironic_configdrive" not in host.tempest_conf.read_text()


def test_install_uses_conductor_extra(host: Stack) -> None:
    host.stack()
    calls = host.recorded(host.calls)
    assert f"setup_develop {REPO} conductor" in calls
    assert "plugin_requires ironic-configdrive ironic" in calls


def test_ramdisk_built_with_agent_element(host: Stack) -> None:
    host.stack()
    dib = host.recorded(host.dib_log)
    assert len([line for line in dib if line.startswith("ARGS ")]) == 1
    args = dib[0].split()[1:]
    assert args[-3:] == ["debian-minimal", "ironic-python-agent-ramdisk",
                         "ironic-configdrive-agent"]
    elements_path = dib[1].split(" ", 1)[1].split(":")
    assert elements_path == [host.env["IRONIC_PYTHON_AGENT_BUILDER_DIR"] + "/dib",
                             str(REPO / "elements")]
    assert (REPO / "elements" / "ironic-configdrive-agent").is_dir()
    assert dib[2] == f"SOURCE {REPO}"
    assert host.kernel.read_text() == "kernel\n"
    assert host.ramdisk.read_text() == "initramfs\n"
    assert any(call.startswith("git_clone https://opendev.org/openstack/"
                               "ironic-python-agent-builder ")
               for call in host.recorded(host.calls))


def test_http_store_without_swift(host: Stack) -> None:
    host.stack(ENABLED_SERVICES="key,g-api,ir-api,ir-cond")
    conf = host.parsed()
    assert conf.get("configdrive", "store") == "http"
    assert not conf.has_option("configdrive", "swift_container")
    assert _interfaces(conf) == ["fake", "direct", "ramdisk", "configdrive"]


def test_explicit_store_wins_over_detection(host: Stack) -> None:
    host.stack(IRONIC_CONFIGDRIVE_STORE="http")
    assert host.parsed().get("configdrive", "store") == "http"


def test_second_run_is_idempotent(host: Stack) -> None:
    host.stack()
    first = host.conf.read_text()
    host.stack()
    assert host.conf.read_text() == first
    assert _interfaces(host.parsed()).count("configdrive") == 1
    # The ramdisk built the first time is kept, not rebuilt.
    assert len([line for line in host.recorded(host.dib_log) if line.startswith("ARGS ")]) == 1


def test_exposure_and_format_from_settings(host: Stack) -> None:
    host.stack(IRONIC_CONFIGDRIVE_EXPOSURE="virtual_media", IRONIC_CONFIGDRIVE_FORMAT="vfat")
    conf = host.parsed()
    assert conf.get("configdrive", "exposure") == "virtual_media"
    assert conf.get("configdrive", "format") == "vfat"
    # Never the default: ironic would refuse it for ipmi, which lacks the interface.
    assert not conf.has_option("DEFAULT", "default_deploy_interface")


def test_apache_never_lists_the_config_drive_folder(host: Stack) -> None:
    host.stack()
    site = (host.root / "apache" / "ironic-configdrive.conf").read_text()
    http_dir = host.env["IRONIC_HTTP_DIR"]
    assert f'<Directory "{http_dir}/configdrive">\n    Options -Indexes\n</Directory>' in site
    calls = host.recorded(host.calls)
    assert calls.index("enable_apache_site ironic-configdrive") < calls.index(
        "restart_apache_server")


def test_no_apache_site_without_an_http_dir_or_apache(host: Stack) -> None:
    host.stack(IRONIC_HTTP_DIR="")
    host.stack(FAKE_APACHE_SITES=str(host.root / "no-apache"))
    assert list((host.root / "apache").iterdir()) == []
    assert not (host.root / "no-apache").exists()
    assert "restart_apache_server" not in host.recorded(host.calls)


def test_auto_exposure_lets_no_deploy_choose_it(host: Stack) -> None:
    host.stack(IRONIC_CONFIGDRIVE_EXPOSURE="auto")
    conf = host.parsed()
    assert conf.get("configdrive", "exposure") == "auto"
    assert not conf.has_option("configdrive", "allow_instance_overrides")


def test_invalid_exposure_dies_naming_it(host: Stack) -> None:
    result = host.run("stack install", "stack post-config", check=False,
                      env={"IRONIC_CONFIGDRIVE_EXPOSURE": "floppy"})
    assert result.returncode != 0
    assert "IRONIC_CONFIGDRIVE_EXPOSURE" in result.stderr and "floppy" in result.stderr


def test_interfaces_without_direct_keep_what_ironic_enabled(host: Stack) -> None:
    host.conf.write_text(START_CONF.replace("fake,direct,ramdisk", " direct , ,ramdisk,"))
    host.stack()
    assert _interfaces(host.parsed()) == ["direct", "ramdisk", "configdrive"]


def test_missing_option_falls_back_to_ironic_variable(host: Stack) -> None:
    host.conf.write_text(START_CONF.replace("enabled_deploy_interfaces = fake,direct,ramdisk\n",
                                            ""))
    host.stack(IRONIC_ENABLED_DEPLOY_INTERFACES="fake,direct")
    assert _interfaces(host.parsed()) == ["fake", "direct", "configdrive"]


def test_no_ramdisk_build_when_disabled(host: Stack) -> None:
    result = host.stack(IRONIC_CONFIGDRIVE_BUILD_RAMDISK="False")
    assert host.recorded(host.dib_log) == []
    assert not host.ramdisk.exists()
    assert "not building a ramdisk" in result.stdout


def test_tinyipa_is_refused_clearly(host: Stack) -> None:
    result = host.run("stack install", "stack post-config", check=False,
                      env={"IRONIC_RAMDISK_TYPE": "tinyipa"})
    assert result.returncode != 0
    assert "IRONIC_RAMDISK_TYPE" in result.stderr and "tinyipa" in result.stderr


def test_disabled_service_changes_nothing(host: Stack) -> None:
    lines = ["set -e", f"source {SHIM}", f"source {SETTINGS}",
             "ENABLED_SERVICES=key,ir-api,ir-cond",
             f"source {PLUGIN} stack install", f"source {PLUGIN} stack post-config"]
    subprocess.run(["bash", "-c", "\n".join(lines)], env=host.env, check=True,
                   capture_output=True, timeout=60)
    assert host.conf.read_text() == START_CONF
    assert host.recorded(host.dib_log) == []


def test_clean_removes_only_what_it_built(host: Stack) -> None:
    host.stack()
    assert host.ramdisk.exists()
    foreign = host.root / "files" / "someone-else.initramfs"
    foreign.write_text("keep")
    host.run("unstack", "clean")
    assert not host.ramdisk.exists() and not host.kernel.exists()
    assert foreign.read_text() == "keep"
    # A prebuilt ramdisk (not ours) survives clean too.
    host.kernel.write_text("prebuilt")
    host.ramdisk.write_text("prebuilt")
    host.stack()
    host.run("clean")
    assert host.ramdisk.read_text() == "prebuilt"


def test_extra_phase_checks_the_deploy_interface_imports(host: Stack) -> None:
    host.run("stack install", "stack post-config", "stack extra")
    assert _interfaces(host.parsed()).count("configdrive") == 1


def test_extra_phase_fails_when_deploy_interface_does_not_import(host: Stack) -> None:
    result = host.run("stack extra", check=False,
                      env={"IRONIC_CONFIGDRIVE_PYTHON": str(host.root / "no-such-python")})
    assert result.returncode != 0
    assert "ironic_configdrive.deploy" in result.stderr


# -- the stand-in itself: devstack's ini semantics ------------------------------------------

def _shim(script: str, tmp_path: Path) -> str:
    result = subprocess.run(["bash", "-c", f"set -e\nsource {SHIM}\n{script}"], check=True,
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    return result.stdout


def test_shim_iniset_semantics(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text("[DEFAULT]\nx = 1\n\n[one]\nkey=old\nother = 2\n\n[two]\nkey = keep\n")
    _shim(f"iniset {conf} one key new\n"
          f"iniset {conf} one added value\n"
          f"iniset -sudo {conf} three k v\n", tmp_path)
    assert conf.read_text() == ("[DEFAULT]\nx = 1\n\n[one]\nadded = value\nkey=new\n"
                                "other = 2\n\n[two]\nkey = keep\n\n[three]\nk = v\n")


def test_shim_iniset_creates_file_and_ignores_empty_names(tmp_path: Path) -> None:
    conf = tmp_path / "new.conf"
    _shim(f"iniset {conf} '' k v\niniset {conf} s '' v\n", tmp_path)
    assert not conf.exists()
    _shim(f"iniset {conf} s k 'a b'\n", tmp_path)
    assert conf.read_text() == "\n[s]\nk = a b\n"


def test_shim_iniget_and_inidelete(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text("[one]\nkey =   spaced value  \nkeyx = no\n[two]\nkey = two\n")
    assert _shim(f"iniget {conf} one key", tmp_path) == "spaced value\n"
    assert _shim(f"iniget {conf} one missing", tmp_path) == "\n"
    assert _shim(f"iniget {conf} two key", tmp_path) == "two\n"
    _shim(f"inidelete {conf} one key", tmp_path)
    assert conf.read_text() == "[one]\nkeyx = no\n[two]\nkey = two\n"
    assert _shim(f"ini_has_option {conf} two key && echo yes", tmp_path) == "yes\n"


def test_shim_is_service_enabled(tmp_path: Path) -> None:
    out = _shim("ENABLED_SERVICES=key,g-api,s-proxy,ir-api\n"
                "for s in glance swift ironic nova s-proxy tempest 'nova key'; do\n"
                "  if is_service_enabled $s; then echo -n \"$s:y \"; else echo -n \"$s:n \"; fi\n"
                "done", tmp_path)
    assert out == "glance:y swift:y ironic:y nova:n s-proxy:y tempest:n nova key:y "


def test_shim_trueorfalse(tmp_path: Path) -> None:
    out = _shim("A=yes; B=; C=OFF\n"
                "echo $(trueorfalse False A) $(trueorfalse True B) $(trueorfalse True C) "
                "$(trueorfalse False UNSET)", tmp_path)
    assert out == "True True False False\n"


# -- shellcheck ----------------------------------------------------------------------------

SHELL_SCRIPTS = [
    PLUGIN,
    SETTINGS,
    SHIM,
    *sorted(p for p in ELEMENT.glob("*.d/*") if p.is_file()),
]


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_clean(script: Path) -> None:
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(script)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
