"""The response policy of ``_codec`` as one table, run against both backends.

Each row is the bytes a server sends (and the request method) and what the client must make
of them: a refusal (``ProtocolViolation``, or a response still unfinished when the connection
ends, which the I/O layer reports), or a response with this status, body, head and reuse.
Every row is fed whole, one byte at a time, and in 7-byte pieces, so no rule depends on where
the reads fall.
"""

from __future__ import annotations

import dataclasses

import pytest

from trio_infer import Headers
from trio_infer._codec import ProtocolViolation, make_codec


@dataclasses.dataclass(frozen=True)
class Ok:
    status: int
    body: bytes = b""
    #: whether the connection may carry the next exchange
    keep_alive: bool = True
    #: the header pairs, when the row is about them
    headers: list[tuple[bytes, bytes]] | None = None
    reason: bytes | None = None
    #: the response ends only with the connection
    at_eof: bool = False


ERROR = "error"

CL2 = b"Content-Length: 2\r\n\r\nok"
OK_CL = b"HTTP/1.1 200 OK\r\n" + CL2
TE = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
CHUNKED_OK = TE + b"2\r\nok\r\n0\r\n\r\n"


def head(*lines: bytes) -> bytes:
    """A 200 response whose head has ``lines`` before a Content-Length of 2."""
    return b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines) + CL2


