"""The sfdisk runner: its command lines, scripts, listings and errors (sfdisk itself mocked)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from agent_ext.disk import sfdisk
from agent_ext.errors import DeviceError

GPT_LISTING = {"partitiontable": {
    "label": "gpt", "id": "2496F598-5396-4DAF-B981-D446D3B16A22", "device": "/dev/loop3",
    "unit": "sectors", "firstlba": 34, "lastlba": 131038, "sectorsize": 512,
    "partitions": [
        {"node": "/dev/loop3p2", "start": 4096, "size": 2048,
         "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
         "uuid": "c0f1d217-e5a1-8000-8000-000000000001", "name": "config-2"},
        {"node": "/dev/loop3p1", "start": 2048, "size": 2048,
         "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
         "uuid": "1205F6C6-342E-4F14-9B81-7E7F13F76944"},
    ]}}

DOS_LISTING = {"partitiontable": {
    "label": "dos", "id": "0x88a483f5", "device": "/dev/sda", "unit": "sectors",
    "sectorsize": 4096,
    "partitions": [
        {"node": "/dev/sda1", "start": 256, "size": 4864, "type": "83", "bootable": True},
        {"node": "/dev/sda4", "start": 15360, "size": 25600, "type": "f"},
        {"node": "/dev/sda12", "start": 15616, "size": 4864, "type": "83"},
    ]}}


class Recorder:
    """Stands in for subprocess.run: records each call, answers with the next reply."""

    def __init__(self, *replies: subprocess.CompletedProcess[str] | BaseException) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((argv, kwargs))
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def done(stdout: str = "", stderr: str = "", rc: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], rc, stdout, stderr)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def install(*replies: subprocess.CompletedProcess[str] | BaseException) -> Recorder:
        recorder = Recorder(*replies)
        monkeypatch.setattr(sfdisk.subprocess, "run", recorder)
        return recorder
    return install


def test_parse_gpt():
    layout = sfdisk.parse(GPT_LISTING)
    assert (layout.label, layout.sector_size, layout.first_lba, layout.last_lba) == (
        "gpt", 512, 34, 131038)
    assert [(e.number, e.start, e.size, e.name) for e in layout.entries] == [
        (1, 2048, 2048, ""), (2, 4096, 2048, "config-2")]
    assert layout.entries[1].uuid == "C0F1D217-E5A1-8000-8000-000000000001"


def test_parse_dos_with_logical_partitions_and_4k_sectors():
    layout = sfdisk.parse(DOS_LISTING)
    assert (layout.label, layout.sector_size, layout.first_lba) == ("dos", 4096, None)
    assert [(e.number, e.type) for e in layout.entries] == [(1, "83"), (4, "F"), (12, "83")]


def test_parse_refuses_other_units():
    listing = {"partitiontable": {**DOS_LISTING["partitiontable"], "unit": "cylinders"}}
    with pytest.raises(ValueError, match="unit"):
        sfdisk.parse(listing)


def test_listing_without_sector_size(runs):
    """sfdisk before 2.35 does not state the unit: the disk's own sector size applies."""
    listing = {"partitiontable": {k: v for k, v in DOS_LISTING["partitiontable"].items()
                                  if k != "sectorsize"}}
    assert sfdisk.parse(listing).sector_size is None


def test_sfdisk_never_takes_the_lock_the_caller_holds(runs, monkeypatch):
    monkeypatch.setenv("LOCK_BLOCK_DEVICE", "1")
    recorder = runs(done())
    sfdisk.delete("/dev/sdb", [2], "delete partition 2")
    env = recorder.calls[0][1]["env"]
    assert "LOCK_BLOCK_DEVICE" not in env and "--lock" not in " ".join(recorder.calls[0][0])


