"""The client: endpoints, fan-out permits, and the life of one exchange.

Ownership: ``Client`` -> its nursery (background tasks) and one ``EndpointPool`` per endpoint
-> ``Connection`` objects. Nothing the client creates outlives its ``async with`` block.

The life of an exchange (``_open``):

1. pick the endpoint (round-robin), build the request bytes' ingredients;
2. wait for a permit (FIFO; ``Timeouts.pool``);
3. inside ``try``: check out a connection (pooled, or connect; may wait for a slot);
4. send, receive until the response head is complete. A *reused* connection that fails
   before any response byte arrived was closed by the server while idle (the stale keepalive
   race); it is replaced by a fresh connection once, without counting as a failure;
5. ``request()`` reads the body to its end; ``stream()`` hands the response to the caller,
   who reads it. At the end of the body the connection is checked in (or closed) and then
   the permit is returned; on any interruption the connection is closed and the permit
   returned.
"""

from __future__ import annotations

import functools
import itertools
import math
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Self

import trio
from trio.lowlevel import enable_ki_protection

from ._background import Background, sweep_tick
from ._budget import ConnectionBudget, budget_for
from ._config import UNSET, Unset
from ._endpoint import Endpoint
from ._errors import InvalidRequest, TotalTimeout, UsageError
from ._exchange import Exchange, ExchangeContext
from ._keepalive import KeepAlive
from ._kserve import KServeAPI
from ._nursery import open_background_nursery
from ._openai import OpenAIAPI
from ._pool import ConnectionSlots, EndpointPool
from ._prepare import base_headers, prepare_request
from ._response import Response
from ._retry import Retry
from ._settings import resolve_settings
from ._sources import SourceRotation, check_bindable, plan_routes
from ._stats import ClientStats, EndpointStats, SourceStats
from ._timeouts import Timeouts

__all__ = ["Client"]


def _source_stats(pool: EndpointPool) -> tuple[SourceStats, ...]:
    counts: dict[str, list[int]] = {}
    for column, group in enumerate((pool.idle, pool.active, pool.connecting)):
        for conn in group:
            counts.setdefault(conn.source or "", [0, 0, 0])[column] += 1
    return tuple(SourceStats(address, *c) for address, c in sorted(counts.items()))


