"""GET temp URLs of the ``swift`` store: signing one, and checking it as its reader will."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.exceptions import RequestException
from swiftclient import client as swift_client
from swiftclient import utils as swift_utils

from ironic_configdrive.store.swift.errors import MAX_BACKOFF, SignatureRefused, is_transient


def sign(conn: Any, key: str, container: str, obj: str, *, duration: int,
         digest: str) -> tuple[str, float]:
    """(GET temp URL of ``container/obj`` valid for ``duration`` seconds, its expiry)."""
    parts = urlsplit(conn.url)
    expires = int(time.time()) + duration
    path = f"{parts.path.rstrip('/')}/{container}/{obj}"
    signed = swift_utils.generate_temp_url(path, expires, key, "GET", absolute=True,
                                           digest=digest)
    signed_path, _, query = signed.partition("?")
    return urlunsplit((parts.scheme, parts.netloc, signed_path, query, "")), float(expires)


def probe(conn: Any, url: str, *, retries: int, backoff: float) -> int:
    """Status of an anonymous HEAD of a temp URL (a GET URL allows HEAD), as the agent or
    BMC will see it: 2xx or 404; :class:`.SignatureRefused` on 401.

    Sent on the pooled connection but not through swiftclient, whose request log would
    show the signature; retried like swiftclient retries.
    """
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}"
    for attempt in range(retries + 1):
        failure: BaseException
        try:
            status, reason = _head(conn, target)
        except (OSError, RequestException) as exc:
            conn.close()  # mid-request: swiftclient drops the connection too
            failure = exc
        else:
            if status == 401:
                raise SignatureRefused()
            failure = swift_client.ClientException("HEAD of a temp URL failed",
                                                   http_status=status, http_reason=reason)
            if not is_transient(failure):
                if status < 300 or status == 404:
                    return status
                raise failure
        if attempt == retries:
            raise failure
        time.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
    raise AssertionError("unreachable")  # pragma: no cover


def _head(conn: Any, target: str) -> tuple[int, str]:
    if not conn.http_conn:
        conn.http_conn = conn.http_connection()
    http = conn.http_conn[1]
    http.request("HEAD", target, "", {})  # no token: the signature must do
    resp = http.getresponse()
    resp.read()  # returns the socket to the connection's pool
    return int(resp.status), str(getattr(resp, "reason", "") or "")
