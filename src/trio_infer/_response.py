"""Responses, their timing, and the streaming body iterators."""

from __future__ import annotations

import json as _json
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from ._errors import Error, HTTPStatusError, ResponseTooLarge, StreamClosed, UsageError
from ._headers import Headers, RawHead
from ._retry import Attempt
from ._sse import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DecodeLimitExceeded,
    Line,
    LineDecoder,
    ServerSentEvent,
    SSEDecoder,
)

if TYPE_CHECKING:
    from ._exchange import Exchange

_METHOD_NAMES = {
    name.encode(): name for name in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
}

__all__ = ["Chunk", "Response", "ResponseNotRead", "Timing"]


class ResponseNotRead(Error):
    """``content`` (or ``json()``/``text``) of a streaming response used before ``aread()``."""


@attrs.frozen
class Timing:
    """When each step of an exchange happened, as ``trio.current_time()`` values.

    Attributes:
        start: the call was made (before waiting for a permit).
        connected: a connection was ready: checked out of the pool, or newly connected.
        permitted: the permit was granted (``start`` when one was free at once); the time
            before it is the client's own queueing, not the server's.
        sent: the whole request was written.
        first_byte: the first byte of the response arrived.
        end: the last byte of the body arrived (``None`` while a stream is still open, and for
            a stream closed before its end).
    """

    start: float
    connected: float
    sent: float
    first_byte: float
    end: float | None
    permitted: float

    @property
    def queued(self) -> float:
        """Seconds the call waited for a permit (client-side queueing)."""
        return self.permitted - self.start

    @property
    def ttfb(self) -> float:
        """Seconds from the call to the first response byte (queueing included)."""
        return self.first_byte - self.start

    @property
    def elapsed(self) -> float | None:
        """Seconds from the call to the last byte, or ``None`` if the body did not complete."""
        return None if self.end is None else self.end - self.start


@attrs.frozen
class Chunk:
    """A piece of a streamed body as it arrived.

    Attributes:
        data: the bytes.
        received_at: ``trio.current_time()`` when they arrived.
    """

    data: bytes
    received_at: float


T = TypeVar("T")


class Response:
    """An HTTP response.

    From :meth:`Client.request` the body has been read completely, the connection is back in
    the pool and the permit has been returned. From :meth:`Client.stream` the body is read as
    the caller iterates (``aiter_bytes``, ``aiter_lines``, ``aiter_sse``, or ``aread``); the
    permit and the connection are held until the body ends or the response is closed, which
    the ``async with`` block does on exit. Closing before the body has fully arrived (a
    ``break`` out of the loop, an exception, cancellation, or :meth:`aclose` from another
    task) closes the connection instead of pooling it: its framing is unknown. A body that
    has fully arrived, read or not, lets the connection be reused. A read blocked in one task
    when another task closes the response raises :class:`StreamClosed`; closing from any task
    is safe, at any moment.
    """

    __slots__ = (
        "_content",
        "_exchange",
        "_headers",
        "_streaming",
        "endpoint",
        "http_version",
        "method",
        "reason",
        "status",
    )

    def __init__(
        self,
        exchange: Exchange,
        status: int,
        reason: bytes,
        http_version: bytes,
        raw_headers: list[tuple[bytes, bytes]] | RawHead,
    ) -> None:
        self._exchange = exchange
        self.status = status
        self.reason = reason.decode("latin-1")
        self.http_version = http_version.decode("latin-1")
        self._headers = raw_headers
        method = exchange.method
        self.method = _METHOD_NAMES.get(method) or method.decode("ascii")
        self.endpoint = exchange.pool.url
        self._content: bytes | None = None
        self._streaming = False

    # --- metadata --------------------------------------------------------------------------

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt of the call and its outcome; one entry when it was not retried."""
        attempts = self._exchange.attempts
        if attempts is None:
            return (Attempt(1, f"status {self.status}", self._exchange.start),)
        return tuple(attempts)

    @property
    def url(self) -> str:
        """The full URL of the request, endpoint and target."""
        return self._exchange.pool.origin + self._exchange.target.decode("ascii")

    @property
    def headers(self) -> Headers:
        raw = self._headers
        if isinstance(raw, Headers):
            return raw
        headers = self._headers = Headers(raw)  # type: ignore[assignment]
        return headers

    @property
    def timing(self) -> Timing:
        ex = self._exchange
        return Timing(ex.start, ex.connected, ex.sent, ex.first_byte, ex.end, ex.permitted)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> Response:
        """Raise :class:`HTTPStatusError` for a 4xx or 5xx status; return ``self`` otherwise."""
        if self.status >= 400:
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(
                f"{self.status} {self.reason} ({kind}) for {self.method} {self.url}", response=self
            )
        return self

    # --- body, read ------------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ResponseNotRead(
                f"the body of this streaming response ({self.method} {self.url}) has not been "
                f"read; call 'await response.aread()' first"
            )
        return self._content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def is_closed(self) -> bool:
        """True once the exchange is over: the body ended or the response was closed."""
        return not self._exchange.is_open

    # --- body, streamed --------------------------------------------------------------------

    async def aread(self, *, max_bytes: int | None = None) -> bytes:
        """Read the rest of the body, store it as ``content``, and return it.

        ``max_bytes`` bounds what is held in memory: a body that grows past it closes the
        response and raises :class:`ResponseTooLarge` (``None``: no limit).
        """
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0
        ):
            raise UsageError(
                f"aread(max_bytes={max_bytes!r}): expected a whole number of bytes >= 0, or None"
            )
        content = self._content
        if content is not None:
            if max_bytes is not None and len(content) > max_bytes:
                raise self._exchange._too_large("body", max_bytes, "max_bytes")
            return content
        return await self._receive_all(max_bytes, "max_bytes")

    async def _receive_all(self, max_bytes: int | None, knob: str) -> bytes:
        """Read the whole body (``Client.request`` and :meth:`aread`), bounded by ``max_bytes``
        (named ``knob`` in the error)."""
        self._start_reading()
        content = self._content = await self._exchange.read_to_end(max_bytes, knob)
        return content

    def _start_reading(self) -> None:
        if self._streaming:
            raise UsageError(
                "this response's body is already being iterated; a body can be read once"
            )
        exchange = self._exchange
        if not exchange.is_open:
            exchange.check_open()  # ClientClosed, when that is what ended it
            raise StreamClosed(
                "the response was closed before its body was read",
                endpoint=self.endpoint,
                phase="read",
            )
        self._streaming = True

    def aiter_bytes(self) -> _BodyIterator[Chunk]:
        """The body as :class:`Chunk` values, as they arrive."""
        return _BodyIterator(self, lambda data, at: [Chunk(data, at)], None)

    def aiter_lines(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> _BodyIterator[Line]:
        """The body as :class:`Line` values (split on CRLF, LF or CR). A line longer than
        ``max_line_bytes`` closes the response and raises :class:`ResponseTooLarge`."""
        decoder = LineDecoder(max_line_bytes=max_line_bytes)
        return _BodyIterator(self, decoder.feed, decoder.flush)

    def aiter_sse(
        self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> _BodyIterator[ServerSentEvent]:
        """The body as :class:`ServerSentEvent` values (see ``trio_infer._sse`` for the rules).
        An event larger than ``max_event_bytes`` closes the response and raises
        :class:`ResponseTooLarge`: a server that never ends an event cannot fill memory."""
        decoder = SSEDecoder(max_event_bytes=max_event_bytes)
        return _BodyIterator(self, decoder.feed, decoder.flush)

    async def finish(self, *, within: float, max_bytes: int = 65536) -> None:
        """End a stream whose caller has all it wants (an SSE stream's ``data: [DONE]``), but
        whose body may not have fully arrived: wait up to ``within`` seconds (and never past
        the read timeout) for the rest, discard it, and end the exchange, reusing the
        connection when the body ended. Servers often send the body's end in a later packet
        (uvicorn's chunked terminator follows the last event), and closing at once would
        close the connection. Never raises for what it discards; past ``within`` or
        ``max_bytes`` the connection is closed, as :meth:`aclose` would."""
        try:
            seconds = float(within)
        except (TypeError, ValueError, OverflowError):
            seconds = math.nan
        if isinstance(within, bool) or not isinstance(within, int | float) or not seconds >= 0:
            raise UsageError(f"finish(within={within!r}): expected seconds >= 0")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise UsageError(f"finish(max_bytes={max_bytes!r}): expected a whole number >= 0")
        await self._exchange.finish_within(seconds, max_bytes)

    async def aclose(self) -> None:
        """Close the response (see the class docstring for what happens to the connection)."""
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Synchronous :meth:`aclose`, for cleanup paths that must not await. Idempotent,
        and safe from any task at any moment."""
        self._exchange.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}] {self.method} {self.url}>"


