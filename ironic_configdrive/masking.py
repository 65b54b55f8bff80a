"""Keep URL secrets out of log lines, exception messages and records.

Two kinds of URL reach the conductor, the agent and the BMC, and both carry a secret:
Swift temp URLs in their query string (``temp_url_sig``), the http store in its file names
(``<node uuid>.<deploy id>.<256 random bits>.<ext>``). Whoever holds either URL can read the
config drive, and with it passwords and keys. Pure standard library: the image core's
neighbours (the agent, the CLI) use it without importing Ironic.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_HTTP_STORE_NAME = re.compile(
    r"(?P<head>[0-9a-fA-F-]{36}\.[A-Za-z0-9_-]+\.)[A-Za-z0-9_-]{32,}")
_URL_WITH_QUERY = re.compile(r"""(?P<base>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'"<>]+)\?[^\s'"<>]*""")
_QUERY_IN_TEXT = re.compile(r"\?[^\s\"']*")


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


class MaskQueryFilter(_RewriteFilter):
    """Hide query strings in other libraries' log lines (urllib3 quotes request paths)."""

    rewrite = staticmethod(mask_query_strings)


class ScrubFilter(_RewriteFilter):
    """Apply :func:`scrub` to other libraries' log lines (sushy quotes media URLs)."""

    rewrite = staticmethod(scrub)


def install_log_filter(*logger_names: str) -> None:
    """Attach :class:`MaskQueryFilter` to the named loggers once."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskQueryFilter) for f in logger.filters):
            logger.addFilter(MaskQueryFilter())
