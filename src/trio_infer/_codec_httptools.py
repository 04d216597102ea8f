"""HTTP/1.1 codec on httptools (llhttp): the fast default backend.

llhttp in strict mode (httptools' default; no leniency is turned on) enforces most of the
response policy of ``_codec`` itself: CRLF line ends, no obs-fold, token field names, no
control byte in field values, one Content-Length of digits below 2**64, not both
Content-Length and Transfer-Encoding, and the strict chunk grammar. What it does not enforce
(the protocol name, the version, the status range, the reason phrase, the Transfer-Encoding
value, a second Transfer-Encoding field) is checked by :func:`check_head` on every head, but
for one shortcut: ``on_headers_complete`` checks the common response itself, in a few
comparisons, where llhttp has already done the rest.

httptools exposes llhttp's callbacks but neither ``llhttp_finish``, the "skip body" return of
``on_headers_complete``, nor where in a buffer a message ended, so three things are done here
rather than by llhttp:

* a response delimited by connection close (no Content-Length, not chunked) is finished by
  :meth:`feed_eof`;
* a response to HEAD is finished at the end of its headers. Its parser is then thrown away (the
  next exchange gets a fresh llhttp parser; otherwise one parser serves the whole connection),
  so llhttp's belief that a body follows never reaches the next response. Any byte after such
  headers makes the connection unusable; llhttp may take some without a callback (the digits
  of a chunk size it expects), so they are found by length: the head's.
* bytes after a complete response. llhttp goes on parsing them as the next message: anything
  but CR and LF starts one (``on_message_begin``) or is an error, and either way the
  connection is not reused (an error after the end does not take back the response). CR and
  LF it skips *silently*, so a feed that completes a response and ends in CR or LF is checked
  by length: the head's size plus the Content-Length for a sized body; for a chunked body,
  which always ends in ``CRLF CRLF`` after a byte that is neither, more than four trailing
  line-end bytes. A feed of at most four line-end bytes alone (where that count would need
  the previous feed) is given to llhttp one byte at a time.
"""

from __future__ import annotations

from typing import Final

import httptools

from ._codec import (
    BAD_TEXT,
    CHUNKED,
    NO_HEADERS,
    UNTIL_CLOSE,
    Headers,
    ProtocolViolation,
    check_head,
    invalid,
    serialize_request,
    wants_close,
)
from ._headers import RawHead

__all__ = ["HttptoolsCodec"]

