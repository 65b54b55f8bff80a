"""The requests session a download runs on: retries reported, redirects checked, TLS policy.

urllib3's :class:`Retry` retries connection setup and 5xx answers with backoff, saying at
WARNING why; every redirect hop is checked before it is followed; IPA's TLS context reaches
every connection, proxied ones included; and the pools report each connection to the
deadline's watchdog (:mod:`agent_ext.deadline`).
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from agent_ext.deadline import Deadline, DeadlineRetry, watch_pools
from agent_ext.http_options import FetchOptions
from ironic_configdrive.masking import mask_query_strings

if TYPE_CHECKING:
    from typing_extensions import Self

# The CLI shows the retry warnings of this logger (ironic_configdrive/cli/disk.py,
# RETRY_LOGGERS).
LOG = logging.getLogger("agent_ext.fetch")

#: Redirects followed per request: a store or proxy needs one or two, never thirty.
MAX_REDIRECTS: Final = 3
RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})


class _TLSAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections use a given SSL context (IPA's TLS policy)."""

    def __init__(self, ssl_context: ssl.SSLContext | None, **kwargs: Any) -> None:
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._ssl_context is not None:
            kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)
        watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if self._ssl_context is not None:
            proxy_kwargs["ssl_context"] = self._ssl_context
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        watch_pools(manager)
        return manager


class UnsafeRedirect(requests.exceptions.RequestException):
    """A redirect that would downgrade https to http, or leave http(s)."""


class _Session(requests.Session):
    """Every redirect hop is checked before it is followed: no TLS downgrade, http(s) only."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        here = urlsplit(resp.url).scheme.lower()
        there = urlsplit(urljoin(resp.url, target)).scheme.lower()
        if there not in ("http", "https"):
            raise UnsafeRedirect(f"a redirect to a {there or 'relative'}: URL was refused")
        if here == "https" and there != "https":
            raise UnsafeRedirect("a redirect from https to http was refused (it would send "
                                 "the drive in clear)")
        return target


class _ReportingRetry(DeadlineRetry):
    """urllib3's Retry, saying at WARNING why each retry happens (a 503 or a refused
    connection), so a slow failure is never a silent one. No URL: it would carry secrets."""

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> Self:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if error is not None:
            cause = f"{type(error).__name__}: {mask_query_strings(str(error))}"
        elif response is not None:
            cause = f"HTTP {response.status}"
        else:
            cause = "an unknown cause"
        if cause.startswith("HTTP 3"):  # redirects are not failures
            return retry
        done = len(retry.history)
        LOG.warning("Config drive download failed (%s); retry %s of %s", cause, done,
                    done + retry.total if isinstance(retry.total, int) else "unlimited")
        return retry


def make_session(options: FetchOptions, deadline: Deadline | None = None) -> requests.Session:
    """A session whose adapter retries connects and 5xx answers with backoff.

    With ``deadline``, no retry sleep outlasts it.
    """
    retry = _ReportingRetry(
        total=options.retries,
        connect=options.retries,
        read=options.retries,
        status=options.retries,
        # TLS and other errors are not transient: fail at once with a clear message.
        other=0,
        redirect=MAX_REDIRECTS,  # requests follows redirects itself (Session below)
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=options.backoff_factor,
        backoff_max=options.backoff_max,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    retry.deadline = deadline
    session = _Session()
    session.max_redirects = MAX_REDIRECTS
    adapter = _TLSAdapter(options.ssl_context, max_retries=retry, pool_connections=1,
                          pool_maxsize=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = options.verify
    if options.cert:
        session.cert = options.cert
    if options.proxies:
        session.proxies.update(options.proxies)
    if options.no_proxy:
        # requests honours a "no_proxy" entry in the proxies mapping; unlike IPA's image
        # download we do not change the process environment.
        session.proxies["no_proxy"] = options.no_proxy
    # Byte offsets for Range resume and the wire cap count the bytes as stored, not a
    # re-encoding; an answer in another encoding is refused (HTTPSource._check_encoding).
    session.headers["Accept-Encoding"] = "identity"
    return session
