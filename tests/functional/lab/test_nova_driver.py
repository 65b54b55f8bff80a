"""The lab's ironic driver subclass against the real Nova 34 of the Nova venv.

Upstream's ``IronicDriver._get_network_metadata`` fails on a ``--nic none`` server (no
network info); the subclass nova-compute runs in the lab gives no network metadata instead
and leaves servers with networks to upstream's method. Run in the Nova venv's python (a
subprocess: Nova's pins are not the project venv's); fast, no lab needed.
"""

from __future__ import annotations

import json
import subprocess

from ironic_configdrive_lab import nova, nova_venv
from tests.conftest import skip_or_fail

PROBE = """
import json, sys
from unittest import mock
sys.path.insert(0, sys.argv[1])
from nova.cmd import compute  # noqa: F401 - Nova's process set-up first
from nova.network import model
from nova.virt.ironic import driver as upstream
import ironic_nonic

def metadata(cls, network_info):
    drv = cls.__new__(cls)
    drv._ironic_connection = mock.Mock(**{"ports.return_value": [],
                                          "port_groups.return_value": []})
    try:
        return {"result": drv._get_network_metadata(mock.Mock(id="n"), network_info)}
    except Exception as exc:
        return {"error": type(exc).__name__}

vif = model.VIF(id="vif-1", address="52:54:00:00:00:01", network=model.Network(
    id="net", subnets=[model.Subnet(cidr="192.0.2.0/24", ips=[model.FixedIP(
        address="192.0.2.10")])]))
print(json.dumps({
    "upstream_none": metadata(upstream.IronicDriver, model.NetworkInfo([])),
    "lab_none": metadata(ironic_nonic.IronicDriver, model.NetworkInfo([])),
    "upstream_vif": metadata(upstream.IronicDriver, model.NetworkInfo([vif])),
    "lab_vif": metadata(ironic_nonic.IronicDriver, model.NetworkInfo([vif])),
}))
"""


def _probe() -> dict[str, dict[str, object]]:
    python = nova_venv.path() / "bin" / "python"
    if not python.exists():
        skip_or_fail(f"{python} missing: run tools/bootstrap.sh (the Nova profile's venv)")
    result = subprocess.run([str(python), "-c", PROBE, str(nova.NOVA_SIDE)],
                            capture_output=True, text=True, check=False, timeout=300,
                            env=nova_venv.environment({}))
    assert result.returncode == 0, result.stderr[-2000:]
    found: dict[str, dict[str, object]] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_no_network_info_gives_no_network_metadata_where_upstream_fails() -> None:
    found = _probe()
    # The upstream failure the subclass exists for (if Nova fixes it, the subclass can go).
    assert found["upstream_none"] == {"error": "TypeError"}
    assert found["lab_none"] == {"result": None}
    # With a network, the subclass is upstream's method unchanged.
    assert found["lab_vif"] == found["upstream_vif"]
    assert "result" in found["lab_vif"]
