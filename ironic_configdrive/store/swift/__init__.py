"""The ``swift`` store (entry point ``ironic_configdrive.stores``: ``swift``); see
:mod:`.store`."""

from ironic_configdrive.store.swift.connections import (
    ConnectionFactory,
    keystone_connection_factory,
    request_timeout,
)
from ironic_configdrive.store.swift.pool import ConnectionPool
from ironic_configdrive.store.swift.shared import reset_shared_state
from ironic_configdrive.store.swift.store import SwiftStore

__all__ = ["ConnectionFactory", "ConnectionPool", "SwiftStore", "keystone_connection_factory",
           "request_timeout", "reset_shared_state"]
