"""One set of rules for build and validate (image/rules.py), and the JSON nesting bound."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ironic_configdrive.image import (
    VFAT,
    InvalidInputError,
    UnsafePathError,
    build_image,
    layout,
    rules,
    validate,
    vfat,
)
from ironic_configdrive.image.errors import JSONDepthError

UUID = "0f3c5a1e-7b2d-4c8e-9a61-5d4e3f2a1b0c"
SECRET = "SECRET-user-data-7c1e"


def nest(depth: int, kind: str = "list") -> Any:
    """``depth`` arrays (or objects) inside each other, built without recursion."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def verbatim_drive(configdrive: dict[str, Any]) -> bytes:
    """The drive ``configdrive`` describes, written as given: no checks, no normalising.

    What a careless builder would produce; validate must refuse exactly what build refuses.
    """
    meta = dict(configdrive.get("meta_data") or {})
    meta.setdefault("uuid", UUID)
    files = layout.build_tree({"meta_data": {}}, node_uuid=UUID)
    entries = meta.get("files")
    if isinstance(entries, list):
        described = []
        for index, entry in enumerate(entries):
            path = entry.get("content_path", f"/content/{index:04d}")
            described.append({"path": entry.get("path"), "content_path": path})
            files["openstack/" + path.lstrip("/")] = b"x"
        meta["files"] = described
    meta_json = json.dumps(meta).encode()
    network_json = json.dumps(configdrive.get("network_data") or {}).encode()
    for path in list(files):
        if path.endswith("/meta_data.json"):
            files[path] = meta_json
        elif path.endswith("/network_data.json"):
            files[path] = network_json
    return vfat.write_fat(files)


def file_entry(path: Any = "/etc/motd", **extra: Any) -> dict[str, Any]:
    return {"meta_data": {"files": [{"path": path, "contents": "x", **extra}]}}


