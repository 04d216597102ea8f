"""Attacks on the issue-11 OpenAI streaming layer: the per-choice TokenStream and its token
counting, completeness, the bounded wait for the body's end after ``data: [DONE]``
(``Response.finish`` / ``Exchange.finish_within``), base64 embeddings, the FakeOpenAI switches
and ``trio-infer bench``.

Each test was written first as a strict xfail that failed on the code it attacked, then the
code was fixed; the rest guard the grace wait against cancellation and closes from other
tasks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import OpenAIError, Timeouts
from trio_infer._bench import run_bench
from trio_infer.testing import FakeOpenAI, Responder, ServerRequest, TestServer, serve, sse_body

MESSAGES = [{"role": "user", "content": "hi"}]


async def start(nursery: trio.Nursery, handler: Any) -> TestServer:
    server: TestServer = await nursery.start(serve, handler)
    return server


def streaming(chunks: list[Any], *, done: bool = True) -> Any:
    """A handler that streams ``chunks`` (JSON values, or raw strings) as SSE ``data:``
    events in one write, then ends the body."""
    events = [c if isinstance(c, str) else json.dumps(c) for c in chunks]

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body(events, done=done))
        await respond.end()

    return handler


class LateEnd:
    """A handler that sends a whole completion stream and ``data: [DONE]`` in one write, and
    the body's end (the chunked terminator) only once ``go`` is set; then sets ``sent``.
    :meth:`next` arms it for the next request."""

    def __init__(self) -> None:
        self.next()

    def next(self) -> None:
        self.go = trio.Event()
        self.sent = trio.Event()

    async def __call__(self, request: ServerRequest, respond: Responder) -> None:
        go, sent = self.go, self.sent
        chunk = {"choices": [{"index": 0, "text": "a", "finish_reason": "stop"}]}
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body([json.dumps(chunk)]))
        await go.wait()
        await respond.end()
        sent.set()


# --- the grace wait after [DONE] --------------------------------------------------------------


async def test_the_grace_never_turns_a_complete_stream_into_a_total_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=3, itl=0.3, end_pause=3600))
    async with trio_infer.Client(server.url) as client:
        async with client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, timeouts=Timeouts(total=1.0), end_grace=0.5
        ) as stream:
            async for _ in stream:
                pass
        stats = client.stats()
    assert stream.summary.complete and stream.summary.completion_tokens == 3
    assert stats.failures == 0


async def test_finish_within_zero_reuses_a_connection_whose_end_has_arrived(
    nursery: trio.Nursery,
) -> None:
    late = LateEnd()
    server = await start(nursery, late)
    body = {"model": "m", "prompt": "p", "stream": True}
    async with trio_infer.Client(server.url) as client:
        for _ in range(2):
            async with client.stream("POST", "/v1/completions", json=body) as response:
                async for event in response.aiter_sse():
                    if event.data == "[DONE]":
                        break
                late.go.set()
                await late.sent.wait()
                await trio.testing.wait_all_tasks_blocked()  # the terminator is in the socket
                await response.finish(within=0)
            late.next()
        stats = client.stats()
    assert (stats.opened, stats.reused) == (1, 1)


async def test_end_grace_zero_reuses_a_connection_whose_end_has_arrived(
    nursery: trio.Nursery,
) -> None:
    late = LateEnd()
    server = await start(nursery, late)
    async with trio_infer.Client(server.url) as client:
        for _ in range(2):
            async with client.openai.stream_completions(
                model="m", prompt="p", end_grace=0
            ) as stream:
                chunks = stream.__aiter__()
                await chunks.__anext__()  # [DONE] came in the same write: it waits in a buffer
                late.go.set()
                await late.sent.wait()
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(StopAsyncIteration):
                    await chunks.__anext__()
            assert stream.summary.complete
            late.next()
        stats = client.stats()
    assert (stats.opened, stats.reused) == (1, 1)


async def test_an_absurd_end_grace_is_an_invalid_request() -> None:
    async with trio_infer.Client("http://127.0.0.1:9") as client:
        with pytest.raises(trio_infer.InvalidRequest, match="end_grace="):
            client.openai.stream_chat_completions(model="m", messages=MESSAGES, end_grace=10**400)


async def test_an_absurd_finish_within_is_a_usage_error(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=1))
    body = {"model": "m", "prompt": "p", "stream": True}
    async with (
        trio_infer.Client(server.url, timeouts=Timeouts(read=None)) as client,
        client.stream("POST", "/v1/completions", json=body) as response,
    ):
        async for event in response.aiter_sse():
            if event.data == "[DONE]":
                break
        with pytest.raises(trio_infer.UsageError, match="within="):
            await response.finish(within=10**400)


async def test_cancelling_during_the_grace_releases_everything(nursery: trio.Nursery) -> None:
    """Guard: a caller cancelled while the stream waits for its body's end gets the
    cancellation, and the permit and connection are given back (limiter=1: the next call
    would hang otherwise)."""
    server = await start(nursery, FakeOpenAI(output_tokens=2, end_pause=3600))
    async with trio_infer.Client(server.url, limiter=1) as client:
        with trio.CancelScope() as scope:
            async with client.openai.stream_chat_completions(
                model="m", messages=MESSAGES, end_grace=3600
            ) as stream:

                async def cancel_when_blocked() -> None:
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()

                nursery.start_soon(cancel_when_blocked)
                async for _ in stream:
                    pass
        assert scope.cancelled_caught
        assert stream.summary.complete  # [DONE] had come: the answer is whole
        stats = client.stats()
        assert (stats.permits_in_use, stats.open_connections, stats.failures) == (0, 0, 0)
        with trio.fail_after(5):
            async with client.openai.stream_chat_completions(
                model="m", messages=MESSAGES, end_grace=0
            ) as again:
                async for _ in again:
                    pass
        assert again.summary.complete


@pytest.mark.parametrize("closer", ["response", "client"])
async def test_a_close_from_another_task_ends_the_grace(nursery: trio.Nursery, closer: str) -> None:
    """Guard: closing the response, or the client, from another task while the stream waits
    for its body's end ends the wait at once, without an error: the answer is whole."""
    server = await start(nursery, FakeOpenAI(output_tokens=2, end_pause=3600))
    client = trio_infer.Client(server.url, limiter=1)
    async with client:
        async with client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, end_grace=3600
        ) as stream:

            async def close_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked()
                if closer == "response":
                    stream.response.close()
                else:
                    client.close()

            nursery.start_soon(close_when_blocked)
            with trio.fail_after(5):
                async for _ in stream:
                    pass
        stats = client.stats()
    assert stream.summary.complete and stream.summary.completion_tokens == 2
    assert (stats.permits_in_use, stats.open_connections, stats.failures) == (0, 0, 0)


