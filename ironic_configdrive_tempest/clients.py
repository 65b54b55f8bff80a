"""A small Bare Metal API client on tempest's RestClient, with keystone or without auth.

tempest itself has no Bare Metal client (ironic-tempest-plugin does, but that drags in its
whole test tree), and tempest's auth providers all authenticate against keystone: its
``KeystoneAuthProvider`` needs an ``auth_url`` and a token for every request. An Ironic with
``auth_strategy = noauth`` (the local lab, standalone Ironic) has no keystone, so
:class:`NoAuthProvider` fills the same role for it: fixed endpoint, no token.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tempest.lib import auth, exceptions
from tempest.lib.common import rest_client

MICROVERSION_HEADER = "X-OpenStack-Ironic-API-Version"


class ProvisionFailed(exceptions.TempestException):
    message = "%(reason)s"


class ProvisionTimeout(exceptions.TimeoutException):
    message = "%(reason)s"


class NoAuthProvider(auth.AuthProvider):
    """Sends every request to ``endpoint`` unauthenticated (Ironic ``noauth``)."""

    def __init__(self, endpoint: str) -> None:
        # AuthProvider.__init__ insists on keystone credentials; set what it would set.
        self.endpoint = endpoint.rstrip("/")
        self.credentials = None
        self._scope = "project"
        self.cache = None
        self.alt_auth_data = None
        self.alt_part = None

    def _decorate_request(self, filters: Any, method: str, url: str,
                          headers: dict[str, str] | None = None, body: Any = None,
                          auth_data: Any = None) -> tuple[str, dict[str, str], Any]:
        full = self.endpoint if not url else f"{self.endpoint}/{url.lstrip('/')}"
        return full, dict(headers or {}), body

    def _get_auth(self) -> tuple[None, dict[str, Any]]:
        return None, {}

    def _fill_credentials(self, auth_data_body: Any) -> None:
        return None

    def is_expired(self, auth_data: Any) -> bool:
        return False

    def clear_auth(self) -> None:
        self.cache = None

    def base_url(self, filters: Any, auth_data: Any = None) -> str:
        return self.endpoint

    def get_token(self) -> None:
        return None


class BaremetalClient(rest_client.RestClient):
    """The few Bare Metal API calls the scenario makes."""

    def __init__(self, auth_provider: auth.AuthProvider, service: str, region: str,
                 microversion: str, **kwargs: Any) -> None:
        super().__init__(auth_provider, service, region, **kwargs)
        self.microversion = microversion

    def get_headers(self, accept_type: str | None = None,
                    send_type: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = super().get_headers(accept_type, send_type)
        headers[MICROVERSION_HEADER] = self.microversion
        return headers

    def show_node(self, ident: str) -> dict[str, Any]:
        resp, body = self.get(f"v1/nodes/{ident}")
        self.expected_success(200, resp.status)
        node: dict[str, Any] = json.loads(body)
        return node

    def update_node(self, ident: str, patch: list[dict[str, Any]]) -> dict[str, Any]:
        resp, body = self.patch(f"v1/nodes/{ident}", json.dumps(patch))
        self.expected_success(200, resp.status)
        node: dict[str, Any] = json.loads(body)
        return node

    def set_provision_state(self, ident: str, target: str,
                            configdrive: dict[str, Any] | str | None = None) -> None:
        request: dict[str, Any] = {"target": target}
        if configdrive is not None:
            request["configdrive"] = configdrive
        resp, _ = self.put(f"v1/nodes/{ident}/states/provision", json.dumps(request))
        self.expected_success(202, resp.status)

    def wait_for_provision_state(self, ident: str, expected: str, *, timeout: int,
                                 interval: int,
                                 fail_states: tuple[str, ...] = ()) -> dict[str, Any]:
        """Poll until the node reaches ``expected``; fail fast on ``fail_states``."""
        deadline = time.monotonic() + timeout
        while True:
            node = self.show_node(ident)
            state = node.get("provision_state")
            if state == expected and node.get("target_provision_state") is None:
                return node
            if state in fail_states:
                raise ProvisionFailed(reason=
                    f"node {ident} went to {state!r} waiting for {expected!r}: "
                    f"{node.get('last_error')}")
            if time.monotonic() >= deadline:
                raise ProvisionTimeout(reason=
                    f"node {ident} still {state!r} (target "
                    f"{node.get('target_provision_state')!r}) after {timeout}s waiting for "
                    f"{expected!r}; last_error: {node.get('last_error')}")
            time.sleep(interval)


def noauth_client(endpoint: str, microversion: str, **kwargs: Any) -> BaremetalClient:
    return BaremetalClient(NoAuthProvider(endpoint), "baremetal", "", microversion, **kwargs)
