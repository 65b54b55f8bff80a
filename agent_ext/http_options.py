"""How the agent reaches the store: timeouts, retries, TLS material, proxies and bounds.

The defaults come from IPA's own ``[DEFAULT]`` settings, so the operator configures TLS and
timeouts once for every image download the agent makes.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Mapping
from typing import Any, Final

from ironic_configdrive.image.formats import MAX_IMAGE_SIZE

# The CLI shows warnings of this logger (ironic_configdrive/cli/disk.py, RETRY_LOGGERS).
LOG = logging.getLogger("agent_ext.fetch")

CHUNK_SIZE: Final = 256 * 1024
#: Most bytes read off the wire for one drive: base64 of the largest decoded image (4/3 of
#: the 64 MiB cap) plus room for line breaks, gzip and sealing overhead. Anything longer is
#: not a valid drive, whatever the decoder would make of it.
WIRE_CAP: Final = MAX_IMAGE_SIZE * 4 // 3 + 8 * 1024 * 1024
#: Seconds for a whole download when the conductor does not say (three quarters of the
#: conductor's default [configdrive]agent_command_timeout, so the agent gives up first).
DEFAULT_DOWNLOAD_TIMEOUT: Final = 450.0


@dataclasses.dataclass(frozen=True)
class FetchOptions:
    """How to reach the store: timeouts, retries, TLS material and proxies."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    #: Retries of connection setup and of 5xx answers (urllib3 ``Retry``).
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 10.0
    #: How many times a body that broke mid-way is resumed with a Range request.
    max_resumes: int = 5
    chunk_size: int = CHUNK_SIZE
    #: ``True`` (system CAs), ``False`` (insecure) or the path of a CA bundle.
    verify: bool | str = True
    #: Client certificate and key files for mutual TLS.
    cert: tuple[str, str] | None = None
    #: ``{"http": ..., "https": ...}`` as in IPA's image_info; ``no_proxy`` is separate.
    proxies: Mapping[str, str] | None = None
    no_proxy: str | None = None
    #: TLS policy (minimum version, ciphers) as IPA builds it; None uses urllib3's default.
    ssl_context: ssl.SSLContext | None = None
    #: Seconds for the whole download: every retry, resume and backoff sleep included.
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    #: Most body bytes read (as sent, before any decoding); more fails the download.
    max_wire_bytes: int = WIRE_CAP

    @classmethod
    def from_ipa_config(cls, conf: Any = None, **overrides: Any) -> FetchOptions:
        """Options from IPA's own ``[DEFAULT]`` settings (insecure, cafile, certfile, ...).

        The agent reuses what the operator already configured for IPA's image downloads
        instead of growing a second set of TLS and timeout options.
        """
        use_global = conf is None
        if conf is None:
            from oslo_config import cfg

            conf = cfg.CONF
        values: dict[str, Any] = {}
        if getattr(conf, "insecure", False):
            values["verify"] = False
        elif getattr(conf, "cafile", None):
            values["verify"] = conf.cafile
        if getattr(conf, "certfile", None) and getattr(conf, "keyfile", None):
            values["cert"] = (conf.certfile, conf.keyfile)
        timeout = getattr(conf, "image_download_connection_timeout", None)
        if timeout:
            values["connect_timeout"] = float(timeout)
            values["read_timeout"] = float(timeout)
        retries = getattr(conf, "image_download_connection_retries", None)
        if retries is not None:
            values["retries"] = int(retries)
        interval = getattr(conf, "image_download_connection_retry_interval", None)
        if interval is not None:
            values["backoff_max"] = float(interval)
        if use_global:
            context = _ipa_ssl_context()
            if context is not None:
                values["ssl_context"] = context
        values.update(overrides)
        return cls(**values)


def _ipa_ssl_context() -> ssl.SSLContext | None:
    """IPA's client TLS context ([DEFAULT]tls_min_version, tls_cipher_suites), if it has one.

    IPA builds it from its global configuration; older releases have no such helper.
    """
    try:
        from ironic_python_agent import utils as ipa_utils

        create = getattr(ipa_utils, "create_ssl_context", None)
        return create("client") if create is not None else None
    except Exception as exc:  # an unusable TLS setting must not hide behind a traceback
        LOG.warning("Not using IPA's TLS settings for config drive downloads: %s", exc)
        return None
