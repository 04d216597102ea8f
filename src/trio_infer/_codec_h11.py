"""HTTP/1.1 codec on h11: the pure-Python fallback and the reference the fast path is held to.

Requests are written by the same serializer as the httptools codec (``serialize_request``,
checked against h11's server-side parser in the tests); h11's client state machine is told
only what shapes the response: the method (a response to HEAD has no body) and whether the
request asked to close. Running every request header through h11's validation as well cost
more than parsing the response.

h11 accepts more than the response policy of ``_codec`` (bare LF line ends, obs-fold, control
bytes in field values, loose chunk lines and trailers, a Content-Length list), so this codec
holds each head until its blank line has arrived, checks it against the policy's grammar
(:func:`check_head_syntax`), and only then gives it to h11; :func:`check_head` then applies
the rest of the policy, as for the httptools backend. h11 reads content-length and
close-delimited bodies and keeps the connection's state. A chunked body is decoded here by
:class:`_ChunkedBody` in the policy's (llhttp's) strict chunk grammar, and h11 is handed only
the last chunk, so its state machine ends the exchange as usual.
"""

from __future__ import annotations

import re
from typing import Final

import h11

from ._codec import (
    CHUNK_LINE,
    CHUNKED,
    MAX_CHUNK_SIZE,
    MAX_HEADER_BYTES,
    NO_HEADERS,
    Headers,
    ProtocolViolation,
    check_head,
    check_head_syntax,
    check_trailer,
    invalid,
    serialize_request,
    wants_close,
)
from ._headers import RawHead

__all__ = ["H11Codec"]

_END = h11.EndOfMessage()
_LAST_CHUNK: Final = b"0\r\n\r\n"
#: A head that can no longer become valid: a bare LF, or a CR before anything but LF.
_BROKEN_LINE_END: Final = re.compile(rb"(?<!\r)\n|\r[^\n]")
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
        "_buffer",
        "_chunked",
        "_close",
        "_conn",
        "_head",
        "_max_line",
        "_start",
        "_started",
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
        self._max_line = max_head
        #: the response's bytes until its final head is complete
        self._buffer = bytearray()
        #: where the current head starts in ``_buffer`` (after any interim ones)
        self._start = 0
        self._started = False
        self._head = False
        #: the body decoder while a chunked body is being read
        self._chunked: _ChunkedBody | None = None
        #: the final head holds a close token (Connection or Proxy-Connection)
        self._close = False
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
        self._started = True
        self._head = method == b"HEAD"
        self._buffer.clear()
        self._start = 0
        self._chunked = None
        self._close = False
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
        if not self._started:
            raise ProtocolViolation("received bytes while no request was outstanding")
        if not data:  # h11 would read b"" as end of stream; that is feed_eof's job
            return
        self.received += len(data)
        if self.done:
            # Bytes after a complete response (we never pipeline): the connection's framing
            # can no longer be trusted.
            self.keep_alive = False
            return
        if self._chunked is not None:
            self._feed_chunked(data)
        elif self.headers_done:
            self._feed_h11(data)
        else:
            self._feed_head(data)

    def feed_eof(self) -> None:
        # An incomplete response at EOF is the I/O layer's to report (it knows whether any
        # byte arrived), exactly as with the httptools codec: leave ``done`` false.
        if self.done or not self.headers_done or self._chunked is not None:
            return
        self._conn.receive_data(b"")
        try:
            self._drain()
        except ProtocolViolation:
            return
        # Whatever h11 concluded, a connection the peer closed carries nothing more.
        self.keep_alive = False

    def _feed_head(self, data: bytes) -> None:
        buffer = self._buffer
        # A head's end (or a broken line end) can straddle two feeds: look from just before
        # the new bytes, so a head trickling in costs linear time.
        search = max(self._start, len(buffer) - 3)
        buffer += data
        while True:
            start = self._start
            end = buffer.find(b"\r\n\r\n", search)
            if end < 0:
                if _BROKEN_LINE_END.search(buffer, search) or not (
                    buffer.startswith(b"HTTP/"[: len(buffer) - start], start)
                ):
                    # llhttp stops at the first such byte; fail as early.
                    check_head_syntax(bytes(buffer[start:]))
                return
            head = bytes(buffer[start:end])
            version, status, reason = check_head_syntax(head)
            interim = status < 200
            framing, self._close = check_head(
                head, status, version, reason, no_body=self._head or interim
            )
            conn = self._conn
            try:
                conn.receive_data(bytes(buffer[start : end + 4]))
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:  # pragma: no cover - the policy is stricter
                raise invalid(str(exc)) from exc
            if type(event) is not (h11.InformationalResponse if interim else h11.Response):
                raise invalid(f"h11 read {event!r} where the policy read {status}")
            if interim:
                self._start = search = end + 4
                continue
            self.status = status
            self.reason = reason
            self.http_version = version
            self.headers = RawHead(head)
            self.head_size = len(head)
            self.headers_done = True
            rest = bytes(buffer[end + 4 :])
            buffer.clear()
            if framing == CHUNKED:
                self._chunked = _ChunkedBody(self._max_line)
                self._feed_chunked(rest)
            else:
                self._feed_h11(rest)
            return

    def _feed_h11(self, data: bytes) -> None:
        if data:
            try:
                self._conn.receive_data(data)
            except RuntimeError as exc:  # receive_data after EOF
                raise invalid(str(exc)) from exc
        self._drain()

    def _feed_chunked(self, data: bytes) -> None:
        chunked = self._chunked
        assert chunked is not None
        end = chunked.feed(data, self.body)
        if end < 0:
            return
        self._chunked = None
        # h11 has seen the head only: the last chunk ends its side of the exchange.
        self._feed_h11(_LAST_CHUNK)
        if not chunked.reusable or end < len(data):
            self.keep_alive = False

    def _drain(self) -> None:
        conn = self._conn
        try:
            while True:
                event = conn.next_event()
                kind = type(event)
                if kind is h11.Data:
                    self.body.append(bytes(event.data))  # type: ignore[union-attr]
                elif kind is h11.EndOfMessage:
                    self.done = True
                    # Bytes already buffered past the response mean framing we cannot trust.
                    self.keep_alive = (
                        conn.our_state is h11.DONE
                        and conn.their_state is h11.DONE
                        and not conn.trailing_data[0]
                        and not self._close
                    )
                    return
                else:  # NEED_DATA, PAUSED or ConnectionClosed
                    return
        except h11.RemoteProtocolError as exc:
            raise invalid(str(exc)) from exc


