"""Issue 11: what real OpenAI-compatible servers do that the first fakes did not, and the
numbers the stream summary must still get right.

Each behaviour is a switch of :class:`FakeOpenAI` (one choice per chunk for ``n > 1``, empty
deltas for partial characters, no stream usage, the body's end in a later packet, streams cut
without a finish reason, base64 and per-token embeddings); one test runs a real uvicorn.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any, Literal

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trio_infer
from trio_infer import OpenAIError, StreamSummary
from trio_infer.testing import FakeOpenAI, Responder, ServerRequest, TestServer, serve, sse_body

MESSAGES = [{"role": "user", "content": "hi"}]


async def start(nursery: trio.Nursery, fake: Any) -> TestServer:
    server: TestServer = await nursery.start(serve, fake)
    return server


async def stream_chat(
    url: str, include_usage: bool = True, **params: Any
) -> tuple[StreamSummary, list[trio_infer.StreamChunk]]:
    async with (
        trio_infer.Client(url) as client,
        client.openai.stream_chat_completions(
            model="fake-model", messages=MESSAGES, include_usage=include_usage, **params
        ) as stream,
    ):
        chunks = [chunk async for chunk in stream]
    return stream.summary, chunks


def pieces(tokens: int, choice: int) -> list[str]:
    return [f"tok{i} " if choice == 0 else f"tok{i}/{choice} " for i in range(tokens)]


# --- defect 1: n > 1 and prompt lists: per-choice state ---------------------------------------


async def test_n_choices_one_per_chunk_are_kept_apart(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=4, ttft=0.2, itl=0.1))
    summary, chunks = await stream_chat(server.url, n=2)
    first, second = summary.choices
    assert (first.index, first.text) == (0, "".join(pieces(4, 0)))
    assert (second.index, second.text) == (1, "".join(pieces(4, 1)))
    assert summary.text == first.text  # choice 0, as Completion.text: never interleaved
    # usage is one total for both choices: the aggregate takes it, each choice counts chunks
    assert (summary.completion_tokens, summary.token_count_source) == (8, "usage")
    assert [(c.completion_tokens, c.token_count_source) for c in summary.choices] == [
        (4, "chunks"),
        (4, "chunks"),
    ]
    # gaps are between two tokens of one choice (0.1 s), never across choices (0 s here)
    assert first.inter_token_latencies == pytest.approx((0.1, 0.1, 0.1))
    assert summary.inter_token_latencies == pytest.approx((0.1,) * 6)
    assert (first.ttft, second.ttft, summary.ttft) == pytest.approx((0.2, 0.2, 0.2))
    assert (first.tpot, summary.tpot) == pytest.approx((0.1, 0.1))
    assert [c.finish_reason for c in summary.choices] == ["stop", "stop"]
    assert summary.complete and summary.incomplete_reason is None
    # each chunk's text is its own choice's: chunk.text is never another choice's piece
    for chunk in chunks:
        assert chunk.text in {"", *pieces(4, chunk.index)}
        assert [(d.index, d.text) for d in chunk.choices] == [(chunk.index, chunk.text)]


async def test_several_choices_in_one_chunk(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=3, choice_per_chunk=False))
    summary, chunks = await stream_chat(server.url, n=3)
    assert [c.text for c in summary.choices] == ["".join(pieces(3, c)) for c in range(3)]
    assert [c.token_chunks for c in summary.choices] == [3, 3, 3]
    assert all(len(chunk.choices) == 3 for chunk in chunks)
    assert summary.chunks == 4  # the role chunk and three token steps


async def test_a_prompt_list_gives_n_choices_per_prompt(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=2))
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_completions(
            model="fake-model", prompt=["a", "b"], n=2, include_usage=False
        ) as stream,
    ):
        async for _ in stream:
            pass
    summary = stream.summary
    assert [c.index for c in summary.choices] == [0, 1, 2, 3]
    assert (summary.completion_tokens, summary.token_count_source) == (8, "chunks")
    assert summary.complete


async def test_a_missing_choice_makes_the_stream_incomplete(nursery: trio.Nursery) -> None:
    # Asked for n=2, the server streamed only choice 0 (and ended it properly).
    chunk = {"choices": [{"index": 0, "text": "x", "finish_reason": "stop"}]}

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([json.dumps(chunk)]))
        await respond.end()

    server = await start(nursery, handler)
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_completions(model="m", prompt="p", n=2) as stream,
    ):
        async for _ in stream:
            pass
    assert not stream.summary.complete
    assert "1 of the 2 choices" in (stream.summary.incomplete_reason or "")


async def test_a_huge_n_answered_with_one_choice_is_reported_quickly(
    nursery: trio.Nursery,
) -> None:
    # n comes from the caller: finding the missing choices must not walk all of them.
    chunk = {"choices": [{"index": 0, "text": "x", "finish_reason": "stop"}]}

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([json.dumps(chunk)]))
        await respond.end()

    server = await start(nursery, handler)
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_completions(model="m", prompt="p", n=10**12) as stream,
    ):
        async for _ in stream:
            pass
    reason = stream.summary.incomplete_reason or ""
    assert "999999999999 of the 1000000000000 choices" in reason
    assert "[1, 2, 3, 4, 5]" in reason


async def test_finish_while_another_task_reads_is_a_usage_error(nursery: trio.Nursery) -> None:
    release = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(b"data: 1\n\n")
        await release.wait()
        await respond.end()

    server = await start(nursery, handler)
    async with trio_infer.Client(server.url) as client, client.stream("GET", "/") as response:
        events = response.aiter_sse()
        assert (await events.__anext__()).data == "1"

        async def read_the_rest() -> None:
            async for _ in events:
                pass

        async with trio.open_nursery() as readers:
            readers.start_soon(read_the_rest)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio_infer.UsageError, match="another task is reading"):
                await response.finish(within=1)
            release.set()


@pytest.mark.parametrize("n", [0, -1, True, 1.5, "2"])
async def test_a_bad_n_is_refused_before_sending(nursery: trio.Nursery, n: Any) -> None:
    server = await start(nursery, FakeOpenAI())
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match=r"n=.*whole number >= 1"):
            async with client.openai.stream_chat_completions(model="m", messages=MESSAGES, n=n):
                pass
    assert server.requests == []


# --- defect 2: empty deltas for partial characters are tokens ----------------------------------


@pytest.mark.parametrize("style", ["vllm", "llama.cpp"])
@pytest.mark.parametrize("chat", [True, False])
async def test_partial_characters_are_counted_without_usage(
    nursery: trio.Nursery, style: Literal["vllm", "llama.cpp"], chat: bool
) -> None:
    # 32 tokens: the last one ends inside a character, so vLLM's last chunk has empty text
    server = await start(nursery, FakeOpenAI(output_tokens=32, split_characters=True, style=style))
    async with trio_infer.Client(server.url) as client:
        stream_call = (
            client.openai.stream_chat_completions(model="m", messages=MESSAGES, include_usage=False)
            if chat
            else client.openai.stream_completions(model="m", prompt="p", include_usage=False)
        )
        async with stream_call as stream:
            async for _ in stream:
                pass
    summary = stream.summary
    assert (summary.completion_tokens, summary.token_count_source) == (32, "chunks")
    assert len(summary.inter_token_latencies) == 31
    assert summary.text.count("\u00e9") == 10  # tokens 2, 5, ..., 29 complete a character
    assert summary.complete


@pytest.mark.parametrize("vllm", [False, True])
async def test_a_closing_empty_chunk_is_a_token_only_from_vllm(
    nursery: trio.Nursery, vllm: bool
) -> None:
    """llama-cpp-python closes a completion with ``text: ""`` and the finish reason, which
    stands for no token; vLLM's last chunk looks the same when its token ends inside a
    character (or is end-of-sequence), and carries the ``stop_reason`` key."""
    closing: dict[str, Any] = {"index": 0, "text": "", "finish_reason": "stop"}
    if vllm:
        closing["stop_reason"] = None
    chunks = [
        {"choices": [{"index": 0, "text": "a", "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "", "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "\u00e9", "finish_reason": None}]},
        {"choices": [closing]},
    ]

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([json.dumps(c) for c in chunks]))
        await respond.end()

    server = await start(nursery, handler)
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_completions(model="m", prompt="p") as stream,
    ):
        got = [chunk async for chunk in stream]
    assert [c.choices[0].is_token for c in got] == [True, True, True, vllm]
    assert (stream.summary.completion_tokens, stream.summary.text) == (3 + vllm, "a\u00e9")
    assert stream.summary.complete


@pytest.mark.parametrize("include_usage", [True, False])
async def test_coalesced_tokens_are_counted_from_token_ids(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, include_usage: bool
) -> None:
    """A loaded vLLM puts several tokens in one chunk: counting chunks undercounts, and the
    summary says so ("chunks"); its token_ids (return_token_ids=True) give the exact count
    per choice, and usage, when sent, the exact total."""
    server = await start(nursery, FakeOpenAI(output_tokens=10, coalesce=3, itl=0.3))
    summary, chunks = await stream_chat(server.url, include_usage=include_usage, n=2)
    assert [(c.completion_tokens, c.token_count_source) for c in summary.choices] == [
        (4, "chunks"),
        (4, "chunks"),
    ]
    assert summary.completion_tokens == (20 if include_usage else 8)
    summary, chunks = await stream_chat(
        server.url, include_usage=include_usage, n=2, return_token_ids=True
    )
    assert [(c.completion_tokens, c.token_count_source) for c in summary.choices] == [
        (10, "token_ids"),
        (10, "token_ids"),
    ]
    assert (summary.completion_tokens, summary.token_count_source) == (
        (20, "usage") if include_usage else (20, "token_ids")
    )
    assert summary.token_chunks == 8
    assert [d.token_ids for d in chunks[-1].choices] == [1]
    # chunks at 0, 0.3, 0.6, 0.9 s stand for 10 tokens: TPOT divides by the tokens
    assert summary.choices[0].tpot == pytest.approx(0.9 / 9)
    assert summary.choices[0].inter_token_latencies == pytest.approx((0.3, 0.3, 0.3))


async def test_an_end_of_sequence_chunk_with_its_id_is_a_token(nursery: trio.Nursery) -> None:
    chunks = [
        {"choices": [{"index": 0, "text": "a", "finish_reason": None, "token_ids": [5]}]},
        {"choices": [{"index": 0, "text": "", "finish_reason": "stop", "token_ids": [2]}]},
    ]

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([json.dumps(c) for c in chunks]))
        await respond.end()

    server = await start(nursery, handler)
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_completions(model="m", prompt="p", include_usage=False) as stream,
    ):
        async for _ in stream:
            pass
    assert (stream.summary.completion_tokens, stream.summary.token_count_source) == (
        2,
        "token_ids",
    )


@pytest.mark.parametrize("ids", ["1,2", {"a": 1}, 3])
async def test_token_ids_of_the_wrong_type_name_the_field(nursery: trio.Nursery, ids: Any) -> None:
    chunk = {"choices": [{"index": 0, "text": "a", "token_ids": ids}]}

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([json.dumps(chunk)]))
        await respond.end()

    server = await start(nursery, handler)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match=r"choices\[0\]\.token_ids"):
            async with client.openai.stream_completions(model="m", prompt="p") as stream:
                async for _ in stream:
                    pass


async def test_usage_wins_and_says_so(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=6, split_characters=True))
    summary, _ = await stream_chat(server.url)
    assert (summary.completion_tokens, summary.token_count_source, summary.token_chunks) == (
        6,
        "usage",
        6,
    )
    (choice,) = summary.choices
    assert (choice.completion_tokens, choice.token_count_source) == (6, "usage")


async def test_a_server_that_ignores_include_usage(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=5, stream_usage=False))
    summary, _ = await stream_chat(server.url)
    assert (summary.usage, summary.prompt_tokens) == (None, None)
    assert (summary.completion_tokens, summary.token_count_source) == (5, "chunks")


@given(
    tokens=st.integers(1, 12),
    n=st.integers(1, 3),
    style=st.sampled_from(["vllm", "llama.cpp"]),
    split=st.booleans(),
    per_chunk=st.booleans(),
    chat=st.booleans(),
)
def test_chunk_counts_agree_with_usage(
    tokens: int,
    n: int,
    style: Literal["vllm", "llama.cpp"],
    split: bool,
    per_chunk: bool,
    chat: bool,
) -> None:
    """Differential: for every shape the fake can stream, the tokens counted from chunks equal
    the server's own usage, per choice and in total."""
    fake = FakeOpenAI(
        output_tokens=tokens, style=style, split_characters=split, choice_per_chunk=per_chunk
    )

    async def main() -> StreamSummary:
        async with trio.open_nursery() as nursery:
            server = await start(nursery, fake)
            async with trio_infer.Client(server.url) as client:
                call = (
                    client.openai.stream_chat_completions(model="m", messages=MESSAGES, n=n)
                    if chat
                    else client.openai.stream_completions(model="m", prompt="p", n=n)
                )
                async with call as stream:
                    async for _ in stream:
                        pass
            nursery.cancel_scope.cancel()
        return stream.summary

    summary = trio.run(main)
    counted = tokens
    assert summary.token_count_source == "usage"
    assert summary.completion_tokens == tokens * n
    assert summary.token_chunks == counted * n
    assert [c.token_chunks for c in summary.choices] == [counted] * n
    assert all(len(c.inter_token_latencies) == max(counted - 1, 0) for c in summary.choices)
    assert summary.complete


