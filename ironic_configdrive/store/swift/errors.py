"""How the ``swift`` store reads a failure: its cause for messages, whether it is worth
retrying (and how long to wait), and whether the connection that saw it can serve again."""

from __future__ import annotations

import socket
from typing import Final

from requests.exceptions import RequestException
from swiftclient import client as swift_client

from ironic_configdrive.store.base import StoreError

#: Errors after which swiftclient has given up (its own retries are spent).
TRANSPORT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    swift_client.ClientException, socket.error, RequestException)
#: First wait between attempts, in seconds; each next one doubles, up to MAX_BACKOFF.
DEFAULT_BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 16.0


class ContainerMissing(Exception):
    """The container does not exist (and was not to be created)."""


class SignatureRefused(Exception):
    """Swift answered 401 to a temp URL: it does not hold the key we signed with."""


def describe(exc: BaseException) -> str:
    """A short cause for messages: HTTP status or error type, never headers or tokens."""
    if isinstance(exc, swift_client.ClientException):
        if exc.http_status is not None:
            return f"HTTP {exc.http_status} {exc.http_reason or ''}".rstrip()
        return exc.msg
    return f"{type(exc).__name__}: {exc}"


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, swift_client.ClientException) and exc.http_status == 404


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: no answer, or a 5xx / rate limit answer."""
    if isinstance(exc, swift_client.ClientException):
        status = exc.http_status
        return status is None or 500 <= status <= 599 or status in (408, 429, 498)
    return isinstance(exc, (socket.error, RequestException))


def reusable_after(exc: BaseException) -> bool:
    """Whether a connection that saw ``exc`` is in a known state (a whole answer was read).

    Transport errors and anything unexpected leave it mid-request: it is discarded.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, swift_client.ClientException):
            return seen.http_status is not None
        if isinstance(seen, (ContainerMissing, SignatureRefused)):
            return True  # answers, read whole
        if isinstance(seen, (socket.error, RequestException)) or not isinstance(seen,
                                                                                StoreError):
            return False
        seen = seen.__cause__
    return True
