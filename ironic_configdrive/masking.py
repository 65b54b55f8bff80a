"""Keep URL secrets out of log lines, exception messages and records.

Two kinds of URL reach the conductor, the agent and the BMC, and both carry a secret:
Swift temp URLs in their query string (``temp_url_sig``), the http store in its file names
(``<node uuid>.<deploy id>.<256 random bits>.<ext>``). Whoever holds either URL can read the
config drive, and with it passwords and keys. Pure standard library: the image core's
neighbours (the agent, the CLI) use it without importing Ironic.

:func:`install_record_masking` masks both in every log record the process creates from then
on, whichever library logs it (urllib3 quotes request paths at DEBUG, requests' errors quote
URLs, and so may our own lines).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_HTTP_STORE_NAME = re.compile(
    r"(?P<head>[0-9a-fA-F-]{36}\.[A-Za-z0-9_-]+\.)[A-Za-z0-9_-]{32,}")
_URL_WITH_QUERY = re.compile(r"""(?P<base>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'"<>]+)\?[^\s'"<>]*""")
_QUERY_IN_TEXT = re.compile(r"\?[^\s\"']*")
# A request path with a query, as urllib3 and requests quote it without scheme and host
# ('"GET /v1/AUTH_a/c/o?temp_url_sig=... HTTP/1.1"', "url: /o?...").
_PATH_WITH_QUERY = re.compile(
    r"""(?P<path>(?:(?<=[\s"'(=,:])|^)/[^\s?#'"<>]*)\?[^\s'"<>]*""")


def _mask_store_names(text: str) -> str:
    return _HTTP_STORE_NAME.sub(lambda m: f"{m.group('head')}{MASK}", text)


def mask_url(url: str) -> str:
    """``url`` without credentials, query or fragment, and with store secrets masked.

    A dropped query shows as ``?***``, so a reader still sees that one was there. Re-signed
    temp URLs of one object mask alike (virtual media detach compares masked forms).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host  # IPv6 literals keep their brackets
    if port is not None:
        netloc = f"{netloc}:{port}"
    masked = urlunsplit((parts.scheme, netloc, _mask_store_names(parts.path), "", ""))
    return f"{masked}?{MASK}" if parts.query else masked


def strip_query(url: str) -> str:
    """``url`` without query and fragment: identifies a stored object across re-signing."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def scrub(text: str) -> str:
    """Mask query strings and http store secrets in free text (errors from BMCs, agents)."""
    text = _URL_WITH_QUERY.sub(lambda m: f"{m.group('base')}?{MASK}", text)
    return _mask_store_names(text)


def mask_text(text: str) -> str:
    """Mask URL queries (with or without scheme and host) and http store secrets in text.

    Unlike :func:`mask_query_strings` a ``?`` that does not end a URL or a path is kept, so
    this is safe for any log line (SQL placeholders, questions).
    """
    text = _URL_WITH_QUERY.sub(lambda m: f"{m.group('base')}?{MASK}", text)
    text = _PATH_WITH_QUERY.sub(lambda m: f"{m.group('path')}?{MASK}", text)
    return _mask_store_names(text)


def mask_query_strings(text: str) -> str:
    """Mask every ``?query`` in free text, with or without a scheme before it."""
    return _QUERY_IN_TEXT.sub(f"?{MASK}", text)


class _RewriteFilter(logging.Filter):
    """Rewrite other libraries' log lines through :meth:`rewrite` before they are emitted."""

    @staticmethod
    def rewrite(text: str) -> str:
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        rewritten = self.rewrite(text)
        if rewritten != text:
            record.msg, record.args = rewritten, ()
        return True


class ScrubFilter(_RewriteFilter):
    """Apply :func:`scrub` to other libraries' log lines (sushy quotes media URLs)."""

    rewrite = staticmethod(scrub)


class _Masked:
    """An argument whose ``str``/``repr`` would show a secret, shown masked instead."""

    __slots__ = ("_str", "_repr")

    def __init__(self, text: str, shown: str) -> None:
        self._str, self._repr = text, shown

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


_PLAIN: Final = (type(None), bool, int, float, bytes)
#: Containers nested deeper than this in a log argument are shown as masked text.
_MAX_DEPTH: Final = 8


def _mask_arg(arg: Any, depth: int = 0) -> Any:
    if isinstance(arg, _PLAIN):
        return arg
    if isinstance(arg, str):
        return mask_text(arg)
    if depth < _MAX_DEPTH:
        # Containers stay containers: later filters (Ironic's step loggers) mask by key.
        if isinstance(arg, Mapping):
            return {k: _mask_arg(v, depth + 1) for k, v in arg.items()}
        if isinstance(arg, list):
            return [_mask_arg(v, depth + 1) for v in arg]
        if isinstance(arg, tuple) and not hasattr(arg, "_fields"):
            return tuple(_mask_arg(v, depth + 1) for v in arg)
    text, shown = str(arg), repr(arg)
    masked_text, masked_shown = mask_text(text), mask_text(shown)
    if masked_text == text and masked_shown == shown:
        return arg
    return _Masked(masked_text, masked_shown)


def mask_record(record: logging.LogRecord) -> None:
    """Mask URL secrets in ``record``'s message and arguments, in place."""
    try:
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        elif record.msg is not None:
            record.msg = _mask_arg(record.msg)
        if isinstance(record.args, Mapping):
            record.args = _mask_arg(record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(arg) for arg in record.args)
    except Exception:  # a log call must never fail, nor leak because masking did
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        record.msg, record.args = mask_text(text), ()


_factory_lock = threading.Lock()
_factory_installed = False


def install_record_masking() -> None:
    """Mask URL secrets in every log record created from now on, by any logger; once.

    A record factory rather than logger filters: filters apply to one logger and not its
    children, and libraries create loggers (and log) before we could reach them.
    """
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            mask_record(record)
            return record

        logging.setLogRecordFactory(masked_record)
        _factory_installed = True