class Client:
    """A trio-native HTTP/1.1 client for one or more inference server endpoints.

    Use it as ``async with Client([...]) as client:``. Entering resolves every endpoint's host
    name once and starts the client's background task (the sweeper that enforces phase
    timeouts and idle expiry) in a nursery the client owns. Leaving closes every connection,
    returns every permit still held, and cancels the background task; nothing outlives the
    block.

    Args:
        endpoints: one base URL, or several (see ``parse_endpoint`` for the accepted forms).
            Requests go to them round-robin, each endpoint with its own pool.
        limiter: the fan-out bound. An ``int`` creates this client's own
            ``trio.CapacityLimiter``; pass a ``trio.CapacityLimiter`` to share one pool of
            permits among several clients or jobs. A permit covers one network exchange.
        max_connections: cap on open connections across all endpoints. ``None`` (default)
            resolves on entry to the connection budget (:func:`connection_budget`: ephemeral
            ports per source/destination pair times the pairs, or the file-descriptor budget,
            whichever is smaller). A value above that budget is a :class:`ConfigError` on
            entry, naming the limit that binds and the fix.
        max_connections_per_endpoint: cap on open connections to each endpoint (``None``:
            only ``max_connections``), checked on entry against that endpoint's own
            (source, destination) pairs.
        source_addresses: local IP addresses new connections bind to, round-robin per
            destination; each one multiplies the ephemeral-port budget. Blank entries are
            dropped and duplicates removed; each must be an IP literal this host can bind
            (checked on entry). Empty (default): the OS picks, nothing is bound.
        timeouts: per-phase time limits (:class:`Timeouts`).
        headers: headers sent with every request; per-call headers override them by name.
        parser: ``"httptools"`` (default; falls back to ``"h11"`` when httptools cannot be
            imported) or ``"h11"``.
        ssl_context: the ``ssl.SSLContext`` for https endpoints. The default verifies
            certificates against the system store.
        keepalive: the connection reuse policy (:class:`KeepAlive`): ``on`` (default),
            ``off`` or ``recycle``.
        endpoint_keepalive: per-endpoint overrides of ``keepalive``, keyed by endpoint (in
            any spelling ``endpoints`` accepts).
        worker_header: a response header that names the server worker (process) that
            answered, e.g. ``"x-worker-id"``; when set, requests are counted per worker per
            endpoint (``EndpointStats.workers``). Off by default.
        worker_interval: the window, in seconds, for ``EndpointStats.workers_active``.
        retry: how transient failures are retried (:class:`Retry`; default ``Retry()``: 3
            attempts, backoff 0.1 s doubling, full jitter, statuses 429/502/503/504). Retries
            run inside the call's permit. ``Retry.disabled()`` raises failures as they come.
        retry_non_idempotent: also retry requests that may have reached the server when
            their method is not idempotent (POST, PATCH). Inference POSTs usually may be.
        max_header_bytes: the largest response head accepted (``ResponseTooLarge`` beyond).
        max_body_bytes: the largest body :meth:`request` reads into memory (``None``: no
            limit); streaming calls read as the caller goes and are not limited.
        stats_interval: seconds between structured statistics lines logged (INFO) to the
            ``trio_infer`` logger by a task in the client's nursery; ``None``: none.
        tcp_quickack: acknowledge a partly received response at once (Linux
            ``TCP_QUICKACK``), so a server that leaves Nagle's algorithm on cannot stall the
            rest of it for the 40 ms of a delayed acknowledgement. ``uvicorn --workers N``
            is such a server (``docs/keepalive.md``). ``False`` behaves like most clients.
    """

    def __init__(
        self,
        endpoints: str | Endpoint | Sequence[str | Endpoint] | Unset = UNSET,
        *,
        limiter: int | trio.CapacityLimiter | Unset = UNSET,
        max_connections: int | Unset | None = UNSET,
        timeouts: Timeouts | Unset | None = UNSET,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | Unset | None = UNSET,
        parser: str | Unset = UNSET,
        ssl_context: ssl.SSLContext | Unset | None = UNSET,
        keepalive: KeepAlive | Unset | None = UNSET,
        max_connections_per_endpoint: int | Unset | None = UNSET,
        source_addresses: str | Sequence[str] | Unset = UNSET,
        endpoint_keepalive: Mapping[str | Endpoint, KeepAlive] | Unset | None = UNSET,
        worker_header: str | Unset | None = UNSET,
        worker_interval: float | Unset = UNSET,
        tcp_quickack: bool | Unset = UNSET,
        retry: Retry | Unset | None = UNSET,
        retry_non_idempotent: bool | Unset = UNSET,
        max_header_bytes: int | Unset = UNSET,
        max_body_bytes: int | Unset | None = UNSET,
        stats_interval: float | Unset | None = UNSET,
    ) -> None:
        given = {
            "endpoints": endpoints,
            "limiter": limiter,
            "max_connections": max_connections,
            "timeouts": timeouts,
            "headers": headers,
            "parser": parser,
            "ssl_context": ssl_context,
            "keepalive": keepalive,
            "max_connections_per_endpoint": max_connections_per_endpoint,
            "source_addresses": source_addresses,
            "endpoint_keepalive": endpoint_keepalive,
            "worker_header": worker_header,
            "worker_interval": worker_interval,
            "tcp_quickack": tcp_quickack,
            "retry": retry,
            "retry_non_idempotent": retry_non_idempotent,
            "max_header_bytes": max_header_bytes,
            "max_body_bytes": max_body_bytes,
            "stats_interval": stats_interval,
        }
        #: the configuration, resolved and validated (a frozen value)
        self.settings = settings = resolve_settings(given)
        self.endpoints = settings.endpoints
        self.limiter = settings.limiter
        #: the cap on open connections, resolved on entry (see ``max_connections`` above)
        self.max_connections: int | None = settings.max_connections
        self.max_connections_per_endpoint = settings.max_connections_per_endpoint
        self.source_addresses = settings.source_addresses
        #: the connection budget, computed on entry
        self.budget: ConnectionBudget | None = None
        self.timeouts = settings.timeouts
        self.keepalive = settings.keepalive
        self.retry = settings.retry
        self.retry_non_idempotent = settings.retry_non_idempotent
        self.max_header_bytes = settings.max_header_bytes
        self.max_body_bytes = settings.max_body_bytes
        self.stats_interval = settings.stats_interval
        #: the response header naming the server worker that answered (None: not tracked)
        self.worker_header = settings.worker_header
        self.worker_interval = settings.worker_interval
        self.parser = settings.parser
        self._slots = ConnectionSlots(settings.max_connections or 1)
        self._pools: list[EndpointPool] = []
        for endpoint in settings.endpoints:
            policy = settings.keepalive_for(endpoint)
            pool = EndpointPool(
                endpoint,
                slots=self._slots,
                parser=self.parser,
                ssl_context=settings.ssl_context if endpoint.scheme == "https" else None,
                keepalive=policy,
                on_connection_opened=self._wake_sweeper,
            )
            pool.worker_header = self.worker_header
            pool.quickack = settings.tcp_quickack
            pool.max_header_bytes = self.max_header_bytes
            pool.base_headers = base_headers(
                endpoint, list(settings.headers), close=policy.mode == "off"
            )
            self._pools.append(pool)
        self._slots.pools = self._pools
        self._next_pool = itertools.cycle(self._pools).__next__
        self._tick = sweep_tick(settings.timeouts)
        self._ctx = ExchangeContext(self.limiter, self.max_header_bytes, self.max_body_bytes)
        self._background = Background(
            self._pools,
            trio.current_time,
            lambda: self.stats().summary(),
            self.stats_interval,
            self._tick,
        )
        self._exit_stack: AsyncExitStack | None = None
        self._now: Callable[[], float] = trio.current_time
        self._state = "new"

    def _wake_sweeper(self) -> None:
        self._background.wake()

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise UsageError(f"this Client is {self._state}; a Client can be entered once")
        self._state = "open"
        # Bind the run's clock once: trio.current_time() looks the runner up on every call,
        # and an exchange reads the clock half a dozen times.
        now = self._now = self._ctx.now = trio.lowlevel.current_clock().current_time
        self._background.now = now
        for pool in self._pools:
            pool.now = now
        stack = AsyncExitStack()
        try:
            nursery = await stack.enter_async_context(open_background_nursery())
            stack.callback(self.close)
            await self._plan_connections()
            await nursery.start(self._background.run)
        except BaseException:
            self.close()
            await stack.aclose()
            raise
        self._exit_stack = stack
        return self

    async def _plan_connections(self) -> None:
        """Resolve every endpoint once, check the source addresses, and size the budget."""
        sources = self.source_addresses
        check_bindable(sources)
        resolved = {pool.endpoint: await pool.resolve() for pool in self._pools}
        routes = plan_routes(resolved, sources)
        destinations = [d for ds in routes.values() for d in ds]
        budget = self.budget = budget_for(destinations, sources)
        requested = self.settings.max_connections
        if requested is None:
            if budget.max_connections < 1:
                budget.check(1)  # raises, saying which limit is zero and the fix
            limit = budget.max_connections
        else:
            budget.check(requested)
            limit = requested
        self.max_connections = self._slots.limit = limit
        rotations = SourceRotation.for_destinations(destinations, sources) if sources else {}
        per_endpoint = self.max_connections_per_endpoint
        for pool in self._pools:
            if per_endpoint is not None:
                budget.check_endpoint(pool.url, routes[pool.endpoint], per_endpoint)
                pool.limit = per_endpoint
            pool.ports_per_pair = budget.ports_per_pair
            pool.set_routes(routes[pool.endpoint], rotations)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    @enable_ki_protection
    def close(self) -> None:
        """Close the client: every connection is closed, every permit it holds returned, and
        the background tasks stopped (leaving the ``async with`` block does this).

        Synchronous, so it completes even under cancellation, and safe to call inside the
        block: the block's body is not cancelled. Every exchange in progress, and every call
        waiting for a permit, a connection or a retry's backoff, fails with
        :class:`ClientClosed`; so does every later call, before anything is sent.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        ctx = self._ctx
        ctx.closed = True
        self._slots.closed = True  # free slots are handed to nobody any more
        for exchange in list(ctx.waiting):
            exchange.abort(None)
        for pool in self._pools:
            for exchange in pool.exchanges():
                exchange.abort(None)
            pool.close_all()
        self._background.stop()

    # --- requests --------------------------------------------------------------------------

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        content: bytes | bytearray | memoryview | None,
        json: Any,
        timeouts: Timeouts | None,
        retry: Retry | None,
        retry_non_idempotent: bool | None,
    ) -> Exchange:
        if self._state == "new":
            raise UsageError("use the client inside 'async with Client(...) as client:'")
        # (a closed client: Exchange.open raises ClientClosed, before anything is sent)
        pool = self._next_pool()
        raw_method, target, request_headers, body = prepare_request(
            method,
            path,
            base_path=pool.base_path,
            base_headers=pool.base_headers,
            params=params,
            headers=headers,
            content=content,
            json=json,
        )
        tick = self._tick
        if timeouts is None:
            t = self.timeouts
        elif isinstance(timeouts, Timeouts):
            t = timeouts
            tick = sweep_tick(t)
            if tick < self._tick:
                self._background.hurry(tick)
        else:
            raise InvalidRequest(f"timeouts={timeouts!r} must be a trio_infer.Timeouts")
        if retry is None:
            retry = self.retry
        elif not isinstance(retry, Retry):
            raise InvalidRequest(f"retry={retry!r} must be a trio_infer.Retry")
        unsafe = (
            self.retry_non_idempotent
            if retry_non_idempotent is None
            else bool(retry_non_idempotent)
        )
        return Exchange(
            self._ctx, pool, raw_method, target, request_headers, body, t, retry, unsafe, tick
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | bytearray | memoryview | None = None,
        json: Any = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        retry_non_idempotent: bool | None = None,
    ) -> Response:
        """Send a request and read the whole response.

        The permit is held from before the connection is checked out until the last byte of
        the body; when this returns, the connection is pooled (or closed) and the permit is
        back. Cancellation at any point closes the connection and returns the permit.
        A 4xx/5xx status is a normal response: call ``raise_for_status()`` to raise.
        ``retry``, ``retry_non_idempotent`` and ``timeouts`` override the client's for this
        call; ``Timeouts.total`` bounds every attempt and backoff together. A request that
        may have reached the server is re-sent only when that is safe (``_exchange.py``);
        otherwise :class:`RequestMayHaveBeenProcessed` says so.
        """
        exchange = self._exchange(
            method, path, params, headers, content, json, timeouts, retry, retry_non_idempotent
        )
        total = exchange.timeouts.total
        if total is None:
            response = await exchange.open()
            await response._receive_all(self.max_body_bytes, "max_body_bytes")
            return response
        with trio.move_on_after(total):
            response = await exchange.open()
            await response._receive_all(self.max_body_bytes, "max_body_bytes")
            return response
        raise self._total_timeout(method, path, exchange)

    @staticmethod
    def _total_timeout(method: str, path: str, exchange: Exchange) -> TotalTimeout:
        """The call ran out of ``Timeouts.total``: a failure of the call, with its attempts."""
        error = TotalTimeout(
            f"{method} {path} did not complete within the total timeout of "
            f"{exchange.timeouts.total}s",
            endpoint=exchange.pool.url,
            phase="total",
        )
        exchange.pool.count_failure(error)
        exchange.add_attempts(error)
        return error

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | bytearray | memoryview | None = None,
        json: Any = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        retry_non_idempotent: bool | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response as soon as its head has arrived.

        Read the body inside the block (``aiter_sse``, ``aiter_lines``, ``aiter_bytes``,
        ``aread``). The permit and the connection are held until the body ends; leaving the
        block before the body has arrived (``break``, exception, cancellation) closes the
        connection and returns the permit. ``Timeouts.total`` bounds the whole block, the
        caller's work in it included. Failures before the head arrives are retried as in
        :meth:`request`; once the response is handed to the caller nothing is retried.
        """
        exchange = self._exchange(
            method, path, params, headers, content, json, timeouts, retry, retry_non_idempotent
        )
        total = exchange.timeouts.total
        with trio.CancelScope(
            deadline=trio.current_time() + total if total is not None else math.inf
        ) as scope:
            response = await exchange.open()
            try:
                yield response
            finally:
                response.close()
        if scope.cancelled_caught:
            raise self._total_timeout(method, path, exchange)

    @functools.cached_property
    def openai(self) -> OpenAIAPI:
        """The OpenAI-compatible API over this client's endpoints (``_openai.py``)."""
        return OpenAIAPI(self)

    @functools.cached_property
    def kserve(self) -> KServeAPI:
        """The KServe v2 / Triton REST API over this client's endpoints (``_kserve.py``)."""
        return KServeAPI(self)

    # --- statistics ------------------------------------------------------------------------

    def stats(self) -> ClientStats:
        """A frozen snapshot of every pool and of the limiter (cheap: no I/O, no awaits)."""
        now = self._now()
        endpoints = tuple(
            EndpointStats(
                endpoint=pool.url,
                idle=len(pool.idle),
                active=len(pool.active),
                connecting=len(pool.connecting),
                waiting_for_permit=pool.waiting_for_permit,
                waiting_for_connection=pool.waiting_for_connection,
                opened=pool.opened,
                reused=pool.reused,
                stale_retries=pool.stale_retries,
                closed=tuple(sorted(pool.closed.items())),
                responses=pool.responses,
                failures=pool.failures,
                retries=pool.retries,
                ports_exhausted=pool.ports_exhausted,
                fds_exhausted=pool.fds_exhausted,
                workers=tuple(
                    sorted(pool.worker_requests.items(), key=lambda item: (-item[1], item[0]))
                ),
                workers_active=sum(
                    1 for at in pool.worker_last_seen.values() if at > now - self.worker_interval
                ),
                untagged_responses=pool.untagged_responses,
                responses_by_class=tuple((f"{i}xx", pool.status_counts[i]) for i in range(1, 6)),
                errors=tuple(sorted(pool.errors.items())),
                bytes_sent=pool.bytes_sent,
                bytes_received=pool.bytes_received,
                sources=_source_stats(pool) if pool.has_sources else (),
            )
            for pool in self._pools
        )
        limiter = self.limiter.statistics()
        return ClientStats(
            endpoints=endpoints,
            permits_in_use=limiter.borrowed_tokens,
            permits_total=int(limiter.total_tokens),
            tasks_waiting_for_permit=limiter.tasks_waiting,
            open_connections=self._slots.used,
            max_connections=self._slots.limit,
        )

    def __repr__(self) -> str:
        urls = ", ".join(pool.url for pool in self._pools)
        return f"<trio_infer.Client [{urls}] {self._state}>"
