"""HTTP/1.1 codec on h11: the pure-Python fallback and the reference the fast path is held to.

Responses are parsed by h11. Requests are written by the same serializer as the httptools
codec (``serialize_request``, checked against h11's server-side parser in the tests); h11's
client state machine is told only what shapes the response: the method (a response to HEAD
has no body) and whether the request asked to close. Running every request header through
h11's validation as well cost more than parsing the response.
"""

from __future__ import annotations

import h11

from ._codec import (
    MAX_HEADER_BYTES,
    NO_HEADERS,
    Headers,
    ProtocolViolation,
    serialize_request,
    wants_close,
)
from ._headers import RawHead

__all__ = ["H11Codec"]

_END = h11.EndOfMessage()
#: h11 events are immutable and validated on construction, which costs more than parsing a
#: small response; the few distinct (method, host, close) shapes a client sends are built once.
_REQUESTS: dict[tuple[bytes, bytes, bool], h11.Request] = {}
_MAX_CACHED_REQUESTS = 256


def _request_event(method: bytes, host: bytes, close: bool) -> h11.Request:
    key = (method, host, close)
    event = _REQUESTS.get(key)
    if event is None:
        headers = [(b"host", host), (b"connection", b"close")] if close else [(b"host", host)]
        event = h11.Request(method=method, target=b"/", headers=headers)
        if len(_REQUESTS) >= _MAX_CACHED_REQUESTS:
            _REQUESTS.clear()
        _REQUESTS[key] = event
    return event


class H11Codec:
    __slots__ = (
        "_conn",
        "body",
        "done",
        "head_size",
        "headers",
        "headers_done",
        "http_version",
        "keep_alive",
        "reason",
        "received",
        "status",
    )

    def __init__(self, max_head: int = MAX_HEADER_BYTES) -> None:
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
        self.status = 0
        self.reason = b""
        self.http_version = b"1.1"
        self.headers: Headers | RawHead = NO_HEADERS
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.body: list[bytes] = []
        self.received = 0
        self.head_size = 0

    def start_request(self, method: bytes, target: bytes, headers: Headers, body: bytes) -> bytes:
        conn = self._conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        elif conn.our_state is not h11.IDLE:
            raise RuntimeError("start_request on a connection whose last response is unfinished")
        self.status = 0
        self.reason = b""
        self.headers = NO_HEADERS
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.body.clear()
        self.received = 0
        host = b""
        for name, value in headers:
            if name == b"host":
                host = value
                break
        # h11 only needs what shapes the response (the method, for HEAD; whether we asked
        # to close); the target never matters to it, so one event serves every path.
        conn.send(_request_event(method, host, wants_close(headers)))
        conn.send(_END)
        return serialize_request(method, target, headers, body)

    def feed(self, data: bytes) -> None:
        if not data:  # h11 would read b"" as end of stream; that is feed_eof's job
            return
        self.received += len(data)
        if self.done:
            self.keep_alive = False
            return
        try:
            self._conn.receive_data(data)
        except RuntimeError as exc:  # receive_data after EOF
            raise ProtocolViolation(str(exc)) from exc
        self._drain()

    def feed_eof(self) -> None:
        if self.done:
            return
        self._conn.receive_data(b"")
        # An incomplete response at EOF is the I/O layer's to report (it knows whether any
        # byte arrived), exactly as with the httptools codec: leave ``done`` false.
        try:
            self._drain()
        except ProtocolViolation:
            return
        # Whatever h11 concluded, a connection the peer closed carries nothing more.
        self.keep_alive = False

    def _drain(self) -> None:
        conn = self._conn
        try:
            while True:
                event = conn.next_event()
                kind = type(event)
                if kind is h11.Data:
                    self.body.append(bytes(event.data))  # type: ignore[union-attr]
                elif kind is h11.Response:
                    self.status = event.status_code  # type: ignore[union-attr]
                    self.reason = bytes(event.reason)  # type: ignore[union-attr]
                    self.http_version = bytes(event.http_version)  # type: ignore[union-attr]
                    headers = self.headers = list(event.headers.raw_items())  # type: ignore[union-attr]
                    # h11 does not say how long the head was; this counts what it held
                    self.head_size = (
                        15
                        + len(self.reason)
                        + sum(len(name) + len(value) + 4 for name, value in headers)
                    )
                    self.headers_done = True
                elif kind is h11.EndOfMessage:
                    self.done = True
                    # Bytes already buffered past the response mean framing we cannot trust.
                    self.keep_alive = (
                        conn.our_state is h11.DONE
                        and conn.their_state is h11.DONE
                        and not conn.trailing_data[0]
                    )
                    return
                elif kind is h11.InformationalResponse:
                    if event.status_code == 101:  # type: ignore[union-attr]
                        raise ProtocolViolation("unexpected 101 Switching Protocols response")
                else:  # NEED_DATA, PAUSED or ConnectionClosed
                    return
        except h11.RemoteProtocolError as exc:
            raise ProtocolViolation(f"invalid HTTP/1.1 response: {exc}") from exc
