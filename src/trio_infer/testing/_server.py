"""An in-process HTTP/1.1 test server on trio and h11, with scriptable handlers.

Start it the trio way, inside a nursery, and it reports when it is listening::

    server = await nursery.start(trio_infer.testing.serve, handler)
    async with trio_infer.Client(server.url) as client: ...

or as a context manager: ``async with trio_infer.testing.open_server(handler) as server:``.

A handler is ``async def handler(request: ServerRequest, respond: Responder) -> None``. It
answers with the :class:`Responder`: ``start`` (status, headers, Content-Length or chunked),
``send``, ``end``; or fails on purpose: ``send_raw`` writes bytes that bypass h11 (malformed
responses, a head cut in half) and ``abort`` resets the connection. Canned handlers:
:func:`reply`, :func:`sse`, :func:`abort_after`, and :func:`default_app`, which routes a few
useful paths (``/json``, ``/sse``, ``/echo``, ``/status/NNN``, ``/delay``).

The server counts what it sees (:class:`TestServer`): connections open and total, requests,
exchanges in flight and the most ever in flight at once. ``await server.wait_until(pred)``
waits for a condition on those counters without sleeping.

Theory of operation: bad input never stops the server.

* A request h11 refuses (a malformed request line or header, a head over h11's 16 KiB limit)
  gets h11's status for it (400, 431) with a JSON ``{"error": "..."}`` body and
  ``Connection: close``; it is counted in ``malformed_requests``. A body over
  ``max_request_body`` gets 413 the same way. The handler never sees either.
* The canned apps check every value they read and answer a bad one with a 4xx naming it
  (``default_app`` as ``{"error": "..."}``; :class:`FakeOpenAI` and :class:`FakeKServe` in
  the error shape of the protocol they fake).
* An exception escaping a handler is a bug in the handler. It ends only that connection: the
  client gets a 500 naming the exception if no response had started, else the connection is
  closed under it. The exception is logged (logger ``trio_infer.testing``), counted in
  ``TestServer.handler_errors``, and kept (the first 16) in ``handler_exceptions``. Every other
  connection is served as before. Only ``Exception`` is caught: cancellation and
  ``KeyboardInterrupt`` still end the server, and a peer that leaves (``BrokenResourceError``,
  ``ClosedResourceError``) is not a bug.
* A test wants to see its own handler's bugs, so :func:`serve` and :func:`open_server` raise
  the kept exceptions as one ``ExceptionGroup`` when the server stops
  (``raise_handler_errors=True``, the default): the test that caused them fails at the end,
  even if its client took the 500 in its stride. A test that provokes a handler error on
  purpose clears ``server.handler_exceptions`` once it has checked them, or passes
  ``raise_handler_errors=False``. Long-running servers (``python -m trio_infer.testing``, the
  multi-process workers) only log.
"""

from __future__ import annotations

import json as _json
import logging
import socket as _stdlib_socket
import struct
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final

import attrs
import h11
import trio

from .._errors import ConfigError
from .._nursery import open_background_nursery
from ._validate import Rejected, query_seconds, query_whole_number

__all__ = [
    "DEFAULT_MAX_REQUEST_BODY",
    "Handler",
    "Responder",
    "ServerRequest",
    "TestServer",
    "abort_after",
    "default_app",
    "open_server",
    "reply",
    "serve",
    "sse",
    "sse_body",
]

logger = logging.getLogger("trio_infer.testing")

#: The largest request body a :class:`TestServer` reads by default (larger ones get 413).
DEFAULT_MAX_REQUEST_BODY: Final = 64 * 1024 * 1024
#: How many handler exceptions a server keeps (it counts them all).
_KEPT_EXCEPTIONS: Final = 16
#: After refusing a request, how long and how much of the rest the server reads before it
#: closes: closing with unread bytes makes the kernel send RST, and the client may then lose
#: the answer that explains the refusal.
_LINGER_SECONDS: Final = 1.0
_LINGER_BYTES: Final = 4 * 1024 * 1024
#: A peer that left: not a bug of the handler that was writing to it.
_PEER_GONE: Final = (trio.BrokenResourceError, trio.ClosedResourceError)


