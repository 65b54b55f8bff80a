"""The ironic-configdrive-agent DIB element's hooks, run for real outside diskimage-builder.

A full ramdisk build needs debootstrap, a distribution mirror and root; instead each hook runs
as DIB would run it: ``extra-data.d`` copies the tree into a hooks directory, ``install.d``
pip-installs it into a fresh virtualenv standing in for IPA's ``/opt/ironic-python-agent``.
That venv sees this environment's already-installed packages (ironic-python-agent, pyudev,
requests, pycdlib ...) through a ``.pth`` file of symlinks, minus this project, so pip runs
offline (``--no-index``) and the hook's own entry-point check loads the extension with IPA's
configuration registered, as the agent does at start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import require_tool, skip_or_fail

REPO = Path(__file__).resolve().parents[3]
ELEMENT = REPO / "elements" / "ironic-configdrive-agent"
EXTRA_DATA = ELEMENT / "extra-data.d" / "50-ironic-configdrive-source"
INSTALL = ELEMENT / "install.d" / "75-ironic-configdrive-agent"

# Our own distribution and whatever carries it into this environment (editable finders).
_OURS = ("ironic_configdrive", "agent_ext", "__editable__")
# The new venv brings its own packaging tools.
_VENV_OWN = ("pip", "setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence")


def _wheel_dir() -> Path:
    """Where the ``wheel`` package lives: setuptools < 70.1 needs it to build without PyPI."""
    spec = importlib.util.find_spec("wheel")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent.parent
    debian = Path("/usr/lib/python3/dist-packages")
    if (debian / "wheel").is_dir():
        return debian
    skip_or_fail("the 'wheel' Python package (Debian python3-wheel) is needed to build "
                 "offline")
    raise AssertionError("unreachable")


def _run(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Never from the repository: Python would import the working tree instead of the install.
    return subprocess.run(["bash", str(script)], env={**os.environ, **env}, text=True,
                          capture_output=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def ipa_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare venv whose .pth exposes this environment's packages except ours."""
    require_tool("bash")
    root = tmp_path_factory.mktemp("ipa")
    venv = root / "venv"
    created = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                             text=True, timeout=300)
    if created.returncode != 0:
        skip_or_fail(f"python -m venv failed (Debian python3-venv missing?): "
                     f"{created.stderr.strip()}")
    farm = root / "farm"
    farm.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name
        if name.endswith(".pth") or name.startswith(_OURS) or name.startswith(_VENV_OWN):
            continue
        (farm / name).symlink_to(entry)
    wheel_home = _wheel_dir()
    for entry in wheel_home.glob("wheel*"):
        if not (farm / entry.name).exists():
            (farm / entry.name).symlink_to(entry)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "zz-test-farm.pth").write_text(f"{farm}\n")
    return venv


def test_extra_data_copies_tree_without_build_products(tmp_path: Path) -> None:
    require_tool("bash")
    require_tool("tar")
    result = _run(EXTRA_DATA, {"TMP_HOOKS_PATH": str(tmp_path),
                               "DIB_IRONIC_CONFIGDRIVE_SOURCE": str(REPO)}, tmp_path)
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "ironic-configdrive"
    assert (copy / "setup.cfg").read_bytes() == (REPO / "setup.cfg").read_bytes()
    assert (copy / "agent_ext" / "extension.py").is_file()
    assert not (copy / ".git").exists()
    assert not list(copy.rglob("__pycache__"))
    assert not list(copy.glob("*.egg-info"))


def test_extra_data_rejects_missing_source(tmp_path: Path) -> None:
    require_tool("bash")
    result = _run(EXTRA_DATA, {"TMP_HOOKS_PATH": str(tmp_path),
                               "DIB_IRONIC_CONFIGDRIVE_SOURCE": str(tmp_path / "nowhere")},
                  tmp_path)
    assert result.returncode != 0
    assert "DIB_IRONIC_CONFIGDRIVE_SOURCE" in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr


def test_install_puts_extension_into_ipa_venv(ipa_venv: Path, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    copied = _run(EXTRA_DATA, {"TMP_HOOKS_PATH": str(hooks),
                               "DIB_IRONIC_CONFIGDRIVE_SOURCE": str(REPO)}, tmp_path)
    assert copied.returncode == 0, copied.stderr

    result = _run(INSTALL, {
        "DIB_IRONIC_CONFIGDRIVE_IPA_VENV": str(ipa_venv),
        "DIB_IRONIC_CONFIGDRIVE_TARGET_SOURCE": str(hooks / "ironic-configdrive"),
        "DIB_IRONIC_CONFIGDRIVE_CONSTRAINTS": str(tmp_path / "no-constraints.txt"),
        "DIB_IRONIC_CONFIGDRIVE_PIP_ARGS": "--no-index --no-build-isolation",
    }, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "IPA extension agent_ext.extension:ConfigDriveExtension" in result.stdout

    # Installed as a regular (non-editable) distribution inside the venv itself.
    probe = subprocess.run(
        [str(ipa_venv / "bin" / "python"), "-c",
         "import agent_ext, ironic_configdrive.image, importlib.metadata as m;"
         "print(agent_ext.__file__); print(m.distribution('ironic-configdrive').version)"],
        check=True, capture_output=True, text=True, cwd=tmp_path)
    agent_file, version = probe.stdout.split()
    assert Path(agent_file).is_relative_to(ipa_venv)
    assert version == "0.1.0"


def test_install_refuses_without_ipa_venv(tmp_path: Path) -> None:
    require_tool("bash")
    result = _run(INSTALL, {"DIB_IRONIC_CONFIGDRIVE_IPA_VENV": str(tmp_path / "none"),
                            "DIB_IRONIC_CONFIGDRIVE_TARGET_SOURCE": str(REPO)}, tmp_path)
    assert result.returncode != 0
    assert "no ironic-python-agent virtualenv" in result.stderr
    assert "DIB_INSTALLTYPE_ironic_python_agent_ramdisk=source" in result.stderr


def test_install_refuses_without_source(ipa_venv: Path, tmp_path: Path) -> None:
    result = _run(INSTALL, {"DIB_IRONIC_CONFIGDRIVE_IPA_VENV": str(ipa_venv),
                            "DIB_IRONIC_CONFIGDRIVE_TARGET_SOURCE": str(tmp_path / "gone")},
                  tmp_path)
    assert result.returncode != 0
    assert "source tree missing" in result.stderr and str(tmp_path / "gone") in result.stderr


def test_element_declares_ipa_dependency() -> None:
    assert (ELEMENT / "element-deps").read_text().split() == [
        "ironic-python-agent-ramdisk", "package-installs", "pkg-map"]
    for hook in (EXTRA_DATA, INSTALL):
        assert os.access(hook, os.X_OK), f"{hook} must be executable for diskimage-builder"


def test_element_installs_sfdisk() -> None:
    """The agent's partition tables go through sfdisk: Debian carries it in fdisk, a package
    its minimal images (debootstrap minbase) leave out; elsewhere util-linux has it."""
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load((ELEMENT / "package-installs.yaml").read_text()) == {"sfdisk": None}
    mapping = json.loads((ELEMENT / "pkg-map").read_text())
    assert mapping["family"]["debian"]["sfdisk"] == "fdisk"
    assert mapping["default"]["sfdisk"] == "util-linux"
