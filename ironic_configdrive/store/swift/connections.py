"""Where the ``swift`` store's connections come from, and what makes two interchangeable.

By default python-swiftclient on Ironic's ``[swift]`` keystoneauth session and endpoint;
``[configdrive]swift_auth_url/swift_user/swift_key`` (TempAuth) for keystone-less clusters;
tests pass explicit credentials. The key that goes with a factory says which stores of a
process may share its pool (:mod:`.shared`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import Any, Final

from oslo_config import cfg
from swiftclient import client as swift_client

from ironic_configdrive.store import common
from ironic_configdrive.store.base import StoreError

# swiftclient's debug log shows the first characters of temp URL key headers; show none.
swift_client.logger_settings["reveal_sensitive_prefix"] = 0

ConnectionFactory = Callable[[], Any]

#: Seconds per Swift request when neither [configdrive]swift_timeout nor [swift]timeout is set.
DEFAULT_TIMEOUT: Final = 60.0


def keystone_connection_factory() -> ConnectionFactory:
    """Connections authenticated by Ironic's ``[swift]`` keystoneauth options.

    The storage URL comes from the ``[swift]`` adapter options (catalog lookup with
    ``valid_interfaces``/``region_name``, or ``endpoint_override``), as for Ironic's own
    Swift use; swiftclient re-authenticates through the session on a 401.
    """
    conf = common.ironic_conf()

    def factory() -> Any:
        from ironic.common import keystone
        from ironic.common import swift as ironic_swift

        session = ironic_swift.get_swift_session()
        endpoint = keystone.get_endpoint("swift", session=session)
        interfaces = conf.swift.valid_interfaces or ["internal"]
        return swift_client.Connection(
            session=session, preauthurl=endpoint, timeout=request_timeout(conf),
            os_options={"endpoint_type": interfaces[0], "region_name": conf.swift.region_name,
                        "service_type": "object-store"})

    return factory


def keystone_key(conf: Any) -> Hashable:
    """What makes two stores' Keystone connections interchangeable."""
    try:
        interfaces = tuple(conf.swift.valid_interfaces or ())
        region = conf.swift.region_name
    except (AttributeError, cfg.NoSuchOptError, cfg.NoSuchGroupError):
        interfaces, region = (), None
    return ("keystone", interfaces, region, request_timeout(conf))


def credentials_key(auth_url: str, user: str, key: str, auth_version: str,
                    os_options: dict[str, Any] | None, timeout: float) -> Hashable:
    # The password only as a digest: this key may show up in a debugger or a repr.
    return ("credentials", auth_url, user, hashlib.sha256(key.encode()).hexdigest(),
            auth_version, repr(sorted((os_options or {}).items())), timeout)


def tempauth_factory(conf: Any) -> tuple[ConnectionFactory, Hashable]:
    """Connections for ``[configdrive]swift_auth_url/swift_user/swift_key`` (no Keystone)."""
    cfg = conf.configdrive
    if not (cfg.swift_user and cfg.swift_key):
        raise StoreError(store="swift", node="<any>",
                         reason="[configdrive]swift_auth_url is set but swift_user or "
                                "swift_key is not; set all three, or none to use Ironic's "
                                "[swift] Keystone session")
    auth_url, user, key = cfg.swift_auth_url, cfg.swift_user, cfg.swift_key
    timeout = request_timeout(conf)

    def factory() -> Any:
        return swift_client.Connection(authurl=auth_url, user=user, key=key, auth_version="1",
                                       timeout=timeout)

    return factory, credentials_key(auth_url, user, key, "1", None, timeout)


def credentials_factory(auth_url: str, user: str, key: str, auth_version: str,
                        os_options: dict[str, Any] | None,
                        timeout: float) -> tuple[ConnectionFactory, Hashable]:
    """Connections with explicit credentials (tempauth, keystone v3)."""

    def factory() -> Any:
        return swift_client.Connection(authurl=auth_url, user=user, key=key,
                                       auth_version=auth_version, os_options=os_options,
                                       timeout=timeout)

    return factory, credentials_key(auth_url, user, key, auth_version, os_options, timeout)


def request_timeout(conf: Any) -> float:
    """Seconds a Swift request may take: ``[configdrive]swift_timeout``, else ``[swift]timeout``.

    swiftclient waits forever by default, which would hold the node's lock for as long as a
    stuck proxy keeps the connection open.
    """
    own = conf.configdrive.swift_timeout
    if own:
        return float(own)
    try:
        ironic_swift = conf.swift.timeout
    except (AttributeError, cfg.NoSuchOptError, cfg.NoSuchGroupError):
        ironic_swift = None
    return float(ironic_swift) if ironic_swift else DEFAULT_TIMEOUT
