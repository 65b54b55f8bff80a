"""The ``configdrive`` IPA extension: ``configdrive.write``, ``.remove`` and ``.status``.

Loaded by IPA's stevedore manager through the ``ironic_python_agent.extensions`` entry point.
Every failure reaches the conductor as an IPA :class:`RESTError` (``command_error`` carries
our message, category and type), never as a bare traceback.

IPA logs command arguments at debug level with only the ``configdrive`` and ``system_logs``
keys masked, so the conductor should pass the source (URL with a temp URL signature, or the
inline blob) as ``configdrive=``; ``url=`` and ``data=`` are accepted too. An encrypted drive
comes as ``configdrive={"url": ..., "key": <64 hex digits>}`` (or ``"data"`` instead of
``"url"``), so its key stays under the masked name too.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ironic_python_agent import errors as ipa_errors
from ironic_python_agent import hardware
from ironic_python_agent.extensions import base

from agent_ext import pipeline
from agent_ext.disk import devices
from agent_ext.errors import DeviceError
from agent_ext.fetch import DEFAULT_DOWNLOAD_TIMEOUT, FetchOptions
from ironic_configdrive.image.errors import ConfigDriveError, InvalidInputError
from ironic_configdrive.masking import install_record_masking

LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class ConfigDriveCommandError(ipa_errors.CommandExecutionError):
    """A config drive command failed; ``details`` is our message (what, why, what to do)."""

    message = "Config drive command failed"
    serializable_fields = ("type", "code", "message", "details", "category", "error_type")

    def __init__(self, error: ConfigDriveError) -> None:
        super().__init__(error.message)
        self.category = error.category
        self.error_type = type(error).__name__


class ConfigDriveParamsError(ipa_errors.InvalidCommandParamsError):
    """The command's parameters are unusable (raised before the command starts)."""

    serializable_fields = ("type", "code", "message", "details", "category", "error_type")

    def __init__(self, error: ConfigDriveError) -> None:
        super().__init__(error.message)
        self.category = error.category
        self.error_type = type(error).__name__


