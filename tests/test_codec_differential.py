"""The two codecs against each other: the same bytes, split the same way, to both backends must
end the same way -- both refuse them, or both deliver the same response (status, reason,
version, header pairs, body, head size, and whether the connection may be reused).

"End" is what the client would see: bytes fed, then (if the response is not complete) the end
of the connection. A codec that raised, and one left unfinished at EOF, both fail the call
(the I/O layer reports an unfinished response); llhttp often refuses a byte at once where the
h11 backend has to wait for the line, so only the final outcome is compared.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trio_infer import Headers
from trio_infer._codec import ProtocolViolation, make_codec

Outcome = tuple[Any, ...]


def outcome(parser: str, pieces: list[bytes], method: bytes) -> Outcome:
    codec = make_codec(parser)  # type: ignore[arg-type]
    codec.start_request(method, b"/", [(b"host", b"h")], b"")
    try:
        for piece in pieces:
            codec.feed(piece)
    except ProtocolViolation:
        return ("refused",)
    if not codec.done:
        codec.feed_eof()  # never raises
        if not codec.done:
            return ("refused",)
    return (
        "response",
        codec.status,
        codec.reason,
        codec.http_version,
        Headers(codec.headers).raw,
        b"".join(codec.body),
        codec.head_size,
        codec.keep_alive,
    )


def split(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    return [wire[a:b] for a, b in itertools.pairwise(points) if b > a]


def assert_agree(wire: bytes, cuts: list[int], method: bytes) -> Outcome:
    pieces = split(wire, cuts)
    fast = outcome("httptools", pieces, method)
    reference = outcome("h11", pieces, method)
    assert fast == reference, (wire, pieces)
    return fast


# --- generated responses ---------------------------------------------------------------------

_TOKEN = st.text(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFXYZ", min_size=1, max_size=6
)
_VALUE = st.binary(max_size=12).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c < 127 or c >= 128).strip(b" \t")
)


@st.composite
def responses(draw: st.DrawFn, twists: bool = True) -> tuple[bytes, bytes]:
    """A well-formed response, or one with a twist the policy must decide; and the method."""
    twist = twists and draw(st.booleans())

    def pick(usual: list[bytes], odd: list[bytes]) -> bytes:
        return draw(st.sampled_from(usual + odd if twist else usual))

    method = draw(st.sampled_from([b"GET", b"GET", b"GET", b"HEAD"]))
    wire = b""
    for _ in range(draw(st.integers(0, 2))):
        wire += b"HTTP/1.1 %s Interim\r\n" % pick(
            [b"100", b"102", b"103"], [b"101", b"199", b"099"]
        )
        wire += pick([b"", b"Link: </x>\r\n"], [b"Content-Length: 0\r\n", b"Connection: close\r\n"])
        wire += b"\r\n"
    version = pick([b"1.1", b"1.1", b"1.0"], [b"1.2", b"2.0", b"0.9"])
    status = pick(
        [b"200", b"201", b"204", b"304", b"404", b"503"], [b"000", b"099", b"600", b"999"]
    )
    reason = pick(
        [b" OK", b" Not Found", b"", b" ", b" a\tb", b" \xe9t\xe9"], [b" a\x00b", b" \x7f"]
    )
    fields = [
        (draw(_TOKEN).encode().replace(b"content", b"x"), draw(_VALUE))
        for _ in range(draw(st.integers(0, 3)))
    ]
    if draw(st.booleans()):
        fields.append(
            (
                pick([b"Connection", b"connection"], [b"Proxy-Connection", b"CONNECTION"]),
                pick(
                    [b"close", b"keep-alive", b"Close", b"x, close", b"upgrade"],
                    [b"closed", b"close;x", b"cl ose"],
                ),
            )
        )
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if framing == "length":
        fields.append(
            (
                pick(
                    [b"Content-Length", b"content-length"], [b"CONTENT-LENGTH", b"Content-length"]
                ),
                pick(
                    [b"%d" % len(body)],
                    [
                        b" %d\t" % len(body),
                        b"00%d" % len(body),
                        b"%d, %d" % (len(body), len(body)),
                        b"18446744073709551616",
                        b"9223372036854775808",
                    ],
                ),
            )
        )
        payload = body
    elif framing == "chunked":
        fields.append(
            (
                pick(
                    [b"Transfer-Encoding", b"transfer-encoding"],
                    [b"TRANSFER-ENCODING", b"transfer-Encoding"],
                ),
                pick(
                    [b"chunked"],
                    [
                        b"Chunked",
                        b"chunked ",
                        b"chunked\t",
                        b"gzip, chunked",
                        b"chunked, chunked",
                        b"identity",
                    ],
                ),
            )
        )
        payload = b""
        rest = body
        while rest:
            size = draw(st.integers(1, len(rest)))
            ext = pick(
                [b"", b"", b";a=b", b';q="x y"', b";n"],
                [b';q="\\""', b";a=", b";;a", b"; a", b";a=b c"],
            )
            payload += b"%s%s\r\n%s\r\n" % (
                pick([b"%x", b"%X"], [b"0%x", b"%x "]) % size,
                ext,
                rest[:size],
            )
            rest = rest[size:]
        payload += b"0\r\n"
        for _ in range(draw(st.integers(0, 2))):
            name = pick(
                [b"X-Trailer", b"Server-Timing"],
                [b"Connection", b"Transfer-Encoding", b"Content-Length"],
            )
            payload += b"%s: %s\r\n" % (
                name,
                pick([b"1", b"close", b"chunked"], [b"gzip", b"", b"a\x01"]),
            )
        payload += b"\r\n"
    else:
        payload = body
    if twist and draw(st.booleans()):  # a second framing field
        fields.append(
            (
                draw(st.sampled_from([b"Content-Length", b"transfer-encoding"])),
                draw(st.sampled_from([b"%d" % len(body), b"chunked", b"0"])),
            )
        )
    draw(st.randoms()).shuffle(fields)
    wire += b"HTTP/%s %s%s\r\n" % (version, status, reason)
    wire += b"".join(b"%s: %s\r\n" % field for field in fields) + b"\r\n"
    if method != b"HEAD" and status not in (b"204", b"304"):
        wire += payload
    wire += pick(
        [b"", b"", b"", b"\r\n", b"\n", b"x", b"HTTP/1.1 200 OK\r\n\r\n"],
        [b"0", b"\r\n\r\n\r\n", b" "],
    )
    return wire, method


_INTERESTING = b'\r\n\t :;,="\x00\x01\x7f\x80\xff0aHT-19'


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes]:
    wire, method = draw(responses(twists=False))
    data = bytearray(wire)
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from(_INTERESTING) | st.integers(0, 255))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert" or at == len(data):
            data.insert(at, byte)
        elif action == "replace":
            data[at] = byte
        else:
            del data[at]
    return bytes(data), method


_CUTS = st.lists(st.integers(min_value=0, max_value=4096), max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(case=responses(), cuts=_CUTS)
def test_generated_responses(case: tuple[bytes, bytes], cuts: list[int]) -> None:
    assert_agree(case[0], cuts, case[1])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), cuts=_CUTS)
@example(
    case=(b"HTTP/1.1 099 X\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\n\r\n", b"GET"), cuts=[]
)
def test_mutated_responses(case: tuple[bytes, bytes], cuts: list[int]) -> None:
    assert_agree(case[0], cuts, case[1])


@settings(max_examples=300)
@given(
    data=st.binary(max_size=200),
    prefix=st.sampled_from(
        [b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    ),
    cuts=_CUTS,
    method=st.sampled_from([b"GET", b"HEAD"]),
)
def test_arbitrary_bytes(data: bytes, prefix: bytes, cuts: list[int], method: bytes) -> None:
    assert_agree(prefix + data, cuts, method)
