import base64
import gzip
import json
import os
import subprocess
import sys

import pytest

from ironic_configdrive.cli import main
from ironic_configdrive.image import read_tree, unpack

UUID = "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a"


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "cd.json"
    path.write_text(json.dumps({"meta_data": {"uuid": UUID, "name": "cli-host"},
                                "user_data": "#cloud-config\n"}))
    return path


def run(*argv):
    return main([str(a) for a in argv])


def test_build_inspect_validate_iso(source, tmp_path, capsys):
    out = tmp_path / "cd.iso"
    assert run("build", source, "-o", out) == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"  # drives carry secrets
    assert read_tree(out.read_bytes())["openstack/latest/user_data"] == b"#cloud-config\n"
    capsys.readouterr()
    assert run("inspect", out, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["uuid"] == UUID and report["valid"] and report["label"] == "config-2"
    assert run("inspect", out) == 0
    human = capsys.readouterr().out
    assert "hostname:   cli-host" in human and human.rstrip().endswith("valid")
    assert run("validate", out) == 0


def test_build_packed_vfat_4k(source, tmp_path):
    out = tmp_path / "cd.b64"
    assert run("build", source, "-o", out, "--pack", "--format", "vfat",
               "--sector-size", "4096") == 0
    image = gzip.decompress(base64.b64decode(out.read_text()))
    assert unpack(out.read_text()) == image
    assert int.from_bytes(image[11:13], "little") == 4096
    assert run("validate", out) == 0


def test_validate_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"\0" * 40000)
    assert run("validate", bad) == 1
    assert "problem:" in capsys.readouterr().err
    assert run("validate", tmp_path / "missing.img") == 2
    assert "cannot read image" in capsys.readouterr().err


@pytest.mark.parametrize("content,code,message", [
    ("{not json", 2, "is not valid JSON"),
    (json.dumps({"meta_data": {"name": "no-uuid"}}), 1, "meta_data.uuid is missing"),
    (json.dumps({"meta_data": {"uuid": UUID, "files": [
        {"path": "/x", "contents": "a", "content_path": "/content/../../x"}]}}), 1, "escapes"),
    (json.dumps({"user_data": "x" * (70 * 1024 * 1024), "meta_data": {"uuid": UUID}}), 1,
     "larger than the 64 MiB limit"),
])
def test_build_errors_leave_no_output(tmp_path, capsys, content, code, message):
    src = tmp_path / "in.json"
    src.write_text(content)
    out = tmp_path / "out.iso"
    assert run("build", src, "-o", out) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.json"]


def test_build_from_stdin_and_node_defaults(tmp_path):
    out = tmp_path / "cd.iso"
    proc = subprocess.run(
        [sys.executable, "-m", "ironic_configdrive.cli", "build", "-", "-o", str(out),
         "--node-uuid", UUID, "--node-name", "from-node", "--json"],
        input=b"{}", capture_output=True, check=True, env={**os.environ})
    assert json.loads(proc.stdout)["format"] == "iso9660"
    meta = json.loads(read_tree(out.read_bytes())["openstack/latest/meta_data.json"])
    assert meta == {"uuid": UUID, "name": "from-node", "hostname": "from-node"}


def test_usage_error_exit_code():
    with pytest.raises(SystemExit) as exc:
        run("build")
    assert exc.value.code == 2
