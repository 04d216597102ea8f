"""Byte-level loopback servers for tests/test_attack.py: each connection runs a script that
reads requests and writes whatever bytes a hostile or broken server would."""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import trio
import trustme

import trio_infer

__all__ = [
    "BeforeStep",
    "RawConn",
    "RawRequest",
    "RawServer",
    "RawTLS",
    "assert_settled",
    "response",
    "start_raw_server",
]


def response(body: bytes, status: int = 200, extra: bytes = b"") -> bytes:
    """A whole response with a content-length; ``extra`` is more header lines (CRLF-ended)."""
    return b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


def _content_length(head: bytes) -> int:
    """The Content-Length a request head declares (0 when it has none)."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return length


@attrs.frozen
class RawRequest:
    head: bytes
    body: bytes

    @property
    def method(self) -> bytes:
        return self.head.split(b" ", 1)[0]

    @property
    def target(self) -> bytes:
        return self.head.split(b" ", 2)[1]


class RawConn:
    """One accepted connection: read requests as bytes, write anything."""

    def __init__(self, server: RawServer, stream: trio.SocketStream, index: int) -> None:
        self.server = server
        self.stream = stream
        self.index = index
        self._buffer = b""

    async def read_request(self) -> RawRequest | None:
        """The next request (head and content-length body), or None at EOF."""
        request = await self.read_head_only()
        if request is None:
            return None
        length = _content_length(request.head)
        while len(self._buffer) < length:
            if not await self._fill():
                return None
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawRequest(request.head, body)

    async def read_head_only(self) -> RawRequest | None:
        """The next request head (recorded in ``server.requests``), its body left unread."""
        while b"\r\n\r\n" not in self._buffer:
            if not await self._fill():
                return None
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        request = RawRequest(head, b"")
        self.server.requests.append(request)
        self.server.changed()
        return request

    async def skip_body(self, request: RawRequest) -> bool:
        """Read and drop the body of a request read with :meth:`read_head_only`; False at
        EOF."""
        length = _content_length(request.head)
        while len(self._buffer) < length:
            if not await self._fill():
                return False
        self._buffer = self._buffer[length:]
        return True

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            return False
        self._buffer += data
        return True

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False if the client has gone."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        finally:
            self.server.changed()
        return True

    async def wait_eof(self) -> None:
        while await self._fill():
            pass

    async def reset(self) -> None:
        """Close with a RST (SO_LINGER 0), as a crashed server does."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()


Script = Callable[[RawConn], Awaitable[None]]


class RawServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.port = 0
        self.requests: list[RawRequest] = []
        self.connections: list[RawConn] = []
        self.connections_open = 0
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def targets(self) -> list[bytes]:
        return [request.target for request in self.requests]

    def changed(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[RawServer], bool]) -> None:
        while not predicate(self):
            await self._changed.wait()

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = RawConn(self, stream, len(self.connections))
        self.connections.append(conn)
        self.connections_open += 1
        self.changed()
        try:
            await self.script(conn)
        finally:
            await stream.aclose()
            self.connections_open -= 1
            self.changed()


async def start_raw_server(nursery: trio.Nursery, script: Script) -> RawServer:
    server = RawServer(script)
    listeners = await nursery.start(partial(trio.serve_tcp, server._handle, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


class RawTLS:
    """The server side of TLS over a trio stream, driven by hand (``ssl.SSLObject``), so a
    test can put several TLS records into one TCP write."""

    def __init__(self, stream: trio.SocketStream, context: ssl.SSLContext) -> None:
        self.stream = stream
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    async def _flush(self) -> None:
        pending = self.outgoing.read()
        if pending:
            await self.stream.send_all(pending)

    async def _more(self) -> bool:
        data = await self.stream.receive_some(65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._more():
                    raise trio.BrokenResourceError("EOF during the TLS handshake") from None
            else:
                await self._flush()
                return

    async def read_head(self) -> bytes | None:
        """The next request head (these tests send no request bodies), or None at EOF."""
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            try:
                buffer += self.tls.read(65536)
            except ssl.SSLWantReadError:
                if not await self._more():
                    return None
            except ssl.SSLZeroReturnError:
                return None
        return buffer.split(b"\r\n\r\n", 1)[0]

    async def send_records(self, *records: bytes) -> None:
        """Each argument becomes its own TLS record; all of them leave in one TCP write."""
        for record in records:
            self.tls.write(record)
        await self._flush()


class BeforeStep(trio.abc.Instrument):
    """Run a synchronous hook just before a given task's next step: "another task" acting at
    an exact point (after the task was woken, before it runs)."""

    def __init__(self) -> None:
        self.hooks: dict[trio.lowlevel.Task, Callable[[], object]] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        hook = self.hooks.pop(task, None)
        if hook is not None:
            hook()


def assert_settled(client: trio_infer.Client) -> None:
    """Nothing held: no permit, no active or connecting connection, nobody waiting, and every
    open slot is an idle connection."""
    stats = client.stats()
    assert stats.permits_in_use == 0, stats
    assert (stats.active, stats.connecting, stats.waiting) == (0, 0, 0), stats
    assert stats.open_connections == stats.idle, stats
    for endpoint in stats.endpoints:
        assert (endpoint.waiting_for_permit, endpoint.waiting_for_connection) == (0, 0), endpoint


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts ``ca`` (the test CA) and nothing else."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context
