"""The interface between the I/O layer and an HTTP/1.1 parser backend, and the one response
policy both backends follow.

Both backends are sans-IO: bytes in, parsed state out, no sockets, no awaits. One codec object
serves one connection for its whole life, one exchange at a time:

1. ``start_request(method, target, headers, body)`` returns the bytes to send and resets the
   response state. It may only be called on a fresh codec or after a response that finished
   with ``keep_alive`` true.
2. ``feed(data)`` as bytes arrive; it may raise :class:`ProtocolViolation` (and nothing else),
   after which the connection must be closed. ``feed_eof()`` when the peer closed: it finishes
   a response delimited by the close and never raises; a response still not ``done`` after it
   was cut short, which the I/O layer reports (it knows whether the connection was a reused
   one).
3. After each feed the caller reads ``headers_done`` (then ``status``, ``reason``,
   ``http_version``, ``headers``), drains ``body`` (a list the codec appends received body
   chunks to; the caller swaps in a new list) and checks ``done``. When ``done`` is true,
   ``keep_alive`` says whether the connection may carry another exchange.

Both codecs return ``headers`` as a :class:`RawHead` of the bytes received, so the same bytes
give the same header pairs whichever backend parsed them. Neither codec bounds the head: the
I/O layer does (``max_header_bytes``), from ``received`` and ``head_size``.

The response policy
===================

One policy, written once: RFC 9112 section 6.3 -- *a framing conflict is an error, not a
guess* -- and, where the RFC lets a recipient choose, what llhttp (the fast backend, node.js's
parser) does in its strict mode, since a rule llhttp does not enforce would cost Python work
per response on the hot path. h11 accepts more than this policy in several places; where it
does, the h11 backend applies the stricter rule itself. "Error" means :class:`ProtocolViolation`
(the client's ``RemoteProtocolError``): the connection is closed and nothing of the response is
trusted.

=====================  ===========================================================  ==========
what                   policy                                                       enforced
=====================  ===========================================================  ==========
status line           ``HTTP/1.1`` or ``HTTP/1.0``, SP, three digits, optional SP  A, S
                       and reason. HTTP/0.9, 1.2, 2.0, RTSP/ and ICE/ (which llhttp
                       accepts), and empty lines before the status line, are errors.
status code           100-599. 000-099 and 600-999 are errors, never interim: a    S
                       ``099`` taken as interim once glued two responses into one.
reason phrase         HTAB, SP, VCHAR, obs-text (RFC 9112 4). NUL or another        S
                       control byte is an error.
interim 1xx           skipped until the final response; 101 is an error (we never   S
                       ask to upgrade). An interim response must be HTTP/1.1, must
                       not carry ``Connection: close`` (llhttp would stop there),
                       nor Content-Length or Transfer-Encoding (RFC 9110 8.6 and
                       9112 6.1 forbid them; llhttp would read a body after it).
line ends             CRLF only. A bare LF (RFC 9112 2.2 lets a recipient accept    A, H
                       it) and a bare CR are errors, in the head, in chunk lines and
                       in trailers: llhttp refuses them in strict mode.
obs-fold              error. RFC 9112 5.2 tells a user agent to replace it with     A, H
                       SP, but it is deprecated since 2014, no server we talk to
                       sends it, llhttp refuses it, and a field whose value depends
                       on a fold is a classic smuggling vector.
field names, values   names are tokens with no space before the colon; values are   A, H
                       HTAB, SP, VCHAR and obs-text (any other control byte, DEL
                       included, is an error). Values are taken without leading and
                       trailing OWS.
TE and CL together    error (RFC 9112 6.3 item 3: "ought to be handled as an        A, S
                       error").
Transfer-Encoding     at most one field, whose value is exactly ``chunked``         S
                       (case-insensitive; OWS before, SP after). Anything else --
                       ``gzip, chunked``, ``identity``, ``chunked,``, a second
                       field -- is an error: we could not decode the body, and
                       llhttp would read ``chunked<TAB>`` as not chunked. In an
                       HTTP/1.0 response it is an error (RFC 9112 6.1).
Content-Length        at most one field (a repeat is an error even with the same    A, S
                       value: RFC 9110 8.6 allows rejecting, llhttp does), 1*DIGIT,
                       at most 19 digits and at most 2**63 - 1 (Go's limit), so no
                       parser's integer overflows.
no body               1xx, 204, 304 and any response to HEAD have no body,          S
                       whatever their framing fields say (still checked as above).
neither TE nor CL     the body runs to the end of the connection: ``done`` at EOF,  S
                       never reused.
chunked body          chunk-size is hex digits with a value below 2**64 (leading    A, H
                       zeros allowed), then optional extensions ``;name[=value]``
                       with token names and token or quoted-string values, nothing
                       else (no whitespace), then CRLF; chunk data is followed by
                       CRLF.
trailers              field syntax as above; then discarded. A Content-Length       A, H
                       trailer is an error; a ``Connection: close`` (or
                       Proxy-Connection) trailer, or a Transfer-Encoding trailer
                       that does not end in ``chunked``, makes the connection not
                       reusable -- llhttp's reading, reproduced for h11.
reuse (keep_alive)    only for HTTP/1.1, when neither the request nor the response  A, S, H
                       has a ``close`` token in Connection (or Proxy-Connection,
                       which llhttp honours), and the response was complete with
                       not one byte after it. HTTP/1.0 keep-alive is never used.
bytes after the end   the complete response is still returned, but any byte after   A, H
                       it -- even a lone CRLF, which llhttp skips silently -- makes
                       the connection not reusable, and is never parsed as the next
                       response.
=====================  ===========================================================  ==========

Enforced by: A, llhttp in strict mode (the httptools backend relies on it); S, the shared
:func:`check_head`, which both backends call on every head they complete (the httptools
backend decides the common head -- one Content-Length, or one ``Transfer-Encoding: chunked``
-- in a few comparisons instead, from what llhttp has already checked; see
``_codec_httptools``); H, the h11 backend's own checks (:func:`check_head_syntax`, the chunk
and trailer grammar below), where h11 accepts more than llhttp. The two backends are held to
the same outcome by ``tests/test_codec_policy.py`` (this table, row by row) and
``tests/test_codec_differential.py`` (generated, mutated and arbitrary bytes).

One known difference remains, in size only: a chunk-size line or trailer line longer than the
head limit is an error for the h11 backend (it holds a line to check it), while llhttp streams
through it; no server sends one, and the I/O layer's read timeout bounds it for httptools.
"""