ROWS: list[tuple[str, bytes, bytes, Ok | str]] = [
    # --- good responses ---------------------------------------------------------------------
    ("content-length", OK_CL, b"GET", Ok(200, b"ok", headers=[(b"Content-Length", b"2")])),
    ("content-length 0", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"GET", Ok(200)),
    (
        "content-length OWS",
        b"HTTP/1.1 200 OK\r\nContent-Length: \t2 \r\n\r\nok",
        b"GET",
        Ok(200, b"ok"),
    ),
    (
        "content-length leading zeros",
        b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 002\r\n\r\nok",
        b"GET",
        Ok(200, b"ok"),
    ),
    ("chunked", TE + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"GET", Ok(200, b"hello world")),
    (
        "chunked: extensions and trailers",
        TE
        + b'5;a=b;q="x \\"y\\"";n\r\nhello\r\nA\r\n0123456789\r\n0;last\r\nX-T: 1\r\nX-U:\r\n\r\n',
        b"GET",
        Ok(200, b"hello0123456789", headers=[(b"Transfer-Encoding", b"chunked")]),
    ),
    (
        "chunked: hex case, leading zeros",
        TE + b"000a\r\n0123456789\r\n00\r\n\r\n",
        b"GET",
        Ok(200, b"0123456789"),
    ),
    (
        "chunked: name and value any case, OWS",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding:\t CHUNKED  \r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        Ok(200, b"ok", headers=[(b"transfer-encoding", b"CHUNKED")]),
    ),
    (
        "until close",
        b"HTTP/1.1 200 OK\r\n\r\nstreamed to close",
        b"GET",
        Ok(200, b"streamed to close", keep_alive=False, at_eof=True),
    ),
    ("HEAD with length", b"HTTP/1.1 200 OK\r\nContent-Length: 123\r\n\r\n", b"HEAD", Ok(200)),
    ("HEAD chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"HEAD", Ok(200)),
    ("HEAD without framing", b"HTTP/1.1 200 OK\r\n\r\n", b"HEAD", Ok(200)),
    ("204", b"HTTP/1.1 204 No Content\r\n\r\n", b"GET", Ok(204, reason=b"No Content")),
    (
        "204 chunked",
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET",
        Ok(204),
    ),
    (
        "304 with length",
        b"HTTP/1.1 304 Not Modified\r\nETag: x\r\nContent-Length: 10\r\n\r\n",
        b"GET",
        Ok(304),
    ),
    (
        "404",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnah",
        b"GET",
        Ok(404, b"nah", reason=b"Not Found"),
    ),
    ("599", b"HTTP/1.1 599 X\r\n" + CL2, b"GET", Ok(599, b"ok")),
    (
        "100 then 200",
        b"HTTP/1.1 100 Continue\r\n\r\n" + OK_CL,
        b"POST",
        Ok(200, b"ok", reason=b"OK"),
    ),
    (
        "103 and 102 then 200",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 102 P\r\n\r\n" + OK_CL,
        b"GET",
        Ok(200, b"ok", headers=[(b"Content-Length", b"2")]),
    ),
    (
        "199 then 200",
        b"HTTP/1.1 199 X\r\n\r\n" + OK_CL,
        b"GET",
        Ok(200, b"ok"),
    ),
    ("no reason", b"HTTP/1.1 200\r\n" + CL2, b"GET", Ok(200, b"ok", reason=b"")),
    ("empty reason", b"HTTP/1.1 200 \r\n" + CL2, b"GET", Ok(200, b"ok", reason=b"")),
    (
        "reason: tab, obs-text",
        b"HTTP/1.1 200 a\tb \xe9\r\n" + CL2,
        b"GET",
        Ok(200, b"ok", reason=b"a\tb \xe9"),
    ),
    (
        "field values: OWS, tab, obs-text, empty",
        head(b"X-A:  a\tb \xff  ", b"X-B:", b"Set-Cookie: a", b"set-cookie: b"),
        b"GET",
        Ok(
            200,
            b"ok",
            headers=[
                (b"X-A", b"a\tb \xff"),
                (b"X-B", b""),
                (b"Set-Cookie", b"a"),
                (b"set-cookie", b"b"),
                (b"Content-Length", b"2"),
            ],
        ),
    ),
    (
        "Connection: upgrade on a 200",
        head(b"Connection: upgrade", b"Upgrade: h2c"),
        b"GET",
        Ok(200, b"ok"),
    ),
    # --- not reused ---------------------------------------------------------------------------
    ("Connection: close", head(b"Connection: close"), b"GET", Ok(200, b"ok", keep_alive=False)),
    (
        "Connection: x, Close",
        head(b"Connection: x, Close"),
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    (
        "second Connection field",
        head(b"Connection: keep-alive", b"connection: close"),
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    (
        "Proxy-Connection: close",
        head(b"Proxy-Connection: close"),
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    ("Connection: closed is not close", head(b"Connection: closed"), b"GET", Ok(200, b"ok")),
    ("HTTP/1.0", b"HTTP/1.0 200 OK\r\n" + CL2, b"GET", Ok(200, b"ok", keep_alive=False)),
    (
        "HTTP/1.0 keep-alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n" + CL2,
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    (
        "HTTP/1.0 until close",
        b"HTTP/1.0 200 OK\r\n\r\nok",
        b"GET",
        Ok(200, b"ok", keep_alive=False, at_eof=True),
    ),
    (
        "trailer Connection: close",
        TE + b"2\r\nok\r\n0\r\nConnection: close\r\n\r\n",
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    (
        "trailer Transfer-Encoding: gzip",
        TE + b"2\r\nok\r\n0\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    (
        "trailer Transfer-Encoding: chunked",
        TE + b"2\r\nok\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET",
        Ok(200, b"ok"),
    ),
    # --- bytes after a complete response: returned, never reused -----------------------------
    ("length, then garbage", OK_CL + b"xyz", b"GET", Ok(200, b"ok", keep_alive=False)),
    ("length, then CRLF", OK_CL + b"\r\n", b"GET", Ok(200, b"ok", keep_alive=False)),
    ("length, then LF", OK_CL + b"\n", b"GET", Ok(200, b"ok", keep_alive=False)),
    ("length, then a response", OK_CL + OK_CL, b"GET", Ok(200, b"ok", keep_alive=False)),
    (
        "length, then a 101",
        OK_CL + b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    (
        "length ending in CRLF, nothing after",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok\r\n",
        b"GET",
        Ok(200, b"ok\r\n"),
    ),
    ("chunked, then CRLF", CHUNKED_OK + b"\r\n", b"GET", Ok(200, b"ok", keep_alive=False)),
    ("chunked, then garbage", CHUNKED_OK + b"x", b"GET", Ok(200, b"ok", keep_alive=False)),
    ("chunked data of line ends", TE + b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"GET", Ok(200, b"\r\n\r\n")),
    ("204, then bytes", b"HTTP/1.1 204 No Content\r\n\r\nxyz", b"GET", Ok(204, keep_alive=False)),
    (
        "204 with a length, then its 'body'",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nxyz",
        b"GET",
        Ok(204, keep_alive=False),
    ),
    ("304, then CRLF", b"HTTP/1.1 304 Not Modified\r\n\r\n\r\n", b"GET", Ok(304, keep_alive=False)),
    (
        "HEAD, then a body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HEAD",
        Ok(200, keep_alive=False),
    ),
    (
        "HEAD chunked, then a digit",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0",
        b"HEAD",
        Ok(200, keep_alive=False),
    ),
    (
        "HEAD length 0, then CRLF",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n",
        b"HEAD",
        Ok(200, keep_alive=False),
    ),
    (
        "Connection: close, then bytes",
        head(b"Connection: close") + b"xyz",
        b"GET",
        Ok(200, b"ok", keep_alive=False),
    ),
    # --- the status line ------------------------------------------------------------------
    ("status 000", b"HTTP/1.1 000 X\r\n" + CL2, b"GET", ERROR),
    ("status 099", b"HTTP/1.1 099 X\r\n" + CL2, b"GET", ERROR),
    (
        "099 then 200 is not one response",
        b"HTTP/1.1 099 X\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond",
        b"GET",
        ERROR,
    ),
    ("status 600", b"HTTP/1.1 600 X\r\n" + CL2, b"GET", ERROR),
    ("status 999", b"HTTP/1.1 999 X\r\n" + CL2, b"GET", ERROR),
    ("status of 2 digits", b"HTTP/1.1 20 X\r\n" + CL2, b"GET", ERROR),
    ("status of 4 digits", b"HTTP/1.1 2000 X\r\n" + CL2, b"GET", ERROR),
    ("status abc", b"HTTP/1.1 abc OK\r\n" + CL2, b"GET", ERROR),
    (
        "101",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"GET",
        ERROR,
    ),
    ("HTTP/1.2", b"HTTP/1.2 200 OK\r\n" + CL2, b"GET", ERROR),
    ("HTTP/2.0", b"HTTP/2.0 200 OK\r\n" + CL2, b"GET", ERROR),
    ("HTTP/0.9", b"HTTP/0.9 200 OK\r\n" + CL2, b"GET", ERROR),
    ("RTSP", b"RTSP/1.0 200 OK\r\n" + CL2, b"GET", ERROR),
    ("ICE", b"ICE/1.0 200 OK\r\n" + CL2, b"GET", ERROR),
    ("lowercase http", b"http/1.1 200 OK\r\n" + CL2, b"GET", ERROR),
    ("not HTTP", b"NOT HTTP\r\n\r\n", b"GET", ERROR),
    ("two spaces before the status", b"HTTP/1.1  200 OK\r\n" + CL2, b"GET", ERROR),
    ("empty line before the status line", b"\r\n" + OK_CL, b"GET", ERROR),
    ("NUL in the reason", b"HTTP/1.1 200 O\x00K\r\n" + CL2, b"GET", ERROR),
    ("control byte in the reason", b"HTTP/1.1 200 O\x01K\r\n" + CL2, b"GET", ERROR),
    ("DEL in the reason", b"HTTP/1.1 200 O\x7fK\r\n" + CL2, b"GET", ERROR),
    # --- interim responses ------------------------------------------------------------------
    (
        "empty line after an interim response",
        b"HTTP/1.1 100 Continue\r\n\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    ("interim HTTP/1.0", b"HTTP/1.0 100 Continue\r\n\r\n" + OK_CL, b"GET", ERROR),
    (
        "interim with Connection: close",
        b"HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    (
        "interim with a length",
        b"HTTP/1.1 199 X\r\nContent-Length: 5\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    (
        "100 with a length",
        b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    (
        "interim chunked",
        b"HTTP/1.1 103 X\r\nTransfer-Encoding: chunked\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    (
        "interim with a bad length",
        b"HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    (
        "interim with gzip",
        b"HTTP/1.1 100 Continue\r\nTransfer-Encoding: gzip\r\n\r\n" + OK_CL,
        b"GET",
        ERROR,
    ),
    ("interim with a bare LF", b"HTTP/1.1 100 Continue\n\n" + OK_CL, b"GET", ERROR),
    # --- line ends, folding, field syntax ---------------------------------------------------------
    ("bare LF everywhere", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", b"GET", ERROR),
    ("bare LF ending the head", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok", b"GET", ERROR),
    (
        "bare LF after a field",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX: y\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    (
        "bare CR after the status line",
        b"HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    ("bare CR in a value", head(b"X: a\rb"), b"GET", ERROR),
    ("obs-fold with SP", head(b"X-A: a", b"  b"), b"GET", ERROR),
    ("obs-fold with HTAB", head(b"X-A: a", b"\tb"), b"GET", ERROR),
    (
        "folded Transfer-Encoding",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    ("space before the first field", b"HTTP/1.1 200 OK\r\n X: a\r\n" + CL2, b"GET", ERROR),
    ("NUL in a value", head(b"X: a\x00b"), b"GET", ERROR),
    ("control byte in a value", head(b"X: a\x01b"), b"GET", ERROR),
    ("VT in a value", head(b"X: a\x0bb"), b"GET", ERROR),
    ("DEL in a value", head(b"X: a\x7fb"), b"GET", ERROR),
    ("space in a name", head(b"X Y: a"), b"GET", ERROR),
    ("space before the colon", head(b"X : a"), b"GET", ERROR),
    ("empty name", head(b": a"), b"GET", ERROR),
    ("separator in a name", head(b"X(: a"), b"GET", ERROR),
    ("obs-text in a name", head(b"X\xe9: a"), b"GET", ERROR),
    ("no colon", head(b"XY"), b"GET", ERROR),
    # --- framing (RFC 9112 6.3) -----------------------------------------------------------------
    (
        "Content-Length and Transfer-Encoding",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    (
        "Transfer-Encoding and Content-Length",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    (
        "both, on a HEAD response",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HEAD",
        ERROR,
    ),
    (
        "gzip, chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    ("gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", b"GET", ERROR),
    (
        "chunked, gzip",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    (
        "chunked, (trailing comma)",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    (
        "chunked then a tab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    ("identity", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok", b"GET", ERROR),
    ("empty Transfer-Encoding", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\nok", b"GET", ERROR),
    (
        "two Transfer-Encoding fields",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    ("gzip on a 204", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\n", b"GET", ERROR),
    (
        "chunked in HTTP/1.0",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"GET",
        ERROR,
    ),
    ("two Content-Length, same value", head(b"Content-Length: 2"), b"GET", ERROR),
    (
        "two Content-Length, different values",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    ("Content-Length list", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", b"GET", ERROR),
    (
        "Content-Length 2**64",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    (
        "Content-Length 2**64 - 1",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    (
        "Content-Length 2**63",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    (
        "Content-Length of 20 digits",
        b"HTTP/1.1 200 OK\r\nContent-Length: 00000000000000000002\r\n\r\nok",
        b"GET",
        ERROR,
    ),
    ("Content-Length +2", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", b"GET", ERROR),
    ("Content-Length -1", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok", b"GET", ERROR),
    ("Content-Length 0x2", b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", b"GET", ERROR),
    ("Content-Length 2 2", b"HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\nok", b"GET", ERROR),
    ("empty Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", b"GET", ERROR),
    # --- chunked bodies -----------------------------------------------------------------------
    ("space after the chunk size", TE + b"2 \r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("chunk size 0x2", TE + b"0x2\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("chunk size -2", TE + b"-2\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("chunk size 2**64", TE + b"10000000000000000\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    (
        "chunk size with 21 digits",
        TE + b"000000000000000000002\r\nok\r\n0\r\n\r\n",
        b"GET",
        Ok(200, b"ok"),
    ),
    ("bad chunk data", TE + b"zz\r\n", b"GET", ERROR),
    ("extension: ';' alone", TE + b"2;\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("extension: space after ';'", TE + b"2; a\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("extension: space in a value", TE + b"2;a=b c\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("extension: separator in a name", TE + b"2;a(=b\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("extension: text after a quoted value", TE + b'2;a="c"d\r\nok\r\n0\r\n\r\n', b"GET", ERROR),
    ("extension: unterminated quote", TE + b'2;a="c\r\nok\r\n0\r\n\r\n', b"GET", ERROR),
    ("extension: control byte", TE + b"2;a=\x01\r\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("bare LF after the chunk size", TE + b"2\nok\r\n0\r\n\r\n", b"GET", ERROR),
    ("bare LF after chunk data", TE + b"2\r\nok\n0\r\n\r\n", b"GET", ERROR),
    ("no CRLF after chunk data", TE + b"2\r\nokX\r\n0\r\n\r\n", b"GET", ERROR),
    ("trailer with a bare LF", TE + b"2\r\nok\r\n0\r\nX-T: 1\n\r\n", b"GET", ERROR),
    ("folded trailer", TE + b"2\r\nok\r\n0\r\nX-T: 1\r\n 2\r\n\r\n", b"GET", ERROR),
    ("control byte in a trailer", TE + b"2\r\nok\r\n0\r\nX-T: a\x01\r\n\r\n", b"GET", ERROR),
    ("trailer without a colon", TE + b"2\r\nok\r\n0\r\nXY\r\n\r\n", b"GET", ERROR),
    ("Content-Length trailer", TE + b"2\r\nok\r\n0\r\nContent-Length: 5\r\n\r\n", b"GET", ERROR),
    # --- cut short --------------------------------------------------------------------------
    ("end of stream mid-head", b"HTTP/1.1 200 OK\r\nContent-Le", b"GET", ERROR),
    ("end of stream mid-body", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b"GET", ERROR),
    ("end of stream mid-chunk", TE + b"5\r\nab", b"GET", ERROR),
    ("end of stream before the last chunk", TE + b"2\r\nok\r\n", b"GET", ERROR),
    ("end of stream before the trailers end", TE + b"2\r\nok\r\n0\r\n", b"GET", ERROR),
    ("nothing at all", b"", b"GET", ERROR),
]


def run(parser: str, wire: bytes, method: bytes, step: int) -> Ok | str:
    codec = make_codec(parser)  # type: ignore[arg-type]
    codec.start_request(method, b"/x", [(b"host", b"example")], b"")
    pieces = [wire[at : at + step] for at in range(0, len(wire), step)] if step else [wire]
    try:
        for piece in pieces:
            codec.feed(piece)
    except ProtocolViolation:
        return ERROR
    assert codec.received == len(wire)
    at_eof = not codec.done
    if at_eof:
        codec.feed_eof()  # never raises
        if not codec.done:
            return ERROR  # the I/O layer reports a response cut short
    return Ok(
        codec.status,
        b"".join(codec.body),
        codec.keep_alive,
        Headers(codec.headers).raw,
        codec.reason,
        at_eof,
    )


@pytest.mark.parametrize("step", [0, 1, 7], ids=["whole", "bytewise", "7-byte"])
@pytest.mark.parametrize("parser", ["httptools", "h11"])
@pytest.mark.parametrize(
    ("wire", "method", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_policy(parser: str, step: int, wire: bytes, method: bytes, expected: Ok | str) -> None:
    got = run(parser, wire, method, step)
    if isinstance(expected, Ok) and isinstance(got, Ok):
        # A row names the headers or the reason only when it is about them.
        got = dataclasses.replace(
            got,
            headers=got.headers if expected.headers is not None else None,
            reason=got.reason if expected.reason is not None else None,
        )
    assert got == expected


def test_row_names_are_unique() -> None:
    names = [row[0] for row in ROWS]
    assert len(names) == len(set(names))
