"""One HTTP/1.1 connection: a socket (or TLS stream), a codec, and its bookkeeping.

The I/O here is deliberately thin: :meth:`Connection.send_request` and :meth:`Connection.pump`
(receive one chunk, feed it to the codec) are the only awaits of an exchange once connected.
Everything protocol-shaped lives in the sans-IO codec (``_codec*.py``).

Timeouts without a cancel scope per phase
-----------------------------------------
Entering a ``trio.CancelScope`` with a deadline costs about 7 us here, and moving a deadline
about 2.3 us (measured on this machine with trio 0.35), while the whole keepalive exchange
budget is a few tens of microseconds. So a phase does not get a scope: before each blocking
send or receive the connection records ``deadline`` and ``phase`` (two attribute stores), and
the client's sweeper task closes the socket of any connection whose deadline has passed,
first setting ``expired`` to that phase. The blocked call then fails (trio wakes it with
``ClosedResourceError``) and :meth:`Connection.error` turns that into the phase's timeout
error. The deadline is disarmed as soon as the call returns, so a caller that is slow to
consume a stream is never blamed as a slow server.

Closing
-------
:meth:`Connection.close_now` is synchronous and forceful (it closes the OS socket), so every
cleanup path, including those running under cancellation, is complete without awaiting.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket as _socket
import ssl as _ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

from ._codec import Codec, ProtocolViolation
from ._errors import (
    TIMEOUT_BY_PHASE,
    ConnectError,
    ReadError,
    RemoteProtocolError,
    TransportError,
    map_transport_error,
)
from ._state import ConnState, Phase

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = ["Connection"]

RECEIVE_SIZE: Final = 65536
_INF: Final = math.inf
_NOWAIT: Final = getattr(_socket, "MSG_DONTWAIT", 0)
_HAS_POLL: Final = hasattr(select, "poll")
#: a TLS request is sent in slices this large, each one progress for the write limit
_TLS_SLICE: Final = 262144
#: Linux's TCP_QUICKACK (12); elsewhere 0, and quick acknowledgements are off.
_QUICKACK: Final[int] = getattr(_socket, "TCP_QUICKACK", 0)


class Connection:
    """A connection to one endpoint. Its state is owned and moved by its ``EndpointPool``
    (``_state.next_state`` says which moves exist). While ``ACTIVE`` it carries one exchange,
    ``exchange``, so the client's shutdown path can end it.

    It implements the pool's side of ``_interfaces.PoolConnection``; the exchange drives its
    I/O (:meth:`start`, :meth:`send_request`, :meth:`pump`).

    Plain connections do their I/O on a non-blocking stdlib socket with trio's low-level waits,
    exactly as ``trio.socket`` does but without its per-call wrapper layers; TLS connections
    go through ``trio.SSLStream``. Checkpoints: :meth:`pump` always is one (a cancel point
    and a schedule point, as trio requires); :meth:`send_request` is a cancel point and schedules
    only when it has to wait, because every send is immediately followed by a pump.
    """

    __slots__ = (
        "_now",
        "_poller",
        "_tls",
        "codec",
        "deadline",
        "endpoint",
        "exchange",
        "expired",
        "first_byte_at",
        "idle_since",
        "last_by_policy",
        "last_receive_at",
        "must_close",
        "opened_at",
        "phase",
        "quickack",
        "raw",
        "requests",
        "sent_bytes",
        "source",
        "state",
        "tick",
    )

    def __init__(
        self, endpoint: str, raw: _socket.socket, codec: Codec, now: Callable[[], float]
    ) -> None:
        self.endpoint = endpoint
        self.raw = raw
        self.codec = codec
        self._now = now
        self._tls: trio.SSLStream[trio.SocketStream] | None = None
        self._poller: select.poll | None = None
        self.state = ConnState.CONNECTING
        self.deadline = _INF
        self.phase: Phase = "connect"
        self.expired: Phase | None = None
        self.opened_at = 0.0
        self.idle_since = 0.0
        self.first_byte_at = 0.0
        self.last_receive_at = 0.0
        self.requests = 0
        #: the source address bound (None: the OS chose)
        self.source: str | None = None
        #: the current exchange asked the server to close because the policy says so
        self.last_by_policy = False
        #: acknowledge partial responses at once (see ``pump``); set from the client's option
        self.quickack = bool(_QUICKACK)
        #: the exchange it carries while ACTIVE (set by the pool when it hands it out)
        self.exchange: Exchange | None = None
        #: the sweeper's tick for the current exchange's phase limits
        self.tick = 0.1
        #: never reuse: the request was not sent whole (the server answered early)
        self.must_close = False
        #: bytes of the current request the kernel accepted (0: nothing reached the server)
        self.sent_bytes = 0

    # --- the pool's interface (_interfaces.PoolConnection) ---------------------------------

    def is_available(self) -> bool:
        """Can it take one more exchange now? HTTP/1.1 carries one at a time."""
        return self.state is ConnState.IDLE

    def is_idle(self) -> bool:
        return self.state is ConnState.IDLE

    def is_reusable(self) -> bool:
        return self.codec.keep_alive and not self.must_close

    def received_bytes(self) -> int:
        return self.codec.received

    def has_expired(self) -> bool:
        """Must this idle connection never carry another exchange? True whenever the socket
        is readable while no request is outstanding: bytes the server sent unasked (which
        would otherwise be read as the next response), or its close. The pool asks on every
        reuse, however briefly the connection was idle (its own policy, ``max_age``, aside).
        A TLS connection may hold such bytes already read off the socket, in the TLS layer's
        buffers: those count too.
        """
        tls = self._tls
        if tls is not None:
            incoming = getattr(tls, "_incoming", None)  # trio's MemoryBIO of unread records
            if tls.pending() or (incoming is not None and incoming.pending):
                return True
        return self.is_readable()

    # --- establishing ----------------------------------------------------------------------

    async def connect(
        self,
        sockaddr: Any,
        timeout: float | None,
        ssl_context: _ssl.SSLContext | None,
        server_hostname: str,
    ) -> None:
        if timeout is not None:
            self.deadline = self._now() + timeout
        self.phase = "connect"
        raw = self.raw
        try:
            await checkpoint_if_cancelled()
            raw.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            try:
                raw.connect(sockaddr)
            except BlockingIOError:
                await wait_writable(raw)
                error = raw.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
                if error:
                    raise OSError(error, f"connect to {sockaddr!r} failed") from None
            else:
                await cancel_shielded_checkpoint()
            if ssl_context is not None:
                tls = trio.SSLStream(
                    trio.SocketStream(trio.socket.from_stdlib_socket(raw)),
                    ssl_context,
                    server_hostname=server_hostname,
                    https_compatible=True,
                )
                self._tls = tls
                await tls.do_handshake()
                # The caller's context is not ours to change, so it may offer h2; this
                # connection speaks HTTP/1.1 only and must not talk past the server.
                chosen = tls.selected_alpn_protocol()
                if chosen not in (None, "http/1.1"):
                    raise ConnectError(
                        f"the server chose ALPN protocol {chosen!r}; trio-infer speaks HTTP/1.1 "
                        f"here: offer only 'http/1.1' in ssl_context.set_alpn_protocols()",
                        endpoint=self.endpoint,
                        phase="connect",
                    )
        except TransportError:
            raise  # already typed (the ALPN check): not its own cause
        except Exception as exc:
            raise self.error(exc, "connect") from exc
        self.deadline = _INF
        self.opened_at = self._now()

    # --- one exchange ----------------------------------------------------------------------

    def start(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> bytes:
        self.first_byte_at = 0.0
        self.requests += 1
        self.sent_bytes = 0
        return self.codec.start_request(method, target, headers, body)

    async def send_request(self, data: bytes, timeout: float | None) -> None:
        """Send the request. ``timeout`` bounds each wait for progress, not the whole send.

        A server may answer before it has read the whole request (a 413 for a body it will
        not take, then close): while the send is blocked, an answer arriving stops it, and
        the answer is read as the response. The connection is then never reused
        (``must_close``): the server did not read what it was sent.
        """
        if timeout is not None:
            self.deadline = self._now() + timeout
            self.phase = "write"
        try:
            if self._tls is not None:
                # In slices, so that the write limit is one on progress, as for plain sockets.
                tls = self._tls
                with memoryview(data) as view:
                    for start in range(0, len(data), _TLS_SLICE):
                        # Counted before the await: a send that fails part-way may have put
                        # some of it on the wire, and then the request is no longer unsent.
                        self.sent_bytes = start + 1
                        await tls.send_all(view[start : start + _TLS_SLICE])
                        self.sent_bytes = min(len(data), start + _TLS_SLICE)
                        if timeout is not None:
                            self.deadline = self._now() + timeout
            else:
                await checkpoint_if_cancelled()
                raw = self.raw
                try:
                    sent = raw.send(data)
                except BlockingIOError:
                    sent = 0
                self.sent_bytes = sent
                if sent < len(data):
                    await self._send_rest(data, sent, timeout)
        except Exception as exc:
            if self._answered_early():
                self.must_close = True
                self.deadline = _INF
                return
            raise self.error(exc, "write") from exc
        self.deadline = _INF

    async def _send_rest(self, data: bytes, sent: int, timeout: float | None) -> None:
        raw = self.raw
        with memoryview(data) as view:
            while sent < len(data):
                if await _wait_writable_or_readable(raw) and self._answered_early():
                    self.must_close = True
                    return
                with contextlib.suppress(BlockingIOError):
                    sent += raw.send(view[sent:])
                    self.sent_bytes = sent
                    if timeout is not None:  # progress: the write limit starts again
                        self.deadline = self._now() + timeout

    def drain_nowait(self, limit: int) -> None:
        """Feed the codec what has already arrived, up to ``limit`` bytes, without waiting:
        a stream closed unread may have its whole body here already, and then its
        connection can be reused. Errors leave the codec unfinished (the caller closes).
        Only called while no task is reading from the connection."""
        codec = self.codec
        while not codec.done and limit > 0:
            data = self._read_nowait(min(limit, RECEIVE_SIZE))
            if data is None:
                return
            if not data:
                codec.feed_eof()
                return
            limit -= len(data)
            self.last_receive_at = self._now()
            try:
                codec.feed(data)
            except ProtocolViolation:
                return

    def _read_nowait(self, size: int) -> bytes | None:
        """Bytes that can be read without waiting (``b""``: the peer closed; None: nothing
        now, or an error the caller will meet by closing)."""
        tls = self._tls
        if tls is None:
            try:
                return self.raw.recv(size, _NOWAIT)
            except OSError:
                return None
        # trio's SSLStream has no synchronous read: use its SSL object and incoming buffer
        # (the same internals has_expired() reads), feeding them from the socket by hand.
        ssl_object = getattr(tls, "_ssl_object", None)
        incoming = getattr(tls, "_incoming", None)
        if ssl_object is None or incoming is None:
            return None
        while True:
            try:
                return bytes(ssl_object.read(size))
            except _ssl.SSLWantReadError:
                try:
                    raw = self.raw.recv(RECEIVE_SIZE, _NOWAIT)
                except OSError:
                    return None
                if not raw:
                    return None  # a close without close_notify: not a clean end of body
                incoming.write(raw)
            except _ssl.SSLError:
                return None

    def _answered_early(self) -> bool:
        """Feed what the server already sent; True once a final response head is complete."""
        if self._tls is not None or self.raw.fileno() == -1:
            return False
        codec = self.codec
        while not codec.headers_done:
            # None: nothing more to read now, or a reset that took the data with it
            data = self._read_nowait(RECEIVE_SIZE)
            if not data:
                return False
            if not self.first_byte_at:
                self.first_byte_at = self.last_receive_at = self._now()
            try:
                codec.feed(data)
            except ProtocolViolation:
                return False
        return True

    async def pump(self, timeout: float | None) -> None:
        """Receive one chunk and feed it to the codec.

        At end of stream the codec is told, and if its response is still unfinished a
        :class:`ReadError` says how far it got (``codec.received == 0`` marks the classic stale
        keepalive connection: closed by the server before any byte of the response).
        """
        if timeout is not None:
            self.deadline = self._now() + timeout
            self.phase = "read"
        try:
            if self._tls is not None:
                data = bytes(await self._tls.receive_some(RECEIVE_SIZE))
            else:
                raw = self.raw
                data = None
                if self.first_byte_at:
                    # Mid-response: the rest has often arrived already.
                    await checkpoint_if_cancelled()
                    try:
                        data = raw.recv(RECEIVE_SIZE)
                    except BlockingIOError:
                        if self.quickack:
                            self._acknowledge_now()
                    else:
                        await cancel_shielded_checkpoint()
                # Otherwise we just sent: the server has rarely answered yet, and a recv that
                # fails costs a syscall plus a Python exception, so wait first.
                while data is None:
                    await wait_readable(raw)
                    try:  # noqa: SIM105 (contextlib.suppress costs a context manager per read)
                        data = raw.recv(RECEIVE_SIZE)
                    except BlockingIOError:
                        pass
        except Exception as exc:
            raise self.error(exc, "read") from exc
        self.deadline = _INF
        now = self.last_receive_at = self._now()
        codec = self.codec
        if not data:
            codec.feed_eof()
            if not codec.done:
                if codec.received == 0:
                    raise ReadError(
                        "server closed the connection without sending any response",
                        endpoint=self.endpoint,
                        phase="read",
                    )
                raise ReadError(
                    f"server closed the connection mid-response after {codec.received} bytes",
                    endpoint=self.endpoint,
                    phase="read",
                )
            return
        if not self.first_byte_at:
            self.first_byte_at = now
        try:
            codec.feed(data)
        except ProtocolViolation as exc:
            raise RemoteProtocolError(str(exc), endpoint=self.endpoint, phase="read") from exc

    def _acknowledge_now(self) -> None:
        """Part of a response is in and we are about to wait for the rest. A server that
        leaves Nagle's algorithm on (uvicorn --workers N does) holds its next small write
        until what it sent is acknowledged, and Linux delays that acknowledgement by up to
        40 ms: send it now. Only when the rest is not already here, because an early ACK is
        a packet of its own."""
        try:
            self.raw.setsockopt(_socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:
            self.quickack = False

    def is_readable(self) -> bool:
        """True if the idle connection has data, EOF or an error pending: any of them makes
        it unusable. Asked on every reuse, so it is one poll(2) on a poll object made once
        per connection (0.4 us here, against 2.4 us for a MSG_PEEK recv that raises)."""
        poller = self._poller
        if poller is None:
            if not _HAS_POLL:  # Windows: peek instead
                try:
                    self.raw.recv(1, _socket.MSG_PEEK)
                except BlockingIOError:
                    return False
                except OSError:
                    return True
                return True
            poller = self._poller = select.poll()
            poller.register(self.raw, select.POLLIN)
        return bool(poller.poll(0))

    # --- closing and errors ----------------------------------------------------------------

    def close_now(self) -> None:
        """Close the socket at once. Idempotent; wakes any task blocked on this connection
        (trio raises ``ClosedResourceError`` in it). The state is the pool's to move."""
        self.deadline = _INF
        raw = self.raw
        if raw.fileno() != -1:
            notify_closing(raw)
            raw.close()

    def expire(self) -> None:
        """Called by the sweeper when ``deadline`` passed: fail the blocked call as a timeout."""
        self.expired = self.phase
        self.close_now()

    def error(self, exc: BaseException, phase: Phase) -> TransportError:
        if self.expired is not None:
            expired = self.expired
            return TIMEOUT_BY_PHASE[expired](
                f"no progress within the {expired} timeout", endpoint=self.endpoint, phase=expired
            )
        return map_transport_error(exc, phase=phase, endpoint=self.endpoint)

    def __repr__(self) -> str:
        return f"<Connection {self.endpoint} {self.state.value} requests={self.requests}>"


async def _wait_writable_or_readable(raw: _socket.socket) -> bool:
    """Wait until ``raw`` is writable or readable; True if it became readable. Only a send
    that filled the socket buffer comes here, so the nursery's cost does not matter."""
    readable = False
    closed: trio.ClosedResourceError | None = None

    async def watch(wait: Callable[[_socket.socket], Any], is_read: bool) -> None:
        nonlocal readable, closed
        try:
            await wait(raw)
        except trio.ClosedResourceError as exc:  # closed by the sweeper or by shutdown
            closed = exc
        else:
            readable = readable or is_read
        nursery.cancel_scope.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, wait_writable, False)
            nursery.start_soon(watch, wait_readable, True)
    except BaseExceptionGroup as group:
        # Only a cancellation from outside can get here (watch() catches the rest): the
        # caller must see trio.Cancelled as from any other checkpoint, not a group of them.
        cancelled, rest = group.split(trio.Cancelled)
        if rest is None and cancelled is not None:
            raise cancelled.exceptions[0] from None
        raise
    if closed is not None:
        raise closed
    return readable
