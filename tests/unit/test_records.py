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
        deploy_id="d1", stored=STORED.record(),
        exposures=[records.Exposure("partition", {"mechanism": "partition", "device": "root"})],
        erase={"device": "root"}, stale=[{"store": "swift", "location": "cont/old"}])


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
    image = _record().stored_image("https://s/cont/obj?sig=fresh")
    assert image == StoredImage(store="swift", location="cont/obj",
                                url="https://s/cont/obj?sig=fresh", sha256="ab" * 32,
                                size=2048, expires_at=10.0)


def test_stored_image_keeps_the_raw_encoding() -> None:
    # Virtual media refuses anything but a raw image: the encoding must survive the record.
    raw = StoredImage(store="http", location="cd/n.d.x.iso", url="http://h/cd/n.d.x.iso",
                      sha256="cd" * 32, size=4096, encoding="identity")
    record = records.DriveRecord(deploy_id="d1", stored=raw.record())
    node = FakeNode()
    records.save(node, record)
    loaded = records.load(node)
    assert loaded is not None
    assert loaded.stored_image("http://h/cd/n.d.x.iso") == raw


def test_stored_image_without_object() -> None:
    with pytest.raises(InternalError):
        records.DriveRecord(deploy_id="d").stored_image("u")


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
        deploy_id="old", stored={"store": "s", "location": "l"}, passthrough=False,
        exposures=[records.Exposure("virtual_media", {"device": "Cd"})],
        erase={"device": "root"}, stale=[{"store": "s", "location": "gone"}],
        served=[{"store": "http", "location": "copy"}])
    new = old.successor("new", passthrough=True)
    assert (new.deploy_id, new.stored, new.passthrough) == ("new", None, True)
    expected = {**old.to_dict(), "deploy_id": "new", "stored": None, "passthrough": True}
    assert new.to_dict() == expected
    new.stale.append({"store": "s", "location": "l"})
    new.exposures.clear()
    assert len(old.stale) == 1 and len(old.exposures) == 1  # no list shared with the old one
