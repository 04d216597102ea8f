"""Per-endpoint connection pools and the client-wide connection cap.

Theory of operation
-------------------
Each endpoint has one :class:`EndpointPool`. A connection is in exactly one state
(``_state.ConnState``), moved only through ``_state.next_state``, and the pool's collections
mirror it:

================  ==================  =================================================
state             held in             entered by
================  ==================  =================================================
``CONNECTING``    ``pool.connecting`` :meth:`EndpointPool.connect`
``ACTIVE``        ``pool.active``     connected, taken from idle, or handed to a waiter
``IDLE``          ``pool.idle``       :meth:`EndpointPool.checkin`
``CLOSED``        nowhere             :meth:`EndpointPool.close` (the only way)
================  ==================  =================================================

Rules:

1. Only a connection whose exchange finished cleanly, whose codec says ``keep_alive`` and
   that the policy lets live is checked in. Anything interrupted is closed, never pooled.
2. ``idle`` is a deque used as a stack: checkout takes the most recently used connection
   from the right; expiry and eviction take the longest idle from the left.
3. Every connection that exists holds one slot of the client-wide :class:`ConnectionSlots`,
   and so does a slot *reserved* for a waiter that is about to connect. The one transition
   into ``CLOSED`` (:meth:`EndpointPool.close`) gives the slot back and counts the close
   reason: a connection is settled exactly once, whoever closes it first.
4. A pooled connection is checked on every checkout, however briefly it was idle, and a
   connection handed to a waiter again when the waiter uses it: one the server wrote to or
   closed while no request was outstanding is closed (``"server_close"``), so stray bytes
   written before a request is sent can never be read as its response. (Bytes a server
   writes after that check, while the request is on its way, cannot be told from the answer
   by any HTTP/1.1 client: the protocol has no request ids.)
5. Waiting is FIFO across the client (:class:`ConnectionSlots` ``waiters``). A connection
   checked in, or a slot freed, is *handed* to the first waiter that can use it (its pool's
   idle connection, or a slot reserved for it) before anyone else can take it, so a caller
   that returns a connection and asks again queues behind those already waiting.
6. The sweeper only closes a socket (to fail the blocked call); the exchange that owned the
   connection then settles it.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import outcome
import trio

from ._budget import Destination, destinations_from_addrinfo
from ._codec import MAX_HEADER_BYTES, ParserName, make_codec
from ._errors import (
    ConnectError,
    FileDescriptorsExhaustedError,
    PoolTimeout,
    PortsExhaustedError,
    StreamClosed,
    map_transport_error,
)
from ._headers import Headers, RawHead
from ._http11 import Connection
from ._sources import SourceRotation, bind_source
from ._state import ALREADY_CLOSED, CLOSE_REASONS, CloseReason, ConnState, next_state

if TYPE_CHECKING:
    import ssl

    from ._endpoint import Endpoint
    from ._exchange import Exchange
    from ._interfaces import PoolConnection
    from ._keepalive import KeepAlive

    # The pool's rules are written against PoolConnection; HTTP/1.1 is one implementation.
    _CONFORMS: type[PoolConnection] = Connection

__all__ = ["CLOSE_REASONS", "RESERVED", "ConnectionSlots", "EndpointPool"]

_ACTIVE: Final = ConnState.ACTIVE
_IDLE: Final = ConnState.IDLE
_CONNECTING: Final = ConnState.CONNECTING
_CLOSED: Final = ConnState.CLOSED


class _Reserved:
    def __repr__(self) -> str:
        return "RESERVED"


#: What a waiter is handed when it may open a connection: a slot already counted for it.
RESERVED: Final = _Reserved()
Grant = Connection | _Reserved


class _Waiter:
    """An exchange queued for a connection of ``pool`` (``fresh``: not a pooled one)."""

    __slots__ = ("exchange", "fresh", "grant", "pool", "task")

    def __init__(self, pool: EndpointPool, exchange: Exchange, fresh: bool) -> None:
        self.pool = pool
        self.exchange = exchange
        self.fresh = fresh
        self.task: trio.lowlevel.Task | None = None
        self.grant: Grant | None = None


class ConnectionSlots:
    """The client-wide cap on open connections, and the FIFO queue of calls waiting for one."""

    __slots__ = ("_dispatching", "closed", "limit", "pools", "used", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.pools: list[EndpointPool] = []
        self.waiters: deque[_Waiter] = deque()
        #: set on shutdown: nothing is handed out any more
        self.closed = False
        self._dispatching = False

    def free(self) -> None:
        self.used -= 1
        if self.waiters:
            self.dispatch()

    def evict_idle(self, keep: EndpointPool | None = None) -> bool:
        """Close the longest-idle connection of any pool; False if none is idle."""
        oldest: EndpointPool | None = None
        for pool in self.pools:
            if pool.idle and (
                oldest is None or pool.idle[0].idle_since < oldest.idle[0].idle_since
            ):
                oldest = pool
        if oldest is None:
            return False
        oldest.close(oldest.idle[0], "evicted")
        return True

    def dispatch(self) -> None:
        """Hand what is free to waiters, first come first served. A waiter whose own pool
        cannot serve it (its endpoint's cap) does not hold up waiters of other endpoints."""
        if self._dispatching or self.closed:
            return
        self._dispatching = True
        try:
            progress = True
            while progress and self.waiters:
                progress = False
                for waiter in list(self.waiters):
                    if waiter.grant is not None:
                        continue
                    grant = waiter.pool.grant_for(waiter.fresh)
                    if grant is not None:
                        self._hand(waiter, grant)
                        progress = True
        finally:
            self._dispatching = False

    def _hand(self, waiter: _Waiter, grant: Grant) -> None:
        self.waiters.remove(waiter)
        pool = waiter.pool
        pool.waiting_for_connection -= 1
        if isinstance(grant, Connection):
            grant.exchange = waiter.exchange
        waiter.grant = grant
        if waiter.task is not None:  # parked: wake it with the grant (it can no longer abort)
            trio.lowlevel.reschedule(waiter.task, outcome.Value(grant))


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
        self.idle: deque[Connection] = deque()
        self.active: set[Connection] = set()
        self.connecting: set[Connection] = set()
        #: slots counted for waiters that were told to connect and have not yet
        self.reserved = 0
        self.waiting_for_permit = 0
        self.waiting_for_connection = 0
        # counters
        self.opened = 0
        self.reused = 0
        self.stale_retries = 0
        self.closed: dict[CloseReason, int] = dict.fromkeys(CLOSE_REASONS, 0)
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
        return len(self.idle) + len(self.active) + len(self.connecting) + self.reserved

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

    # --- checkout ----------------------------------------------------------------------------

    def take_idle(self) -> Connection | None:
        """The most recently used pooled connection that is still sound, made ACTIVE; or None.
        Synchronous: the keep-alive fast path. Every connection is checked (rule 4)."""
        idle = self.idle
        max_age = self.max_age
        while idle:
            conn = idle[-1]
            if max_age is not None and self.now() - conn.opened_at >= max_age:
                self.close(conn, "policy")
            elif conn.has_expired():
                self.close(conn, "server_close")
            else:
                idle.pop()
                conn.state = next_state(_IDLE, _ACTIVE)
                self.active.add(conn)
                self.reused += 1
                return conn
        return None

    def grant_for(self, fresh: bool) -> Grant | None:
        """What a waiter of this pool can have now: a pooled connection (ACTIVE on return),
        a slot reserved for a new connection, or None."""
        if not fresh:
            conn = self.take_idle()
            if conn is not None:
                return conn
        if self.limit is not None and self.open_count >= self.limit:
            return None
        slots = self.slots
        if slots.used >= slots.limit and not slots.evict_idle():
            return None
        slots.used += 1
        self.reserved += 1
        return RESERVED

    async def checkout(
        self,
        exchange: Exchange,
        connect_timeout: float | None,
        pool_deadline: float,
        *,
        fresh: bool = False,
    ) -> Connection:
        """An ACTIVE connection carrying ``exchange``: a pooled one (unless ``fresh``), a new
        one, or, when the caps are reached, the first one freed for it in FIFO order."""
        slots = self.slots
        grant: Grant | None = None
        if not slots.waiters:  # nobody queued ahead: no one to be fair to
            grant = self.grant_for(fresh)
        if grant is None:
            grant = await self._wait(exchange, pool_deadline, fresh)
        if isinstance(grant, Connection):
            grant.exchange = exchange
            return grant
        return await self.connect(exchange, connect_timeout)

    async def _wait(self, exchange: Exchange, pool_deadline: float, fresh: bool) -> Grant:
        slots = self.slots
        waiter = _Waiter(self, exchange, fresh)
        slots.waiters.append(waiter)
        self.waiting_for_connection += 1
        slots.dispatch()
        if waiter.grant is not None:
            return waiter.grant

        def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
            slots.waiters.remove(waiter)
            self.waiting_for_connection -= 1
            return trio.lowlevel.Abort.SUCCEEDED

        waiter.task = trio.lowlevel.current_task()
        grant: Grant | None = None
        with exchange.interruptible(pool_deadline):
            grant = await trio.lowlevel.wait_task_rescheduled(abort)
        if grant is None:  # the wait was cut short: the client closed, or the deadline passed
            exchange.check_open()
            raise self.busy_error()
        return grant

    def busy_error(self) -> PoolTimeout:
        if self.limit is not None and self.open_count >= self.limit:
            busy = (
                f"all {self.limit} connections of this endpoint stayed busy (raise "
                f"max_connections_per_endpoint or Timeouts.pool)"
            )
        else:
            busy = (
                f"all {self.slots.limit} connections of the client stayed busy (raise "
                f"max_connections or Timeouts.pool)"
            )
        return PoolTimeout(busy, endpoint=self.url, phase="pool")

    async def connect(self, exchange: Exchange, connect_timeout: float | None) -> Connection:
        """Open a new connection for ``exchange`` with a slot already reserved for it
        (``grant_for``); ACTIVE on return.

        Running out of ports or descriptors raises at once (``PortsExhaustedError``,
        ``FileDescriptorsExhaustedError``): a call never waits for a port to free up, which
        would pass the wait off as server latency.
        """
        self.reserved -= 1
        destination, (family, type_, proto, sockaddr), rotation = self.routes[self._next_route]
        self._next_route = (self._next_route + 1) % len(self.routes)
        try:
            exchange.check_open()  # the client may have closed while the slot was on its way
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
        conn.exchange = exchange
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
            self.close(conn, "error" if isinstance(exc, Exception) else "interrupted")
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
        if conn.state is _CLOSED:  # closed (the client, or the exchange) as it connected
            exchange.check_open()
            raise StreamClosed(
                "the connection was closed while it was being established",
                endpoint=self.url,
                phase="connect",
            )
        self.connecting.discard(conn)
        conn.state = next_state(_CONNECTING, _ACTIVE)
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

    # --- the end of an exchange ------------------------------------------------------------

    def finish(self, conn: Connection, end: float) -> None:
        """The exchange on ``conn`` read its response to the end: pool the connection if the
        codec says keep-alive and the policy lets it live; close it otherwise."""
        self.bytes_received += conn.received_bytes()
        conn.exchange = None
        if conn.state is _CLOSED:  # closed underneath (sweeper, shutdown): already settled
            return
        if not conn.is_reusable():
            # Our own Connection: close (policy), or the server's (or an HTTP/1.0 answer).
            self.close(conn, "policy" if conn.last_by_policy else "server_close")
        elif self.max_age is not None and end - conn.opened_at >= self.max_age:
            self.close(conn, "policy")
        else:
            self.checkin(conn, end)

    def checkin(self, conn: Connection, now: float) -> None:
        """Pool a connection whose exchange finished cleanly, or hand it to the first waiter."""
        self.active.discard(conn)
        conn.state = next_state(conn.state, _IDLE)
        conn.idle_since = now
        self.idle.append(conn)
        slots = self.slots
        if slots.waiters:
            slots.dispatch()
        if self.max_idle is not None and len(self.idle) > self.max_idle:
            self.close(self.idle[0], "max_idle")

    def count_failure(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.failures += 1
        self.errors[name] = self.errors.get(name, 0) + 1

    def close(self, conn: Connection, reason: CloseReason) -> None:
        """Close a connection: the one transition into CLOSED (rule 3). Idempotent: only the
        first close settles the slot and counts the reason."""
        conn.close_now()
        state = conn.state
        if next_state(state, _CLOSED) is ALREADY_CLOSED:
            return
        if state is _ACTIVE:
            self.active.discard(conn)
        elif state is _CONNECTING:
            self.connecting.discard(conn)
        else:
            idle = self.idle
            if idle[0] is conn:
                idle.popleft()
            else:
                idle.remove(conn)
        conn.state = _CLOSED
        conn.exchange = None
        self.closed[reason] += 1
        self.slots.free()

    # --- background upkeep -----------------------------------------------------------------

    def sweep(self, now: float) -> float:
        """Expire overdue phases and idle connections (run by the client's sweeper task).
        Returns the smallest sweeper tick the exchanges in progress ask for (inf: none)."""
        tick = float("inf")
        for group in (self.active, self.connecting):
            for conn in [c for c in group if c.deadline <= now]:
                conn.expire()
            for conn in group:
                if conn.tick < tick:
                    tick = conn.tick
        if self.idle_timeout is not None:
            limit = now - self.idle_timeout
            idle = self.idle
            while idle and idle[0].idle_since <= limit:
                self.close(idle[0], "idle_expired")
        return tick

    @property
    def is_empty(self) -> bool:
        return not (self.idle or self.active or self.connecting)

    def exchanges(self) -> list[Exchange]:
        """The exchanges carried by this pool's connections now (for the client's shutdown)."""
        return [
            conn.exchange
            for group in (self.active, self.connecting)
            for conn in group
            if conn.exchange is not None
        ]

    def close_all(self) -> None:
        """Close every connection (client shutdown). Exchanges were ended by the client."""
        for group in (self.active, self.connecting):
            for conn in list(group):
                self.close(conn, "shutdown")
        while self.idle:
            self.close(self.idle[0], "shutdown")
