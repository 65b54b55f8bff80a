"""Which hosts a user-given config drive URL may make the conductor (or, handed on, an agent
or BMC) connect to.

A URL in ``instance_info['configdrive']`` is user input: without a policy the conductor
would fetch from its own loopback, the cloud's metadata service (169.254.169.254) or any
control plane address. Addresses are refused unless they are global unicast, or the
operator allows them by network (``[configdrive]fetch_allowed_networks``);
``fetch_allowed_hosts``, when set, also restricts the host names. The host is resolved
once and every address it resolves to is checked; the caller connects to those checked
addresses only (:mod:`.pinned_http`), so a second DNS answer cannot swap them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterable
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolution gives at most this many addresses to try; more is a misconfigured or hostile
#: zone, and each one would cost a connect timeout.
MAX_ADDRESSES: Final = 8


class RefusedAddress(Exception):
    """The URL's host is not one the policy allows. The text is for the conductor's log."""


@dataclasses.dataclass(frozen=True)
class AddressPolicy:
    """Global unicast addresses, plus ``allowed_networks``; host names ``allowed_hosts``."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    #: Exact names or ``*.domain`` wildcards; empty means any name.
    allowed_hosts: tuple[str, ...] = ()
    #: Check nothing: for URLs the conductor made itself (its store's), never a user's.
    unrestricted: bool = False

    @classmethod
    def from_options(cls, networks: Iterable[str] | None,
                     hosts: Iterable[str] | None) -> AddressPolicy:
        """Parse the option values; a bad CIDR raises ValueError naming it."""
        parsed = []
        for text in networks or ():
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"[configdrive]fetch_allowed_networks: {text!r} is not an "
                                 "IP network (CIDR, e.g. 10.0.0.0/8)") from None
        names = tuple(name.strip().lower().rstrip(".") for name in hosts or () if name.strip())
        return cls(allowed_networks=tuple(parsed), allowed_hosts=names)

    def check_name(self, host: str) -> None:
        """Refuse a host name (or literal) that ``allowed_hosts`` does not list."""
        if self.unrestricted or not self.allowed_hosts:
            return
        name = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            if name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:])):
                return
        raise RefusedAddress(f"host {host!r} is not in [configdrive]fetch_allowed_hosts")

    def check_address(self, address: IPAddress) -> None:
        """Refuse an address outside global unicast that no allowed network holds."""
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if self.unrestricted or any(address in network for network in self.allowed_networks):
            return
        # is_global excludes loopback, link-local, private (RFC 1918, ULA), shared (CGNAT),
        # unspecified, reserved and documentation ranges; multicast is checked on its own.
        if address.is_global and not address.is_multicast:
            return
        raise RefusedAddress(f"address {address} is not a global unicast address and no "
                             "[configdrive]fetch_allowed_networks entry holds it")

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and check every address; the checked addresses, in order.

        :raises RefusedAddress: the name, or any address it resolves to, is not allowed, or
            it does not resolve.
        """
        self.check_name(host)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise RefusedAddress(f"host {host!r} does not resolve ({exc})") from None
        addresses: list[str] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 zone is not part of the check
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise RefusedAddress(f"host {host!r} resolves to no address")
        for text in addresses:
            # Every address, not only the one used: a mixed answer is refused whole.
            self.check_address(ipaddress.ip_address(text))
        return addresses[:MAX_ADDRESSES]