def test_read_runs_json_in_the_c_locale(runs):
    recorder = runs(done(json.dumps(GPT_LISTING), "GPT PMBR size mismatch (1 != 2) will be "
                                                  "corrected by write.\n"))
    layout = sfdisk.read("/dev/loop3")
    assert layout is not None and len(layout.entries) == 2
    assert layout.warnings == ("GPT PMBR size mismatch (1 != 2) will be corrected by write.",)
    argv, kwargs = recorder.calls[0]
    assert argv == ["sfdisk", "--json", "/dev/loop3"]
    assert kwargs["env"]["LC_ALL"] == "C" and kwargs["timeout"] == sfdisk.TIMEOUT
    assert kwargs["check"] is False


def test_read_without_a_table_is_none(runs):
    runs(done(stderr="sfdisk: /dev/sdb: does not contain a recognized partition table\n",
              rc=1))
    assert sfdisk.read("/dev/sdb") is None


def test_read_failure_says_why(runs):
    runs(done(stderr="sfdisk: cannot open /dev/sdb: Input/output error\n", rc=1))
    with pytest.raises(DeviceError) as err:
        sfdisk.read("/dev/sdb")
    assert err.value.message == (
        "device /dev/sdb: sfdisk could not read its partition table (cannot open /dev/sdb: "
        "Input/output error); check the disk (dmesg) and its table (sfdisk --verify)")


def test_unreadable_listing(runs):
    runs(done("{not json"))
    with pytest.raises(DeviceError, match="could not be understood"):
        sfdisk.read("/dev/sdb")


def test_missing_sfdisk_names_the_package(runs):
    runs(FileNotFoundError(2, "No such file or directory"))
    with pytest.raises(DeviceError) as err:
        sfdisk.read("/dev/sdb")
    assert "not installed" in err.value.message and "package fdisk" in err.value.message


def test_a_hung_sfdisk_is_bounded(runs):
    runs(subprocess.TimeoutExpired(["sfdisk"], sfdisk.TIMEOUT))
    with pytest.raises(DeviceError, match="did not finish within 60 s"):
        sfdisk.set_partition("/dev/sdb", 2, "resize partition 2", size=4096)


def test_set_partition_changes_one_entry_and_leaves_the_kernel_alone(runs):
    recorder = runs(done())
    sfdisk.set_partition("/dev/sdb", 3, "add partition 3", start=2048, size=4096,
                         type="0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                         uuid="C0F1D217-E5A1-8000-8000-000000000001", name="config-2")
    argv, kwargs = recorder.calls[0]
    assert argv == ["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "never",
                    "--wipe-partitions", "never", "--quiet", "-N", "3", "/dev/sdb"]
    assert kwargs["input"] == (
        "start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, "
        'uuid=C0F1D217-E5A1-8000-8000-000000000001, name="config-2"\n')


def test_delete_in_the_order_given(runs):
    recorder = runs(done())
    sfdisk.delete("/dev/sdb", [6, 5], "delete partitions 6, 5")
    assert recorder.calls[0][0][-4:] == ["--delete", "/dev/sdb", "6", "5"]


def test_relocate_backup(runs):
    recorder = runs(done())
    sfdisk.relocate_backup("/dev/sdb")
    assert recorder.calls[0][0][-3:] == ["--relocate", "gpt-bak-std", "/dev/sdb"]


def test_change_failure_quotes_sfdisk_without_its_warnings(runs):
    runs(done(stderr="warning: /dev/sdb: partition 3 is not defined yet\n"
                     "Start sector 310000 out of range.\n"
                     "sfdisk: Failed to add #3 partition: Numerical result out of range\n",
              rc=1))
    with pytest.raises(DeviceError) as err:
        sfdisk.set_partition("/dev/sdb", 3, "add partition 3", start=310000, size=2048)
    assert err.value.message == (
        "device /dev/sdb: sfdisk could not add partition 3 (Start sector 310000 out of "
        "range.; Failed to add #3 partition: Numerical result out of range); check the "
        "table with `sfdisk --verify /dev/sdb`")


def test_script_line_quotes_names_and_refuses_what_it_cannot_quote():
    assert sfdisk.script_line(size=10, name="config-2") == 'size=10, name="config-2"\n'
    with pytest.raises(ValueError):
        sfdisk.script_line(name='a"b')
