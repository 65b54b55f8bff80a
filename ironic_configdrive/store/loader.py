"""Load a store plugin by name from the ``ironic_configdrive.stores`` entry points."""

from __future__ import annotations

from stevedore import driver
from stevedore.exception import NoMatches

from ironic_configdrive.store import common
from ironic_configdrive.store.base import ConfigDriveStore, StoreError

NAMESPACE = "ironic_configdrive.stores"


def get_store(name: str | None = None) -> ConfigDriveStore:
    """The store named ``name`` (default ``[configdrive]store``), instantiated from CONF."""
    if name is None:
        name = str(common.ironic_conf().configdrive.store)
    failures: list[str] = []

    def on_failure(_manager: object, entry_point: object, exc: BaseException) -> None:
        failures.append(f"{type(exc).__name__}: {exc}")

    try:
        manager: driver.DriverManager = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                       on_load_failure_callback=on_failure)
    except StoreError:
        raise
    except NoMatches as exc:
        if failures:
            reason = (f"the plugin failed to load ({'; '.join(failures)}); install the "
                      "'conductor' extra of ironic-configdrive")
        else:
            known = ", ".join(sorted(driver.ExtensionManager(NAMESPACE).names())) or "none"
            reason = (f"no such store plugin (installed: {known}); fix "
                      "[configdrive]store")
        raise StoreError(store=name, node="<any>", reason=reason) from exc
    except Exception as exc:  # a plugin's constructor: wrong configuration, typically
        raise StoreError(store=name, node="<any>",
                         reason=f"the plugin could not be set up ({type(exc).__name__}: "
                                f"{exc}); check the [configdrive] options") from exc
    store: object = manager.driver
    if not isinstance(store, ConfigDriveStore):
        raise StoreError(store=name, node="<any>",
                         reason=f"{type(store).__name__} is not a ConfigDriveStore; fix the "
                                f"'{NAMESPACE}' entry point of the package providing it")
    return store