#: A Content-Length whose value ends at most this far past the start of its name has at
#: most 18 digits: within the policy once llhttp has taken it.
_SHORT_LENGTH: Final = len(b"\ncontent-length:") + 18
#: ``_framing`` of a body with a Content-Length, not read yet (only ``_ended_before`` needs it)
_SIZED: Final = -3
#: Final statuses the shortcut of ``on_headers_complete`` takes (not 204, 304: no body).
_PLAIN_STATUS: Final = frozenset(range(200, 600)) - {204, 304}
_VERSIONS: Final = frozenset({b"1.1", b"1.0"})
_LINE_ENDS: Final = b"\r\n"
#: What llhttp raises (an upgrade is not an HttpParserError; only bytes after a response can
#: get that far, since check_head refuses a 101).
_PARSER_ERRORS: Final = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class HttptoolsCodec:
    __slots__ = (
        "_framing",
        "_head",
        "_head_bytes",
        "_head_chunks",
        "_head_close",
        "_head_end",
        "_head_start",
        "_informational",
        "_parser",
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
        #: the body's framing once the final head is in (``check_head``'s answer, or _SIZED)
        self._framing = UNTIL_CLOSE
        #: where the current head starts, and where the final one ended, counted from the
        #: first byte of the response (offsets into the joined ``_head_chunks``)
        self._head_start = 0
        self._head_end = 0
        self._head_bytes = b""
        self._head_close = False
        self._head_chunks: list[bytes] = []
        self._wants_close = False
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
        # (``_informational`` and ``_head_chunks`` are as new after a response that finished
        # with keep_alive, the only kind a request may follow; ``_framing`` is only read
        # once the next final head has set it.)
        self._head_start = 0
        self.status = 0
        self.reason = b""
        self.headers = NO_HEADERS
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        # The list is cleared, not replaced: at high concurrency every object allocated per
        # exchange is alive at the next young-generation GC and costs a traversal there.
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
        elif len(data) <= 4 and self._framing == CHUNKED and not data.strip(b"\r\n"):
            self._feed_line_ends(parser, data)
            return
        try:
            parser.feed_data(data)
        except _PARSER_ERRORS as exc:
            self._parser_error(exc)
        # (``done`` turned true in this feed, so ``data`` is not empty.)
        if self.done and (data[-1] in _LINE_ENDS or self._head):
            if self._framing == CHUNKED:
                # It ended in CRLF CRLF after a byte that is neither: more are stray.
                if len(data) > 4 and data[-5] in _LINE_ENDS and not data[-5:].strip(b"\r\n"):
                    self.keep_alive = False
            elif self._ended_before():
                self.keep_alive = False

    def _feed_line_ends(self, parser: httptools.HttpResponseParser, data: bytes) -> None:
        """Only line ends, at most four: llhttp may finish a chunked body in them and skip
        the rest without a word, so they go one at a time."""
        for at in range(len(data)):
            try:
                parser.feed_data(data[at : at + 1])
            except _PARSER_ERRORS as exc:
                self._parser_error(exc)
            if self.done:
                if at + 1 < len(data):
                    self.keep_alive = False
                return

    def _parser_error(self, exc: Exception) -> None:
        if self.done:
            # What follows a complete response is not a response: keep the one we have.
            self.keep_alive = False
            return
        if isinstance(exc, httptools.HttpParserUpgrade):
            raise invalid("the server switched protocols (Upgrade)")
        context = exc.__context__
        if isinstance(context, ProtocolViolation):
            raise context from None
        raise invalid(str(exc)) from exc

    def _ended_before(self) -> bool:
        """Whether the response (not chunked) that completed in this feed ended before the
        last byte fed: bytes llhttp took without a word."""
        framing = self._framing
        if framing == _SIZED:
            framing = check_head(
                self._head_bytes, self.status, self.http_version, self.reason, no_body=False
            )[0]
        return self.received > self._head_end + framing

    def feed_eof(self) -> None:
        if self.headers_done and not self.done and not self._head and self._framing == UNTIL_CLOSE:
            self.done = True
            self.keep_alive = False

    # llhttp callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            self.keep_alive = False

    def on_status(self, status: bytes) -> None:
        if not self.headers_done:  # (not the "status" of bytes after the response)
            self.reason += status

    def on_headers_complete(self) -> None:
        if self.done:
            return
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        chunks = self._head_chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        start = self._head_start
        end = data.find(b"\r\n\r\n", start)
        head = data[start:end]
        reason = self.reason
        framing = UNTIL_CLOSE
        # The one shortcut past check_head, for the common response; it must decide as
        # check_head would. For a Content-Length spelled as nginx or uvicorn spell it, llhttp
        # has already refused a second one (in any spelling), a Transfer-Encoding beside it,
        # and anything but digits below 2**64 in it; a value of at most 18 characters is then
        # within the policy. For "transfer-encoding: chunked" (in any case), llhttp has
        # refused a Content-Length beside it; a second field remains to refuse. Anything
        # else, a rarer spelling included, goes to check_head.
        if data.startswith(b"HTTP/1.1 200 OK\r\n", start):
            version = b"1.1"
            plain = not self._head
        else:
            # llhttp has checked "HTTP/" + digit + "." + digit, if the head starts with HTTP/.
            version = head[5:8]
            plain = (
                status in _PLAIN_STATUS
                and version in _VERSIONS
                and head[:5] == b"HTTP/"
                and (reason == b"OK" or BAD_TEXT.search(reason) is None)
                and not self._head
            )
        if plain:
            at = head.find(b"\nContent-Length:")  # nginx, Go, node
            chunked = False
            if at < 0:
                chunked = head.endswith(b"\ntransfer-encoding: chunked")  # uvicorn streaming
                if not chunked:
                    at = head.find(b"\ncontent-length:")  # uvicorn, hypercorn
            if at >= 0:
                if (
                    head.find(b"\r", at, at + _SHORT_LENGTH + 1) >= 0
                    or len(head) - at <= _SHORT_LENGTH
                ):
                    framing = _SIZED
            elif version == b"1.1":
                lower = head.lower()
                if (
                    chunked
                    or b"\ntransfer-encoding: chunked\r" in lower
                    or lower.endswith(b"\ntransfer-encoding: chunked")
                ) and lower.count(b"\ntransfer-encoding:") == 1:
                    framing = CHUNKED
        if framing == UNTIL_CLOSE:
            framing, self._head_close = check_head(
                head, status, version, reason, no_body=self._head
            )
            if status < 200:
                self._informational = True
                self._head_start = end + 4
                self.reason = b""
                return
        self._framing = framing
        self._head_end = end + 4
        self._head_bytes = head
        self.status = status
        self.http_version = version
        self.headers = RawHead(head)
        self.head_size = end - start
        chunks.clear()
        self.headers_done = True
        if self._head:
            self.done = True
            # llhttp, not told of HEAD, would want the close for a head without framing.
            self.keep_alive = not (self._head_close or self._wants_close) and version == b"1.1"

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
        parser = self._parser
        assert parser is not None
        self.done = True
        # HTTP/1.0 keep-alive is refused, as h11 (the reference backend) refuses it: servers
        # that still speak 1.0 are rarely worth the ambiguity of reusing a connection.
        self.keep_alive = (
            parser.should_keep_alive() and not self._wants_close and self.http_version == b"1.1"
        )