from __future__ import annotations

import re
from typing import Final, Literal, Protocol

from ._headers import RawHead

__all__ = [
    "BAD_TEXT",
    "CHUNKED",
    "CHUNK_LINE",
    "MAX_CHUNK_SIZE",
    "MAX_CONTENT_LENGTH",
    "MAX_HEADER_BYTES",
    "NO_HEADERS",
    "UNTIL_CLOSE",
    "Codec",
    "ParserName",
    "ProtocolViolation",
    "check_head",
    "check_head_syntax",
    "check_trailer",
    "invalid",
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

#: The largest Content-Length accepted (2**63 - 1, as Go's net/http).
MAX_CONTENT_LENGTH: Final = 2**63 - 1
#: The largest chunk size accepted (llhttp's limit; no chunk that large ever arrives).
MAX_CHUNK_SIZE: Final = 2**64 - 1

#: :func:`check_head`'s framing results besides a body length in bytes.
CHUNKED: Final = -1
UNTIL_CLOSE: Final = -2


class ProtocolViolation(Exception):
    """The peer's bytes are not a valid HTTP/1.1 response (mapped to RemoteProtocolError)."""


def invalid(why: str) -> ProtocolViolation:
    """The error for a response the policy refuses, saying why (both backends word it so)."""
    return ProtocolViolation(f"invalid HTTP/1.1 response: {why}")


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


# --- the policy, for both backends ---------------------------------------------------------

#: Control bytes a reason phrase or field value must not hold: all but HTAB (RFC 9110 5.5).
BAD_TEXT: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_FIELD_LINE: Final = _TOKEN + rb"+:[\t\x20-\x7e\x80-\xff]*"
#: A head in llhttp's strict grammar (the status line's numbers and the reason are left to
#: :func:`check_head`). No bare CR or LF, no obs-fold, no control byte in a value.
_HEAD_SYNTAX: Final = re.compile(
    rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?(?:\r\n" + _FIELD_LINE + rb")*"
)
#: One trailer field line, without its CRLF.
TRAILER_LINE: Final = re.compile(_FIELD_LINE)
#: A chunk-size line without its CRLF, in llhttp's strict grammar: after a ``;`` comes a name
#: (empty only if another ``;`` or a ``=`` follows), then optionally ``=`` and a value of token
#: characters and at most one quoted-string, which must end the extension.
CHUNK_LINE: Final = re.compile(
    rb"([0-9A-Fa-f]+)(?:;(?:"
    + _TOKEN
    + rb"+|(?=[;=]))(?:="
    + _TOKEN
    + rb'*(?:"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*")?)?)*'
)
#: The fields the policy reads, in a lowercased head: name, and value up to the line end.
_FIELDS: Final = re.compile(
    rb"\n(content-length|transfer-encoding|connection|proxy-connection):([^\r]*)"
)
#: A (lowercased, left-stripped) Transfer-Encoding value llhttp reads as ending in chunked.
_ENDS_CHUNKED: Final = re.compile(rb"(?:[^,]*,[ \t]*)*chunked *")
_VERSIONS: Final = (b"1.1", b"1.0")


def check_head(
    head: bytes, status: int, version: bytes, reason: bytes, *, no_body: bool
) -> tuple[int, bool]:
    """Apply the policy (module docstring) to one complete response head.

    ``head`` is the status line and field lines without the blank line that ends them;
    ``status``, ``version`` and ``reason`` are what the backend parsed from it; ``no_body``
    says the request was HEAD. Returns the body's framing (a length in bytes, :data:`CHUNKED`
    or :data:`UNTIL_CLOSE`; 0 when the response has no body) and whether a Connection or
    Proxy-Connection field holds ``close``. Raises :class:`ProtocolViolation` naming the rule.
    """
    if not head.startswith(b"HTTP/"):
        raise invalid(
            f"the response does not start with 'HTTP/': {head[:16]!r} (an empty line before "
            f"the status line, or another protocol)"
        )
    if version not in _VERSIONS:
        raise invalid(f"HTTP version {version.decode('latin-1')!r}: only 1.1 and 1.0")
    if not 100 <= status <= 599:
        raise invalid(f"status code {status:03d} is outside 100-599")
    if BAD_TEXT.search(reason):
        raise invalid(f"control byte in the reason phrase {reason!r}")
    lengths: list[bytes] = []
    codings: list[bytes] = []
    close = False
    for name, value in _FIELDS.findall(head.lower()):
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            codings.append(value)
        elif not close and b"close" in value:
            close = _has_close(value)
    framing = UNTIL_CLOSE
    if codings:
        if lengths:
            raise invalid("both Transfer-Encoding and Content-Length (RFC 9112 6.3)")
        if len(codings) > 1:
            raise invalid(f"{len(codings)} Transfer-Encoding fields")
        # llhttp takes trailing spaces after "chunked", but not a tab.
        coding = codings[0].lstrip(b" \t")
        if coding.rstrip(b" ") != b"chunked":
            raise invalid(f"Transfer-Encoding {coding!r}: only 'chunked' is supported")
        if version == b"1.0":
            raise invalid("Transfer-Encoding in an HTTP/1.0 response (RFC 9112 6.1)")
        framing = CHUNKED
    elif lengths:
        if len(lengths) > 1:
            raise invalid(f"{len(lengths)} Content-Length fields")
        value = lengths[0].strip(b" \t")
        if not (value.isdigit() and len(value) <= 19 and int(value) <= MAX_CONTENT_LENGTH):
            raise invalid(f"Content-Length {value[:24]!r} is not a number of at most 2**63 - 1")
        framing = int(value)
    if status < 200:
        if status == 101:
            raise invalid("unexpected 101 Switching Protocols response")
        if version != b"1.1" or close:
            raise invalid("an interim (1xx) response must be HTTP/1.1 without Connection: close")
        if lengths or codings:
            # llhttp would read a body after any 1xx but 100 (RFC 9110 8.6, 9112 6.1: a
            # server must not send these fields in a 1xx)
            raise invalid("an interim (1xx) response with framing fields")
        return 0, close
    if no_body or status in (204, 304):
        return 0, close
    return framing, close


def check_head_syntax(head: bytes) -> tuple[bytes, int, bytes]:
    """Check a head against llhttp's strict grammar (what the httptools backend gets from
    llhttp itself): CRLF line ends only, no obs-fold, token field names, no control byte in
    a value. Returns the version, status and reason of its status line (for
    :func:`check_head`). Raises :class:`ProtocolViolation`."""
    match = _HEAD_SYNTAX.fullmatch(head)
    if match is None:
        raise invalid(f"malformed response head: {_first_bad_line(head)!r}")
    return match[1], int(match[2]), match[3] or b""


def check_trailer(line: bytes) -> bool:
    """Check one trailer field line (without its CRLF); return False if it makes the
    connection not reusable, as llhttp reads it. Raises :class:`ProtocolViolation`."""
    if TRAILER_LINE.fullmatch(line) is None:
        raise invalid(f"malformed trailer field: {line[:64]!r}")
    name, _, value = line.lower().partition(b":")
    if name == b"content-length":
        raise invalid("Content-Length in the trailers of a chunked response")
    if name in (b"connection", b"proxy-connection"):
        return not _has_close(value)
    if name == b"transfer-encoding":
        value = value.lstrip(b" \t")
        if not value.rstrip(b" \t"):
            raise invalid("empty Transfer-Encoding trailer")
        # llhttp reads the codings again; unless the last is chunked, it wants the close.
        return _ENDS_CHUNKED.fullmatch(value) is not None
    return True


def _has_close(value: bytes) -> bool:
    """Whether a (lowercased) Connection value holds the token ``close``."""
    return any(token.strip(b" \t") == b"close" for token in value.split(b","))


def _first_bad_line(head: bytes) -> bytes:
    for line in head.split(b"\r\n"):
        if line and re.fullmatch(_FIELD_LINE, line) is None and not line.startswith(b"HTTP/"):
            return line[:64]
    return head[:64]


# --- requests ------------------------------------------------------------------------------


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
    """A codec. ``max_head`` bounds what the h11 backend holds of one chunk-size line or
    trailer line (the I/O layer bounds the head for both backends)."""
    if name == "httptools":
        from ._codec_httptools import HttptoolsCodec

        return HttptoolsCodec()
    from ._codec_h11 import H11Codec

    return H11Codec(max_head)
