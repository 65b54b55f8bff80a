"""The one set of content rules: what ``build`` writes is what ``validate`` accepts.

:mod:`.layout` applies these functions to Ironic's JSON form before it writes anything and
refuses the first problem (:class:`~.errors.InvalidInputError`); :mod:`.inspect` applies the
same functions to the JSON files it reads back from an image and lists every problem. A rule
lives here once, so the two cannot drift: a drive ``build`` makes passes ``validate``, and a
drive ``validate`` passes holds nothing ``build`` would refuse.

The rules follow what the readers need. cloud-init refuses a ``meta_data.json`` without
``uuid`` (its instance id) and looks the drive up by label; glean reads ``public_keys`` as
names mapped to key strings and iterates ``network_data``'s ``links``, ``networks`` and
``services`` as lists of objects; Nova writes ``hostname``, ``name``, ``availability_zone``
and ``admin_pass`` as strings, ``launch_index`` as a number, and ``files`` as
``{"path": <absolute path in the instance>, "content_path": "/content/NNNN"}``.

Every message names the field (``meta_data.hostname``, ``meta_data.files[2].path``) and says
what to do. Values are shown only when short and never for ``user_data``, which holds secrets.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import JSONDepthError

#: The deepest nesting of arrays and objects in one JSON document of a config drive: each of
#: ``meta_data``, ``network_data``, ``vendor_data`` and a ``user_data`` given as JSON, and the
#: ``*.json`` files read back from an image; the document's own object counts as 1. Nova's
#: documents nest a few levels; the bound keeps every reader (ours, cloud-init's,
#: glean's, all recursive) far below Python's recursion limit. Ironic's JSON form, which
#: holds those documents, may nest one level more (:data:`MAX_DRIVE_JSON_DEPTH`).
MAX_JSON_DEPTH: Final = 64
#: The config drive document ``{meta_data, user_data, network_data, vendor_data}`` as a whole.
MAX_DRIVE_JSON_DEPTH: Final = MAX_JSON_DEPTH + 1
#: The largest metadata document (``meta_data``, ``network_data``, ``vendor_data`` and the
#: ``*.json`` files read back from an image; not ``user_data``, which nobody parses here).
#: Every reader parses a document whole, and Python's JSON objects take up to 22 times the
#: text (60 MiB of ``[{},...]`` took 1.3 GB on a conductor or in an agent ramdisk); Nova's
#: documents are kilobytes, network data for a thousand VLANs about half a megabyte.
MAX_JSON_DOCUMENT_BYTES: Final = 4 * 1024 * 1024
#: Linux's PATH_MAX: the longest ``files[].path`` a guest can create.
MAX_GUEST_PATH_BYTES: Final = 4096
#: Where embedded files live, relative to ``openstack/``; Nova names them ``/content/NNNN``.
CONTENT_PREFIX: Final = "/content/"
#: One plain name under ``/content/``: what every reader (ISO9660, Joliet, FAT) stores as is.
_CONTENT_NAME: Final = re.compile(r"[A-Za-z0-9_-](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?")
#: Field names shown with a dot; anything else is shown quoted in brackets.
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: C0 controls and DEL: never part of a hostname, an instance id or a file path.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
#: Longest user value quoted in a message, and longest field name.
_SHOWN_CHARS: Final = 60
_FIELD_CHARS: Final = 80
#: Most keys one message names.
_KEYS_SHOWN: Final = 5
#: Lists of objects in network_data.json (glean iterates them).
NETWORK_LISTS: Final = ("links", "networks", "services")
#: meta_data keys Nova writes as strings.
_STRING_KEYS: Final = ("name", "hostname", "availability_zone", "admin_pass")

#: Brackets as "(" and ")", everything else dropped: what :func:`nests_deeper` counts.
_BRACKETS: Final = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPEN: Final = ord("(")
#: Brackets counted at once while far from the limit.
_CHUNK: Final = 64


@dataclasses.dataclass(frozen=True)
class Problem:
    """One broken rule: the field it concerns and what is wrong with it."""

    field: str
    reason: str
    #: The value is a path that would leave the config drive's tree (or the guest path's
    #: intended directory): build raises :class:`~.errors.UnsafePathError` for it.
    unsafe: bool = False
    #: The offending path, shown in :class:`~.errors.UnsafePathError` messages.
    path: str = ""

    def __str__(self) -> str:
        if self.unsafe:  # the text of UnsafePathError, so build and validate say the same
            return f"{self.field} {shown(self.path)} escapes the config drive tree: {self.reason}"
        return f"{self.field} {self.reason}"


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return repr(value)
    except ValueError:  # an integer of more digits than Python converts
        return f"<{type(value).__name__}>"


def shown(value: Any) -> str:
    """A short, ASCII-only quotation of a user value for messages (safe on any terminal)."""
    text = _text_of(value)
    cut = text[:_SHOWN_CHARS]
    return ascii(cut) + ("..." if len(text) > _SHOWN_CHARS else "")


def key_names(keys: Iterable[Any]) -> list[str]:
    """Keys as messages list them: short, sorted, at most a few."""
    return sorted(_text_of(key)[:_SHOWN_CHARS] for key in keys)[:_KEYS_SHOWN]


def child(field: str, key: Any) -> str:
    """``field.key`` or ``field['key']``: how messages name a member of an object."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{field}.{key}"
    return f"{field}[{shown(key)}]"


