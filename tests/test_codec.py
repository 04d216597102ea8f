"""Sans-IO tests of both HTTP/1.1 codecs: the same table, fed whole and byte by byte."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_infer import Headers
from trio_infer._codec import (
    CHUNKED,
    UNTIL_CLOSE,
    Codec,
    ProtocolViolation,
    check_head,
    make_codec,
    resolve_parser,
)

PARSERS = ["httptools", "h11"]
GET = (b"GET", b"/x", [(b"host", b"example")], b"")


def run(
    parser: str, wire: bytes, *, method: bytes = b"GET", split: int = 0, eof: bool = False
) -> Codec:
    codec = make_codec(resolve_parser(parser))
    codec.start_request(method, b"/x", [(b"host", b"example")], b"")
    if split:
        for i in range(0, len(wire), split):
            codec.feed(wire[i : i + split])
    else:
        codec.feed(wire)
    if eof:
        codec.feed_eof()
    return codec


CASES = [
    # (name, wire, method, eof, status, body, keep_alive)
    (
        "content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"GET",
        False,
        200,
        b"hello",
        True,
    ),
    (
        "chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"GET",
        False,
        200,
        b"hello world",
        True,
    ),
    (
        "until-eof",
        b"HTTP/1.1 200 OK\r\n\r\nstreamed to close",
        b"GET",
        True,
        200,
        b"streamed to close",
        False,
    ),
    ("head", b"HTTP/1.1 200 OK\r\nContent-Length: 123\r\n\r\n", b"HEAD", False, 200, b"", True),
    ("204", b"HTTP/1.1 204 No Content\r\n\r\n", b"GET", False, 204, b"", True),
    ("304", b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", b"GET", False, 304, b"", True),
    (
        "100 then 200",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"POST",
        False,
        200,
        b"ok",
        True,
    ),
    (
        "103 then 200",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"GET",
        False,
        200,
        b"",
        True,
    ),
    (
        "server close",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"GET",
        False,
        200,
        b"ok",
        False,
    ),
    (
        "http/1.0",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"GET",
        False,
        200,
        b"ok",
        False,
    ),
    (
        "http/1.0 keep-alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        b"GET",
        False,
        200,
        b"ok",
        False,  # both backends refuse HTTP/1.0 keep-alive (h11 does, by design)
    ),
    (
        "404",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnah",
        b"GET",
        False,
        404,
        b"nah",
        True,
    ),
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("split", [0, 1, 3])
@pytest.mark.parametrize(
    ("name", "wire", "method", "eof", "status", "body", "keep_alive"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_response_table(
    parser: str,
    split: int,
    name: str,
    wire: bytes,
    method: bytes,
    eof: bool,
    status: int,
    body: bytes,
    keep_alive: bool,
) -> None:
    codec = run(parser, wire, method=method, split=split, eof=eof)
    assert (
        codec.headers_done,
        codec.done,
        codec.status,
        b"".join(codec.body),
        codec.keep_alive,
    ) == (
        True,
        True,
        status,
        body,
        keep_alive,
    )
    assert codec.received == len(wire)


@pytest.mark.parametrize("parser", PARSERS)
def test_headers_kept_in_order_with_duplicates(parser: str) -> None:
    codec = run(
        parser,
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nContent-Length: 0\r\n\r\n",
    )
    names = [name.lower() for name, _ in Headers(codec.headers).raw]
    assert names == [b"x-a", b"set-cookie", b"set-cookie", b"content-length"]
    assert codec.reason == b"OK"
    assert codec.http_version == b"1.1"


@pytest.mark.parametrize("parser", PARSERS)
def test_client_connection_close_disables_reuse(parser: str) -> None:
    codec = make_codec(resolve_parser(parser))
    codec.start_request(b"GET", b"/", [(b"host", b"h"), (b"connection", b"close")], b"")
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert codec.done and not codec.keep_alive


@pytest.mark.parametrize("parser", PARSERS)
def test_reuse_for_a_second_exchange(parser: str) -> None:
    codec = run(parser, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    assert codec.keep_alive
    codec.start_request(*GET)
    codec.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nb")
    assert (codec.status, codec.body, codec.done) == (201, [b"b"], True)


@pytest.mark.parametrize("parser", PARSERS)
def test_exchanges_on_one_codec_share_no_state(parser: str) -> None:
    # Codecs reuse their buffers and (h11) their request events across exchanges: nothing
    # of one response may show in the next, and HEAD must still mean "no body".
    codec = make_codec(resolve_parser(parser))
    codec.start_request(b"GET", b"/a", [(b"host", b"h")], b"")
    codec.feed(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nab"
    )
    assert (codec.reason, codec.body, codec.keep_alive) == (b"Fine", [b"ab"], True)
    codec.body.clear()  # as the client does once it has taken the body
    codec.start_request(b"HEAD", b"/b", [(b"host", b"h")], b"")
    assert (codec.headers_done, codec.body, codec.received) == (False, [], 0)
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert (codec.reason, codec.body, codec.done, codec.keep_alive) == (b"OK", [], True, True)
    assert [name for name, _ in Headers(codec.headers).raw] == [b"Content-Length"]
    codec.start_request(b"GET", b"/c", [(b"host", b"h"), (b"connection", b"close")], b"")
    codec.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nz")
    assert (codec.status, codec.reason, codec.body) == (404, b"Not Found", [b"z"])
    assert codec.done and not codec.keep_alive


@pytest.mark.parametrize("parser", PARSERS)
def test_request_serialisation_is_valid_http(parser: str) -> None:
    import h11

    codec = make_codec(resolve_parser(parser))
    wire = codec.start_request(
        b"POST",
        b"/v1/x?a=1",
        [(b"host", b"h:1"), (b"content-length", b"4"), (b"x-k", b"v")],
        b"body",
    )
    server = h11.Connection(h11.SERVER)
    server.receive_data(wire)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert (request.method, request.target) == (b"POST", b"/v1/x?a=1")
    assert (b"x-k", b"v") in list(request.headers.raw_items())
    data = server.next_event()
    assert isinstance(data, h11.Data) and data.data == b"body"
    assert isinstance(server.next_event(), h11.EndOfMessage)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
    ],
)
def test_malformed_responses_raise_protocol_violation(parser: str, wire: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        run(parser, wire)


@pytest.mark.parametrize("parser", PARSERS)
def test_eof_mid_body_leaves_response_unfinished(parser: str) -> None:
    codec = run(parser, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", eof=True)
    assert codec.headers_done and not codec.done


@pytest.mark.parametrize("parser", PARSERS)
def test_eof_before_any_byte(parser: str) -> None:
    codec = run(parser, b"", eof=True)
    assert (codec.headers_done, codec.done, codec.received) == (False, False, 0)


@pytest.mark.parametrize("parser", PARSERS)
def test_bytes_after_a_complete_response_forbid_reuse(parser: str) -> None:
    codec = run(parser, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\n")
    assert codec.done
    assert not codec.keep_alive


@pytest.mark.parametrize("parser", PARSERS)
def test_bytes_after_head_response_forbid_reuse(parser: str) -> None:
    codec = run(parser, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", method=b"HEAD")
    assert codec.done and codec.body == []
    assert not codec.keep_alive


def test_unknown_parser_is_a_config_error() -> None:
    from trio_infer import ConfigError

    with pytest.raises(ConfigError, match="'llhttp'"):
        resolve_parser("llhttp")


def test_falls_back_to_h11_without_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "httptools", None)
    assert resolve_parser("httptools") == "h11"


# --- properties ---------------------------------------------------------------------------

response_parts = st.fixed_dictionaries(
    {
        "status": st.sampled_from([200, 201, 204, 304, 400, 404, 500, 503]),
        "body": st.binary(max_size=300),
        "chunked": st.booleans(),
        "extra": st.lists(
            st.tuples(st.from_regex(rb"\AX-[A-Za-z]{1,8}\Z"), st.from_regex(rb"\A[ -~]{0,20}\Z")),
            max_size=4,
        ),
    }
)


def _wire(parts: dict[str, object]) -> tuple[bytes, bytes]:
    status = int(parts["status"])  # type: ignore[call-overload]
    body: bytes = parts["body"] if status not in (204, 304) else b""  # type: ignore[assignment]
    head = [b"HTTP/1.1 %d X" % status]
    for name, value in parts["extra"]:  # type: ignore[attr-defined]
        head.append(name + b": " + value.strip())
    if status in (204, 304):
        payload = b""
    elif parts["chunked"]:
        head.append(b"Transfer-Encoding: chunked")
        payload = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        head.append(b"Content-Length: %d" % len(body))
        payload = body
    return b"\r\n".join(head) + b"\r\n\r\n" + payload, body


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(parts=response_parts, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_valid_responses_parse_identically_however_split(
    parts: dict[str, object], cuts: list[int]
) -> None:
    wire, body = _wire(parts)
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    results = []
    for parser in PARSERS:
        codec = make_codec(resolve_parser(parser))
        codec.start_request(*GET)
        for a, b in itertools.pairwise(points):
            if b > a:
                codec.feed(wire[a:b])
        headers = [(name.lower(), value) for name, value in Headers(codec.headers).raw]
        results.append((codec.done, codec.status, b"".join(codec.body), codec.keep_alive, headers))
    assert results[0] == results[1]
    assert results[0][:4] == (True, parts["status"], body, True)
    extra = [(name.lower(), value.strip()) for name, value in parts["extra"]]  # type: ignore[attr-defined]
    assert results[0][4][: len(extra)] == extra


@settings(max_examples=500)
@given(
    data=st.binary(max_size=400),
    parser=st.sampled_from(PARSERS),
    method=st.sampled_from([b"GET", b"HEAD"]),
)
def test_arbitrary_bytes_only_raise_protocol_violation(
    data: bytes, parser: str, method: bytes
) -> None:
    codec = make_codec(resolve_parser(parser))
    codec.start_request(method, b"/", [(b"host", b"h")], b"")
    try:
        codec.feed(data)
        codec.feed_eof()
    except ProtocolViolation:
        pass


@settings(max_examples=300)
@given(
    parts=response_parts,
    parser=st.sampled_from(PARSERS),
    position=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_mutated_responses_only_raise_protocol_violation(
    parts: dict[str, object], parser: str, position: int, byte: int
) -> None:
    wire, _ = _wire(parts)
    mutated = bytearray(wire)
    mutated[position % len(mutated)] = byte
    codec = make_codec(resolve_parser(parser))
    codec.start_request(*GET)
    try:
        codec.feed(bytes(mutated))
        codec.feed_eof()
    except ProtocolViolation:
        pass


# --- the policy's decisions, and what the codecs keep between exchanges ------------------------


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("wire", "named"),
    [
        (b"HTTP/1.1 099 X\r\n\r\n", "099"),
        (b"HTTP/1.1 600 X\r\n\r\n", "600"),
        (b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", "version"),
        (b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n", "O\\x00K"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "gzip, chunked"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n", "chunked\\t"),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", "9223372036854775808"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "RTSP/1.0"),
        (b"HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n", "interim"),
    ],
)
def test_policy_errors_name_what_was_wrong(parser: str, wire: bytes, named: str) -> None:
    with pytest.raises(ProtocolViolation, match=re.escape(named)):
        run(parser, wire)


@pytest.mark.parametrize(
    ("head", "status", "version", "no_body", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5", 200, b"1.1", False, (5, False)),
        (b"HTTP/1.1 200 OK\r\ncontent-length:\t007 ", 200, b"1.1", False, (7, False)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked  ", 200, b"1.1", False, (CHUNKED, False)),
        (b"HTTP/1.1 200 OK", 200, b"1.1", False, (UNTIL_CLOSE, False)),
        (b"HTTP/1.1 200 OK\r\nConnection: x, close", 200, b"1.1", False, (UNTIL_CLOSE, True)),
        (b"HTTP/1.1 200 OK\r\nProxy-Connection: Close", 200, b"1.1", False, (UNTIL_CLOSE, True)),
        (b"HTTP/1.1 200 OK\r\nConnection: closed", 200, b"1.1", False, (UNTIL_CLOSE, False)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5", 200, b"1.1", True, (0, False)),
        (b"HTTP/1.1 304 NM\r\nContent-Length: 5", 304, b"1.1", False, (0, False)),
        (b"HTTP/1.1 204 NC\r\nTransfer-Encoding: chunked", 204, b"1.1", False, (0, False)),
        (b"HTTP/1.1 103 EH\r\nLink: </a>", 103, b"1.1", False, (0, False)),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 5", 200, b"1.0", False, (5, False)),
    ],
)
def test_check_head_framing(
    head: bytes, status: int, version: bytes, no_body: bool, expected: tuple[int, bool]
) -> None:
    assert check_head(head, status, version, b"OK", no_body=no_body) == expected


@pytest.mark.parametrize("parser", PARSERS)
def test_bytes_before_any_request_are_refused(parser: str) -> None:
    codec = make_codec(resolve_parser(parser))
    with pytest.raises(ProtocolViolation, match="no request"):
        codec.feed(b"HTTP/1.1 200 OK\r\n\r\n")


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("method", "first"),
    [
        (
            b"GET",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;x=y\r\na\r\n0\r\nX-T: 1\r\n\r\n",
        ),
        (b"HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (b"HEAD", b"HTTP/1.1 200 OK\r\n\r\n"),
        (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            b"POST",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\na",
        ),
    ],
)
def test_reuse_after_each_kind_of_response(parser: str, method: bytes, first: bytes) -> None:
    # Every way a response can end cleanly leaves the codec ready for the next exchange,
    # byte for byte the same as a fresh one (the h11 codec hands h11 the last chunk itself).
    codec = make_codec(resolve_parser(parser))
    codec.start_request(method, b"/", [(b"host", b"h")], b"")
    for at in range(len(first)):
        codec.feed(first[at : at + 1])
    assert codec.done and codec.keep_alive
    codec.body.clear()
    codec.start_request(b"GET", b"/", [(b"host", b"h")], b"")
    assert (codec.headers_done, codec.done, codec.received) == (False, False, 0)
    codec.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    assert (codec.status, b"".join(codec.body), codec.done, codec.keep_alive) == (
        200,
        b"ok",
        True,
        True,
    )
    assert codec.head_size == len(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")


@pytest.mark.parametrize("parser", PARSERS)
def test_a_chunk_line_without_end_is_bounded(parser: str) -> None:
    # The h11 codec holds a chunk-size line to check it: never more than the head limit.
    codec = make_codec(resolve_parser(parser), max_head=1024)
    codec.start_request(b"GET", b"/", [(b"host", b"h")], b"")
    codec.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a=")
    if parser == "h11":
        with pytest.raises(ProtocolViolation, match="longer than 1024 bytes"):
            for _ in range(100):
                codec.feed(b"b" * 100)
    else:  # llhttp streams through it; the I/O layer's read timeout bounds it
        for _ in range(100):
            codec.feed(b"b" * 100)
        assert not codec.done