# --- defect 3: base64 and per-token embeddings --------------------------------------------------


async def test_base64_embeddings_are_decoded(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(dimensions=3))
    async with trio_infer.Client(server.url) as client:
        floats = await client.openai.embeddings(model="m", input=["a", "bbb"])
        packed = await client.openai.embeddings(
            model="m", input=["a", "bbb"], encoding_format="base64"
        )
    assert isinstance(packed.raw["data"][0]["embedding"], str)  # it did come as base64
    assert packed.vectors == floats.vectors == ((1.0, 2.0, 3.0), (3.0, 4.0, 5.0))
    assert all(type(x) is float for vector in packed.vectors for x in vector)


async def test_the_openai_package_agrees_on_base64_embeddings(nursery: trio.Nursery) -> None:
    """Differential: the official client asks for base64 by default and decodes it."""
    openai = pytest.importorskip("openai")
    server = await start(nursery, FakeOpenAI(dimensions=5))

    def official() -> list[list[float]]:
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        try:
            return [e.embedding for e in sdk.embeddings.create(model="m", input=["x", "yy"]).data]
        finally:
            sdk.close()

    theirs = await trio.to_thread.run_sync(official)
    async with trio_infer.Client(server.url) as client:
        ours = await client.openai.embeddings(
            model="m", input=["x", "yy"], encoding_format="base64"
        )
    assert server.requests[0].json()["encoding_format"] == "base64"
    assert [list(v) for v in ours.vectors] == [[float(x) for x in v] for v in theirs]


