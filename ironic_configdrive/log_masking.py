"""Keep our secrets out of the log lines of the libraries the conductor runs.

* ``update_configdrive`` takes the new drive as a service step argument. Ironic's servicing
  code logs the steps it runs, arguments included, before our step can replace them by a
  reference. A filter on those loggers masks every ``configdrive`` value (and the other keys
  oslo considers secret) in the log record's arguments; the step then replaces the arguments
  kept in the node itself (see ``ConfigDriveDeploy.update_configdrive``).
* sushy logs request bodies and resources at DEBUG, virtual media URLs included: those carry
  temp URL signatures or the http store's secret file names, which :func:`masking.scrub`
  hides.
* Every other log record of the conductor process (urllib3 quotes request paths at DEBUG,
  requests' errors quote URLs, swiftclient logs requests) goes through
  :func:`masking.install_record_masking`, which masks both kinds of URL secret.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from oslo_utils import strutils

from ironic_configdrive.masking import ScrubFilter, install_record_masking

#: Ironic loggers that print step lists or steps with their arguments.
STEP_LOGGERS = ("ironic.conductor.servicing", "ironic.conductor.steps",
                "ironic.conductor.utils", "ironic.conductor.manager",
                "ironic.drivers.modules.agent_base")


MASK = "******"


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: object) -> bool:
    # oslo's list of secret key names, asked through its public API.
    return isinstance(key, str) and strutils.mask_dict_password({key: ""}, MASK)[key] == MASK


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-named key's whole value masked, at any depth.

    Unlike ``strutils.mask_dict_password``, a secret key holding a dict (a config drive in
    its JSON form) is masked as a whole rather than searched.
    """
    if isinstance(value, Mapping):
        return {k: MASK if _is_secret_key(k) else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_secrets(v) for v in value)
    if isinstance(value, str):
        return strutils.mask_password(value, MASK)
    return value


class MaskStepArgsFilter(logging.Filter):
    """Mask secrets inside the dict and list arguments of log records (steps, step lists)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = mask_secrets(record.args)
        elif isinstance(record.args, tuple) and any(
                isinstance(arg, (Mapping, list)) for arg in record.args):
            record.args = mask_secrets(record.args)
        return True


#: sushy loggers that quote virtual media URLs.
SUSHY_LOGGERS = ("sushy.connector", "sushy.resources.base")


def install() -> None:
    """Attach the filters once (called when the interface loads, not at import)."""
    install_record_masking()
    for names, kind in ((STEP_LOGGERS, MaskStepArgsFilter), (SUSHY_LOGGERS, ScrubFilter)):
        for name in names:
            logger = logging.getLogger(name)
            if not any(isinstance(f, kind) for f in logger.filters):
                logger.addFilter(kind())