@attrs.frozen
class ServerRequest:
    """A request as the test server received it.

    Attributes:
        method: e.g. ``"POST"``.
        target: the raw request target, path and query (``"/v1/x?a=1"``).
        headers: ``(name, value)`` pairs, names lower-cased, in order.
        body: the whole request body.
        connection_index: which accepted connection (0, 1, ...) carried it.
        peer: the client's (address, port) on that connection: which source address and
            ephemeral port it came from.
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    connection_index: int
    peer: tuple[str, int] = ("", 0)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query))

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return _json.loads(self.body)


class Responder:
    """Writes one response. Methods must be called in order: ``start``, ``send``*, ``end``."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        conn: h11.Connection,
        request: ServerRequest,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._stream = stream
        self._conn = conn
        self._extra_headers = extra_headers
        # A HEAD response carries no body; h11 enforces that, so callers need not.
        self._bodyless = request.method == "HEAD"
        self.aborted = False

    @property
    def started(self) -> bool:
        """Whether anything but interim (1xx) responses was written: after that, only this
        response (or closing the connection) can follow."""
        return self.aborted or self._conn.our_state is not h11.SEND_RESPONSE

    async def start(
        self,
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (),
        *,
        length: int | None = None,
        close: bool = False,
    ) -> None:
        """Send the response head: Content-Length when ``length`` is given, else chunked
        (HTTP/1.1) or until-close (HTTP/1.0 peers, or ``close=True`` without ``length``)."""
        items = [*headers, *self._extra_headers]
        names = {name.lower() for name, _ in items}
        if status in (204, 304):
            self._bodyless = True
        elif length is not None and "content-length" not in names:
            items.append(("content-length", str(length)))
        elif not ({"content-length", "transfer-encoding"} & names) and not close:
            items.append(("transfer-encoding", "chunked"))
        if close and "connection" not in names:
            items.append(("connection", "close"))
        await self._write(self._conn.send(h11.Response(status_code=status, headers=items)))

    async def send_json(
        self, body: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """A whole response: ``body`` as JSON, with content-length (and ``headers``)."""
        data = _json.dumps(body).encode()
        await self.start(status, [("content-type", "application/json"), *headers], length=len(data))
        await self.send(data)
        await self.end()

    async def send(self, data: bytes) -> None:
        if data and not self._bodyless:
            await self._write(self._conn.send(h11.Data(data=data)))

    async def end(self) -> None:
        await self._write(self._conn.send(h11.EndOfMessage()))

    async def informational(
        self, status: int = 100, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Send an interim 1xx response."""
        await self._write(
            self._conn.send(h11.InformationalResponse(status_code=status, headers=list(headers)))
        )

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, bypassing h11. The connection is closed after the handler."""
        self.aborted = True
        await self._stream.send_all(data)

    async def wait_for_disconnect(self) -> None:
        """Block until the client closes the connection, as a server notices a cancelled call.
        The connection is closed after the handler."""
        self.aborted = True
        try:
            while await self._stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def abort(self) -> None:
        """Reset the connection now (RST: SO_LINGER 0, then close)."""
        self.aborted = True
        sock = _socket_of(self._stream)
        if sock is not None:  # a memory stream (in tests) has no socket to reset
            sock.setsockopt(
                _stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        await trio.aclose_forcefully(self._stream)

    async def _write(self, data: bytes | None) -> None:
        if data:
            await self._stream.send_all(data)


Handler = Callable[[ServerRequest, Responder], Awaitable[None]]


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket under ``stream`` (a TLS stream wraps a socket stream), if it has one."""
    inner: Any = stream
    while not hasattr(inner, "socket"):
        inner = getattr(inner, "transport_stream", None)
        if inner is None:
            return None
    sock: trio.socket.SocketType = inner.socket
    return sock


class _TooLarge(Exception):
    """The request body is over the server's ``max_request_body``."""

    def __init__(self, message: str, *, head: bool) -> None:
        super().__init__(message)
        self.head = head  # the request was HEAD: its answer carries no body


class TestServer:
    """A running test server and what it has seen.

    Attributes:
        host, port, url: where it listens.
        connections_open: connections accepted and not yet closed.
        connections_total: connections accepted since start.
        requests: every request received, in arrival order.
        in_flight: requests whose handler is running.
        max_in_flight: the largest ``in_flight`` ever observed.
        max_request_body: the largest request body read; a larger one is answered 413.
        malformed_requests: requests refused because h11 could not parse them, or because
            their body was over ``max_request_body``.
        handler_errors: exceptions that escaped the handler (bugs; see the module docstring).
        handler_exceptions: the first 16 of them. :func:`serve` raises them when it stops
            (unless ``raise_handler_errors=False``); clear the list to acknowledge them.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        max_request_body: int = DEFAULT_MAX_REQUEST_BODY,
    ) -> None:
        if (
            isinstance(max_request_body, bool)
            or not isinstance(max_request_body, int)
            or max_request_body < 0
        ):
            raise ConfigError(
                f"max_request_body={max_request_body!r}: must be a whole number of bytes >= 0"
            )
        self.handler = handler
        self.host = host
        self.port = port
        self.max_request_body = max_request_body
        #: headers added to every response (the multi-process server's worker id)
        self.response_headers: tuple[tuple[str, str], ...] = ()
        self.connections_open = 0
        self.connections_total = 0
        self.requests: list[ServerRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.malformed_requests = 0
        self.handler_errors = 0
        self.handler_exceptions: list[Exception] = []
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[TestServer], bool]) -> None:
        """Return once ``predicate(self)`` is true, re-checking after every change."""
        while not predicate(self):
            await self._changed.wait()

    async def serve_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one accepted connection until either side closes it; ``stream`` is closed
        on return. :func:`serve` hands it every connection; a test may hand it one end of
        ``trio.testing.memory_stream_pair()`` to run the server without a socket (the peer
        is then ``("", 0)``). It returns normally whatever the client sends; it raises only
        what ends the server (cancellation, ``KeyboardInterrupt``)."""
        index = self.connections_total
        self.connections_open += 1
        self.connections_total += 1
        self._notify()
        try:
            await self._serve(stream, index)
        except _PEER_GONE:
            pass
        except Exception as exc:  # a bug of the server itself: it must not stop the others
            self._record(exc, f"connection {index}")
        finally:
            self.connections_open -= 1
            self._notify()
            await trio.aclose_forcefully(stream)

    async def _serve(self, stream: trio.abc.Stream, index: int) -> None:
        conn = h11.Connection(h11.SERVER)
        sock = _socket_of(stream)
        peer = ("", 0)
        if sock is not None:
            try:
                address, port, *_ = sock.getpeername()
            except OSError:  # the client already left
                return
            peer = (str(address), int(port))
        while True:
            try:
                request = await self._read_request(stream, conn, index, peer)
            except h11.RemoteProtocolError as exc:
                message = f"malformed request: {exc}"
                await self._refuse(stream, conn, exc.error_status_hint, message, head=False)
                return
            except _TooLarge as exc:
                await self._refuse(stream, conn, 413, str(exc), head=exc.head)
                return
            if request is None:
                return
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._notify()
            responder = Responder(stream, conn, request, self.response_headers)
            try:
                await self.handler(request, responder)
            except _PEER_GONE:
                return
            except Exception as exc:
                self._record(exc, f"{request.method} {request.target}")
                if not responder.started:
                    message = f"the test server's handler failed: {type(exc).__name__}: {exc}"
                    message = message if len(message) <= 300 else message[:297] + "..."
                    await self._answer(stream, conn, 500, message, head=request.method == "HEAD")
                return  # after a bug, nothing on this connection can be trusted
            finally:
                self.in_flight -= 1
                self._notify()
            if responder.aborted or conn.our_state is not h11.DONE:
                return
            if conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    def _record(self, exc: Exception, where: str) -> None:
        self.handler_errors += 1
        if len(self.handler_exceptions) < _KEPT_EXCEPTIONS:
            self.handler_exceptions.append(exc)
        logger.error("test server %s: unhandled error in %s", self.url, where, exc_info=exc)
        self._notify()

    async def _refuse(
        self,
        stream: trio.abc.Stream,
        conn: h11.Connection,
        status: int,
        message: str,
        *,
        head: bool,
    ) -> None:
        """Answer a request the handler never sees, then close the connection."""
        self.malformed_requests += 1
        logger.info("test server %s: refused a request with %d: %s", self.url, status, message)
        self._notify()
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self._answer(stream, conn, status, message, head=head)
        # The client may still be sending what we refused: read (and drop) some of it so
        # that closing does not reset the connection before the answer is read.
        if isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()
        with trio.move_on_after(_LINGER_SECONDS):
            drained = 0
            while drained < _LINGER_BYTES and (chunk := await stream.receive_some(65536)):
                drained += len(chunk)

    async def _answer(
        self,
        stream: trio.abc.Stream,
        conn: h11.Connection,
        status: int,
        message: str,
        *,
        head: bool,
    ) -> None:
        body = _json.dumps({"error": message}).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("connection", "close"),
            *self.response_headers,
        ]
        data = conn.send(h11.Response(status_code=status, headers=headers)) or b""
        if not head:  # h11 refuses a body on the answer to HEAD
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)

    async def _read_request(
        self, stream: trio.abc.Stream, conn: h11.Connection, index: int, peer: tuple[str, int]
    ) -> ServerRequest | None:
        head: h11.Request | None = None
        body: list[bytes] = []
        size = 0
        limit = self.max_request_body
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
                continue
            if isinstance(event, h11.Request):
                head = event
                for name, value in event.headers:
                    # h11 has checked Content-Length is digits; refuse before reading
                    if name == b"content-length" and int(value) > limit:
                        message = _too_large(int(value), limit, announced=True)
                        raise _TooLarge(message, head=event.method == b"HEAD")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    message = _too_large(size, limit, announced=False)
                    raise _TooLarge(message, head=head is not None and head.method == b"HEAD")
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return ServerRequest(
                    method=head.method.decode("ascii"),
                    target=head.target.decode("ascii"),
                    headers=tuple(
                        (n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers
                    ),
                    body=b"".join(body),
                    connection_index=index,
                    peer=peer,
                )
            else:  # ConnectionClosed or PAUSED
                return None


def _too_large(size: int, limit: int, *, announced: bool) -> str:
    so_far = "" if announced else " so far"
    return (
        f"the request body ({size} bytes{so_far}) is over the test server's limit of "
        f"{limit} bytes (serve(max_request_body=...))"
    )


async def serve(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    raise_handler_errors: bool = True,
    max_request_body: int = DEFAULT_MAX_REQUEST_BODY,
    task_status: trio.TaskStatus[TestServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` (default: :func:`default_app`) until cancelled.

    Use with ``server = await nursery.start(serve, handler)``: it reports the
    :class:`TestServer` once listening, so the port is known and connectable.

    A handler's exceptions are answered 500 and logged while the server runs (the module
    docstring says how); with ``raise_handler_errors`` (the default) the ones still in
    ``server.handler_exceptions`` are raised as an ``ExceptionGroup`` when it stops, so the
    test that caused them fails. Request bodies over ``max_request_body`` bytes get 413.
    """
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
    sockname = listeners[0].socket.getsockname()
    server = TestServer(
        handler or default_app, host, sockname[1], max_request_body=max_request_body
    )
    try:
        async with trio.open_nursery() as nursery:
            task_status.started(server)
            await trio.serve_listeners(server.serve_connection, listeners, handler_nursery=nursery)
    except BaseException as exc:
        # Being cancelled is how a test server stops. Anything else that ends it (a
        # KeyboardInterrupt) propagates as it is, not replaced by the handlers' errors.
        if raise_handler_errors and server.handler_exceptions and _only_cancelled(exc):
            errors = list(server.handler_exceptions)
            server.handler_exceptions.clear()
            raise ExceptionGroup(
                f"{server.handler_errors} handler error(s) in the test server at {server.url} "
                "(each was answered 500 or cut its connection; "
                "serve(raise_handler_errors=False) only logs them)",
                errors,
            ) from None
        raise


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None  # (the nursery may group them)
    return isinstance(exc, trio.Cancelled)


@asynccontextmanager
async def open_server(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    raise_handler_errors: bool = True,
    max_request_body: int = DEFAULT_MAX_REQUEST_BODY,
) -> AsyncIterator[TestServer]:
    """``async with open_server(handler) as server:`` serves until the block exits; the
    arguments are :func:`serve`'s (handler errors are raised from the exit)."""
    async with open_background_nursery() as nursery:
        yield await nursery.start(
            partial(
                serve,
                handler,
                host=host,
                raise_handler_errors=raise_handler_errors,
                max_request_body=max_request_body,
            )
        )


# --- canned handlers ----------------------------------------------------------------------


def reply(
    body: bytes | str | Any = b"",
    *,
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (),
    chunked: bool = False,
    chunk_size: int = 0,
    latency: float | Callable[[ServerRequest], float] = 0.0,
    close: bool = False,
) -> Handler:
    """A handler that always answers the same way.

    ``body`` may be bytes, str, or anything JSON-serialisable (sent as application/json).
    ``chunked`` sends chunked transfer encoding (split into ``chunk_size`` pieces if set);
    ``latency`` sleeps before answering: a fixed number of seconds, or a function of the
    request for per-request latency; ``close`` adds ``Connection: close``.
    """
    hdrs = list(headers)
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = _json.dumps(body).encode()
        hdrs.append(("content-type", "application/json"))

    async def handler(request: ServerRequest, respond: Responder) -> None:
        delay = latency(request) if callable(latency) else latency
        if delay:
            await trio.sleep(delay)
        if chunked:
            await respond.start(status, hdrs, close=close)
            size = chunk_size or len(data) or 1
            for i in range(0, len(data), size):
                await respond.send(data[i : i + size])
        else:
            await respond.start(status, hdrs, length=len(data), close=close)
            await respond.send(data)
        await respond.end()

    return handler


def sse_body(events: Sequence[str], *, done: bool = True) -> bytes:
    """The wire form of ``data:`` events (and a final ``data: [DONE]`` when ``done``)."""
    parts = [f"data: {data}\n\n" for data in events]
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def sse(events: Sequence[str] | int = 8, *, gap: float = 0.0, done: bool = True) -> Handler:
    """A handler streaming server-sent events, one chunk per event, ``gap`` seconds apart.

    ``events`` is a list of data payloads, or a count of generated JSON token events.
    """
    payloads = (
        [_json.dumps({"index": i, "text": f"tok{i}"}) for i in range(events)]
        if isinstance(events, int)
        else list(events)
    )

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(
            200, [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        )
        for i, data in enumerate(payloads):
            if gap and i:
                await trio.sleep(gap)
            await respond.send(f"data: {data}\n\n".encode())
        if done:
            await respond.send(b"data: [DONE]\n\n")
        await respond.end()

    return handler


def abort_after(raw: bytes) -> Handler:
    """A handler that writes ``raw`` (any bytes, e.g. half a response head) then resets."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        if raw:
            await respond.send_raw(raw)
        await respond.abort()

    return handler


_SMALL_JSON = _json.dumps({"id": "cmpl-0", "object": "text_completion", "ok": True}).encode()


#: The largest ``n`` of ``/sse?n=`` (events are generated one at a time, so this bounds time).
MAX_SSE_EVENTS: Final = 1_000_000
#: The longest ``/delay?s=`` and ``/sse?gap=``, in seconds.
MAX_SECONDS: Final = 3600.0


async def default_app(request: ServerRequest, respond: Responder) -> None:
    """Routes: ``/sse?n=64&gap=0`` SSE tokens; ``/echo`` the request as JSON;
    ``/status/NNN`` that status; ``/delay?s=0.1`` a delayed JSON reply; anything else a small
    JSON object. Routes match the end of the path, so a client's base path does not matter.

    A bad value gets 400 with ``{"error": "..."}`` naming it: ``NNN`` must be 200-999 (what
    an HTTP/1.1 final response can carry), ``n`` a whole number from 0 to 1,000,000, and
    ``s`` and ``gap`` a number of seconds from 0 to 3600 (ASCII digits only, no NaN)."""
    try:
        await _default_app(request, respond)
    except Rejected as rejected:
        await respond.send_json({"error": rejected.message}, rejected.status, rejected.headers)


async def _default_app(request: ServerRequest, respond: Responder) -> None:
    path = request.path
    if "/status/" in path:
        path = "/status/" + path.rsplit("/", 1)[1]
    else:
        path = "/" + path.rsplit("/", 1)[1]
    if path == "/sse":
        query = request.query
        n = query_whole_number(query, "n", 64, MAX_SSE_EVENTS)
        gap = query_seconds(query, "gap", 0.0, MAX_SECONDS)
        await sse(n, gap=gap)(request, respond)
    elif path == "/echo":
        body = _json.dumps(
            {
                "method": request.method,
                "target": request.target,
                "headers": [list(h) for h in request.headers],
                "body": request.body.decode("utf-8", "replace"),
            }
        ).encode()
        await respond.start(200, [("content-type", "application/json")], length=len(body))
        await respond.send(body)
        await respond.end()
    elif path.startswith("/status/"):
        code = path.rsplit("/", 1)[1]
        if not (code.isascii() and code.isdigit() and 200 <= int(code) <= 999):
            raise Rejected(
                f"{request.path}: {code!r} is not a status code; use /status/NNN with NNN "
                "from 200 to 999"
            )
        status = int(code)
        no_body = status in (204, 304)
        await respond.start(status, [] if no_body else [("content-length", "0")])
        await respond.end()
    else:
        if path == "/delay":
            await trio.sleep(query_seconds(request.query, "s", 0.1, MAX_SECONDS))
        await respond.start(200, [("content-type", "application/json")], length=len(_SMALL_JSON))
        await respond.send(_SMALL_JSON)
        await respond.end()
