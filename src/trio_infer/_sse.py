"""Sans-IO decoders for streamed bodies: lines and server-sent events.

The SSE decoder follows the WHATWG "event stream interpretation" rules: lines end in CRLF, LF
or CR (a CRLF split across two chunks is still one line end); a leading UTF-8 BOM is dropped;
``:`` starts a comment; ``data`` lines accumulate joined by ``\\n``; ``event`` sets the type
(default ``"message"``); ``id`` sets the last event id unless it contains NUL and persists
across events; ``retry`` is kept only when all ASCII digits; a blank line dispatches, and a
block without ``data`` dispatches nothing.

One deliberate departure: at end of stream the spec discards an event that lacks its closing
blank line. Servers that end with ``data: [DONE]\\n`` exist, and silently losing the last event
is worse than being lenient, so :meth:`SSEDecoder.flush` dispatches it.

Bounded buffering. A server that never ends a line (or an event) must not make the client hold
everything it sends, so both decoders have a limit, and past it they raise
:class:`DecodeLimitExceeded` (``Response.aiter_lines`` / ``aiter_sse`` turn it into
``trio_infer.ResponseTooLarge`` and close the response):

* ``LineDecoder(max_line_bytes=DEFAULT_MAX_LINE_BYTES)``: the bytes of one line, its line
  ending not counted.
* ``SSEDecoder(max_event_bytes=DEFAULT_MAX_EVENT_BYTES)``: the bytes of one event's block, all
  its lines (field names, comments and the line still arriving included, line endings not),
  so an event of one ``data:`` line holds ``len("data: ") + len(data)`` of it.

The limit is exact: a line or event of exactly the limit passes, one byte more raises as soon as
that byte arrives (before the line ends), so what a decoder holds is at most the limit plus the
chunk being fed. Items completed earlier in the chunk that overflows are not returned: the
stream cannot be decoded past that point anyway. A decoder that raised must not be fed again.

Buffering is linear: an incomplete line is kept as a list of pieces and only the new chunk is
searched for a line end, so a long line arriving in small pieces is joined once, when it ends
(re-concatenating per piece made a 16 MiB line in 4 KiB pieces cost 20 s).
"""

from __future__ import annotations

from typing import Final

import attrs

from ._errors import ConfigError

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "DecodeLimitExceeded",
    "Line",
    "LineDecoder",
    "SSEDecoder",
    "ServerSentEvent",
]

_BOM = b"\xef\xbb\xbf"

#: The default ``max_line_bytes``. An LLM stream's lines are JSON chunks of well under 1 KiB,
#: and a JSON-lines result or a final answer repeated in one line rarely passes 1 MiB (128k
#: tokens of text is about 0.5 MiB before JSON escaping); 16 MiB leaves room for logprobs and
#: for whole documents, while a server that never ends its line is stopped after 16 MiB instead
#: of holding every byte it sends.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024

#: The default ``max_event_bytes``, for the same reasons: a token event is a few hundred bytes,
#: and the largest legitimate events (a final event that repeats the whole answer, with logprobs)
#: stay well below 16 MiB.
DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024


class DecodeLimitExceeded(Exception):
    """A line (``LineDecoder``) or an event (``SSEDecoder``) grew past its decoder's limit.

    Sans-IO and deliberately not a ``trio_infer.Error``: the response layer maps it to
    ``ResponseTooLarge`` with the endpoint, which the decoder does not know.

    Attributes:
        limit: the limit that was exceeded, in bytes.
        what: ``"line"`` or ``"event"``; the knob is ``max_{what}_bytes``.
    """

    def __init__(self, limit: int, what: str) -> None:
        unit = (
            "its line ending not counted"
            if what == "line"
            else "all its lines, line endings not counted"
        )
        super().__init__(
            f"{'a line' if what == 'line' else 'an event'} of the stream is larger than "
            f"max_{what}_bytes={limit} ({unit}); if the "
            f"server's {what}s are legitimately this large, pass a larger max_{what}_bytes= "
            f"(aiter_{'lines' if what == 'line' else 'sse'}(max_{what}_bytes=...))"
        )
        self.limit = limit
        self.what = what


def _checked_limit(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name}={value!r}: expected a whole number of bytes >= 1")
    return value


