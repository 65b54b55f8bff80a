"""``ironic-configdrive-keys`` without Ironic: ``generate`` works, the database commands say
what they need (the CLI must run with only the ``[agent]`` extra installed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ironic_configdrive import keys
from ironic_configdrive.cli import keys as keys_cli

ROOT = Path(__file__).resolve().parents[3]


def _without_ironic(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python where ``import ironic`` fails, as on an agent-only host."""
    script = "import sys\nsys.modules['ironic'] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


def test_generate_needs_no_ironic(tmp_path: Path) -> None:
    path = tmp_path / "made.key"
    done = _without_ironic(f"""
        from ironic_configdrive.cli import keys
        code = keys.main(["generate", {str(path)!r}])
        assert sys.modules["ironic"] is None
        assert not [m for m in sys.modules if m.startswith("ironic.")]
        sys.exit(code)
    """)
    assert done.returncode == 0, done.stderr
    made = keys.read_kek(str(path), create=False)
    assert f"key fingerprint {made.fingerprint}" in done.stdout
    assert made.material.hex() not in done.stdout + done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_database_commands_say_they_need_ironic() -> None:
    done = _without_ironic("""
        from ironic_configdrive.cli import keys
        sys.exit(keys.main(["status"]))
    """)
    assert done.returncode == 2
    assert "status needs Ironic: run it where a conductor runs" in done.stderr


def test_generate_refuses_an_existing_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "k"
    path.write_text("keep me\n")
    assert keys_cli.main(["generate", str(path)]) == 1
    assert f"the key file {path} already exists" in capsys.readouterr().err
    assert path.read_text() == "keep me\n"
