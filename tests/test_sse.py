"""The SSE and line decoders against the edge cases of the event-stream spec."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_infer import ConfigError, Line, ServerSentEvent, _sse
from trio_infer._sse import LineDecoder, SSEDecoder


def decode(wire: bytes, *, split: int = 0) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    pieces = [wire[i : i + split] for i in range(0, len(wire), split)] if split else [wire]
    for i, piece in enumerate(pieces):
        events += decoder.feed(piece, float(i))
    return events + decoder.flush(-1.0)


def data(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


@pytest.mark.parametrize("split", [0, 1, 2, 5])
@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"data: a\n\ndata: b\n\n", ["a", "b"]),
        (b"data: a\r\n\r\ndata: b\r\n\r\n", ["a", "b"]),
        (b"data: a\r\rdata: b\r\r", ["a", "b"]),
        (b"data: line1\ndata: line2\n\n", ["line1\nline2"]),
        (b": comment\ndata: x\n\n", ["x"]),
        (b":\n\n", []),
        (b"data\n\n", [""]),
        (b"data:no-space\n\n", ["no-space"]),
        (b"data:  two-spaces\n\n", [" two-spaces"]),
        (b"event: ping\n\n", []),  # no data: nothing dispatched
        (b"\xef\xbb\xbfdata: bom\n\n", ["bom"]),
        (b"data: [DONE]\n", ["[DONE]"]),  # missing final blank line: still delivered
        (b"data: last", ["last"]),
        (b"data: a\n\n\n\ndata: b\n\n", ["a", "b"]),
        (b"unknown: field\ndata: y\n\n", ["y"]),
        ("data: caf\u00e9\n\n".encode(), ["caf\u00e9"]),
    ],
)
def test_data(wire: bytes, expected: list[str], split: int) -> None:
    assert data(decode(wire, split=split)) == expected


def test_event_id_retry_fields() -> None:
    events = decode(
        b"event: token\nid: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\nretry: x1\ndata: d\n\n"
    )
    assert [(e.event, e.id, e.retry, e.data) for e in events] == [
        ("token", "7", 1500, "a"),
        ("message", "7", None, "b"),  # id persists, event type and retry do not
        ("message", "", None, "c"),  # an empty id resets it
        ("message", "", None, "d"),  # a non-numeric retry is ignored
    ]


def test_id_with_nul_is_ignored() -> None:
    assert decode(b"id: ok\ndata: a\n\nid: b\x00ad\ndata: b\n\n")[1].id == "ok"


def test_received_at_is_the_time_of_the_completing_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a", 1.0) == []
    assert decoder.feed(b"\n", 2.0) == []
    (event,) = decoder.feed(b"\n", 3.0)
    assert event.received_at == 3.0


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r", 0) + decoder.feed(b"\n\r", 1) + decoder.feed(b"\n", 2)
    assert data(events) == ["a"]


def test_json_helper() -> None:
    (event,) = decode(b'data: {"x": 1}\n\n')
    assert event.json() == {"x": 1}


def test_lines() -> None:
    decoder = LineDecoder()
    lines = decoder.feed(b"a\nb\r\nc\rd", 1.0) + decoder.flush(2.0)
    assert lines == [Line("a", 1.0), Line("b", 1.0), Line("c", 1.0), Line("d", 2.0)]


def test_line_decoder_keeps_a_final_empty_line_ended_by_cr() -> None:
    decoder = LineDecoder()
    assert [line.text for line in decoder.feed(b"a\r\r", 0) + decoder.flush(0)] == ["a", ""]


events_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "data": st.lists(
                st.text(
                    alphabet=st.characters(
                        blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]
                    ),
                    max_size=20,
                ),
                min_size=1,
                max_size=3,
            ),
            "event": st.one_of(st.none(), st.from_regex(r"\A[a-z]{1,8}\Z")),
            "id": st.one_of(st.none(), st.from_regex(r"\A[0-9a-z]{1,6}\Z")),
        }
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=events_strategy,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(0, 5000), max_size=10),
)
def test_any_encoding_and_chunking_decodes_the_same(
    events: list[dict[str, object]], newline: str, cuts: list[int]
) -> None:
    text = ""
    for event in events:
        if event["event"]:
            text += f"event: {event['event']}{newline}"
        if event["id"]:
            text += f"id: {event['id']}{newline}"
        for line in event["data"]:  # type: ignore[attr-defined]
            text += f"data: {line}{newline}"
        text += newline
    wire = text.encode()
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    decoder = SSEDecoder()
    got: list[ServerSentEvent] = []
    for a, b in itertools.pairwise(points):
        got += decoder.feed(wire[a:b], 0.0)
    got += decoder.flush(0.0)
    assert [(e.data, e.event) for e in got] == [
        ("\n".join(e["data"]), e["event"] or "message")  # type: ignore[arg-type]
        for e in events
    ]


@settings(max_examples=300, deadline=None)
@given(wire=st.binary(max_size=300), cut=st.integers(0, 300))
def test_arbitrary_bytes_never_raise(wire: bytes, cut: int) -> None:
    decoder = SSEDecoder()
    decoder.feed(wire[:cut], 0.0)
    decoder.feed(wire[cut:], 0.0)
    decoder.flush(0.0)


# --- bounded buffering (issue #10, defect 9) ------------------------------------------------
# The decoders are reached through the module (``_sse.DecodeLimitExceeded``) so that, on code
# without limits, each of these tests fails on its own instead of the whole file failing to
# import.


def feed_all(decoder: SSEDecoder | LineDecoder, pieces: list[bytes]) -> list[object]:
    out: list[object] = []
    for piece in pieces:
        out += decoder.feed(piece, 0.0)
    return out + decoder.flush(0.0)


def test_an_endless_line_is_refused_once_it_passes_the_limit() -> None:
    # A server that never ends its line: the decoder must give up at the limit, not hold
    # everything that keeps arriving (200 MB were held before the fix, 0 events yielded).
    decoder = _sse.SSEDecoder(max_event_bytes=64 * 1024)
    piece = b"x" * 4096
    with pytest.raises(_sse.DecodeLimitExceeded) as info:
        for _ in range(1000):
            decoder.feed(piece, 0.0)
    assert (info.value.limit, info.value.what) == (64 * 1024, "event")
    assert "max_event_bytes=65536" in str(info.value)


def test_endless_data_lines_without_a_blank_line_are_refused() -> None:
    # Many short lines that never dispatch: each line is small, the event is not.
    decoder = _sse.SSEDecoder(max_event_bytes=1000)
    with pytest.raises(_sse.DecodeLimitExceeded, match="max_event_bytes=1000"):
        for _ in range(1000):
            decoder.feed(b"data: 0123456789\n", 0.0)


def test_an_endless_plain_line_is_refused() -> None:
    decoder = _sse.LineDecoder(max_line_bytes=10_000)
    with pytest.raises(_sse.DecodeLimitExceeded) as info:
        for _ in range(1000):
            decoder.feed(b"y" * 1000, 0.0)
    assert (info.value.limit, info.value.what) == (10_000, "line")
    assert "max_line_bytes=10000" in str(info.value)


def test_the_defaults_are_documented_module_constants() -> None:
    assert _sse.DEFAULT_MAX_LINE_BYTES >= 1024 * 1024
    assert _sse.DEFAULT_MAX_EVENT_BYTES >= 1024 * 1024
    # The defaults apply: a line past the default is refused without any argument.
    decoder = _sse.LineDecoder()
    with pytest.raises(_sse.DecodeLimitExceeded):
        decoder.feed(b"z" * (_sse.DEFAULT_MAX_LINE_BYTES + 1), 0.0)
    events = _sse.SSEDecoder()
    with pytest.raises(_sse.DecodeLimitExceeded):
        events.feed(b"data: " + b"z" * _sse.DEFAULT_MAX_EVENT_BYTES, 0.0)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "100", None])
def test_a_limit_must_be_a_positive_whole_number(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_line_bytes"):
        _sse.LineDecoder(max_line_bytes=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_event_bytes"):
        _sse.SSEDecoder(max_event_bytes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("split", [0, 1, 3, 7])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_a_line_of_exactly_the_limit_passes_and_one_byte_more_is_refused(
    split: int, ending: bytes
) -> None:
    limit = 20

    def pieces(wire: bytes) -> list[bytes]:
        return [wire[i : i + split] for i in range(0, len(wire), split)] if split else [wire]

    exact = b"a" * limit + ending + b"b" * limit  # the last one unterminated
    lines = feed_all(_sse.LineDecoder(max_line_bytes=limit), pieces(exact))
    assert [line.text for line in lines] == ["a" * limit, "b" * limit]  # type: ignore[attr-defined]
    for over in (b"a" * (limit + 1) + ending, b"ok" + ending + b"b" * (limit + 1)):
        with pytest.raises(_sse.DecodeLimitExceeded):
            feed_all(_sse.LineDecoder(max_line_bytes=limit), pieces(over))
    # An event counts the bytes of its lines (field names included, line endings not).
    event = b"event: e" + ending + b"data: " + b"d" * (limit - 14) + ending * 2
    (got,) = feed_all(_sse.SSEDecoder(max_event_bytes=limit), pieces(event))
    assert got.data == "d" * (limit - 14)  # type: ignore[attr-defined]
    with pytest.raises(_sse.DecodeLimitExceeded):
        feed_all(_sse.SSEDecoder(max_event_bytes=limit), pieces(b"event: ee" + event[8:]))


def test_an_event_limit_counts_each_event_afresh() -> None:
    # Many events of 10 bytes under a 10-byte limit: the count starts again at every blank line.
    wire = b"data: 1234\n\n" * 100 + b": comment\n\ndata:xx\r\rdata: 1234"
    events = feed_all(
        _sse.SSEDecoder(max_event_bytes=10), [wire[i : i + 5] for i in range(0, len(wire), 5)]
    )
    assert len(events) == 102


def _allocated_while(fn: object) -> int:
    """Bytes allocated (at the peak) while ``fn()`` runs, beyond what was live before."""
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fn()  # type: ignore[operator]
    _, peak = tracemalloc.get_traced_memory()
    return peak - before


@pytest.mark.parametrize("kind", ["lines", "sse"])
def test_a_long_line_in_small_pieces_is_not_copied_again_per_piece(kind: str) -> None:
    # Quadratic buffering re-concatenates everything held with each new piece (a 16 MiB line
    # in 4 KiB pieces took 20 s). Counting bytes allocated per feed, not time: while no line
    # ends, a feed may allocate about its own piece, never the pending line again.
    piece = b"q" * 4096
    decoder: LineDecoder | SSEDecoder = LineDecoder() if kind == "lines" else SSEDecoder()
    decoder.feed(b"data: ", 0.0)
    tracemalloc.start()
    try:
        worst = max(_allocated_while(lambda: decoder.feed(piece, 0.0)) for _ in range(200))
    finally:
        tracemalloc.stop()
    assert worst < 4 * 4096
    # ... and the line is still whole once it ends.
    (item,) = decoder.feed(b"\n\n", 0.0)[:1]
    text = item.text if isinstance(item, Line) else item.data
    assert text.endswith("q" * 200 * 4096)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=8
    ),
    endings=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=8, max_size=8),
    terminated=st.booleans(),
    limit=st.integers(1, 45),
    cuts=st.lists(st.integers(0, 500), max_size=12),
)
def test_line_limits_are_exact_however_the_stream_is_cut(
    lines: list[bytes], endings: list[bytes], terminated: bool, limit: int, cuts: list[int]
) -> None:
    wire = b"".join(line + ending for line, ending in zip(lines, endings, strict=False))
    if lines and not terminated:
        wire = wire[: -len(endings[len(lines) - 1])]
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(points)]
    decoder = _sse.LineDecoder(max_line_bytes=limit)
    if any(len(line) > limit for line in lines):
        with pytest.raises(_sse.DecodeLimitExceeded) as info:
            feed_all(decoder, pieces)
        assert (info.value.limit, info.value.what) == (limit, "line")
    else:
        assert feed_all(decoder, pieces) == feed_all(LineDecoder(), [wire])


def _blocks(wire: bytes) -> list[int]:
    """The size of every event block as the decoder counts it (line endings excluded)."""
    if wire.startswith(b"\xef\xbb\xbf"):
        wire = wire[3:]
    sizes, size = [], 0
    for line in wire.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if line:
            size += len(line)
        else:
            sizes.append(size)
            size = 0
    return [*sizes, size]


@settings(max_examples=300, deadline=None)
@given(
    wire=st.lists(
        st.sampled_from(
            [
                b"data: ",
                b"data:",
                b"event: x",
                b"id: 1",
                b": c",
                b"abc",
                b"\n",
                b"\r\n",
                b"\r",
                b"\xef\xbb\xbf",
                b"\xef",
            ]
        ),
        max_size=30,
    ).map(b"".join),
    limit=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 500), max_size=12),
)
def test_event_limits_are_exact_however_the_stream_is_cut(
    wire: bytes, limit: int, cuts: list[int]
) -> None:
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(points)]
    decoder = _sse.SSEDecoder(max_event_bytes=limit)
    if max(_blocks(wire)) > limit:
        with pytest.raises(_sse.DecodeLimitExceeded) as info:
            feed_all(decoder, pieces)
        assert (info.value.limit, info.value.what) == (limit, "event")
    else:
        assert feed_all(decoder, pieces) == feed_all(SSEDecoder(), [wire])


@settings(max_examples=300, deadline=None)
@given(wire=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=10))
def test_arbitrary_bytes_decode_the_same_however_they_are_cut(wire: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(points)]
    assert feed_all(SSEDecoder(), pieces) == feed_all(SSEDecoder(), [wire])
    assert feed_all(LineDecoder(), pieces) == feed_all(LineDecoder(), [wire])
