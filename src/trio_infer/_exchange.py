"""The exchange: one permit, one connection, one request and its response.

Theory of operation
-------------------
An :class:`Exchange` is created for each call (``Client.request`` / ``Client.stream``) and
owns everything the call holds: a token of the fan-out limiter (*the permit*), borrowed on
behalf of the exchange object itself, and the connection carrying the request. It runs the
retry and stale-connection rules, and it ends in exactly one of two ways:

* :meth:`Exchange.finish`: the response was read to its end. The connection is checked in
  (or closed, if it may not be reused), then the permit is returned, so the next permit
  holder finds the connection idle.
* :meth:`Exchange.abort`: anything else (an error, cancellation, a stream closed early, the
  client closing). The connection is closed, never pooled, and the permit is returned.

Both are synchronous, idempotent (the first one wins; every later call of either does nothing)
and protected from ``KeyboardInterrupt``, so the paths that race to end an exchange (the body
ending, the caller's block exiting, another task closing the stream, the client shutting down)
cannot leak or double-release anything. :class:`~trio_infer.Response` delegates to it.

The permit
----------
1. It is taken on behalf of the exchange, not of the task, so whichever task ends the
   exchange gives it back.
2. Taking is FIFO (``trio.CapacityLimiter`` wakes waiters in arrival order; a permit free on
   arrival is taken without a checkpoint only when nobody is queued).
3. Between the permit being granted and the ``try`` whose handler aborts the exchange there
   is no checkpoint (the gap of httpcore issue #1093).
4. It covers only the network exchange: waiting for a connection, connecting, sending,
   receiving, and a retry's backoff; never the caller's own work after ``request()`` returns.

Re-sending
----------
A request is sent again only when that cannot make the server act twice, or the caller said
it may (``retry_non_idempotent=True``, or an ``Idempotency-Key`` header):

* a connection that could not be established, or a request none of whose bytes the kernel
  accepted: nothing reached the server, any method;
* a *reused* connection that failed before any byte of the response (the server closed it
  while idle, the stale keep-alive race): once, on a fresh connection, without counting
  against ``Retry.attempts``; only for a replayable request, because the server may have read
  it before closing. Otherwise :class:`RequestMayHaveBeenProcessed` is raised;
* the failures and statuses ``Retry`` lists (``_retry.py``), while attempts remain.

Every re-send is recorded as an :class:`~trio_infer.Attempt` and counted (``retries``, or
``stale_retries`` for the stale race).

Closing the client
------------------
A closed client opens nothing. Every wait of an exchange (for the permit, for a connection,
a backoff) runs in a cancel scope registered with the client (:meth:`interruptible`), and
connections carry their exchange, so :meth:`Client.close` can abort every exchange at once;
each then fails with :class:`~trio_infer.ClientClosed`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, final

import trio
from trio.lowlevel import enable_ki_protection

from ._errors import (
    ClientClosed,
    Error,
    PoolTimeout,
    ReadError,
    RequestMayHaveBeenProcessed,
    ResponseTooLarge,
    StreamClosed,
    TransportError,
    UsageError,
    WriteError,
)
from ._headers import Headers
from ._response import Response
from ._retry import IDEMPOTENT_METHODS, Attempt, Retry, is_transient, parse_retry_after

if TYPE_CHECKING:
    from ._http11 import Connection
    from ._pool import EndpointPool
    from ._state import CloseReason, Phase
    from ._timeouts import Timeouts

__all__ = ["Exchange", "ExchangeContext"]

_INF: Final = math.inf
_CLOSE: Final = (b"connection", b"close")
#: body bytes read from a response that is retried before its connection is closed instead
_SET_ASIDE_BODY: Final = 65536
#: bytes a stream closed before its end may still read without waiting, to reuse its connection
_DRAIN_ON_CLOSE: Final = 65536
_IDEMPOTENCY_KEYS: Final = frozenset({b"idempotency-key", b"x-idempotency-key"})


class _State(enum.Enum):
    OPEN = "open"
    FINISHED = "finished"
    ABORTED = "aborted"


_OPEN: Final = _State.OPEN
_FINISHED: Final = _State.FINISHED
_ABORTED: Final = _State.ABORTED


@final
class ExchangeContext:
    """What a client's exchanges share: its limiter, limits and clock, and the registry
    through which closing the client reaches every exchange that is waiting."""

    __slots__ = ("closed", "limiter", "max_body_bytes", "max_header_bytes", "now", "waiting")

    def __init__(
        self,
        limiter: trio.CapacityLimiter,
        max_header_bytes: int,
        max_body_bytes: int | None,
    ) -> None:
        self.limiter = limiter
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.now: Callable[[], float] = trio.current_time
        #: exchanges inside a wait (permit, connection slot, backoff) right now
        self.waiting: set[Exchange] = set()
        #: the client is closed: nothing may start, and nothing waiting may go on
        self.closed = False


@final
class Exchange:
    """One call's permit, connection, request and response (see the module docstring)."""

    __slots__ = (
        "_scope",
        "_state",
        "attempt_start",
        "attempts",
        "body",
        "conn",
        "connected",
        "ctx",
        "end",
        "first_byte",
        "headers",
        "held",
        "method",
        "permitted",
        "pool",
        "reading",
        "retry",
        "sent",
        "start",
        "target",
        "tick",
        "timeouts",
        "unsafe",
    )

    def __init__(
        self,
        ctx: ExchangeContext,
        pool: EndpointPool,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Timeouts,
        retry: Retry,
        retry_non_idempotent: bool,
        tick: float,
    ) -> None:
        self.ctx = ctx
        self.pool = pool
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.timeouts = timeouts
        self.retry = retry
        self.unsafe = retry_non_idempotent
        #: the sweeper tick this exchange's phase limits need
        self.tick = tick
        self.conn: Connection | None = None
        self.held = False
        #: a task is inside a receive on the connection right now
        self.reading = False
        self._state = _OPEN
        self._scope: trio.CancelScope | None = None
        self.attempts: list[Attempt] | None = None  # only a call that re-sends pays for it
        self.start = self.permitted = self.connected = self.sent = self.attempt_start = 0.0
        self.first_byte = 0.0
        self.end: float | None = None

    # --- the two ways to end ---------------------------------------------------------------

    @enable_ki_protection
    def finish(self) -> None:
        """The response was read to its end: pool (or close) the connection, then return the
        permit. Idempotent; does nothing once the exchange has ended either way."""
        if self._state is not _OPEN:
            return
        self._state = _FINISHED
        conn, self.conn = self.conn, None
        pool = self.pool
        if conn is not None:
            codec = conn.codec
            codec.body.clear()  # the codec reuses its list; an idle connection must not pin it
            self.end = end = conn.last_receive_at
            pool.responses += 1
            pool.status_counts[codec.status // 100] += 1
            pool.finish(conn, end)
        self._release_permit()

    @enable_ki_protection
    def abort(self, exc: BaseException | None) -> None:
        """End the exchange early: close its connection, return the permit, and wake its
        task if it is waiting. ``exc`` is why (an ``Exception`` counts as a failure;
        cancellation, or ``None`` for a caller that closed the stream or a client that
        closed, as an interruption). Idempotent."""
        if self._state is not _OPEN:
            return
        self._state = _ABORTED
        pool = self.pool
        failed = isinstance(exc, Exception) and not isinstance(exc, ClientClosed)
        if failed:
            pool.count_failure(exc)  # type: ignore[arg-type]
        conn, self.conn = self.conn, None
        if conn is not None:
            pool.bytes_received += conn.codec.received
            pool.close(
                conn,
                "shutdown" if self.ctx.closed else "error" if failed else "interrupted",
            )
        if self._scope is not None:
            self._scope.cancel()
        self._release_permit()

    @enable_ki_protection
    def close(self) -> None:
        """The caller is done with the response: a body that has fully arrived ends the
        exchange cleanly (the connection is reused), anything else aborts it."""
        conn = self.conn
        # While a reader is inside a receive, the connection is its: pooling it under the
        # reader would hand the socket to the next call while the reader still waits on it.
        if conn is not None and self._state is _OPEN and not self.reading:
            codec = conn.codec
            if not codec.done:
                conn.drain_nowait(_DRAIN_ON_CLOSE)
            if codec.done and codec.headers_done:
                self.finish()
                return
        self.abort(None)

    def _end_with(self, exc: BaseException) -> None:
        """A read failed: abort, or, when the exchange was already ended by someone else
        (the socket closed under the read), raise why it was ended instead of the symptom."""
        if (
            self._state is _ABORTED
            and isinstance(exc, Exception)
            and not isinstance(exc, ClientClosed)
        ):
            raise self._ended_error() from exc
        self.abort(exc)

    @property
    def is_open(self) -> bool:
        return self._state is _OPEN

    def check_open(self) -> None:
        """Raise the typed error of an exchange that was ended by someone else (the client
        closing, another task closing the stream)."""
        if self._state is _ABORTED or self.ctx.closed:
            raise self._ended_error()

    def _ended_error(self) -> Error:
        if self.ctx.closed:
            return ClientClosed(
                "the client was closed", endpoint=self.pool.url, phase=self._phase()
            )
        return StreamClosed("the response was closed", endpoint=self.pool.url, phase="read")

    def _phase(self) -> Phase:
        conn = self.conn
        if conn is not None:
            return conn.phase
        return "pool" if not self.sent else "read"

    def _release_permit(self) -> None:
        if self.held:
            self.held = False
            self.ctx.limiter.release_on_behalf_of(self)

    @contextmanager
    def interruptible(self, deadline: float = _INF) -> Iterator[trio.CancelScope]:
        """A cancel scope around one wait that closing the client (or aborting the exchange)
        cuts short. After it, the caller runs :meth:`check_open`."""
        scope = trio.CancelScope(deadline=deadline)
        waiting = self.ctx.waiting
        self._scope = scope
        waiting.add(self)
        try:
            with scope:
                yield scope
        finally:
            waiting.discard(self)
            self._scope = None

    # --- opening: permit, connection, request, response head -----------------------------

    async def open(self) -> Response:
        """Take the permit and run the attempts until a response head is final (or raise,
        with everything released). On return the exchange holds the permit and the
        connection, and the caller reads the body (:meth:`read_to_end`, :meth:`receive`)."""
        ctx = self.ctx
        if ctx.closed:
            raise ClientClosed(
                "the client is closed; make calls inside its 'async with' block",
                endpoint=self.pool.url,
                phase="pool",
            )
        self.start = self.permitted = ctx.now()
        try:
            ctx.limiter.acquire_on_behalf_of_nowait(self)
        except trio.WouldBlock:
            await self._wait_for_permit()
        else:
            self.held = True
        try:
            await self._attempts()
            return self._response()
        except BaseException as exc:
            try:
                self._end_with(exc)
            except Error as ended:  # ended by someone else: that is the error, not the symptom
                self.add_attempts(ended)
                raise
            if isinstance(exc, Error):
                self.add_attempts(exc)
            raise

    def add_attempts(self, error: Error) -> None:
        """Put every attempt, the failed last one included, on an error of a call that
        re-sent its request."""
        if self.attempts is not None and not error.attempts:
            error.attempts = (
                *self.attempts,
                Attempt(
                    len(self.attempts) + 1, f"{type(error).__name__}: {error}", self.attempt_start
                ),
            )

    async def _wait_for_permit(self) -> None:
        pool = self.pool
        t = self.timeouts
        deadline = self.start + t.pool if t.pool is not None else _INF
        pool.waiting_for_permit += 1
        try:
            with self.interruptible(deadline):
                await self.ctx.limiter.acquire_on_behalf_of(self)
                self.held = True
        finally:
            pool.waiting_for_permit -= 1
        if self._state is not _OPEN or self.ctx.closed:
            # Granted and closed in the same instant: the grant is ours to give back.
            self._release_permit()
            raise self._ended_error()
        if not self.held:
            limiter = self.ctx.limiter
            error = PoolTimeout(
                f"no permit within the pool timeout of {t.pool}s "
                f"({limiter.borrowed_tokens}/{limiter.total_tokens} in use)",
                endpoint=pool.url,
                phase="pool",
            )
            self.abort(error)  # counted as a failure, as a wait for a connection is
            raise error
        self.permitted = self.ctx.now()

    async def _attempts(self) -> None:
        pool = self.pool
        retry = self.retry
        now = self.ctx.now
        attempt_start = self.attempt_start = self.permitted
        tries = 1  # attempts counted against Retry.attempts (stale re-sends are not)
        fresh = False
        while True:
            conn = None
            try:
                conn = await self._checkout(attempt_start, fresh)
                await self._send_and_receive_head(conn)
            except TransportError as exc:
                self.check_open()  # ended by someone else: that, not the symptom, is the error
                outcome = f"{type(exc).__name__}: {exc}"
                if conn is not None and self._is_stale(conn, exc) and not fresh:
                    if not (self._replayable() or self._nothing_sent(conn, exc)):
                        raise self._may_have_been_processed(exc) from exc
                    self._drop(conn, "server_close")
                    pool.stale_retries += 1
                    self._record(outcome, attempt_start, 0.0)
                    attempt_start = self.attempt_start = now()
                    fresh = True  # the replacement is new: a failure on it is raised
                    continue
                received = conn.codec.received if conn is not None else 0
                safe = self.unsafe or self._replayable() or self._nothing_sent(conn, exc)
                if tries >= retry.attempts or not is_transient(exc, received, self.method, safe):
                    if self._request_was_sent(conn, exc) and not safe:
                        raise self._may_have_been_processed(exc) from exc
                    raise
                if conn is not None:
                    self._drop(conn, "error")
                retry_after = None
            else:
                status = conn.codec.status
                if (
                    status not in retry.statuses
                    or tries >= retry.attempts
                    or not (self.unsafe or self._replayable())
                ):
                    return
                outcome = f"status {status}"
                retry_after = parse_retry_after(Headers(conn.codec.headers).get("retry-after"))
                await self._set_aside(conn)
            delay = retry.delay(tries, retry_after)
            self._record(outcome, attempt_start, delay)
            pool.retries += 1
            with self.interruptible():
                await trio.sleep(delay)
            self.check_open()
            tries += 1
            fresh = False
            attempt_start = self.attempt_start = now()

    async def _checkout(self, attempt_start: float, fresh: bool) -> Connection:
        pool = self.pool
        conn = None if fresh or pool.slots.waiters else pool.take_idle()
        if conn is None:
            t = self.timeouts
            deadline = attempt_start + t.pool if t.pool is not None else _INF
            while True:
                conn = await pool.checkout(self, t.connect, deadline, fresh=fresh)
                # A pooled connection handed over while we waited was checked then; the
                # server may have written or closed since. Nothing awaits between this
                # check and the send.
                if not conn.requests or not conn.has_expired():
                    break
                pool.close(conn, "server_close")
        conn.exchange = self
        conn.tick = self.tick
        self.conn = conn
        self.check_open()
        return conn

    async def _send_and_receive_head(self, conn: Connection) -> None:
        pool = self.pool
        now = self.ctx.now
        codec = conn.codec
        headers = self.headers
        max_requests = pool.max_requests
        if max_requests is not None and conn.requests + 1 >= max_requests:
            # recycle: the connection's last exchange asks the server to close
            headers = [*headers, _CLOSE]
            conn.last_by_policy = True
        self.connected = now()
        data = conn.start(self.method, self.target, headers, self.body)
        pool.bytes_sent += len(data)
        await conn.send_request(data, self.timeouts.write)
        self.sent = now()
        read = self.timeouts.read
        max_head = self.ctx.max_header_bytes
        while not codec.headers_done:
            await conn.pump(read)
            if codec.received > max_head and not codec.headers_done:
                raise self._too_large("head", max_head)
        if codec.head_size > max_head:
            raise self._too_large("head", max_head)

    async def _set_aside(self, conn: Connection) -> None:
        """A response that will be retried: read its (small) body so the connection can be
        reused, or close it; the permit stays with the call. Not a response of the call:
        it is counted in ``retries``, not ``responses``."""
        codec = conn.codec
        limit = codec.received + _SET_ASIDE_BODY
        try:
            while not codec.done and codec.received < limit:
                await conn.pump(self.timeouts.read)
        except TransportError:
            # The status decided the retry; a body cut short only costs the connection.
            self.check_open()
            self._drop(conn, "error")
            return
        codec.body.clear()
        self.conn = None
        self.pool.finish(conn, conn.last_receive_at)  # an unfinished codec is not keep-alive

    def _drop(self, conn: Connection, reason: CloseReason) -> None:
        self.conn = None
        self.pool.bytes_received += conn.codec.received
        self.pool.close(conn, reason)

    def _record(self, outcome: str, started: float, delay: float) -> None:
        if self.attempts is None:
            self.attempts = []
        self.attempts.append(Attempt(len(self.attempts) + 1, outcome, started, delay))

    # --- the re-send rules -----------------------------------------------------------------

    def _replayable(self) -> bool:
        """May this request be sent twice? Idempotent methods, an opt-in, or an
        Idempotency-Key header (the server deduplicates), as Go's net/http decides."""
        if self.unsafe or self.method in IDEMPOTENT_METHODS:
            return True
        return any(name in _IDEMPOTENCY_KEYS for name, _ in self.headers)

    @staticmethod
    def _is_stale(conn: Connection, exc: TransportError) -> bool:
        """The stale keep-alive race: a reused connection failed before any response byte."""
        return (
            conn.requests > 1
            and conn.codec.received == 0
            and conn.expired is None
            and isinstance(exc, ReadError | WriteError)
            and not isinstance(exc, StreamClosed)
        )

    @staticmethod
    def _nothing_sent(conn: Connection | None, exc: TransportError) -> bool:
        return conn is not None and isinstance(exc, WriteError) and conn.sent_bytes == 0

    @staticmethod
    def _request_was_sent(conn: Connection | None, exc: TransportError) -> bool:
        return (
            conn is not None
            and conn.codec.received == 0
            and isinstance(exc, ReadError)
            and not isinstance(exc, StreamClosed | ResponseTooLarge)
            and conn.expired is None
        )

    def _may_have_been_processed(self, exc: TransportError) -> RequestMayHaveBeenProcessed:
        method = self.method.decode("ascii", "replace")
        return RequestMayHaveBeenProcessed(
            f"{exc.detail}; the {method} request was sent and may have been "
            f"processed by the server, so it was not re-sent (re-send it yourself if that is "
            f"safe, or allow it: retry_non_idempotent=True or an Idempotency-Key header)",
            endpoint=self.pool.url,
            phase=exc.phase,
        )

    # --- the response ----------------------------------------------------------------------

    def _response(self) -> Response:
        conn = self.conn
        assert conn is not None
        codec = conn.codec
        pool = self.pool
        self.first_byte = conn.first_byte_at
        if pool.worker_header is not None:
            pool.count_worker(codec.headers, conn.first_byte_at)
        if self.attempts is not None:
            self.attempts.append(
                Attempt(len(self.attempts) + 1, f"status {codec.status}", self.attempt_start)
            )
        return Response(self, codec.status, codec.reason, codec.http_version, codec.headers)

    async def read_to_end(self, max_bytes: int | None, knob: str = "max_body_bytes") -> bytes:
        """Read the rest of the body, end the exchange cleanly, and return the body.
        A body past ``max_bytes`` (counted from its first byte, including what arrived
        with the head) aborts the exchange with :class:`ResponseTooLarge`."""
        conn = self.conn
        if conn is None:
            raise self._ended_error()
        codec = conn.codec
        chunks = codec.body
        read = self.timeouts.read
        self.reading = True
        try:
            if max_bytes is None:
                while not codec.done:
                    await conn.pump(read)
            else:
                size = counted = 0
                while True:
                    while counted < len(chunks):
                        size += len(chunks[counted])
                        counted += 1
                    if size > max_bytes:
                        raise self._too_large("body", max_bytes, knob)
                    if codec.done:
                        break
                    await conn.pump(read)
            self.check_open()  # closed by another task while the last chunk came in
        except BaseException as exc:
            self._end_with(exc)
            raise
        finally:
            self.reading = False
        content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.finish()
        return content

    async def finish_within(self, seconds: float, max_bytes: int) -> None:
        """The caller has what it wants of the body (an SSE stream's terminator): wait up to
        ``seconds`` (never past the read timeout, nor the caller's own deadline: the call's
        total timeout) for the rest, discard it, and finish, so the connection is reused. A
        body that does not end in time or within ``max_bytes``, or a read that fails, costs
        only the connection (closed as interrupted): the answer the caller has is whole, so
        nothing here fails the call. Without time to wait it reads what has already arrived,
        as :meth:`close` does."""
        conn = self.conn
        if conn is None or self._state is not _OPEN:
            return
        if self.reading:
            raise UsageError("another task is reading this response's body; finish it there")
        codec = conn.codec
        read = self.timeouts.read
        wait = seconds if read is None else min(seconds, read)
        deadline = self.ctx.now() + wait
        # At the caller's deadline its own scope would fire first and fail a whole answer.
        if not codec.done and wait > 0 and deadline < trio.current_effective_deadline():
            limit = codec.received + max_bytes
            self.reading = True
            try:
                with self.interruptible(deadline):
                    while not codec.done and codec.received <= limit:
                        codec.body.clear()
                        await conn.pump(None)  # bounded by the scope's deadline
            except TransportError:
                self.abort(None)  # the connection failed, not the call
            finally:
                self.reading = False
            if self._state is not _OPEN:
                return  # ended above, or closed by another task (or the client) meanwhile
        codec.body.clear()
        self.close()  # reads what has arrived without waiting, then finishes or aborts

    async def receive(self) -> list[bytes]:
        """For a stream: the body chunks that have arrived, receiving once if none has.
        The caller must clear the list it is given after use (it is the codec's own).
        When the body is complete the exchange is finished."""
        conn = self.conn
        if conn is None:
            raise self._ended_error()
        codec = conn.codec
        if not codec.body and not codec.done:
            self.reading = True
            try:
                await conn.pump(self.timeouts.read)
                self.check_open()
            except BaseException as exc:
                self._end_with(exc)
                raise
            finally:
                self.reading = False
        return codec.body

    @property
    def body_done(self) -> bool:
        conn = self.conn
        return conn is None or conn.codec.done

    def _too_large(self, part: str, limit: int, knob: str = "max_body_bytes") -> ResponseTooLarge:
        knob = "max_header_bytes" if part == "head" else knob
        hint = "" if part == "head" else ", or use stream() to read it as it arrives"
        return ResponseTooLarge(
            f"the response {part} exceeds {knob}={limit}; raise {knob}{hint}",
            endpoint=self.pool.url,
            phase="read",
        )