@attrs.frozen
class ServerSentEvent:
    """One dispatched server-sent event.

    Attributes:
        data: the data lines joined by ``"\\n"``.
        event: the event type (``"message"`` unless an ``event:`` field said otherwise).
        id: the last event id seen on this stream so far, or ``None``.
        retry: the ``retry:`` value (milliseconds) given in this event's block, or ``None``.
        received_at: ``trio.current_time()`` when the chunk that completed the event arrived.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    received_at: float = 0.0

    def json(self) -> object:
        """Decode ``data`` as JSON."""
        import json

        return json.loads(self.data)


@attrs.frozen
class Line:
    """One line of a streamed body, without its line ending.

    Attributes:
        text: the line, decoded as UTF-8 (invalid bytes replaced).
        received_at: ``trio.current_time()`` when the chunk that completed the line arrived.
    """

    text: str
    received_at: float


# Line ends are searched for as ints (``13 in chunk``, CR; ``10``, LF): for a bytes needle
# ``in`` costs about five times more (174 ns against 34 ns on a 160-byte chunk, measured).


class _LineSplitter:
    """Splits chunks on CRLF, LF and CR, holding back an incomplete last line.

    The incomplete line is kept in pieces (``parts``), joined only once a chunk brings its line
    end, so each byte is copied a bounded number of times however small the pieces are.
    ``size`` is its length (a held-back CR not counted); it never exceeds ``limit``.
    """

    __slots__ = ("limit", "parts", "size", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.what = what

    def split(self, chunk: bytes) -> list[bytes]:
        parts = self.parts
        if parts:
            if 10 not in chunk and 13 not in chunk and parts[-1][-1:] != b"\r":
                # Still no line end: keep the piece, search only new bytes next time.
                size = self.size + len(chunk)
                if size > self.limit:
                    self._overflow()
                parts.append(chunk)
                self.size = size
                return []
            chunk = parts[0] + chunk if len(parts) == 1 else b"".join([*parts, chunk])
            parts.clear()
        if 13 in chunk:
            hold = chunk[-1:] == b"\r"
            if hold:
                # The \n that may complete this CRLF is still on its way.
                chunk = chunk[:-1]
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if hold:
                parts.append(tail + b"\r")
            elif tail:
                parts.append(tail)
        else:
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if tail:
                parts.append(tail)
        self.size = len(tail)
        # Only a chunk longer than the limit can hold a line longer than it.
        if len(chunk) > self.limit and (
            len(tail) > self.limit or any(len(line) > self.limit for line in lines)
        ):
            self._overflow()
        return lines

    def flush(self) -> bytes | None:
        """The unterminated last line at end of stream, if any."""
        pending = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        if pending.endswith(b"\r"):
            # A held-back CR ended the line: it is complete, even when empty.
            return pending[:-1]
        return pending or None

    def _overflow(self) -> None:
        self.parts.clear()  # drop what is held: the stream is beyond repair
        self.size = 0
        raise DecodeLimitExceeded(self.limit, self.what)


class LineDecoder:
    """Turns body chunks into :class:`Line` values.

    ``max_line_bytes`` bounds one line (see the module docstring); past it :meth:`feed`
    raises :class:`DecodeLimitExceeded`.
    """

    __slots__ = ("_splitter",)

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._splitter = _LineSplitter(_checked_limit("max_line_bytes", max_line_bytes), "line")

    @property
    def max_line_bytes(self) -> int:
        return self._splitter.limit

    def feed(self, chunk: bytes, received_at: float) -> list[Line]:
        return [
            Line(line.decode("utf-8", "replace"), received_at)
            for line in self._splitter.split(chunk)
        ]

    def flush(self, received_at: float) -> list[Line]:
        last = self._splitter.flush()
        return [] if last is None else [Line(last.decode("utf-8", "replace"), received_at)]


class SSEDecoder:
    """Turns body chunks into :class:`ServerSentEvent` values (see the module docstring).

    ``max_event_bytes`` bounds one event's block (see the module docstring); past it
    :meth:`feed` or :meth:`flush` raises :class:`DecodeLimitExceeded`.
    """

    __slots__ = (
        "_data",
        "_event",
        "_head",
        "_held",
        "_id",
        "_max",
        "_pending",
        "_retry",
        "_room",
        "_splitter",
    )

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = _checked_limit("max_event_bytes", max_event_bytes)
        # One line cannot be longer than its event, so the splitter bounds the line that is
        # still arriving and this decoder bounds the block's complete lines plus that line.
        self._splitter = _LineSplitter(self._max, "event")
        self._pending = self._splitter.parts
        # Bytes held until we know whether the stream starts with a BOM; None once we know.
        self._head: bytes | None = b""
        self._data: list[bytes] = []
        self._event = b""
        self._id: str | None = None
        self._retry: int | None = None
        # The bytes of the complete lines of the event block still open (line ends excluded),
        # and what the limit leaves for more: _max - _held - the incomplete line's size.
        self._held = 0
        self._room = self._max

    @property
    def max_event_bytes(self) -> int:
        return self._max

    def feed(self, chunk: bytes, received_at: float) -> list[ServerSentEvent]:
        if self._head is not None:
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._head = None
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        pending = self._pending
        if (
            len(chunk) > self._room
            or 13 in chunk
            or (pending and (10 not in chunk or pending[-1][-1:] == b"\r"))
        ):
            # A chunk that could pass the limit, CRs, or one more piece of a long line.
            lines = self._split(chunk)
        else:
            # The usual chunk: LF-terminated lines, too short to pass the limit. The
            # splitter's work is inlined (a call per chunk is measurable here) and nothing
            # needs counting line by line.
            if pending:
                chunk = pending[0] + chunk if len(pending) == 1 else b"".join([*pending, chunk])
                pending.clear()
                self._splitter.size = 0
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if not lines:
                if tail:  # the start of a line, nothing complete yet
                    pending.append(tail)
                    self._splitter.size = len(tail)
                    self._room -= len(tail)
                return []
            if tail or lines[-1]:
                self._open_block(lines, tail)
            else:  # the chunk ended an event: nothing of the next one is held yet
                self._held = 0
                self._room = self._max
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            # Fast path for the two lines that make up nearly every LLM token event.
            if line[:6] == b"data: ":
                data.append(line[6:])
            elif not line and data and not self._event and self._retry is None:
                events.append(
                    ServerSentEvent(
                        (data[0] if len(data) == 1 else b"\n".join(data)).decode(
                            "utf-8", "replace"
                        ),
                        "message",
                        self._id,
                        None,
                        received_at,
                    )
                )
                data.clear()
            else:
                self._line(line, events, received_at)
        return events

    def flush(self, received_at: float) -> list[ServerSentEvent]:
        """Dispatch what the stream left unterminated (see the module docstring)."""
        events: list[ServerSentEvent] = []
        head, self._head = self._head, None
        lines = self._splitter.split(head) if head else []
        last = self._splitter.flush()
        if last is not None:
            lines.append(last)
        self._count(lines)
        self._held = 0
        self._room = self._max
        for line in lines:
            self._line(line, events, received_at)
        self._line(b"", events, received_at)
        return events

    def _split(self, chunk: bytes) -> list[bytes]:
        """The splitter's general path (pieces, CRs, long chunks), with the block counted."""
        room = self._room
        lines = self._splitter.split(chunk)
        if len(chunk) > room:
            # This chunk could complete or extend a block past the limit: count line by line.
            self._count(lines)
        elif lines:
            if lines[-1]:
                self._open_block(lines, b"")
            else:
                self._held = 0
        self._room = self._max - self._held - self._splitter.size
        return lines

    def _open_block(self, lines: list[bytes], tail: bytes) -> None:
        """Keep the open block's size exact after a chunk that cannot pass the limit."""
        held = 0
        for line in reversed(lines):
            if not line:
                break
            held += len(line)
        else:
            held += self._held
        if tail:
            self._pending.append(tail)
            self._splitter.size = len(tail)
        self._held = held
        self._room = self._max - held - len(tail)

    def _count(self, lines: list[bytes]) -> None:
        """Track the open block's size exactly; raise once a block passes the limit."""
        limit = self._max
        size = self._held
        for line in lines:
            if line:
                size += len(line)
                if size > limit:
                    self._overflow()
            else:
                size = 0
        if size + self._splitter.size > limit:
            self._overflow()
        self._held = size

    def _overflow(self) -> None:
        # Drop what the event held: the decoder is not fed again after this.
        self._data.clear()
        self._splitter.flush()
        self._held = 0
        raise DecodeLimitExceeded(self._max, "event")

    def _line(self, line: bytes, events: list[ServerSentEvent], received_at: float) -> None:
        if not line:
            if self._data:
                events.append(
                    ServerSentEvent(
                        b"\n".join(self._data).decode("utf-8", "replace"),
                        self._event.decode("utf-8", "replace") if self._event else "message",
                        self._id,
                        self._retry,
                        received_at,
                    )
                )
                self._data.clear()
            self._event = b""
            self._retry = None
            return
        if line[0] == 58:  # ':' starts a comment
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit() and value.isascii():
            self._retry = int(value)
