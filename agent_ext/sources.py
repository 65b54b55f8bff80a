"""Where the encoded config drive comes from: an HTTP(S) URL, inline text, or a local file.

Each source is an iterable of encoded chunks of at most ``fetch.CHUNK_SIZE`` bytes, so the
pipeline never holds a whole download. Every source is held to ``fetch.WIRE_CAP`` encoded
bytes (the HTTP source counts them off the connection itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from agent_ext.errors import InvalidInputError
from agent_ext.fetch import CHUNK_SIZE, WIRE_CAP, FetchOptions, HTTPSource


@dataclasses.dataclass
class Source:
    chunks: Iterable[bytes]
    description: str
    http: HTTPSource | None = None


def _inline_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])


def _too_large(what: str) -> InvalidInputError:
    return InvalidInputError(
        reason=f"{what} is larger than {WIRE_CAP} bytes, the most any encoded config drive "
               "takes; it is not a config drive")


def _file_chunks(path: str) -> Iterator[bytes]:
    read = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(min(CHUNK_SIZE, WIRE_CAP + 1 - read)):
            read += len(chunk)
            if read > WIRE_CAP:
                raise _too_large(f"config drive file {path}")
            yield chunk


def open_source(url: str | None, data: str | bytes | None, file: str | None,
                 fetch_options: FetchOptions | None) -> Source:
    given = [name for name, value in (("url", url), ("data", data), ("file", file))
             if value not in (None, b"", "")]
    if len(given) != 1:
        raise InvalidInputError(
            reason="give exactly one config drive source (url, inline data or file), "
                   f"got {', '.join(given) or 'none'}")
    if url:
        http = HTTPSource(url, fetch_options)
        return Source(http, http.safe_url, http)
    if file:
        try:
            open(file, "rb").close()
        except OSError as exc:
            raise InvalidInputError(
                reason=f"cannot read config drive file {file}: {exc.strerror}") from None
        return Source(_file_chunks(file), f"file {file}")
    if isinstance(data, str):
        try:
            raw = data.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidInputError(
                reason="inline config drive data must be base64 text (ASCII) as Ironic "
                       "sends it") from None
    elif isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    else:
        raise InvalidInputError(
            reason=f"inline config drive data must be a string, not {type(data).__name__}; "
                   "build the image on the conductor and send it encoded")
    if len(raw) > WIRE_CAP:
        raise _too_large("inline config drive data")
    return Source(_inline_chunks(raw), f"inline data ({len(raw)} bytes)")