async def test_per_token_embeddings_are_refused_by_name(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(per_token_embeddings=True))
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match="per-token embeddings") as caught:
            await client.openai.embeddings(model="m", input="one two")
    assert "data[0].embedding" in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        base64.b64encode(b"\x00\x00\x80").decode(),  # not a whole number of float32s
        [1.0, "2"],
        [True, 1.0],
    ],
)
async def test_bad_embeddings_name_the_field(nursery: trio.Nursery, value: Any) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.send_json({"data": [{"index": 0, "embedding": value}]})

    server = await start(nursery, handler)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match=r"data\[0\]\.embedding"):
            await client.openai.embeddings(model="m", input="one")


def test_base64_decoding_is_float32_little_endian() -> None:
    from trio_infer._openai import _vector

    values = (1.5, -2.25, 3.0e-3)
    packed = base64.b64encode(struct.pack("<3f", *values)).decode()
    assert _vector(packed, "f", 200, None) == pytest.approx(values)
    assert _vector(base64.b64encode(b"").decode(), "f", 200, None) == ()


# --- defect 5: the body's end in a later packet: the connection is reused ----------------------


async def test_streams_reuse_their_connection_when_the_end_comes_late(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=3, end_pause=0.05))
    async with trio_infer.Client(server.url) as client:
        for _ in range(10):
            async with client.openai.stream_chat_completions(
                model="m", messages=MESSAGES
            ) as stream:
                async for _chunk in stream:
                    pass
            assert stream.summary.complete
            assert stream.response.is_closed  # ended: the block did not have to close it
        stats = client.stats()
    assert (stats.opened, stats.reused) == (1, 9)
    assert dict(stats.endpoints[0].closed).get("interrupted", 0) == 0


