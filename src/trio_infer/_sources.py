"""Source addresses: which local IP each new connection binds, and how.

Each (source address, destination) pair has its own ephemeral-port budget, so binding new
connections to several local addresses multiplies what one destination can take
(``_budget.py``). Rotation is per destination: the n-th connection to a destination binds the
n-th source address of that destination's family (round-robin), so every pair is used evenly
however the endpoints share destinations.

Binding uses ``IP_BIND_ADDRESS_NO_PORT`` (Linux >= 4.2) before ``bind((address, 0))``: the
kernel then picks the port at ``connect()``, knowing the destination, and may reuse one port
number towards different destinations. Without it ``bind()`` must pick the port alone, so it
reserves one the address can use for no other connection at all: the budget of a source
address becomes one port range shared by every destination, not one per destination
(``tests/test_budget_netns.py`` shows both). Where the option does not exist the bind still
works, with that smaller budget.

An empty list (the default) binds nothing: the OS picks the source as for any socket.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from ._errors import ConfigError

if TYPE_CHECKING:
    from ._budget import Destination
    from ._endpoint import Endpoint

__all__ = [
    "IP_BIND_ADDRESS_NO_PORT",
    "SourceRotation",
    "bind_source",
    "check_bindable",
    "parse_source_addresses",
    "plan_routes",
]

#: Python exposes the constant from 3.12 on; its value on Linux is 24.
IP_BIND_ADDRESS_NO_PORT: Final[int | None] = getattr(
    socket, "IP_BIND_ADDRESS_NO_PORT", 24 if sys.platform == "linux" else None
)


def _family_name(ipv6: bool) -> str:
    return "IPv6" if ipv6 else "IPv4"


def parse_source_addresses(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalise ``source_addresses``: blanks dropped, duplicates removed in order, every
    entry an IP literal (IPv6 without brackets), in its compressed form."""
    if value is None:
        return ()
    items: Sequence[object] = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise ConfigError(
            f"source_addresses={value!r} must be a list of IP addresses, e.g. ['127.0.0.2']"
        )
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(
                f"source address {item!r} is not a string; pass IP literals like '127.0.0.2'"
            )
        text = item.strip()
        if not text:
            continue
        try:
            address = str(ipaddress.ip_address(text.strip("[]")))
        except ValueError:
            raise ConfigError(
                f"source address {item!r} is not an IP address; pass IP literals like "
                f"'127.0.0.2' or '::1' (host names are not accepted: a source must be one "
                f"local address)"
            ) from None
        if address not in out:
            out.append(address)
    return tuple(out)


def _sockaddr(address: str) -> tuple[str, int] | tuple[str, int, int, int]:
    return (address, 0, 0, 0) if ":" in address else (address, 0)


def bind_source(sock: socket.socket, address: str) -> None:
    """Bind a new socket to ``address`` without taking a port (see the module docstring)."""
    if IP_BIND_ADDRESS_NO_PORT is not None:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind(_sockaddr(address))


def check_bindable(addresses: Sequence[str]) -> None:
    """Raise :class:`ConfigError` naming the first address this host cannot bind, and the fix."""
    for address in addresses:
        ipv6 = ":" in address
        try:
            with socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET) as sock:
                bind_source(sock, address)
        except OSError as exc:
            prefix = 128 if ipv6 else 32
            raise ConfigError(
                f"source address {address!r} cannot be bound on this host "
                f"({exc.strerror or exc}). Fix: assign it to an interface first (e.g. "
                f"'ip addr add {address}/{prefix} dev lo'; every 127.x.y.z is already local "
                f"on Linux), or remove it from source_addresses"
            ) from None


def plan_routes(
    resolved: Mapping[Endpoint, Sequence[Destination]], sources: Sequence[str]
) -> dict[Endpoint, list[Destination]]:
    """Each endpoint's destinations that the sources can reach.

    With source addresses, a destination of a family no source has is left out (a host name
    that resolves to both ``127.0.0.1`` and ``::1`` keeps only the one the sources can
    reach). An endpoint left with no destination, or a source that reaches no destination,
    is a :class:`ConfigError`.
    """
    if not sources:
        return {endpoint: list(destinations) for endpoint, destinations in resolved.items()}
    source_families = {":" in s for s in sources}
    plan: dict[Endpoint, list[Destination]] = {}
    used_families: set[bool] = set()
    for endpoint, destinations in resolved.items():
        reachable = [d for d in destinations if (":" in d.address) in source_families]
        if not reachable:
            have = " and ".join(sorted(_family_name(f) for f in source_families))
            found = ", ".join(map(str, destinations))
            raise ConfigError(
                f"endpoint {endpoint} resolves only to {found}, which no source address can "
                f"reach (the source addresses are {have}); add a source address of the "
                f"endpoint's family"
            )
        used_families.update(":" in d.address for d in reachable)
        plan[endpoint] = reachable
    for source in sources:
        if (":" in source) not in used_families:
            raise ConfigError(
                f"source address {source!r} is {_family_name(':' in source)} but no endpoint "
                f"resolves to an {_family_name(':' in source)} address; remove it"
            )
    return plan


class SourceRotation:
    """The source addresses of one destination's family, handed out round-robin."""

    __slots__ = ("_next", "addresses")

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = tuple(addresses)
        self._next = 0

    def next(self) -> str:
        address = self.addresses[self._next]
        self._next = (self._next + 1) % len(self.addresses)
        return address

    @classmethod
    def for_destinations(
        cls, destinations: Sequence[Destination], sources: Sequence[str]
    ) -> dict[Destination, SourceRotation]:
        """One rotation per destination (shared by every pool that reaches it)."""
        return {
            d: cls([s for s in sources if (":" in s) == (":" in d.address)])
            for d in dict.fromkeys(destinations)
        }
