"""The driver_internal_info record and the instance_info reference."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ironic_configdrive import records
from ironic_configdrive.image.errors import InternalError
from ironic_configdrive.store.base import StoredImage

STORED = StoredImage(store="swift", location="cont/obj", url="https://s/cont/obj?sig=x",
                     sha256="ab" * 32, size=2048, expires_at=10.0)


class FakeNode:
    def __init__(self) -> None:
        self.driver_internal_info: dict[str, Any] = {}

    def set_driver_internal_info(self, key: str, value: Any) -> None:
        self.driver_internal_info[key] = value

    def del_driver_internal_info(self, key: str) -> None:
        self.driver_internal_info.pop(key, None)


def _record() -> records.DriveRecord:
    return records.DriveRecord(
        deploy_id="d1", stored=records.StoredRef.of(STORED, wrapped_key="w"),
        exposures=[records.Exposure("partition", {"mechanism": "partition", "device": "root"})],
        erase=records.Erase("root"),
        stale=[records.StoredRef(store="swift", location="cont/old")],
        served=[records.StoredRef(store="http", location="cd/copy.iso", holder="c1")])


def test_round_trip_is_json_and_has_no_url() -> None:
    node = FakeNode()
    records.save(node, _record())
    text = json.dumps(node.driver_internal_info)
    assert "sig=x" not in text and "https://" not in text
    loaded = records.load(node)
    assert loaded == _record()
    assert loaded is not None and loaded.location == "cont/obj"


def test_save_none_removes() -> None:
    node = FakeNode()
    records.save(node, _record())
    records.save(node, None)
    assert records.load(node) is None and node.driver_internal_info == {}


def test_stored_image_with_fresh_url() -> None:
    stored = _record().stored
    assert stored is not None
    image = stored.image("https://s/cont/obj?sig=fresh")
    assert image == StoredImage(store="swift", location="cont/obj",
                                url="https://s/cont/obj?sig=fresh", sha256="ab" * 32,
                                size=2048, expires_at=10.0)


def test_stored_image_keeps_the_raw_encoding() -> None:
    # Virtual media refuses anything but a raw image: the encoding must survive the record.
    raw = StoredImage(store="http", location="cd/n.d.x.iso", url="http://h/cd/n.d.x.iso",
                      sha256="cd" * 32, size=4096, encoding="identity")
    record = records.DriveRecord(deploy_id="d1", stored=records.StoredRef.of(raw))
    node = FakeNode()
    records.save(node, record)
    loaded = records.load(node)
    assert loaded is not None and loaded.stored is not None
    assert loaded.stored.image("http://h/cd/n.d.x.iso") == raw


def test_version_1_records_are_read() -> None:
    # What conductors before the typed records wrote: plain dicts, no holder.
    node = FakeNode()
    node.driver_internal_info[records.RECORD_KEY] = {
        "version": 1, "deploy_id": "d1",
        "stored": {**STORED.record(), "wrapped_key": "w"}, "passthrough": False,
        "exposures": [{"mechanism": "virtual_media", "record": {"slot": "Cd"}}],
        "erase": {"device": "/dev/sda", "warning": "careful"},
        "stale": [{"store": "swift", "location": "cont/old", "sha256": None, "size": None}],
        "served": [{"store": "http", "location": "cd/x.iso", "encoding": "identity"}]}
    record = records.load(node)
    assert record is not None and record.stored is not None
    assert (record.stored.wrapped_key, record.stored.holder) == ("w", None)
    assert record.erase == records.Erase("/dev/sda", "careful")
    assert [ref.location for ref in record.objects()] == ["cont/obj", "cont/old", "cd/x.iso"]
    records.save(node, record)
    assert node.driver_internal_info[records.RECORD_KEY]["version"] == records.VERSION


def test_holder_decides_who_acts() -> None:
    ref = records.StoredRef(store="http", location="cd/a.iso", holder="c1")
    assert ref.held_elsewhere("c2", host_local=True)
    assert not ref.held_elsewhere("c1", host_local=True)
    assert not ref.held_elsewhere("c2", host_local=False)  # a shared root: anyone may act
    assert not records.StoredRef(store="http", location="x").held_elsewhere(
        "c2", host_local=True)  # recorded before holders existed: try locally


def test_persist_drops_an_empty_record() -> None:
    node = FakeNode()
    saved: list[int] = []
    node.save = lambda: saved.append(1)  # type: ignore[attr-defined]
    records.persist(node, _record())
    assert records.RECORD_KEY in node.driver_internal_info
    records.persist(node, records.DriveRecord(deploy_id="d2"))
    assert node.driver_internal_info == {} and saved == [1, 1]


def test_reference() -> None:
    record = _record()
    ref = record.reference()
    assert set(ref) == {records.REFERENCE_KEY}
    assert "location" not in ref[records.REFERENCE_KEY]  # the http store's name is secret
    assert record.matches(json.loads(json.dumps(ref)))
    assert not records.DriveRecord(deploy_id="other").matches(ref)
    assert not record.matches("H4sIAAAA")
    assert not record.matches({"meta_data": {}})
    passthrough = records.DriveRecord(deploy_id="p", passthrough=True)
    assert passthrough.reference("https://x/y?sig=1")[records.REFERENCE_KEY]["url"] == \
        "https://x/y?sig=1"


def test_reference_of() -> None:
    assert records.reference_of({records.REFERENCE_KEY: {"deploy_id": "d"}}) == {
        "deploy_id": "d"}
    assert records.reference_of({records.REFERENCE_KEY: {}, "meta_data": {}}) is None
    assert records.reference_of({records.REFERENCE_KEY: "x"}) is None
    assert records.reference_of(None) is None


@pytest.mark.parametrize("data", [
    "x", {}, {"deploy_id": 3}, {"deploy_id": "d", "version": 99},
    {"deploy_id": "d", "exposures": [{"record": {}}]},
])
def test_malformed(data: Any) -> None:
    node = FakeNode()
    node.driver_internal_info[records.RECORD_KEY] = data
    with pytest.raises(InternalError):
        records.load(node)


def test_successor_carries_everything_pending_and_nothing_stored() -> None:
    old = records.DriveRecord(
        deploy_id="old", stored=records.StoredRef(store="s", location="l"), passthrough=False,
        exposures=[records.Exposure("virtual_media", {"device": "Cd"})],
        erase=records.Erase("root"), stale=[records.StoredRef(store="s", location="gone")],
        served=[records.StoredRef(store="http", location="copy", holder="c1")])
    new = old.successor("new", passthrough=True)
    assert (new.deploy_id, new.stored, new.passthrough) == ("new", None, True)
    expected = {**old.to_dict(), "deploy_id": "new", "stored": None, "passthrough": True}
    assert new.to_dict() == expected
    new.stale.append(records.StoredRef(store="s", location="l"))
    new.exposures.clear()
    assert len(old.stale) == 1 and len(old.exposures) == 1  # no list shared with the old one


def test_wrapped_keys_are_mapped_in_every_object_and_dropped_from_stale_ones() -> None:
    def ref(location: str, wrapped: str | None) -> records.StoredRef:
        return records.StoredRef(store="swift", location=location, sealed=bool(wrapped),
                                 wrapped_key=wrapped)

    record = records.DriveRecord(deploy_id="d", stored=ref("a", "old:A"),
                                 stale=[ref("b", "old:B"), ref("c", None)],
                                 served=[ref("d", "new:D")])
    assert record.wrapped_keys() == ["old:A", "old:B", "new:D"]
    changed = record.map_wrapped_keys(lambda w: w.replace("old:", "new:"))
    assert changed == 2  # new:D was already current
    assert record.wrapped_keys() == ["new:A", "new:B", "new:D"]
    assert record.forget_stale_keys() == 1
    assert record.wrapped_keys() == ["new:A", "new:D"]
    assert [r.location for r in record.stale] == ["b", "c"]
    assert records.DriveRecord.from_dict(record.to_dict()) == record