def _as_rest_errors(func: F) -> F:
    """Turn our errors (and unexpected ones) into IPA REST errors, tracebacks into logs."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ipa_errors.RESTError:
            raise
        except ConfigDriveError as exc:
            LOG.error("configdrive command failed: %s", exc.message)
            raise ConfigDriveCommandError(exc) from None
        except Exception as exc:
            # A bug or an unexpected OS error: keep the traceback in the agent log, send a
            # clear reason without it.
            LOG.exception("configdrive command failed unexpectedly")
            raise ConfigDriveCommandError(ConfigDriveError(
                f"unexpected {type(exc).__name__} in the configdrive extension: {exc}; "
                "see the agent log and report this as a bug")) from None

    return wrapper  # type: ignore[return-value]


def _source(configdrive: str | dict[str, Any] | None, url: str | None,
            data: str | None) -> tuple[str | None, str | None, bytes | None]:
    """Split the IPA-masked ``configdrive`` parameter into (url, inline data, key)."""
    if configdrive is None:
        return url, data, None
    if url is not None or data is not None:
        raise InvalidInputError(reason="give the source once: configdrive, url or data")
    if isinstance(configdrive, dict):
        unknown = sorted(set(configdrive) - {"url", "data", "key"})
        if unknown:
            raise InvalidInputError(
                reason=f"unknown configdrive field(s) {', '.join(map(str, unknown))}; "
                       "expected url or data, and key (update the agent ramdisk?)")
        key = configdrive.get("key")
        if key is None:
            return configdrive.get("url"), configdrive.get("data"), None
        from ironic_configdrive.image import sealing  # only encrypted drives need it

        return configdrive.get("url"), configdrive.get("data"), sealing.decode_key(key)
    if isinstance(configdrive, str) and configdrive.lower().startswith(
            ("http://", "https://")):
        return configdrive, None, None
    return None, configdrive, None


#: ``device=ROOT_DEVICE`` names the disk IPA installs the instance image on (the node's root
#: device hints decide), so the conductor need not know its path.
ROOT_DEVICE = "root"


def _resolve_device(device: str | None) -> str:
    if device != ROOT_DEVICE:
        return device or ""
    try:
        resolved = hardware.dispatch_to_managers("get_os_install_device", permit_refresh=True)
    except ipa_errors.RESTError as exc:
        raise DeviceError(
            device="root", reason=f"no install device matches the node's root device hints "
            f"({exc.details}); set properties/root_device or pass an explicit device"
        ) from None
    LOG.info("configdrive: device 'root' resolved to install device %s", resolved)
    return str(resolved)


# -- whose choice the device is ---------------------------------------------------------
#: The conductor sets it when the operator named the device (driver_info). Any other explicit
#: device may come from whoever deploys, so it must be the install disk the node's root
#: device hints choose; a missing flag counts as not the operator's (an older conductor).
FROM_OPERATOR = "device_from_operator"


def _check_device_choice(device: str | None, from_operator: bool) -> None:
    """Refuse an explicit device the operator did not name unless it is the root disk."""
    if from_operator is True or device in (None, "", ROOT_DEVICE):
        return
    try:
        install = hardware.dispatch_to_managers("get_os_install_device", permit_refresh=True)
    except ipa_errors.RESTError as exc:
        raise DeviceError(
            device=str(device), reason=f"cannot tell which disk the node's root device hints "
            f"choose ({exc.details}), and only the operator may name another one; fix "
            "properties/root_device, or have the operator set driver_info/configdrive_device"
        ) from None
    devices.require_install_disk(str(device), str(install))


_WRITE_PARAMS = frozenset({"device", "configdrive", "url", "data", "sha256", "size", "target",
                           "format", "proxies", "no_proxy", "download_timeout",
                           FROM_OPERATOR})
#: Bounds of ``download_timeout`` in seconds: a day is far beyond any sane deploy step.
MIN_DOWNLOAD_TIMEOUT: Final = 1.0
MAX_DOWNLOAD_TIMEOUT: Final = 86400.0


def check_download_timeout(value: Any) -> float:
    """``download_timeout`` as seconds: :data:`DEFAULT_DOWNLOAD_TIMEOUT` when absent."""
    if value is None:
        return DEFAULT_DOWNLOAD_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(
            reason=f"download_timeout must be a number of seconds, not {value!r}")
    seconds = float(value)
    if not (math.isfinite(seconds)
            and MIN_DOWNLOAD_TIMEOUT <= seconds <= MAX_DOWNLOAD_TIMEOUT):
        raise InvalidInputError(
            reason=f"download_timeout {value!r} is outside {MIN_DOWNLOAD_TIMEOUT:g}.."
                   f"{MAX_DOWNLOAD_TIMEOUT:g} seconds; fix [configdrive]"
                   "agent_download_timeout on the conductor")
    return seconds
_DEVICE_PARAMS = frozenset({"device"})


def _check_known(params: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        # Typically a newer conductor talking to an older agent ramdisk.
        raise InvalidInputError(
            reason=f"unknown parameter(s) {', '.join(unknown)}; this agent accepts "
                   f"{', '.join(sorted(known))} (update the agent ramdisk?)")


def _validate_write(ext: Any, **params: Any) -> None:
    """Synchronous checks, so a bad request fails at once with HTTP 400."""
    try:
        _check_known(params, _WRITE_PARAMS)
        pipeline.check_device(params.get("device"))
        if params.get(FROM_OPERATOR) not in (None, True, False):
            raise InvalidInputError(reason=f"{FROM_OPERATOR} must be true or false")
        url, data, _ = _source(params.get("configdrive"), params.get("url"),
                               params.get("data"))
        if (url is None) == (data is None):
            raise InvalidInputError(
                reason="give exactly one config drive source: configdrive (URL or inline "
                       "data), url or data")
        if params.get("target", "partition") not in pipeline.TARGETS:
            raise InvalidInputError(
                reason=f"target must be one of {', '.join(pipeline.TARGETS)}")
        check_download_timeout(params.get("download_timeout"))
    except ConfigDriveError as exc:
        raise ConfigDriveParamsError(exc) from None


def _validate_device(ext: Any, **params: Any) -> None:
    try:
        _check_known(params, _DEVICE_PARAMS)
        pipeline.check_device(params.get("device"))
    except ConfigDriveError as exc:
        raise ConfigDriveParamsError(exc) from None


class ConfigDriveExtension(base.BaseAgentExtension):
    """Write, inspect and remove config drives on the disk the conductor names."""

    def __init__(self, agent: Any = None) -> None:
        super().__init__(agent=agent)
        # Every log line of this process from here on (urllib3's, requests', ours) hides
        # temp URL signatures and the http store's secret file names.
        install_record_masking()

    @base.async_command("write", _validate_write)
    @_as_rest_errors
    def write(self, device: str | None = None, configdrive: str | dict[str, Any] | None = None,
              url: str | None = None, data: str | None = None, sha256: str | None = None,
              size: int | None = None, target: str = "partition",
              format: str | None = None,  # the command parameter IPA callers use
              proxies: dict[str, str] | None = None,
              no_proxy: str | None = None,
              device_from_operator: bool = False,
              download_timeout: float | None = None) -> dict[str, Any]:
        """Stream, verify and write a config drive; see :func:`pipeline.write_config_drive`.

        :param device: the disk to write to (required: the agent never guesses), or
            ``"root"`` for the install device chosen by the node's root device hints.
        :param configdrive: URL or inline gzip+base64 data (masked in IPA's logs), or for an
            encrypted drive ``{"url" or "data": ..., "key": hex}``.
        :param sha256: expected sha256 of the decoded image.
        :param size: expected size of the decoded image in bytes.
        :param target: ``partition`` (default) or ``device`` (the whole device).
        :param format: ``iso9660``, ``vfat`` or unset (keep unless the disk needs vfat).
        :param proxies: ``{"http": ..., "https": ...}`` as for IPA's image downloads.
        :param no_proxy: hosts to reach directly.
        :param device_from_operator: the operator named ``device`` (driver_info); otherwise
            an explicit device must be the disk the root device hints choose.
        :param download_timeout: seconds for the whole download, retries and resumes
            included (the conductor derives it from how long it waits for the command).
        """
        _check_device_choice(device, device_from_operator)
        url, data, key = _source(configdrive, url, data)
        options = FetchOptions.from_ipa_config(
            proxies=proxies or None, no_proxy=no_proxy,
            download_timeout=check_download_timeout(download_timeout))
        return pipeline.write_config_drive(
            _resolve_device(device), url=url, data=data, sha256=sha256, size=size, target=target,
            image_format=format, fetch_options=options, key=key)

    @base.async_command("remove", _validate_device)
    @_as_rest_errors
    def remove(self, device: str | None = None) -> dict[str, Any]:
        """Zero and delete the config-2 partition of ``device``; success if there is none."""
        return pipeline.remove(_resolve_device(device))

    @base.sync_command("status", _validate_device)
    @_as_rest_errors
    def status(self, device: str | None = None) -> dict[str, Any]:
        """Report the config drive on ``device``: present, partition, size, label, sha256."""
        return pipeline.status(_resolve_device(device))