class _BodyIterator(Generic[T]):
    """Async iterator over a streaming body, turned into items by a decoder.

    A class rather than an async generator so that a ``break`` leaves nothing to finalize:
    the ``async with client.stream(...)`` block closes the response when it exits.
    """

    __slots__ = ("_decode", "_done", "_flush", "_items", "_response")

    def __init__(
        self,
        response: Response,
        decode: Callable[[bytes, float], list[T]],
        flush: Callable[[float], list[T]] | None,
    ) -> None:
        self._response = response
        self._decode = decode
        self._flush = flush
        self._items: deque[T] = deque()
        self._done = False
        content = response._content
        if content is not None:
            # Already read (request(), or aread()): iterate over what is stored.
            end = response._exchange.end or 0.0
            try:
                self._items.extend(decode(content, end) if content else ())
                if flush is not None:
                    self._items.extend(flush(end))
            except DecodeLimitExceeded as exc:
                raise self._too_large(exc) from exc
            self._done = True
            return
        response._start_reading()

    def _too_large(self, exc: DecodeLimitExceeded) -> ResponseTooLarge:
        """A decoder's size limit was passed: end the exchange with a typed failure."""
        response = self._response
        error = ResponseTooLarge(str(exc), endpoint=response.endpoint, phase="read")
        response._exchange.abort(error)
        return error

    def __aiter__(self) -> _BodyIterator[T]:
        return self

    async def __anext__(self) -> T:
        # Measured: a coroutine per item (0.11 us) beats a hand-made ready awaitable
        # (0.35 us: raising StopIteration costs more than the coroutine frame).
        items = self._items
        while not items:
            if self._done:
                raise StopAsyncIteration
            await self._fill()
        return items.popleft()

    async def _fill(self) -> None:
        exchange = self._response._exchange
        chunks = await exchange.receive()
        conn = exchange.conn
        at = conn.last_receive_at if conn is not None else 0.0
        if chunks:
            decode, items = self._decode, self._items
            try:
                for data in chunks:
                    items.extend(decode(data, at))
            except DecodeLimitExceeded as exc:
                raise self._too_large(exc) from exc
            finally:
                chunks.clear()  # the codec's own list, reused for the next chunks
        if exchange.body_done:
            if self._flush is not None:
                try:
                    self._items.extend(self._flush(at))
                except DecodeLimitExceeded as exc:
                    raise self._too_large(exc) from exc
            self._done = True
            exchange.finish()
