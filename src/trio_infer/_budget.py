"""How many connections this process can hold open: the connection budget.

Two limits, whichever is smaller binds:

* **Ephemeral ports.** The kernel identifies a TCP connection by (source IP, source port,
  destination IP, destination port), so the local port range is a budget *per pair* of
  source address and destination. Usable ports per pair are the ``ip_local_port_range``
  minus the ``ip_local_reserved_ports`` inside it. The port budget is that times the number
  of (source, destination) pairs: every distinct destination (resolved IP and port; paths
  never count) and every source address multiplies it. Only pairs of one address family
  count: an IPv4 source cannot reach an IPv6 destination.
* **File descriptors.** One per connection, out of ``RLIMIT_NOFILE``'s soft limit minus
  :data:`FD_HEADROOM` for everything else the process keeps open.

Where ``/proc/sys/net/ipv4/ip_local_port_range`` cannot be read (not Linux), the port range is
the IANA dynamic range :data:`DEFAULT_PORT_RANGE`, which macOS, the BSDs and Windows use by
default, with no reserved ports; ``ConnectionBudget.port_range_source`` says which applied.

Not counted: ports that other sockets of this host hold to the same destination (another
process, or a listener inside the range). The budget is an upper bound; the kernel's answer
at connect time is final, and running out is raised at once as ``PortsExhaustedError``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

import attrs

from ._endpoint import Endpoint, parse_endpoint
from ._errors import ConfigError

__all__ = [
    "DEFAULT_PORT_RANGE",
    "FD_HEADROOM",
    "PortRange",
    "ConnectionBudget",
    "Destination",
    "budget_for",
    "connection_budget",
    "count_reserved",
    "fd_limits",
    "parse_port_range",
    "read_port_range",
]

#: Descriptors left for everything that is not a client connection: stdio, log files,
#: listening sockets of a co-hosted test server, trio's wakeup socketpair and epoll, imports.
FD_HEADROOM: Final = 64
#: The IANA dynamic port range, used where the OS's range cannot be read.
DEFAULT_PORT_RANGE: Final = (49152, 65535)
PORT_RANGE_PATH: Final = "/proc/sys/net/ipv4/ip_local_port_range"
#: (low, high), reserved ports inside, and whether the numbers came from the OS
PortRange = tuple[tuple[int, int], int, Literal["os", "default"]]
RESERVED_PORTS_PATH: Final = "/proc/sys/net/ipv4/ip_local_reserved_ports"


@attrs.frozen(order=True)
class Destination:
    """What the kernel sees as the far end of a connection: an IP literal and a port."""

    address: str
    port: int

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.address else socket.AF_INET

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_port_range(text: str) -> tuple[int, int]:
    """``"32768\\t60999"`` (the sysctl's format) to ``(32768, 60999)``."""
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"not a port range: {text!r}")
    low, high = int(fields[0]), int(fields[1])
    if not 0 < low <= high <= 65535:
        raise ValueError(f"not a port range: {text!r}")
    return low, high


def count_reserved(text: str, port_range: tuple[int, int]) -> int:
    """How many ports of ``port_range`` the ``ip_local_reserved_ports`` list (``"8080,9000-9010"``)
    takes out. Entries may overlap; each port counts once."""
    low, high = port_range
    spans: list[tuple[int, int]] = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        first, _, last = item.partition("-")
        start, end = int(first), int(last or first)
        start, end = max(start, low), min(end, high)
        if start <= end:
            spans.append((start, end))
    total = 0
    covered_to = low - 1
    for start, end in sorted(spans):
        start = max(start, covered_to + 1)
        if start <= end:
            total += end - start + 1
            covered_to = end
    return total


def read_port_range() -> PortRange:
    """The local port range, the reserved ports inside it, and where the numbers came from."""
    try:
        with open(PORT_RANGE_PATH) as f:
            port_range = parse_port_range(f.read())
    except (OSError, ValueError):
        return DEFAULT_PORT_RANGE, 0, "default"
    try:
        with open(RESERVED_PORTS_PATH) as f:
            reserved = count_reserved(f.read(), port_range)
    except (OSError, ValueError):
        reserved = 0
    return port_range, reserved, "os"