async def test_a_body_that_never_ends_costs_only_the_connection(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=3, end_pause=3600))
    async with trio_infer.Client(server.url) as client:
        start_time = trio.current_time()
        async with client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, end_grace=2
        ) as stream:
            async for _chunk in stream:
                pass
        waited = trio.current_time() - start_time
        stats = client.stats()
    assert waited == pytest.approx(2.0)  # MockClock: exactly the grace, no more
    assert stream.summary.complete and stream.summary.completion_tokens == 3
    assert stats.failures == 0
    assert dict(stats.endpoints[0].closed)["interrupted"] == 1


async def test_end_grace_zero_does_not_wait(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=2, end_pause=1))
    async with trio_infer.Client(server.url) as client:
        start_time = trio.current_time()
        async with client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, end_grace=0
        ) as stream:
            async for _chunk in stream:
                pass
        assert trio.current_time() == start_time
    assert stream.summary.complete


@pytest.mark.parametrize("grace", [-1, float("nan"), float("inf"), "1", True, None])
async def test_a_bad_end_grace_is_refused(nursery: trio.Nursery, grace: Any) -> None:
    server = await start(nursery, FakeOpenAI())
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match="end_grace="):
            client.openai.stream_chat_completions(model="m", messages=MESSAGES, end_grace=grace)
    assert server.requests == []