#: Inputs whose every rule shows in the drive: build and validate must agree on each.
#: name -> (configdrive, field the refusal names, or None when it is accepted)
EDGES: dict[str, tuple[dict[str, Any], str | None]] = {
    "plain": ({"meta_data": {"name": "web1"}}, None),
    "unicode_hostname": ({"meta_data": {"hostname": "hôte-1"}}, None),
    "uuid_not_a_uuid": ({"meta_data": {"uuid": "not-a-uuid"}}, None),  # a warning only
    "public_keys": ({"meta_data": {"public_keys": {"k": "ssh-ed25519 AAAA"}}}, None),
    "public_keys_list": ({"meta_data": {"public_keys": ["ssh-ed25519 AAAA"]}},
                         "meta_data.public_keys"),
    "public_keys_number": ({"meta_data": {"public_keys": {"k": 1}}}, "meta_data.public_keys.k"),
    "hostname_nul": ({"meta_data": {"hostname": "a\x00b"}}, "meta_data.hostname"),
    "hostname_newline": ({"meta_data": {"hostname": "a\nb"}}, "meta_data.hostname"),
    "hostname_surrogate": ({"meta_data": {"hostname": "\ud800"}}, "meta_data.hostname"),
    "hostname_number": ({"meta_data": {"hostname": 7}}, "meta_data.hostname"),
    "name_list": ({"meta_data": {"name": ["n"]}}, "meta_data.name"),
    "uuid_number": ({"meta_data": {"uuid": 7}}, "meta_data.uuid"),
    "uuid_control": ({"meta_data": {"uuid": "a\tb"}}, "meta_data.uuid"),
    "admin_pass_number": ({"meta_data": {"admin_pass": 1}}, "meta_data.admin_pass"),
    "zone_object": ({"meta_data": {"availability_zone": {"a": 1}}},
                    "meta_data.availability_zone"),
    "launch_index": ({"meta_data": {"launch_index": 0}}, None),
    "launch_index_negative": ({"meta_data": {"launch_index": -1}}, "meta_data.launch_index"),
    "launch_index_text": ({"meta_data": {"launch_index": "0"}}, "meta_data.launch_index"),
    "key_surrogate": ({"meta_data": {"\udcff": "x"}}, "a key of meta_data"),
    "nan": ({"meta_data": {"x": float("nan")}}, "meta_data.x"),
    "depth_64": ({"meta_data": {"x": nest(63)}}, None),
    # Read back, the text says how deep, not where: the refusals share the document's name.
    "depth_65": ({"meta_data": {"x": nest(64)}}, "meta_data"),
    "depth_65_objects": ({"meta_data": {"x": nest(64, "dict")}}, "meta_data"),
    "network_depth_65": ({"network_data": {"x": nest(64)}}, "network_data"),
    "file": (file_entry(), None),
    "file_unicode": (file_entry("/home/é/a b"), None),
    "file_root": (file_entry("/"), "meta_data.files[0].path"),
    "file_empty": (file_entry(""), "meta_data.files[0].path"),
    "file_relative": (file_entry("etc/motd"), "meta_data.files[0].path"),
    "file_dotdot": (file_entry("/etc/../shadow"), "meta_data.files[0].path"),
    "file_directory": (file_entry("/etc/"), "meta_data.files[0].path"),
    "file_double_slash": (file_entry("/etc//motd"), "meta_data.files[0].path"),
    "file_dot": (file_entry("/etc/./motd"), "meta_data.files[0].path"),
    "file_nul": (file_entry("/etc/mo\x00td"), "meta_data.files[0].path"),
    "file_surrogate": (file_entry("/etc/\ud800"), "meta_data.files[0].path"),
    "file_control": (file_entry("/etc/\x1b[2J"), "meta_data.files[0].path"),
    "file_not_string": (file_entry(["/etc/motd"]), "meta_data.files[0].path"),
    "file_too_long": (file_entry("/" + "a" * 4096), "meta_data.files[0].path"),
    "content_path": (file_entry(content_path="/content/0007"), None),
    "content_path_spaces": (file_entry(content_path="/content/a b"),
                            "meta_data.files[0].content_path"),
    "content_path_nested": (file_entry(content_path="/content/a/b"),
                            "meta_data.files[0].content_path"),
    "network_links": ({"network_data": {"links": [{"id": "l0"}]}}, None),
    "network_links_object": ({"network_data": {"links": {"id": "l0"}}}, "network_data.links"),
    "network_links_number": ({"network_data": {"links": [1]}}, "network_data.links[0]"),
    "network_services_text": ({"network_data": {"services": "dns"}}, "network_data.services"),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_build_succeeds_iff_validate_accepts(name: str) -> None:
    configdrive, field = EDGES[name]
    try:
        built = build_image(configdrive, node_uuid=UUID, fmt=VFAT)
    except InvalidInputError as exc:
        assert field is not None, f"refused: {exc.message}"
        assert field in exc.message
        # The same content written as given is what validate refuses, naming the same field.
        problems = validate(verbatim_drive(configdrive))
        assert any(field in problem for problem in problems), problems
        return
    assert field is None, f"built, but should have been refused naming {field}"
    assert validate(built) == []
    assert validate(verbatim_drive(configdrive)) == []


#: Rules about Ironic's input form only (nothing of them shows in a drive).
@pytest.mark.parametrize(("configdrive", "phrase"), [
    ({"user_data": "\ud800" + SECRET}, "user_data is not valid Unicode text: a lone surrogate "
                                       "U+D800 at character 0"),
    ({"user_data": {"a": nest(64)}}, "user_data nests arrays and objects deeper than 64"),
    ({"user_data": {SECRET: "\udcff"}}, "user_data is not valid Unicode text"),
    ({"vendor_data": nest(65, "dict")}, "vendor_data.k.k"),
    ({"network_data": nest(900, "dict")}, "deeper than 64 levels"),
    ({"meta_data": nest(100_000, "dict")}, "deeper than 64 levels"),
    (file_entry(encoding="gzip"), 'meta_data.files[0].encoding must be "base64" or left out'),
    (file_entry(encoding=""), "meta_data.files[0].encoding"),
    (file_entry(contents="\ud800"), "meta_data.files[0].contents is not valid Unicode"),
    ({"meta_data": {"files": [{"path": "/a", "contents": "x"},
                              {"path": "/b", "contents": "y", "content_path": "/content/0000"}]}},
     "meta_data.files[1].content_path /content/0000 is already used by meta_data.files[0]"),
    ({"meta_data": {"files": [{"path": "/a", "contents": "x", "content_path": "/content/a"},
                              {"path": "/b", "contents": "y", "content_path": "/content/A"}]}},
     "is already used"),
    ({1: "x", "meta_data": {}}, "unknown config drive key(s) ['1']"),
], ids=lambda value: "" if isinstance(value, str) else None)
def test_build_refuses_input_naming_the_field(configdrive: dict[Any, Any], phrase: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        build_image(configdrive, node_uuid=UUID)
    assert phrase in exc.value.message
    assert SECRET not in exc.value.message
    assert len(exc.value.message) < 400


def test_traversal_is_an_unsafe_path_naming_the_field() -> None:
    with pytest.raises(UnsafePathError) as exc:
        build_image(file_entry(content_path="/content/../../etc/shadow"), node_uuid=UUID)
    assert exc.value.message.startswith(
        "meta_data.files[0].content_path '/content/../../etc/shadow' escapes the config "
        "drive tree: ")


def test_wrapped_base64_contents() -> None:
    tree = layout.build_tree(
        file_entry(contents="AAEC\nAwQF\n", encoding="base64"), node_uuid=UUID)
    assert tree["openstack/content/0000"] == bytes(range(6))


def test_warnings_are_collected() -> None:
    warnings: list[str] = []
    build_image({"meta_data": {"uuid": "not-a-uuid"}}, warnings=warnings)
    assert len(warnings) == 1 and "meta_data.uuid 'not-a-uuid' is not a UUID" in warnings[0]
    build_image({"meta_data": {"uuid": UUID.upper()}}, warnings=(quiet := []))
    assert quiet == []


# -- the nesting bound ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "deeper"), [
    ("[" * 64 + "]" * 64, False),
    ("[" * 65 + "]" * 65, True),
    ("{}" * 10_000, False),
    ('{"a": "' + "[" * 1000 + '"}', False),                       # brackets inside a string
    ('["\\"[[[[", ' + "[" * 63 + "]" * 63 + "]", False),          # an escaped quote
    ('["\\\\", ' + "[" * 64 + "]" * 64 + "]", True),              # an escaped backslash
    ("[" * 100_000, True),                                         # never closed
])
def test_nests_deeper(text: str, deeper: bool) -> None:
    assert rules.nests_deeper(text) is deeper


