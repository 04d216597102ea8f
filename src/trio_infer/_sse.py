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
"""

from __future__ import annotations

import attrs

__all__ = ["Line", "LineDecoder", "SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"


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


class _LineSplitter:
    """Splits chunks on CRLF, LF and CR, holding back an incomplete last line."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def split(self, chunk: bytes) -> list[bytes]:
        if self._pending:
            chunk = self._pending + chunk
        if b"\r" in chunk:
            hold = b""
            if chunk[-1:] == b"\r":
                # The \n that may complete this CRLF is still on its way.
                chunk, hold = chunk[:-1], b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = chunk.split(b"\n")
            self._pending = lines.pop() + hold
            return lines
        lines = chunk.split(b"\n")
        self._pending = lines.pop()
        return lines

    def flush(self) -> bytes | None:
        """The unterminated last line at end of stream, if any."""
        pending, self._pending = self._pending, b""
        if pending.endswith(b"\r"):
            # A held-back CR ended the line: it is complete, even when empty.
            return pending[:-1]
        return pending or None


class LineDecoder:
    """Turns body chunks into :class:`Line` values."""

    __slots__ = ("_splitter",)

    def __init__(self) -> None:
        self._splitter = _LineSplitter()

    def feed(self, chunk: bytes, received_at: float) -> list[Line]:
        return [
            Line(line.decode("utf-8", "replace"), received_at)
            for line in self._splitter.split(chunk)
        ]

    def flush(self, received_at: float) -> list[Line]:
        last = self._splitter.flush()
        return [] if last is None else [Line(last.decode("utf-8", "replace"), received_at)]


class SSEDecoder:
    """Turns body chunks into :class:`ServerSentEvent` values (see the module docstring)."""

    __slots__ = ("_data", "_event", "_head", "_id", "_retry", "_splitter")

    def __init__(self) -> None:
        self._splitter = _LineSplitter()
        # Bytes held until we know whether the stream starts with a BOM; None once we know.
        self._head: bytes | None = b""
        self._data: list[bytes] = []
        self._event = b""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes, received_at: float) -> list[ServerSentEvent]:
        if self._head is not None:
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._head = None
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        events: list[ServerSentEvent] = []
        data = self._data
        for line in self._splitter.split(chunk):
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
        if head:
            for line in self._splitter.split(head):
                self._line(line, events, received_at)
        last = self._splitter.flush()
        if last is not None:
            self._line(last, events, received_at)
        self._line(b"", events, received_at)
        return events

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
