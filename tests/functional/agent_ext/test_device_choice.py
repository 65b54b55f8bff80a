"""Which disk ``configdrive.write`` accepts, through IPA 13's extension manager on real loop
devices: the one the node's root device hints choose, or one the operator named.

The install disk comes from IPA's hardware manager dispatch. IPA's generic manager skips
loop devices, so its lab subclass (a GenericHardwareManager that sees one loop disk as the
machine's only disk) is what IPA would have picked here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ironic_python_agent import encoding, hardware

from ironic_configdrive.image import build_image
from ironic_configdrive_lab.agent import DISK_ENV
from ironic_configdrive_lab.hardware import LabHardwareManager
from tests.functional.agent_ext.conftest import Agent, b64gz, disk_nodes, sha256
from tests.functional.agent_ext.disk.conftest import blkid_config_drives, sgdisk

pytestmark = pytest.mark.loopdev


@pytest.fixture
def root_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Make ``device`` the disk IPA's hardware manager installs on."""
    def choose(device: str) -> None:
        monkeypatch.setenv(DISK_ENV, device)
        manager = LabHardwareManager()
        monkeypatch.setattr(hardware, "_global_managers", [
            {"name": "LabHardwareManager", "manager": manager,
             "support": manager.evaluate_hardware_support()}])

    yield choose


def write(agent: Agent, **params: Any) -> dict[str, Any]:
    result = agent.execute_command("configdrive.write", **params)
    result.join()
    return dict(json.loads(json.dumps(result, cls=encoding.RESTJSONEncoder)))


def test_only_the_root_disk_unless_the_operator_named_another(
        agent: Agent, loopdisk: Callable[..., Any],
        root_disk: Callable[[str], None]) -> None:
    root = loopdisk(128, layout=sgdisk("-o"))
    other = loopdisk(128, layout=sgdisk("-o"))
    root_disk(root.device)
    image = build_image({"meta_data": {"uuid": "2b7d4c1e-5a6f-4e8d-9c0b-1a2b3c4d5e6f"}})
    source = {"configdrive": b64gz(image).decode(), "sha256": sha256(image)}

    out = write(agent, device=other.device, **source)
    assert out["command_status"] == "FAILED"
    details = out["command_error"]["details"]
    assert (f"device {other.device}: is not the disk the node's root device hints choose "
            f"({root.device})") in details
    assert "driver_info/configdrive_device" in details
    assert blkid_config_drives(*disk_nodes(other.device)) == []
    assert other.kernel_partitions() == {}

    # The root disk itself, named explicitly: fine.
    out = write(agent, device=root.device, **source)
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert blkid_config_drives(*disk_nodes(root.device)) == [out["command_result"]["path"]]

    # The operator named the other disk (driver_info/configdrive_device): accepted.
    out = write(agent, device=other.device, device_from_operator=True, **source)
    assert out["command_status"] == "SUCCEEDED", out["command_error"]
    assert blkid_config_drives(*disk_nodes(other.device)) == [out["command_result"]["path"]]