@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_loads_refuses_before_parsing(depth: int) -> None:
    with pytest.raises(JSONDepthError) as exc:
        rules.loads(("[" * depth + "]" * depth).encode(), "input.json")
    assert exc.value.message == (
        "input.json nests arrays and objects deeper than 64 levels; flatten it")


def test_loads_utf16_and_depth_64() -> None:
    text = "[" * 64 + '"é"' + "]" * 64
    value = rules.loads(text.encode("utf-16"), "x")
    for _ in range(64):
        value = value[0]
    assert value == "é"


def test_json_problem_is_iterative_and_ends_on_cycles() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    problem = rules.json_problem(cycle, "meta_data")
    assert problem is not None and "deeper than 64" in problem.reason
    assert len(problem.field) < 100


def _blob(size: int) -> dict[str, str]:
    """A JSON object whose serialisation is ``size`` bytes."""
    return {"blob": "x" * (size - len(json.dumps({"blob": ""})))}


@pytest.mark.parametrize("key", ["meta_data", "network_data", "vendor_data"])
def test_a_metadata_document_over_the_cap_is_refused(key: str) -> None:
    cap = rules.MAX_JSON_DOCUMENT_BYTES
    document = _blob(cap + 1)
    if key == "network_data":
        document = {"links": [], "networks": [], "services": [], **document}
    with pytest.raises(InvalidInputError) as exc:
        build_image({key: document}, node_uuid=UUID)
    assert f"{key} is " in exc.value.message
    assert "more than the 4 MiB a metadata document may be" in exc.value.message


def test_documents_at_the_cap_build_and_user_data_is_not_capped() -> None:
    cap = rules.MAX_JSON_DOCUMENT_BYTES
    image = build_image({"vendor_data": _blob(cap), "user_data": _blob(2 * cap)},
                        node_uuid=UUID)
    assert validate(image) == []
    with pytest.raises(InvalidInputError):
        build_image({"vendor_data": _blob(cap + 1)}, node_uuid=UUID)
