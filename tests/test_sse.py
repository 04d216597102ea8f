"""The SSE and line decoders against the edge cases of the event-stream spec."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_infer import Line, ServerSentEvent
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


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
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


@settings(max_examples=300)
@given(wire=st.binary(max_size=300), cut=st.integers(0, 300))
def test_arbitrary_bytes_never_raise(wire: bytes, cut: int) -> None:
    decoder = SSEDecoder()
    decoder.feed(wire[:cut], 0.0)
    decoder.feed(wire[cut:], 0.0)
    decoder.flush(0.0)
