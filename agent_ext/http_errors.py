"""A failed request in words the user can act on: the cause and what to do, no URL secrets.

requests and urllib3 wrap the real reason several levels deep and quote the request path
(temp URL signature included) in some messages; :func:`root_cause` digs the reason out and
masks it, :func:`request_error` turns it into our :class:`TransferError`.
"""

from __future__ import annotations

import re

import requests

from agent_ext.errors import TransferError
from agent_ext.http_options import FetchOptions
from agent_ext.http_session import MAX_REDIRECTS, UnsafeRedirect
from ironic_configdrive.masking import mask_query_strings


def request_error(exc: requests.exceptions.RequestException, safe_url: str,
                  options: FetchOptions) -> TransferError:
    """Our error for a failed request to ``safe_url`` (already masked)."""
    exceptions = requests.exceptions
    retries = options.retries

    def error(reason: str) -> TransferError:
        return TransferError(url=safe_url, reason=reason)

    # Most specific first: SSLError, ConnectTimeout and ProxyError are ConnectionErrors.
    if isinstance(exc, exceptions.SSLError):
        return error(
            f"TLS verification failed ({root_cause(exc)}); give the CA bundle that "
            "signed the server's certificate (IPA [DEFAULT]cafile, or --cafile) or fix "
            "the server certificate")
    if isinstance(exc, exceptions.ConnectTimeout):
        return error(
            f"connecting timed out after {options.connect_timeout:g} s ({retries} "
            "retries); check the network path to the store")
    if isinstance(exc, exceptions.ReadTimeout):
        return error(
            f"no answer within {options.read_timeout:g} s ({retries} retries); the "
            "store is overloaded or unreachable")
    if isinstance(exc, exceptions.ProxyError):
        return error(f"proxy failure ({root_cause(exc)}); check the proxies "
                     "given with the command")
    if isinstance(exc, UnsafeRedirect):
        return error(f"{exc}; give the final https URL of the store")
    if isinstance(exc, exceptions.TooManyRedirects):
        return error(f"more than {MAX_REDIRECTS} redirects; give the final URL of "
                     "the store")
    if isinstance(exc, exceptions.RetryError):
        return error(f"gave up after {retries} retries ({root_cause(exc)})")
    if isinstance(exc, exceptions.ConnectionError):
        return error(
            f"cannot connect after {retries} retries ({root_cause(exc)}); check that "
            "the store is up and reachable")
    return error(f"request failed ({root_cause(exc)})")


def root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, without the URL it may quote."""
    seen: set[int] = set()
    current: BaseException | None = exc
    reason: BaseException = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = current
        nxt = getattr(current, "reason", None)
        if isinstance(nxt, BaseException):
            current = nxt
            continue
        if current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
            continue
        current = current.__cause__ or current.__context__
    text = str(reason)
    # urllib3 quotes the request path (query included) in some messages.
    text = re.sub(r"(url|URL): \S+", r"\1: <masked>", text)
    text = mask_query_strings(text)
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