def fd_limits() -> tuple[int, int]:
    """RLIMIT_NOFILE's (soft, hard) limits; (4096, 4096) where they cannot be read."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 4096, 4096
    unlimited = 1 << 20
    if soft == resource.RLIM_INFINITY:
        soft = unlimited
    if hard == resource.RLIM_INFINITY:
        hard = unlimited
    return soft, hard


@attrs.frozen
class ConnectionBudget:
    """How many connections a client can open, and which limit binds.

    Attributes:
        port_range: the local (ephemeral) port range.
        port_range_source: ``"os"`` (read from ``/proc``) or ``"default"``
            (:data:`DEFAULT_PORT_RANGE`, where the OS's range cannot be read).
        reserved_ports: ports of the range listed in ``ip_local_reserved_ports``.
        ports_per_pair: usable ports per (source address, destination) pair.
        destinations: the distinct destinations (resolved IP, port), sorted.
        source_addresses: the source addresses connections bind to; empty when the OS
            chooses (which counts as one source per family).
        pairs: (source, destination) pairs of one address family.
        port_budget: ``ports_per_pair * pairs``.
        fd_limit: RLIMIT_NOFILE's soft limit.
        fd_hard_limit: RLIMIT_NOFILE's hard limit (how far ``ulimit -n`` can raise it).
        fd_headroom: descriptors kept for the rest of the process (:data:`FD_HEADROOM`).
        fd_budget: ``fd_limit - fd_headroom``.
        max_connections: ``min(port_budget, fd_budget)``.
        binding: ``"ports"`` or ``"file descriptors"``: the limit that sets
            ``max_connections``.
    """

    port_range: tuple[int, int]
    port_range_source: Literal["os", "default"]
    reserved_ports: int
    ports_per_pair: int
    destinations: tuple[Destination, ...]
    source_addresses: tuple[str, ...]
    pairs: int
    port_budget: int
    fd_limit: int
    fd_hard_limit: int
    fd_headroom: int
    fd_budget: int
    max_connections: int
    binding: Literal["ports", "file descriptors"]

    def pairs_for(self, destinations: Iterable[Destination]) -> int:
        """The (source, destination) pairs a subset of the destinations (one endpoint's) has."""
        return sum(_sources_for(d, self.source_addresses) for d in set(destinations))

    def check(self, max_connections: int) -> None:
        """Raise :class:`ConfigError` if ``max_connections`` is more than this budget allows,
        saying which limit binds, the numbers, and the fix."""
        if max_connections > self.port_budget and self.port_budget <= self.fd_budget:
            raise ConfigError(
                f"max_connections={max_connections} exceeds the ephemeral-port budget of "
                f"{self.port_budget}: {self._port_math()}. Fix: add source addresses "
                f"(source_addresses=[...]; any 127.0.0.x on loopback), add endpoints, widen "
                f"net.ipv4.ip_local_port_range, or lower max_connections"
            )
        if max_connections > self.fd_budget:
            needed = max_connections + self.fd_headroom
            if needed <= self.fd_hard_limit:
                fix = f"raise the soft limit with 'ulimit -n {needed}'"
            else:
                fix = (
                    f"raise the hard limit (now {self.fd_hard_limit}) to at least {needed} "
                    f"(as root: 'ulimit -Hn', LimitNOFILE= for systemd units, or "
                    f"/etc/security/limits.conf), then 'ulimit -n {needed}'"
                )
            raise ConfigError(
                f"max_connections={max_connections} exceeds the file-descriptor budget of "
                f"{self.fd_budget}: {self._fd_math()}. Fix: {fix}, or lower max_connections"
            )

    def check_endpoint(self, endpoint: str, destinations: Sequence[Destination], cap: int) -> None:
        """Raise :class:`ConfigError` if a per-endpoint cap exceeds that endpoint's pairs."""
        pairs = self.pairs_for(destinations)
        budget = pairs * self.ports_per_pair
        if cap > budget:
            raise ConfigError(
                f"max_connections_per_endpoint={cap} exceeds the ephemeral-port budget of "
                f"endpoint {endpoint}: {self.ports_per_pair} usable ports per pair x {pairs} "
                f"(source, destination) pairs = {budget}. Fix: add source addresses, or lower "
                f"max_connections_per_endpoint"
            )

    def _port_math(self) -> str:
        low, high = self.port_range
        sources = len(self.source_addresses) or "the default"
        return (
            f"{self.ports_per_pair} usable ports per (source, destination) pair (range "
            f"{low}-{high}, {self.reserved_ports} reserved) x {self.pairs} pairs "
            f"({len(self.destinations)} destinations, {sources} source addresses)"
        )

    def _fd_math(self) -> str:
        return (
            f"RLIMIT_NOFILE soft limit {self.fd_limit} minus {self.fd_headroom} kept for the "
            f"rest of the process"
        )

    def describe(self) -> str:
        """A table of the numbers, for people (``trio-infer budget`` prints it)."""
        low, high = self.port_range
        where = "" if self.port_range_source == "os" else " (default: the OS range is unreadable)"
        sources = ", ".join(self.source_addresses) or "(OS chooses: one per address family)"
        rows = [
            ("local port range", f"{low}-{high}{where}"),
            ("reserved in range", str(self.reserved_ports)),
            ("usable ports per pair", str(self.ports_per_pair)),
            ("destinations", ", ".join(map(str, self.destinations))),
            ("source addresses", sources),
            ("(source, destination) pairs", str(self.pairs)),
            ("port budget", f"{self.port_budget}  = {self.ports_per_pair} x {self.pairs}"),
            (
                "fd budget",
                f"{self.fd_budget}  = RLIMIT_NOFILE {self.fd_limit} - {self.fd_headroom} headroom",
            ),
            ("max connections", f"{self.max_connections}  (bound by {self.binding})"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _sources_for(destination: Destination, sources: Sequence[str]) -> int:
    if not sources:
        return 1
    family = destination.family
    return sum(1 for s in sources if (":" in s) == (family == socket.AF_INET6))


def budget_for(
    destinations: Iterable[Destination],
    source_addresses: Sequence[str] = (),
    *,
    port_range: PortRange | None = None,
    fd: tuple[int, int] | None = None,
) -> ConnectionBudget:
    """The budget for resolved destinations (duplicates count once) and parsed sources.

    ``port_range`` (range, reserved, source) and ``fd`` (soft, hard) default to this host's.
    """
    unique = tuple(sorted(set(destinations)))
    (low, high), reserved, range_source = (
        port_range if port_range is not None else read_port_range()
    )
    soft, hard = fd if fd is not None else fd_limits()
    ports_per_pair = max(0, high - low + 1 - reserved)
    pairs = sum(_sources_for(d, source_addresses) for d in unique)
    port_budget = ports_per_pair * pairs
    fd_budget = max(0, soft - FD_HEADROOM)
    binding: Literal["ports", "file descriptors"] = (
        "ports" if port_budget <= fd_budget else "file descriptors"
    )
    return ConnectionBudget(
        port_range=(low, high),
        port_range_source=range_source,
        reserved_ports=reserved,
        ports_per_pair=ports_per_pair,
        destinations=unique,
        source_addresses=tuple(source_addresses),
        pairs=pairs,
        port_budget=port_budget,
        fd_limit=soft,
        fd_hard_limit=hard,
        fd_headroom=FD_HEADROOM,
        fd_budget=fd_budget,
        max_connections=min(port_budget, fd_budget),
        binding=binding,
    )


def destinations_from_addrinfo(
    infos: Iterable[tuple[object, object, object, object, tuple[object, ...]]],
) -> list[Destination]:
    """Distinct destinations, in resolver order, out of ``getaddrinfo`` results."""
    out: list[Destination] = []
    for *_ignored, sockaddr in infos:
        address = str(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        destination = Destination(address, int(str(sockaddr[1])))
        if destination not in out:
            out.append(destination)
    return out


def connection_budget(
    endpoints: str | Endpoint | Sequence[str | Endpoint],
    *,
    source_addresses: str | Sequence[str] = (),
) -> ConnectionBudget:
    """The connection budget a :class:`Client` with these arguments gets on this host.

    Host names are resolved with the system resolver (a blocking call; inside trio, a
    ``Client`` resolves asynchronously on entry and exposes the same value as
    ``client.budget``). Source addresses are checked as the client checks them: each must be
    an IP literal that can be bound on this host and can reach at least one destination.
    """
    from ._sources import check_bindable, parse_source_addresses, plan_routes

    items = [endpoints] if isinstance(endpoints, str | Endpoint) else list(endpoints)
    parsed = [parse_endpoint(item) for item in items]
    if not parsed:
        raise ConfigError("endpoints is empty; pass at least one base URL")
    sources = parse_source_addresses(source_addresses)
    check_bindable(sources)
    resolved: dict[Endpoint, list[Destination]] = {}
    for endpoint in parsed:
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConfigError(
                f"cannot resolve host {endpoint.host!r} of {endpoint}: {exc}"
            ) from exc
        resolved[endpoint] = destinations_from_addrinfo(infos)
    routes = plan_routes(resolved, sources)
    return budget_for(_all_destinations(routes), sources)


def _all_destinations(routes: Mapping[Endpoint, Sequence[Destination]]) -> list[Destination]:
    return [d for destinations in routes.values() for d in destinations]
