"""HTTP/1.1 codec on httptools (llhttp): the fast default backend.

httptools exposes llhttp's callbacks but neither ``llhttp_finish`` nor the "skip body" return
of ``on_headers_complete``, so two cases are completed here rather than by llhttp:

* a response delimited by connection close (no Content-Length, not chunked) is finished by
  :meth:`feed_eof`;
* a response to HEAD is finished at the end of its headers. Its parser is then thrown away (the
  next exchange gets a fresh llhttp parser; otherwise one parser serves the whole connection),
  so llhttp's belief that a body follows never reaches the next response. Any byte after such
  headers makes the connection unusable.
"""

from __future__ import annotations

import httptools

from ._codec import NO_HEADERS, Headers, ProtocolViolation, serialize_request, wants_close
from ._headers import RawHead

__all__ = ["HttptoolsCodec"]

_NO_BODY_STATUS = frozenset({204, 304})
_VERSIONS = {"1.1": b"1.1", "1.0": b"1.0"}


class HttptoolsCodec:
    __slots__ = (
        "_head",
        "_head_chunks",
        "_informational",
        "_interim",
        "_parser",
        "_reason",
        "_wants_close",
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

    def __init__(self) -> None:
        self._parser: httptools.HttpResponseParser | None = None
        self._head = False
        self._informational = False
        self._interim = 0
        self._head_chunks: list[bytes] = []
        self._wants_close = False
        self._reason: list[bytes] = []
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
        if self._parser is not None and not (self.done and self.keep_alive):
            raise RuntimeError("start_request on a connection whose last response is unfinished")
        if self._parser is None or self._head:
            # llhttp resets itself after a complete keep-alive message, so one parser serves
            # the whole connection; only after HEAD (whose body llhttp still expects) is a
            # fresh one needed.
            self._parser = httptools.HttpResponseParser(self)
        self._head = method == b"HEAD"
        self._informational = False
        self._interim = 0
        # The lists are cleared, not replaced: at high concurrency every object allocated
        # per exchange is alive at the next young-generation GC and costs a traversal there.
        self._head_chunks.clear()
        self._reason.clear()
        self.status = 0
        self.headers = NO_HEADERS
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.body.clear()
        self.received = 0
        self._wants_close = wants_close(headers)
        return serialize_request(method, target, headers, body)

    def feed(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            raise ProtocolViolation("received bytes while no request was outstanding")
        self.received += len(data)
        if self.done:
            # Bytes after a complete response (we never pipeline): the connection's framing
            # can no longer be trusted.
            self.keep_alive = False
            return
        if not self.headers_done:
            self._head_chunks.append(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise ProtocolViolation(
                "the server switched protocols (Upgrade), not HTTP/1.1"
            ) from exc
        except httptools.HttpParserError as exc:
            context = exc.__context__
            if isinstance(context, ProtocolViolation):
                raise context from None
            raise ProtocolViolation(f"invalid HTTP/1.1 response: {exc}") from exc

    def feed_eof(self) -> None:
        if self.headers_done and not self.done and not self._head and self._delimited_by_close():
            self.done = True
            self.keep_alive = False

    def _delimited_by_close(self) -> bool:
        if self.status in _NO_BODY_STATUS:
            return False
        assert isinstance(self.headers, RawHead)
        for name, _ in self.headers.pairs():
            if name.lower() in (b"content-length", b"transfer-encoding"):
                return False
        return True

    # llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            self.keep_alive = False

    def on_status(self, status: bytes) -> None:
        self._reason.append(status)

    def on_headers_complete(self) -> None:
        if self.done:
            return
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise ProtocolViolation("unexpected 101 Switching Protocols response")
            self._informational = True
            self._interim += 1
            self._reason.clear()
            return
        self.status = status
        self.reason = b"".join(self._reason)
        version = parser.get_http_version()
        self.http_version = _VERSIONS.get(version) or version.encode()
        head = self.headers = RawHead.cut(self._head_chunks, self._interim)
        self.head_size = head.size
        self._head_chunks.clear()
        self.headers_done = True
        if self._head:
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self.done:
            self.keep_alive = False
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self.done:
            return
        self._finish()

    def _finish(self) -> None:
        parser = self._parser
        assert parser is not None
        self.done = True
        # HTTP/1.0 keep-alive is refused, as h11 (the reference backend) refuses it: servers
        # that still speak 1.0 are rarely worth the ambiguity of reusing a connection.
        self.keep_alive = (
            parser.should_keep_alive() and not self._wants_close and self.http_version == b"1.1"
        )