_SIZE, _DATA, _DATA_END, _TRAILERS = range(4)


class _ChunkedBody:
    """A chunked body in the policy's strict grammar (``_codec.CHUNK_LINE``, CRLF after each
    chunk's data, trailers checked by ``check_trailer``), decoded as it arrives."""

    __slots__ = ("_line", "_max_line", "_remaining", "_state", "reusable")

    def __init__(self, max_line: int) -> None:
        self._state = _SIZE
        self._remaining = 0
        #: the partial chunk-size line, CRLF after data, or trailer line
        self._line = bytearray()
        self._max_line = max_line
        #: False once a trailer asked to close (``check_trailer``)
        self.reusable = True

    def feed(self, data: bytes, body: list[bytes]) -> int:
        """Append the body bytes in ``data`` to ``body``; return -1 while the body goes on,
        else the offset in ``data`` just past its end."""
        at = 0
        size = len(data)
        line = self._line
        while at < size:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, size - at)
                body.append(data[at : at + take])
                at += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_END
                continue
            if state == _DATA_END:
                piece = data[at : at + 2 - len(line)]
                line += piece
                at += len(piece)
                if not b"\r\n".startswith(line):
                    raise invalid(f"chunk data followed by {bytes(line)!r}, not CRLF")
                if len(line) == 2:
                    line.clear()
                    self._state = _SIZE
                continue
            end = data.find(b"\n", at)
            if end < 0:
                line += data[at:]
                at = size
                if len(line) > self._max_line:
                    raise invalid(f"chunk-size or trailer line longer than {self._max_line} bytes")
                continue
            line += data[at : end + 1]
            at = end + 1
            if len(line) < 2 or line[-2] != 0x0D:
                raise invalid(f"bare LF in chunked framing: {bytes(line[-64:])!r}")
            text = bytes(line[:-2])
            line.clear()
            if state == _SIZE:
                match = CHUNK_LINE.fullmatch(text)
                if match is None:
                    raise invalid(f"malformed chunk-size line: {text[:64]!r}")
                chunk = int(match[1], 16)
                if chunk > MAX_CHUNK_SIZE:
                    raise invalid(f"chunk size {match[1][:24]!r} does not fit 64 bits")
                if chunk:
                    self._state = _DATA
                    self._remaining = chunk
                else:
                    self._state = _TRAILERS
            elif text:  # a trailer field
                if not check_trailer(text):
                    self.reusable = False
            else:  # the blank line that ends the trailers, and the body
                return at
        return -1
