import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg

from ironic_configdrive import conf


def test_options_register_and_have_defaults():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([], project="ironic")
    assert config.configdrive.format == "iso9660"
    assert config.configdrive.max_size == 64 * 1024 * 1024
    assert config.configdrive.cloudstack_layout is False
    # Users' URLs: only global unicast addresses, any host name, two minutes in all.
    assert config.configdrive.fetch_allowed_networks == []
    assert config.configdrive.fetch_allowed_hosts == []
    assert config.configdrive.fetch_deadline == 120


def test_allowed_networks_must_be_cidrs():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([], project="ironic")
    config.set_override("fetch_allowed_networks", ["10.0.0.0/8", " fd00::/8"],
                        group="configdrive")
    assert config.configdrive.fetch_allowed_networks == ["10.0.0.0/8", "fd00::/8"]
    with pytest.raises(ValueError, match="'10.0.0.300/8' does not appear to be an IPv4"):
        config.set_override("fetch_allowed_networks", ["10.0.0.300/8"], group="configdrive")


def test_sample_config_is_generated_through_the_entry_point(tmp_path):
    generator = Path(sys.executable).with_name("oslo-config-generator")
    command = str(generator) if generator.exists() else shutil.which("oslo-config-generator")
    assert command, "oslo-config-generator comes with oslo.config"
    out = tmp_path / "sample.conf"
    subprocess.run([command, "--namespace", "ironic_configdrive", "--output-file", str(out)],
                   check=True, capture_output=True)
    text = out.read_text()
    assert "[configdrive]" in text and "#format = iso9660" in text
    assert "#cloudstack_layout = false" in text
    # Every choice explains itself to the operator reading the sample.
    assert "No description provided" not in text
