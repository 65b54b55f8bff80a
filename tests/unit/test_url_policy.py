"""The address policy for users' config drive URLs."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from ironic_configdrive.url_policy import AddressPolicy, RefusedAddress

STRICT = AddressPolicy()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.9.9.9", "::1",                      # loopback
    "169.254.169.254", "fe80::1",                          # link-local (cloud metadata)
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1",    # RFC 1918, ULA
    "100.64.0.1",                                          # shared (CGNAT)
    "224.0.0.1", "ff02::1",                                # multicast
    "0.0.0.0", "::",                                       # unspecified
    "240.0.0.1", "255.255.255.255",                        # reserved, broadcast
    "192.0.2.1",                                           # documentation
    "::ffff:127.0.0.1", "::ffff:169.254.169.254",          # IPv4-mapped
])
def test_non_global_addresses_are_refused(address: str) -> None:
    with pytest.raises(RefusedAddress, match="fetch_allowed_networks"):
        STRICT.check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2001:4860:4860::8888"])
def test_global_unicast_is_accepted(address: str) -> None:
    STRICT.check_address(ipaddress.ip_address(address))


def test_allowed_networks_let_chosen_ranges_through() -> None:
    policy = AddressPolicy.from_options(["127.0.0.0/8", " 10.20.0.0/16"], [])
    for address in ("127.0.0.1", "::ffff:127.0.0.2", "10.20.3.4"):
        policy.check_address(ipaddress.ip_address(address))
    with pytest.raises(RefusedAddress):
        policy.check_address(ipaddress.ip_address("10.21.0.1"))
    with pytest.raises(RefusedAddress):
        policy.check_address(ipaddress.ip_address("169.254.169.254"))


def test_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP network"):
        AddressPolicy.from_options(["10.0.0.0/33"], [])


def test_allowed_hosts_restrict_names() -> None:
    policy = AddressPolicy.from_options([], ["objects.example.com", "*.cdn.example.org"])
    policy.check_name("Objects.Example.com.")
    policy.check_name("eu.cdn.example.org")
    for name in ("example.com", "cdn.example.org", "evilcdn.example.org", "8.8.8.8"):
        with pytest.raises(RefusedAddress, match="fetch_allowed_hosts"):
            policy.check_name(name)
    STRICT.check_name("anything.example")  # empty list: any name


def _resolver(answers: dict[str, list[str]]) -> Any:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in answers[host]]
    return getaddrinfo


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolver({
        "mixed.test": ["8.8.8.8", "10.0.0.7"], "public.test": ["8.8.8.8", "8.8.4.4"],
        "public.test.dup": ["8.8.8.8", "8.8.8.8"]}))
    with pytest.raises(RefusedAddress, match="10.0.0.7"):
        STRICT.resolve("mixed.test", 80)
    assert STRICT.resolve("public.test", 443) == ["8.8.8.8", "8.8.4.4"]
    assert STRICT.resolve("public.test.dup", 443) == ["8.8.8.8"]
    with pytest.raises(RefusedAddress, match="does not resolve"):
        STRICT.resolve("nowhere.test", 80)


def test_unrestricted_checks_nothing() -> None:
    policy = AddressPolicy(unrestricted=True, allowed_hosts=("x.test",))
    policy.check_address(ipaddress.ip_address("127.0.0.1"))
    policy.check_name("y.test")
