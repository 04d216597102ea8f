"""The interface between the I/O layer and an HTTP/1.1 parser backend.

Both backends are sans-IO: bytes in, parsed state out, no sockets, no awaits. One codec object
serves one connection for its whole life, one exchange at a time:

1. ``start_request(method, target, headers, body)`` returns the bytes to send and resets the
   response state. It may only be called on a fresh codec or after a response that finished
   with ``keep_alive`` true.
2. ``feed(data)`` as bytes arrive; it may raise :class:`ProtocolViolation`, after which the
   connection must be closed. ``feed_eof()`` when the peer closed: it finishes a response
   delimited by the close and never raises; a response still not ``done`` after it was cut
   short, which the I/O layer reports (it knows whether the connection was a reused one).
3. After each feed the caller reads ``headers_done`` (then ``status``, ``reason``,
   ``http_version``, ``headers``), drains ``body`` (a list the codec appends received body
   chunks to; the caller swaps in a new list) and checks ``done``. When ``done`` is true,
   ``keep_alive`` says whether the connection may carry another exchange.

Interim 1xx responses are swallowed: ``headers_done`` only turns true for the final response.
A response to ``HEAD``, and 204 and 304 responses, have no body whatever their headers say.
"""

from __future__ import annotations

from typing import Literal, Protocol

from ._headers import RawHead

__all__ = [
    "MAX_HEADER_BYTES",
    "NO_HEADERS",
    "Codec",
    "ParserName",
    "ProtocolViolation",
    "make_codec",
    "resolve_parser",
    "serialize_request",
    "wants_close",
]

ParserName = Literal["httptools", "h11"]
Headers = list[tuple[bytes, bytes]]

#: The default limit on a response head, in bytes (``Client(max_header_bytes=...)``).
MAX_HEADER_BYTES = 65536

#: The placeholder a codec's ``headers`` holds until ``headers_done``: one shared list, never
#: mutated, so starting an exchange allocates nothing for it.
NO_HEADERS: Headers = []


class ProtocolViolation(Exception):
    """The peer's bytes are not a valid HTTP/1.1 response (mapped to RemoteProtocolError)."""


class Codec(Protocol):
    status: int
    reason: bytes
    http_version: bytes
    #: the final response's headers: pairs, or a RawHead that splits them on demand
    headers: Headers | RawHead
    headers_done: bool
    done: bool
    keep_alive: bool
    body: list[bytes]
    #: bytes of response (any part) received since ``start_request``
    received: int
    #: the final response head's size in bytes, once ``headers_done``
    head_size: int

    def start_request(
        self, method: bytes, target: bytes, headers: Headers, body: bytes
    ) -> bytes: ...

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...


def serialize_request(method: bytes, target: bytes, headers: Headers, body: bytes) -> bytes:
    """The request's wire bytes. Header names and values were validated by the client."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    if body:
        parts.append(body)
    return b"".join(parts)


def wants_close(headers: Headers) -> bool:
    """Whether the request asks to close the connection after the response."""
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"connection" and b"close" in value.lower():
            return True
    return False


def resolve_parser(name: str) -> ParserName:
    """Check a parser name; fall back from httptools to h11 when httptools is not importable."""
    from ._errors import ConfigError

    if name == "h11":
        return "h11"
    if name == "httptools":
        try:
            import httptools  # noqa: F401
        except ImportError:
            return "h11"
        return "httptools"
    raise ConfigError(f"parser={name!r} is not a parser backend; pass 'httptools' or 'h11'")


def make_codec(name: ParserName, max_head: int = MAX_HEADER_BYTES) -> Codec:
    """A codec; ``max_head`` lets the h11 backend buffer a head that large (it refuses
    larger ones itself; the client enforces the limit for both backends)."""
    if name == "httptools":
        from ._codec_httptools import HttptoolsCodec

        return HttptoolsCodec()
    from ._codec_h11 import H11Codec

    return H11Codec(max_head)