def _cut(field: str) -> str:
    """A field name short enough for one line (deep paths repeat "[0]" for ever)."""
    return field if len(field) <= _FIELD_CHARS else field[:_FIELD_CHARS] + "..."


def document_size_problem(size: int, field: str) -> Problem | None:
    """A metadata document larger than :data:`MAX_JSON_DOCUMENT_BYTES`."""
    if size <= MAX_JSON_DOCUMENT_BYTES:
        return None
    return Problem(field, f"is {size} bytes of JSON, more than the "
                          f"{MAX_JSON_DOCUMENT_BYTES // (1024 * 1024)} MiB a metadata document "
                          f"may be (every reader parses it whole); make it smaller")


def text_problem(text: str, field: str) -> Problem | None:
    """A string that cannot be written as UTF-8 (a lone surrogate, e.g. from ``"\\ud800"``)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return Problem(field, f"is not valid Unicode text: a lone surrogate "
                              f"U+{ord(text[exc.start]):04X} at character {exc.start}; "
                              f"give UTF-8 text")
    return None


def _scalar_problem(item: Any, where: str) -> Problem | None:
    if isinstance(item, str):
        return text_problem(item, where)
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, int):
        if item.bit_length() > 10_000:  # beyond ~3000 digits: ask Python's own limit
            try:
                str(item)
            except ValueError:
                return Problem(where, "is an integer too long for JSON readers; "
                                      "give it as a string")
        return None
    if isinstance(item, float):
        if not math.isfinite(item):
            return Problem(where, "is NaN or infinite, which JSON cannot hold; give a number")
        return None
    return Problem(where, f"is of type {type(item).__name__}, which JSON cannot hold; give a "
                          f"string, number, boolean, null, array or object")


def json_problem(value: Any, field: str, *, show_keys: bool = True) -> Problem | None:
    """The first reason ``value`` is not a JSON document every reader takes, else None.

    Iterative, so any nesting (even a cycle) ends at :data:`MAX_JSON_DEPTH` instead of in a
    RecursionError. ``show_keys=False`` names only ``field`` (for ``user_data``, whose keys
    may be secret).
    """
    pending: list[tuple[Any, str, int]] = [(value, field, 1)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, (Mapping, list, tuple)):
            if depth > MAX_JSON_DEPTH:
                return Problem(_cut(where) if show_keys else field,
                               f"nests arrays and objects deeper than {MAX_JSON_DEPTH} "
                               f"levels; flatten it")
            if isinstance(item, Mapping):
                members = []
                for key, member in item.items():
                    if not isinstance(key, str):
                        return Problem(where if show_keys else field,
                                       f"has a key of type {type(key).__name__}; JSON object "
                                       f"keys are strings")
                    name = child(where, key) if show_keys else field
                    problem = text_problem(key, f"a key of {where if show_keys else field}")
                    if problem is not None:
                        return problem
                    members.append((member, name, depth + 1))
                pending.extend(reversed(members))
            else:
                pending.extend((member, f"{where}[{index}]" if show_keys else field, depth + 1)
                               for index, member in reversed(list(enumerate(item))))
            continue
        problem = _scalar_problem(item, where)
        if problem is not None:
            return problem
    return None


def json_text(data: bytes | str) -> str:
    """JSON text as a string; bytes in UTF-8, -16 or -32, detected as :func:`json.loads` does.

    :raises UnicodeDecodeError: the bytes are in none of those encodings.
    """
    if isinstance(data, str):
        return data
    raw = bytes(data)
    return raw.decode(json.detect_encoding(raw))


def nests_deeper(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit``, without parsing it.

    Strings are cut out first (their brackets do not nest), then the brackets are counted in
    C a chunk at a time; only chunks that could cross the limit are looked at one bracket at
    a time. Megabytes of user_data cost milliseconds; megabytes of brackets, about a second.
    For text that is not JSON the answer may be either; the parser then says what is wrong.
    """
    raw = text.encode("utf-8", "surrogatepass")  # multi-byte sequences never hold ASCII
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(raw.split(b'"')[::2]).translate(_BRACKETS, _NOT_BRACKETS)
    depth = pos = 0
    while pos < len(brackets):
        room = limit - depth
        chunk = brackets[pos : pos + max(room, _CHUNK)]
        pos += len(chunk)
        opens = chunk.count(b"(")
        if opens <= room:
            depth += 2 * opens - len(chunk)
        else:
            for byte in chunk:
                depth += 1 if byte == _OPEN else -1
                if depth > limit:
                    return True
    return False


