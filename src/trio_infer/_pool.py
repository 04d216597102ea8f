"""Per-endpoint connection pools and the client-wide connection cap.

Theory of operation
-------------------
Each endpoint has one :class:`EndpointPool`. A connection is in exactly one state, and the
pool's collections mirror it:

================  ==================  =================================================
state             held in             moved by
================  ==================  =================================================
``connecting``    ``pool.connecting`` :meth:`EndpointPool.checkout` (new connection)
``active``        ``pool.active``     ``checkout`` (from idle or after connecting)
``idle``          ``pool.idle``       :meth:`EndpointPool.checkin`
``closed``        nowhere             :meth:`EndpointPool.discard`, the sweeper, shutdown
================  ==================  =================================================

Rules:

1. Only a connection whose exchange finished cleanly, and whose codec says ``keep_alive``,
   is checked in. Anything interrupted (error, timeout, cancellation, a caller that stopped
   reading) is discarded: closed at once, never pooled.
2. ``idle`` is a deque used as a stack: checkout takes the most recently used connection
   (least likely to have been closed by the server's idle timeout) from the right, expiry
   removes the longest idle from the left.
3. Every connection that exists (connecting, active or idle) holds one slot of the client-wide
   :class:`ConnectionSlots`; closing gives the slot back. A checkout that finds no idle
   connection and no free slot first closes an idle connection of another endpoint, and
   otherwise waits (FIFO) until a slot or an idle connection frees up.
4. A pooled connection idle for more than ``FRESH_IDLE`` is checked for liveness on checkout
   (``is_readable``: a closed or chattering idle socket is readable); one that fails is
   discarded as ``"server_close"``. One that fails after the check (the server closed it in
   the meantime) is caught by the client's stale-connection retry.
5. A connection's slot and close reason are settled exactly once (``Connection.released``),
   by the first of: its exchange's discard, checkin of a connection closed underneath, idle
   expiry, eviction, or shutdown. The sweeper only closes a socket (to fail the blocked
   call); the exchange that owned it then settles it.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ._budget import Destination, destinations_from_addrinfo
from ._codec import MAX_HEADER_BYTES, ParserName, make_codec
from ._errors import (
    ConnectError,
    FileDescriptorsExhaustedError,
    PoolTimeout,
    PortsExhaustedError,
    map_transport_error,
)
from ._headers import Headers, RawHead
from ._http11 import Connection
from ._sources import SourceRotation, bind_source

if TYPE_CHECKING:
    import ssl

    from ._endpoint import Endpoint
    from ._keepalive import KeepAlive
    from ._permits import Permit

__all__ = ["CLOSE_REASONS", "FRESH_IDLE", "ConnectionSlots", "EndpointPool"]

#: Why a connection was closed (keys of ``EndpointStats.closed``).
CLOSE_REASONS = (
    "policy",  # the keep-alive policy asked for it (KeepAlive.off sends Connection: close)
    "idle_expired",  # idle longer than idle_timeout
    "max_idle",  # checked in while max_idle connections were already idle
    "server_close",  # the server closed it or asked to (Connection: close, EOF, stale on checkout)
    "error",  # the exchange failed: network, protocol or timeout error
    "interrupted",  # the caller cancelled, or closed a stream before its end
    "evicted",  # closed to make room for a connection to another endpoint
    "shutdown",  # the client closed
)


#: Seconds a pooled connection may sit idle and still be reused without a liveness check.
FRESH_IDLE = 0.1


class ConnectionSlots:
    """The client-wide cap on open connections, shared by the client's pools."""

    __slots__ = ("limit", "lot", "pools", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.lot = trio.lowlevel.ParkingLot()
        self.pools: list[EndpointPool] = []

    def free(self) -> None:
        self.used -= 1
        if self.lot:
            self.lot.unpark()

    def evict_idle(self) -> bool:
        """Close the longest-idle connection of any pool; False if none is idle."""
        oldest: EndpointPool | None = None
        for pool in self.pools:
            if pool.idle and (
                oldest is None or pool.idle[0].idle_since < oldest.idle[0].idle_since
            ):
                oldest = pool
        if oldest is None:
            return False
        oldest.discard(oldest.idle.popleft(), "evicted")
        return True


class EndpointPool:
    """Connections to one endpoint (see the module docstring for the state rules)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        slots: ConnectionSlots,
        parser: ParserName,
        ssl_context: ssl.SSLContext | None,
        keepalive: KeepAlive,
        on_connection_opened: Callable[[], None] | None = None,
        now: Callable[[], float] = trio.current_time,
    ) -> None:
        self.endpoint = endpoint
        self.url = endpoint.url
        self.origin = endpoint.origin
        self.slots = slots
        self.parser: ParserName = parser
        self.ssl_context = ssl_context
        self.keepalive = keepalive
        self.max_idle = keepalive.max_idle
        self.idle_timeout = keepalive.idle_timeout
        #: recycle: exchanges per connection (the last one asks the server to close), and
        #: seconds from connect after which a connection is not reused
        self.max_requests = keepalive.max_requests
        self.max_age = keepalive.max_age
        self._on_opened = on_connection_opened
        #: the clock (the client binds the run's clock once: trio.current_time per call is slow)
        self.now = now
        #: requests answered per worker (``worker_header``'s value), and when each last answered
        self.worker_header: str | None = None
        #: acknowledge partial responses at once (``Client(tcp_quickack=...)``)
        self.quickack = True
        self.worker_requests: dict[str, int] = {}
        self.worker_last_seen: dict[str, float] = {}
        self.untagged_responses = 0
        self.base_path = endpoint.base_path.encode("ascii")
        #: the headers every request to this endpoint starts from (set by the client)
        self.base_headers: list[tuple[bytes, bytes]] = []
        #: what ``resolve`` found: each destination with the (family, type, proto, sockaddr)
        #: to connect to it
        self.resolved: dict[Destination, tuple[int, int, int, Any]] = {}
        #: the destinations connections go to, round-robin, each with its source rotation
        #: (``None``: the OS picks the source); set by the client with ``set_routes``
        self.routes: list[tuple[Destination, tuple[int, int, int, Any], SourceRotation | None]] = []
        self._next_route = 0
        self.has_sources = False
        self.max_header_bytes = MAX_HEADER_BYTES
        #: the per-endpoint cap on open connections (None: only the client-wide cap)
        self.limit: int | None = None
        #: usable ephemeral ports per (source, destination) pair, for error messages
        self.ports_per_pair = 0
        self.lot = trio.lowlevel.ParkingLot()  # calls waiting for this endpoint's cap
        self.idle: deque[Connection] = deque()
        self.active: set[Connection] = set()
        self.connecting: set[Connection] = set()
        self.waiting_for_permit = 0
        self.waiting_for_connection = 0
        # counters
        self.opened = 0
        self.reused = 0
        self.stale_retries = 0
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self.responses = 0
        self.failures = 0
        self.retries = 0
        self.status_counts = [0] * 10  # by status // 100
        self.errors: dict[str, int] = {}
        self.bytes_sent = 0
        self.bytes_received = 0
        self.ports_exhausted = 0
        self.fds_exhausted = 0

    @property
    def open_count(self) -> int:
        return len(self.idle) + len(self.active) + len(self.connecting)

    async def resolve(self) -> list[Destination]:
        """Resolve the endpoint's host once; every connection reuses the result.

        Trio resolves names in a worker thread, far too slow for a per-connection step.
        """
        try:
            infos = await trio.socket.getaddrinfo(
                self.endpoint.host, self.endpoint.port, type=trio.socket.SOCK_STREAM
            )
        except OSError as exc:
            raise ConnectError(
                f"cannot resolve host {self.endpoint.host!r}: {exc}",
                endpoint=self.url,
                phase="connect",
            ) from exc
        for family, type_, proto, _name, sockaddr in infos:
            [destination] = destinations_from_addrinfo([(family, type_, proto, _name, sockaddr)])
            self.resolved.setdefault(destination, (family, type_, proto, sockaddr))
        if not self.resolved:
            raise ConnectError(
                f"host {self.endpoint.host!r} resolved to no address",
                endpoint=self.url,
                phase="connect",
            )
        return list(self.resolved)

    def set_routes(
        self, destinations: list[Destination], rotations: dict[Destination, SourceRotation]
    ) -> None:
        """Connect to these of the resolved destinations, binding the rotations' sources
        (an empty mapping: bind nothing)."""
        self.routes = [(d, self.resolved[d], rotations.get(d)) for d in destinations]
        self.has_sources = bool(rotations)

    # --- checkout / checkin ----------------------------------------------------------------

    def take_idle(self) -> Connection | None:
        """A pooled connection made active, or None. Synchronous: the keep-alive fast path."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            # A connection back from its last exchange moments ago is taken as is; the
            # stale-connection retry covers the rare server close inside that window, and
            # the check (a syscall plus an exception) is a visible share of a keep-alive
            # exchange at full speed.
            now = self.now()
            if now - conn.idle_since > FRESH_IDLE and conn.is_readable():
                self.discard(conn, "server_close")
                continue
            if self.max_age is not None and now - conn.opened_at >= self.max_age:
                self.discard(conn, "policy")
                continue
            conn.state = "active"
            self.active.add(conn)
            self.reused += 1
            return conn
        return None

    async def checkout(self, connect_timeout: float | None, pool_deadline: float) -> Connection:
        """An active connection for one exchange: a pooled one if any is alive, else a new one."""
        conn = self.take_idle()
        if conn is not None:
            return conn
        slots = self.slots
        while True:
            if self.limit is not None and self.open_count >= self.limit:
                await self._wait(
                    self.lot,
                    pool_deadline,
                    f"all {self.limit} connections of "
                    f"this endpoint stayed busy (raise max_connections_per_endpoint "
                    f"or Timeouts.pool)",
                )
            elif slots.used >= slots.limit and not slots.evict_idle():
                await self._wait(
                    slots.lot,
                    pool_deadline,
                    f"all {slots.limit} connections of "
                    f"the client stayed busy (raise max_connections or Timeouts.pool)",
                )
            else:
                return await self.connect(connect_timeout)
            conn = self.take_idle()
            if conn is not None:
                return conn

    async def _wait(self, lot: trio.lowlevel.ParkingLot, pool_deadline: float, busy: str) -> None:
        self.waiting_for_connection += 1
        try:
            with trio.CancelScope(deadline=pool_deadline) as scope:
                await lot.park()
        finally:
            self.waiting_for_connection -= 1
        if scope.cancelled_caught:
            raise PoolTimeout(busy, endpoint=self.url, phase="pool")

    async def connect(self, connect_timeout: float | None) -> Connection:
        """Open a new connection, active on return. It takes one client-wide slot.

        Running out of ports or descriptors raises at once (``PortsExhaustedError``,
        ``FileDescriptorsExhaustedError``): a call never waits for a port to free up, which
        would pass the wait off as server latency.
        """
        destination, (family, type_, proto, sockaddr), rotation = self.routes[self._next_route]
        self._next_route = (self._next_route + 1) % len(self.routes)
        self.slots.used += 1
        try:
            raw = socket.socket(family, type_, proto)
        except BaseException as exc:
            self.slots.free()
            if isinstance(exc, OSError):
                error = map_transport_error(exc, phase="connect", endpoint=self.url)
                self._count_exhaustion(error)
                raise error from exc
            raise
        source: str | None = None
        try:
            raw.setblocking(False)
            if rotation is not None:
                source = rotation.next()
                try:
                    bind_source(raw, source)
                except OSError as exc:
                    raise ConnectError(
                        f"cannot bind source address {source!r} for {destination}: "
                        f"{exc.strerror or exc}",
                        endpoint=self.url,
                        phase="connect",
                    ) from exc
        except BaseException:
            raw.close()
            self.slots.free()
            raise
        conn = Connection(self.url, raw, make_codec(self.parser, self.max_header_bytes), self.now)
        conn.last_by_policy = self.keepalive.mode == "off"  # every request says close
        conn.quickack = conn.quickack and self.quickack
        conn.source = source
        self.connecting.add(conn)
        self.opened += 1
        if self._on_opened is not None:
            self._on_opened()
        try:
            await conn.connect(
                sockaddr,
                connect_timeout,
                self.ssl_context,
                self.endpoint.host,
            )
        except BaseException as exc:
            self.connecting.discard(conn)
            self._close(conn, "error" if isinstance(exc, Exception) else "interrupted")
            self._count_exhaustion(exc)
            if isinstance(exc, PortsExhaustedError):
                raise PortsExhaustedError(
                    f"no free ephemeral port towards {destination} from "
                    f"{repr(source) if source else 'the source the OS chose'} "
                    f"(EADDRNOTAVAIL; {self.ports_per_pair} usable ports per source/destination "
                    f"pair, {self.open_count} open to this endpoint); add source_addresses or "
                    f"endpoints, or open fewer connections",
                    endpoint=self.url,
                    phase="connect",
                ) from exc
            raise
        self.connecting.discard(conn)
        conn.state = "active"
        self.active.add(conn)
        return conn

    def count_worker(self, raw_headers: list[tuple[bytes, bytes]] | RawHead, at: float) -> None:
        """Count a response towards the worker its ``worker_header`` names."""
        assert self.worker_header is not None
        worker = Headers(raw_headers).get(self.worker_header)
        if worker is None:
            self.untagged_responses += 1
            return
        self.worker_requests[worker] = self.worker_requests.get(worker, 0) + 1
        self.worker_last_seen[worker] = at

    def _count_exhaustion(self, exc: BaseException) -> None:
        if isinstance(exc, PortsExhaustedError):
            self.ports_exhausted += 1
        elif isinstance(exc, FileDescriptorsExhaustedError):
            self.fds_exhausted += 1

    def checkin(self, conn: Connection, now: float) -> None:
        """Return a connection whose exchange finished cleanly with keep-alive."""
        self.active.discard(conn)
        conn.permit = None
        if conn.state == "closed":  # shut down or expired under the exchange's feet
            self._close(conn, "error")
            return
        if self.max_idle is not None and len(self.idle) >= self.max_idle:
            self._close(conn, "max_idle")
            return
        conn.state = "idle"
        conn.idle_since = now
        self.idle.append(conn)
        if self.lot:
            self.lot.unpark()
        if self.slots.lot:
            self.slots.lot.unpark()

    def end_exchange(self, conn: Connection, permit: Permit, end: float) -> None:
        """The body ended cleanly: pool the connection (or close it without keep-alive), then
        return the permit, so the next permit holder finds the connection idle."""
        self.settle(conn, end)
        permit.release()

    def settle(self, conn: Connection, end: float) -> None:
        """Count a response whose reading ended and pool its connection if its codec says
        keep-alive and the policy allows; close it otherwise. The permit is the caller's."""
        self.responses += 1
        self.bytes_received += conn.codec.received
        if not conn.codec.keep_alive:
            # Our own Connection: close (policy), or the server's (or an HTTP/1.0 answer).
            self.discard(conn, "policy" if conn.last_by_policy else "server_close")
        elif self.max_age is not None and end - conn.opened_at >= self.max_age:
            self.discard(conn, "policy")
        else:
            self.checkin(conn, end)

    def abort_exchange(
        self, conn: Connection | None, permit: Permit, exc: BaseException | None
    ) -> None:
        """The exchange stopped before its end: close its connection, return the permit.
        An ``Exception`` counts as a failure; cancellation (or ``exc=None``: the caller closed
        the stream) is an interruption."""
        failed = isinstance(exc, Exception)
        if failed:
            self.failures += 1
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
        if conn is not None:
            self.bytes_received += conn.codec.received
            self.discard(conn, "error" if failed else "interrupted")
        permit.release()

    def discard(self, conn: Connection, reason: str) -> None:
        """Close a connection that must not be reused. Idempotent."""
        self.active.discard(conn)
        conn.permit = None
        self._close(conn, reason)

    def _close(self, conn: Connection, reason: str) -> None:
        # The socket may already be closed (by the sweeper, or by shutdown); the slot and
        # the count are settled exactly once, by whichever close comes first here.
        conn.close_now()
        if not conn.released:
            conn.released = True
            self.closed[reason] += 1
            self.slots.free()
            if self.lot:
                self.lot.unpark()

    # --- background upkeep -----------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Expire overdue phases and idle connections (run by the client's sweeper task)."""
        for group in (self.active, self.connecting):
            for conn in [c for c in group if c.deadline <= now]:
                conn.expire()
        if self.idle_timeout is not None:
            limit = now - self.idle_timeout
            idle = self.idle
            while idle and idle[0].idle_since <= limit:
                self._close(idle.popleft(), "idle_expired")

    @property
    def is_empty(self) -> bool:
        return not (self.idle or self.active or self.connecting)

    def close_all(self) -> None:
        """Close every connection (client shutdown), returning any permit still held."""
        while self.idle:
            self._close(self.idle.popleft(), "shutdown")
        for group in (self.active, self.connecting):
            for conn in list(group):
                group.discard(conn)
                permit = conn.permit
                conn.permit = None
                if permit is not None:
                    permit.release()
                self._close(conn, "shutdown")
