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
"""

from __future__ import annotations

import json as _json
import socket as _stdlib_socket
import struct
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import h11
import trio

from .._nursery import open_background_nursery

__all__ = [
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
        stream: trio.SocketStream,
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

    async def send_json(self, body: Any, status: int = 200) -> None:
        """A whole response: ``body`` as JSON, with content-length."""
        data = _json.dumps(body).encode()
        await self.start(status, [("content-type", "application/json")], length=len(data))
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
        sock = self._stream.socket
        sock.setsockopt(
            _stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        await trio.aclose_forcefully(self._stream)

    async def _write(self, data: bytes | None) -> None:
        if data:
            await self._stream.send_all(data)


Handler = Callable[[ServerRequest, Responder], Awaitable[None]]


class TestServer:
    """A running test server and what it has seen.

    Attributes:
        host, port, url: where it listens.
        connections_open: connections accepted and not yet closed.
        connections_total: connections accepted since start.
        requests: every request received, in arrival order.
        in_flight: requests whose handler is running.
        max_in_flight: the largest ``in_flight`` ever observed.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        #: headers added to every response (the multi-process server's worker id)
        self.response_headers: tuple[tuple[str, str], ...] = ()
        self.connections_open = 0
        self.connections_total = 0
        self.requests: list[ServerRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
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

    async def _handle(self, stream: trio.SocketStream) -> None:
        index = self.connections_total
        self.connections_open += 1
        self.connections_total += 1
        self._notify()
        conn = h11.Connection(h11.SERVER)
        try:
            inner: Any = stream
            while not hasattr(inner, "socket"):  # a TLS stream wraps the socket stream
                inner = inner.transport_stream
            try:
                address, port, *_ = inner.socket.getpeername()
                peer = (str(address), int(port))
            except OSError:  # the client already left
                return
            while True:
                request = await self._read_request(stream, conn, index, peer)
                if request is None:
                    return
                self.requests.append(request)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self._notify()
                responder = Responder(stream, conn, request, self.response_headers)
                try:
                    await self.handler(request, responder)
                finally:
                    self.in_flight -= 1
                    self._notify()
                if responder.aborted or conn.our_state is not h11.DONE:
                    return
                if conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            self.connections_open -= 1
            self._notify()
            await trio.aclose_forcefully(stream)

    @staticmethod
    async def _read_request(
        stream: trio.SocketStream, conn: h11.Connection, index: int, peer: tuple[str, int]
    ) -> ServerRequest | None:
        head: h11.Request | None = None
        body: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
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


async def serve(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[TestServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` (default: :func:`default_app`) until cancelled.

    Use with ``server = await nursery.start(serve, handler)``: it reports the
    :class:`TestServer` once listening, so the port is known and connectable.
    """
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
    sockname = listeners[0].socket.getsockname()
    server = TestServer(handler or default_app, host, sockname[1])
    async with trio.open_nursery() as nursery:
        task_status.started(server)
        await trio.serve_listeners(server._handle, listeners, handler_nursery=nursery)


@asynccontextmanager
async def open_server(
    handler: Handler | None = None, *, host: str = "127.0.0.1"
) -> AsyncIterator[TestServer]:
    """``async with open_server(handler) as server:`` serves until the block exits."""
    async with open_background_nursery() as nursery:
        yield await nursery.start(partial(serve, handler, host=host))


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


async def default_app(request: ServerRequest, respond: Responder) -> None:
    """Routes: ``/sse?n=64&gap=0`` SSE tokens; ``/echo`` the request as JSON;
    ``/status/NNN`` that status; ``/delay?s=0.1`` a delayed JSON reply; anything else a small
    JSON object. Routes match the end of the path, so a client's base path does not matter."""
    path = request.path
    if "/status/" in path:
        path = "/status/" + path.rsplit("/", 1)[1]
    else:
        path = "/" + path.rsplit("/", 1)[1]
    if path == "/sse":
        query = request.query
        await sse(int(query.get("n", "64")), gap=float(query.get("gap", "0")))(request, respond)
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
        status = int(path.rsplit("/", 1)[1])
        no_body = status in (204, 304)
        await respond.start(status, [] if no_body else [("content-length", "0")])
        await respond.end()
    else:
        if path == "/delay":
            await trio.sleep(float(request.query.get("s", "0.1")))
        await respond.start(200, [("content-type", "application/json")], length=len(_SMALL_JSON))
        await respond.send(_SMALL_JSON)
        await respond.end()
