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
    # Ignition/Afterburn cannot use a vfat drive; every other reader can.
    assert run("validate", out) == 1
    assert run("validate", out, "--reader", "cloud-init", "--reader", "glean",
               "--reader", "cloudbase-init") == 0


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


@pytest.mark.parametrize("depth", [900, 100_000])
def test_build_refuses_deep_json_without_a_traceback(tmp_path, capsys, depth):
    src = tmp_path / "in.json"
    nested = "[" * depth + "]" * depth
    src.write_text(f'{{"meta_data": {{"uuid": "{UUID}", "x": {nested}}}}}')
    assert run("build", src, "-o", tmp_path / "out.iso") == 1
    err = capsys.readouterr().err
    assert err == (f"ironic-configdrive build: error: {src} nests arrays and objects deeper "
                   f"than 65 levels; flatten it\n")
    assert [p.name for p in tmp_path.iterdir()] == ["in.json"]


def test_build_takes_json_at_the_bound(tmp_path):
    src = tmp_path / "in.json"  # 65 levels in the file: meta_data itself nests 64
    nested = "[" * 63 + "]" * 63
    src.write_text(f'{{"meta_data": {{"uuid": "{UUID}", "x": {nested}}}}}')
    assert run("build", src, "-o", tmp_path / "out.iso") == 0
    assert run("validate", tmp_path / "out.iso") == 0


def test_build_warns_when_the_uuid_is_not_one(tmp_path, capsys):
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"meta_data": {"uuid": "not-a-uuid"}}))
    out = tmp_path / "cd.iso"
    assert run("build", src, "-o", out, "--json") == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: meta_data.uuid 'not-a-uuid' is not a UUID")
    assert json.loads(captured.out)["warnings"] == [captured.err[len("warning: "):].rstrip()]
    assert run("validate", out) == 0
    assert "warning: openstack/latest/meta_data.json: meta_data.uuid 'not-a-uuid' is not a " \
           "UUID" in capsys.readouterr().err


def test_build_refuses_a_lone_surrogate_in_user_data(tmp_path, capsys):
    src = tmp_path / "in.json"
    src.write_text(f'{{"meta_data": {{"uuid": "{UUID}"}}, "user_data": "s3cret\\ud800"}}')
    assert run("build", src, "-o", tmp_path / "out.iso") == 1
    err = capsys.readouterr().err
    assert "user_data is not valid Unicode text: a lone surrogate U+D800 at character 6" in err
    assert "s3cret" not in err


def test_inspect_prints_hostile_text_escaped(tmp_path, capsys):
    from ironic_configdrive.image import layout, write_tree

    files = layout.build_tree({"meta_data": {"uuid": UUID}})
    meta = json.dumps({"uuid": UUID, "hostname": "\ud800\x1b[2J"}).encode()
    files.update({"openstack/latest/meta_data.json": meta,
                  "openstack/2020-10-14/meta_data.json": meta,
                  "openstack/content/\x1b[31mred": b"x"})
    path = tmp_path / "hostile.img"
    path.write_bytes(write_tree(files))
    assert run("inspect", path) == 1  # capsys' stdout, like a terminal's, is strict UTF-8
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "hostname:   \\ud800\\x1b[2J" in captured.out
    assert "openstack/content/\\x1b[31mred" in captured.out


def test_build_into_a_directory_is_a_usage_error_naming_a_file(source, tmp_path, capsys):
    assert run("build", source, "-o", tmp_path) == 2
    err = capsys.readouterr().err
    assert "is a directory; give the name of the file to write" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == [source]


def test_build_to_stdout_writes_the_image_there_and_the_summary_to_stderr(source, tmp_path):
    done = subprocess.run([sys.executable, "-m", "ironic_configdrive.cli", "build",
                           str(source), "-o", "-"], capture_output=True, check=True,
                          cwd=tmp_path)
    assert read_tree(done.stdout)["openstack/latest/user_data"] == b"#cloud-config\n"
    assert b"wrote standard output: iso9660 config drive" in done.stderr
    assert not (tmp_path / "-").exists()


def test_build_to_stdout_with_json_is_refused(source, capsys):
    assert run("build", source, "-o", "-", "--json") == 2
    assert "--json prints a summary on standard output" in capsys.readouterr().err


def test_inspect_prints_each_problem_once(tmp_path, capsys):
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"\0" * 40000)
    assert run("inspect", bad) == 1
    captured = capsys.readouterr()
    problems = [line for line in (captured.out + captured.err).splitlines()
                if line.startswith("problem:")]
    assert problems and len(problems) == len(set(problems))


def test_version_and_option_help(capsys):
    with pytest.raises(SystemExit) as exited:
        run("--version")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("ironic-configdrive 0.")
    with pytest.raises(SystemExit):
        run("build", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "'-' writes to standard output" in text and "filesystem of the image" in text


def test_example_is_installed_and_builds_a_valid_drive(tmp_path, capsys):
    assert run("example") == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"meta_data", "user_data", "network_data", "vendor_data"}
    path = tmp_path / "my.json"
    assert run("example", "-o", path) == 0
    assert "ironic-configdrive build" in capsys.readouterr().err
    assert run("build", path, "-o", tmp_path / "cd.iso") == 0
    assert run("validate", tmp_path / "cd.iso") == 0


# -- readers ---------------------------------------------------------------------------------

def test_validate_names_the_readers_that_fail_and_why(source, tmp_path, capsys):
    out = tmp_path / "cd.img"
    assert run("build", source, "-o", out, "--format", "vfat") == 0
    capsys.readouterr()
    assert run("validate", out) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "problem: ignition: it mounts iso9660 only, and the drive is vfat",
        "problem: ignition: volume label is 'CONFIG-2'; it looks for config-2",
        f"{out}: ignition cannot use it; cloud-init, glean, cloudbase-init can"]
    assert run("validate", out, "--reader", "glean", "--reader", "glean") == 0
    assert capsys.readouterr().out == f"{out}: valid vfat config drive for glean\n"
    assert run("validate", out, "--reader", "ignition", "--json") == 1
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False and list(result["readers"]) == ["ignition"]
    assert result["readers"]["ignition"]["reads"] is False


def test_validate_refuses_an_unknown_reader(source, tmp_path, capsys):
    out = tmp_path / "cd.iso"
    assert run("build", source, "-o", out) == 0
    with pytest.raises(SystemExit) as exc:
        run("validate", out, "--reader", "afterburn")
    assert exc.value.code == 2
    assert "invalid choice: 'afterburn'" in capsys.readouterr().err


def test_inspect_reports_every_reader(source, tmp_path, capsys):
    out = tmp_path / "cd.img"
    assert run("build", source, "-o", out, "--format", "vfat") == 0
    capsys.readouterr()
    assert run("inspect", out, "--json") == 0  # valid: cloud-init and glean read it
    report = json.loads(capsys.readouterr().out)
    assert {name for name, why in report["readers"].items() if why} == {"ignition"}
    assert report["iso_blocks"] is None and report["unread"] == []
    assert run("inspect", out) == 0
    human = capsys.readouterr().out
    assert "  cloudbase-init  reads it\n" in human
    assert "  ignition        cannot: it mounts iso9660 only" in human