async def test_concurrent_streams_with_a_late_end_share_their_connections(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Guard: 64 streams through 4 permits, each body ending 50 ms after [DONE]: every
    stream gives its connection back before its permit, so 4 connections carry them all."""
    server = await start(nursery, FakeOpenAI(output_tokens=4, itl=0.01, end_pause=0.05))
    summaries: list[trio_infer.StreamSummary] = []
    async with trio_infer.Client(server.url, limiter=4) as client:

        async def one() -> None:
            async with client.openai.stream_chat_completions(
                model="m", messages=MESSAGES
            ) as stream:
                async for _ in stream:
                    pass
            summaries.append(stream.summary)

        async with trio.open_nursery() as callers:
            for _ in range(64):
                callers.start_soon(one)
        stats = client.stats()
    assert all(s.complete and s.completion_tokens == 4 for s in summaries)
    assert (stats.opened, stats.reused, stats.responses, stats.failures) == (4, 60, 64, 0)
    assert dict(stats.endpoints[0].closed)["interrupted"] == 0


# --- completeness and token counting ----------------------------------------------------------


@pytest.mark.parametrize("reason", ["abort", "error"])
async def test_an_aborted_choice_is_not_complete(nursery: trio.Nursery, reason: str) -> None:
    server = await start(
        nursery,
        streaming(
            [
                {"choices": [{"index": 0, "text": "a", "finish_reason": None}]},
                {"choices": [{"index": 0, "text": "", "finish_reason": reason}]},
            ]
        ),
    )
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_completions(model="m", prompt="p") as stream,
    ):
        async for _ in stream:
            pass
    assert not stream.summary.complete
    assert reason in (stream.summary.incomplete_reason or "")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "tool_calls"])
async def test_reasoning_and_tool_call_chunks_are_tokens(nursery: trio.Nursery, field: str) -> None:
    def piece(i: int) -> Any:
        if field == "tool_calls":
            return [{"index": 0, "function": {"arguments": f"a{i}"}}]
        return f"r{i}"

    chunks: list[Any] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        *({"choices": [{"index": 0, "delta": {field: piece(i)}}]} for i in range(5)),
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "x"},
                    "finish_reason": "stop",
                    "stop_reason": None,
                }
            ]
        },
    ]
    server = await start(nursery, streaming(chunks))
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, include_usage=False
        ) as stream,
    ):
        async for _ in stream:
            pass
    summary = stream.summary
    assert (summary.completion_tokens, summary.token_chunks) == (6, 6)


async def test_a_mid_stream_empty_delta_with_a_role_is_a_token(nursery: trio.Nursery) -> None:
    def delta(text: str, finish: str | None = None) -> Any:
        choice = {"index": 0, "delta": {"role": "assistant", "content": text}}
        return {"choices": [{**choice, "finish_reason": finish}]}

    server = await start(nursery, streaming([delta("a"), delta(""), delta("\u00e9", "stop")]))
    async with (
        trio_infer.Client(server.url) as client,
        client.openai.stream_chat_completions(
            model="m", messages=MESSAGES, include_usage=False
        ) as stream,
    ):
        got = [chunk async for chunk in stream]
    assert [c.choices[0].is_token for c in got] == [True, True, True]
    assert stream.summary.completion_tokens == 3


async def test_an_empty_prompt_list_is_refused(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI())
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match="prompt="):
            async with client.openai.stream_completions(model="m", prompt=[]) as stream:
                async for _ in stream:
                    pass
    assert server.requests == []


# --- embeddings -------------------------------------------------------------------------------


async def test_a_non_ascii_base64_embedding_names_the_field(nursery: trio.Nursery) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.send_json({"data": [{"index": 0, "embedding": "AAAA\u00e9AAA"}]})

    server = await start(nursery, handler)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match=r"data\[0\]\.embedding"):
            await client.openai.embeddings(model="m", input="x")


# --- FakeOpenAI -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "switch",
    [{"end_pause": -1.0}, {"cut_after": -1}, {"output_tokens": -1}, {"style": "llamacpp"}],
)
def test_fake_openai_refuses_bad_switches(switch: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(switch))):
        FakeOpenAI(**switch)


# --- trio-infer bench -------------------------------------------------------------------------


async def test_bench_counts_a_non_json_event_as_an_error(nursery: trio.Nursery) -> None:
    server = await start(nursery, streaming(["not json"]))
    result = await run_bench([server.url], requests=3, concurrency=1, path="/", stream=True)
    assert (result.requests, result.failed) == (0, 3)


async def test_bench_counts_an_in_stream_error_as_an_error(nursery: trio.Nursery) -> None:
    error = {"error": {"message": "the engine failed", "type": "server_error", "code": 500}}
    server = await start(nursery, streaming([error]))
    result = await run_bench([server.url], requests=3, concurrency=1, path="/", stream=True)
    assert (result.requests, result.failed) == (0, 3)