def loads(data: bytes | str, field: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """:func:`json.loads` that never sees text nesting deeper than ``limit``.

    :raises JSONDepthError: the text nests deeper than ``limit``.
    :raises ValueError: not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``).
    """
    text = json_text(data)
    if nests_deeper(text, limit):
        raise JSONDepthError(field=field, limit=limit)
    return json.loads(text)


def _name_problem(value: Any, field: str, what: str) -> Problem | None:
    if not isinstance(value, str):
        return Problem(field, f"must be a string ({what}), not {type(value).__name__}")
    problem = text_problem(value, field)
    if problem is not None:
        return problem
    control = _CONTROL.search(value)
    if control is not None:
        return Problem(field, f"contains the control character "
                              f"U+{ord(control.group()):04X} at character {control.start()}; "
                              f"remove it")
    return None


def guest_path_problem(path: Any, field: str) -> Problem | None:
    """``files[].path``: a normalised absolute path of a file in the instance."""
    if not isinstance(path, str):
        return Problem(field, f"must be a string: the absolute path of the file in the "
                              f"instance, e.g. \"/etc/motd\", not {type(path).__name__}")
    if "\x00" in path:
        return Problem(field, "NUL bytes are not allowed", unsafe=True, path=path)
    problem = _name_problem(path, field, "a file path")
    if problem is not None:
        return problem
    if not path.startswith("/"):
        return Problem(field, f"must be an absolute path in the instance (starting with "
                              f"'/'), got {shown(path)}")
    parts = path[1:].split("/")
    if ".." in parts:
        return Problem(field, "'..' components are not allowed", unsafe=True, path=path)
    if parts[-1] == "":
        return Problem(field, f"names a directory ({shown(path)}), not a file; give the "
                              f"file's path, e.g. \"/etc/motd\"")
    if "" in parts or "." in parts:
        return Problem(field, f"has an empty or '.' component ({shown(path)}); give a plain "
                              f"absolute path such as \"/etc/motd\"")
    if len(path.encode("utf-8")) > MAX_GUEST_PATH_BYTES:
        return Problem(field, f"is longer than {MAX_GUEST_PATH_BYTES} bytes (Linux's "
                              f"PATH_MAX)")
    return None


def content_path(raw: Any, field: str) -> tuple[str | None, Problem | None]:
    """``files[].content_path`` normalised to ``/content/NAME`` (relative to ``openstack/``).

    Returns ``(path, None)`` or ``(None, problem)``. A leading '/' is optional, as for Nova.
    """
    if not isinstance(raw, str) or not raw:
        return None, Problem(field, "must be a non-empty string such as \"/content/0000\"")
    problem = text_problem(raw, field)
    if problem is not None:
        return None, problem
    if "\x00" in raw or "\\" in raw:
        return None, Problem(field, "NUL bytes and backslashes are not allowed", unsafe=True,
                             path=raw)
    if ".." in raw.split("/"):
        return None, Problem(field, "'..' components are not allowed", unsafe=True, path=raw)
    normal = posixpath.normpath("/" + raw.lstrip("/"))
    if not normal.startswith(CONTENT_PREFIX):
        return None, Problem(field, "it must lie under /content/", unsafe=True, path=raw)
    if not _CONTENT_NAME.fullmatch(normal[len(CONTENT_PREFIX):]):
        return None, Problem(field, f"must be /content/ and one plain name (letters, digits, "
                                    f"'.', '_', '-', at most 64), like Nova's "
                                    f"\"/content/0000\"; got {shown(raw)}")
    return normal, None


def _file_entry_problems(entry: Any, field: str) -> list[Problem]:
    if not isinstance(entry, Mapping):
        return [Problem(field, "must be an object with 'path' and 'content_path'")]
    problems = [guest_path_problem(entry.get("path"), f"{field}.path"),
                content_path(entry.get("content_path"), f"{field}.content_path")[1]]
    return [problem for problem in problems if problem is not None]


def meta_data_problems(meta: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with ``meta_data`` as written to ``openstack/*/meta_data.json``.

    Build checks its input's ``files[]`` (which carry ``contents``) with
    :func:`guest_path_problem` and :func:`content_path` first, then this on what it writes.
    """
    problems: list[Problem] = []
    uuid = meta.get("uuid")
    if uuid is None or uuid == "":
        problems.append(Problem("meta_data.uuid", "is missing or empty; cloud-init refuses a "
                                                  "config drive without it"))
    else:
        problem = _name_problem(uuid, "meta_data.uuid", "cloud-init's instance id")
        if problem is not None:
            problems.append(problem)
    for key in _STRING_KEYS:
        if key in meta:
            problem = _name_problem(meta[key], f"meta_data.{key}", "as Nova writes it")
            if problem is not None:
                problems.append(problem)
    index = meta.get("launch_index")
    if "launch_index" in meta and (
            not isinstance(index, int) or isinstance(index, bool) or index < 0):
        problems.append(Problem("meta_data.launch_index", "must be a whole number >= 0"))
    problems.extend(_public_keys_problems(meta))
    entries = meta.get("files")
    if entries is not None:
        if not isinstance(entries, list):
            problems.append(Problem("meta_data.files", "must be a list of "
                                                       "{\"path\": ..., ...} objects"))
        else:
            for at, entry in enumerate(entries):
                problems.extend(_file_entry_problems(entry, f"meta_data.files[{at}]"))
    return problems


def _public_keys_problems(meta: Mapping[str, Any]) -> list[Problem]:
    if "public_keys" not in meta:
        return []
    keys = meta["public_keys"]
    if not isinstance(keys, Mapping):
        return [Problem("meta_data.public_keys", f"must map key names to key strings (as "
                                                 f"glean and cloud-init read it), e.g. "
                                                 f"{{\"default\": \"ssh-ed25519 AAAA...\"}}, "
                                                 f"not a {type(keys).__name__}")]
    return [Problem(child("meta_data.public_keys", name), "must be a key string")
            for name, key in keys.items() if not isinstance(key, str)]


def meta_data_warnings(meta: Mapping[str, Any]) -> list[str]:
    """What readers take but Nova and Ironic never write (worth a warning, not a refusal)."""
    uuid = meta.get("uuid")
    if isinstance(uuid, str) and uuid and not _UUID.fullmatch(uuid):
        return [f"meta_data.uuid {shown(uuid)} is not a UUID: cloud-init takes any string "
                f"as the instance id, but Nova and Ironic always give a UUID; use the "
                f"node's UUID unless you mean otherwise"]
    return []


def network_data_problems(network: Mapping[str, Any]) -> list[Problem]:
    """``network_data``'s lists, as glean iterates them."""
    problems = []
    for key in NETWORK_LISTS:
        if key not in network:
            continue
        items = network[key]
        if not isinstance(items, list):
            problems.append(Problem(f"network_data.{key}", "must be a list of objects (glean "
                                                           "iterates it)"))
            continue
        problems.extend(Problem(f"network_data.{key}[{at}]", "must be an object")
                        for at, item in enumerate(items) if not isinstance(item, Mapping))
    return problems


def object_problem(value: Any, field: str) -> Problem | None:
    """meta_data, network_data and vendor_data are JSON objects."""
    if not isinstance(value, Mapping):
        return Problem(field, f"must be a JSON object, not {type(value).__name__}")
    return None