async def test_a_real_uvicorn_stream_reuses_its_connection() -> None:
    """uvicorn sends the chunked terminator after the app's last body message: the late end
    that made 28 of 50 vLLM streams open a new connection."""
    from trio_infer.testing import open_uvicorn

    async with (
        open_uvicorn("trio_infer.testing._asgi:app") as url,
        trio_infer.Client(url) as client,
    ):
        for _ in range(20):
            async with client.openai.stream_chat_completions(
                model="m", messages=MESSAGES, end_grace=30
            ) as stream:
                async for _chunk in stream:
                    pass
            assert stream.summary.completion_tokens == 4
        stats = client.stats()
    assert (stats.opened, stats.reused) == (1, 19)


# --- defect 8: a stream cut short still ends with [DONE] ---------------------------------------


@pytest.mark.parametrize("style", ["vllm", "llama.cpp"])
async def test_a_cut_stream_is_incomplete(
    nursery: trio.Nursery, style: Literal["vllm", "llama.cpp"]
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=8, cut_after=3, style=style))
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, include_usage=False
        ) as stream,
    ):
        async for _ in stream:
            pass
        stats = client.stats()
    summary = stream.summary
    # the body never ended: the connection is closed as interrupted, and the call is no failure
    assert (stats.failures, dict(stats.endpoints[0].closed).get("interrupted")) == (0, 1)
    assert not summary.complete
    assert summary.finish_reason is None
    assert "ended without a finish_reason" in (summary.incomplete_reason or "")
    assert summary.completion_tokens == 3


async def test_a_stream_cut_before_any_token_is_no_success(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=8, cut_after=0))
    summary, _ = await stream_chat(server.url, include_usage=False)
    assert (summary.complete, summary.completion_tokens, summary.ttft) == (False, 0, None)
    assert summary.incomplete_reason is not None


async def test_an_empty_stream_is_incomplete(nursery: trio.Nursery) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([]))
        await respond.end()

    server = await start(nursery, handler)
    summary, chunks = await stream_chat(server.url)
    assert chunks == []
    assert not summary.complete
    assert "no choice" in (summary.incomplete_reason or "")
