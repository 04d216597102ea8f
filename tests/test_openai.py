"""The OpenAI-compatible API against the fake server, and the fake judged by the official
``openai`` package."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import IncompleteStream, OpenAIError, Retry
from trio_infer.testing import FakeOpenAI, TestServer, serve

MESSAGES = [{"role": "user", "content": "say something nice"}]


async def start(nursery: trio.Nursery, fake: FakeOpenAI) -> TestServer:
    server: TestServer = await nursery.start(serve, fake)
    return server


async def test_chat_completion(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=3))
    async with trio_infer.Client(server.url) as client:
        done = await client.openai.chat_completions(
            model="fake-model", messages=MESSAGES, temperature=0
        )
    assert done.text == "tok0 tok1 tok2 "
    assert (done.finish_reason, done.model, done.choices[0].role) == (
        "stop",
        "fake-model",
        "assistant",
    )
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 3)
    assert done.raw["x_fake"] == {"call": 1}  # unknown fields are kept
    assert done.response.status == 200
    assert server.requests[0].json()["temperature"] == 0  # other keywords go to the body


async def test_completion_capped_by_max_tokens(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=10))
    async with trio_infer.Client(server.url) as client:
        done = await client.openai.completions(model="fake-model", prompt="a b", max_tokens=2)
    assert (done.text, done.finish_reason) == ("tok0 tok1 ", "length")


async def test_streamed_chat_with_timing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=5, ttft=0.25, itl=0.05))
    async with trio_infer.Client(server.url) as client:
        async with client.openai.stream_chat_completions(
            model="fake-model", messages=MESSAGES
        ) as stream:
            chunks = [chunk async for chunk in stream]
        summary = stream.summary
    assert server.requests[0].json()["stream_options"] == {"include_usage": True}
    texts = [c.text for c in chunks]
    assert texts == ["", "tok0 ", "tok1 ", "tok2 ", "tok3 ", "tok4 "]  # the role chunk first
    assert chunks[1].raw["x_fake"] == {"token": 0}
    assert all(b.received_at >= a.received_at for a, b in itertools.pairwise(chunks))
    assert summary.text == "tok0 tok1 tok2 tok3 tok4 "
    assert (summary.completion_tokens, summary.token_count_source) == (5, "usage")
    assert summary.prompt_tokens == 3
    assert summary.ttft == pytest.approx(0.25)
    assert summary.inter_token_latencies == pytest.approx((0.05,) * 4)
    assert summary.tpot == pytest.approx(0.05)
    assert summary.e2e == pytest.approx(0.45)
    assert summary.finish_reason == "stop"


async def test_without_usage_tokens_are_counted_from_chunks(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=4, usage=False))
    client = trio_infer.Client(server.url)
    async with client, client.openai.stream_completions(model="fake-model", prompt="x") as stream:
        async for _chunk in stream:
            pass
    assert (stream.summary.completion_tokens, stream.summary.token_count_source) == (4, "chunks")
    assert stream.summary.usage is None


async def test_summary_before_the_end_is_an_error(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI())
    client = trio_infer.Client(server.url)
    async with client, client.openai.stream_completions(model="fake-model", prompt="x") as stream:
        with pytest.raises(RuntimeError, match="once the stream has ended"):
            _ = stream.summary


async def test_error_bodies_become_typed_errors(nursery: trio.Nursery) -> None:
    fake = FakeOpenAI()
    server = await start(nursery, fake)
    async with trio_infer.Client(server.url, retry=Retry.disabled()) as client:
        fake.fail_next(status=429, message="slow down")
        with pytest.raises(OpenAIError, match="slow down") as info:
            await client.openai.chat_completions(model="fake-model", messages=MESSAGES)
        assert (info.value.status, info.value.type, info.value.code) == (429, "server_error", 429)
        fake.fail_next(status=400, message="bad model")
        with pytest.raises(OpenAIError, match="bad model"):
            async with client.openai.stream_chat_completions(model="m", messages=MESSAGES):
                pass  # pragma: no cover
        assert client.stats().permits_in_use == 0


async def test_an_error_event_mid_stream(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=5, error_after=2))
    async with trio_infer.Client(server.url) as client:
        texts = []
        with pytest.raises(OpenAIError, match="the engine failed"):
            async with client.openai.stream_completions(model="fake-model", prompt="x") as stream:
                async for chunk in stream:
                    texts.append(chunk.text)
        assert texts == ["tok0 ", "tok1 "]
        assert client.stats().permits_in_use == 0


async def test_a_stream_without_done_is_incomplete(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=2, drop_done=True))
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(IncompleteStream, match=r"\[DONE\]"):
            async with client.openai.stream_completions(model="fake-model", prompt="x") as stream:
                async for _chunk in stream:
                    pass


async def test_embeddings_and_models(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(dimensions=3))
    async with trio_infer.Client(server.url) as client:
        embeddings = await client.openai.embeddings(model="fake-model", input=["a", "bbb"])
        models = await client.openai.models()
    assert embeddings.vectors == ((1.0, 2.0, 3.0), (3.0, 4.0, 5.0))
    assert [m.id for m in models] == ["fake-model"]


# --- the official client is the judge of the fake ------------------------------------------


async def test_the_openai_package_accepts_the_fake(nursery: trio.Nursery) -> None:
    openai = pytest.importorskip("openai")
    server = await start(nursery, FakeOpenAI(output_tokens=3))

    def use_it() -> dict[str, Any]:
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        done = sdk.chat.completions.create(model="fake-model", messages=MESSAGES)
        streamed = sdk.chat.completions.create(
            model="fake-model",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts, usage = [], None
        for chunk in streamed:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
        completion = sdk.completions.create(model="fake-model", prompt="hi", max_tokens=2)
        embedded = sdk.embeddings.create(model="fake-model", input=["a"])
        models = [m.id for m in sdk.models.list()]
        sdk.close()
        return {
            "chat": done.choices[0].message.content,
            "finish": done.choices[0].finish_reason,
            "stream": "".join(parts),
            "usage": usage,
            "completion": (completion.choices[0].text, completion.choices[0].finish_reason),
            "embedding": embedded.data[0].embedding,
            "models": models,
        }

    result = await trio.to_thread.run_sync(use_it)
    assert result == {
        "chat": "tok0 tok1 tok2 ",
        "finish": "stop",
        "stream": "tok0 tok1 tok2 ",
        "usage": 3,
        "completion": ("tok0 tok1 ", "length"),
        "embedding": [1.0, 2.0, 3.0, 4.0],
        "models": ["fake-model"],
    }


async def test_waiting_for_a_permit_is_not_time_to_first_token(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Two streams through one permit: the second waits for the first (0.3 s), and that wait is
    # reported as queueing, not as the server's TTFT.
    server = await start(nursery, FakeOpenAI(output_tokens=3, ttft=0.2, itl=0.05))
    summaries = []
    async with trio_infer.Client(server.url, limiter=1) as client:

        async def one() -> None:
            async with client.openai.stream_completions(model="fake-model", prompt="x") as stream:
                async for _chunk in stream:
                    pass
            summaries.append(stream.summary)

        async with trio.open_nursery() as calls:
            calls.start_soon(one)
            calls.start_soon(one)
    first, second = summaries
    assert (first.queued, first.ttft, first.e2e) == pytest.approx((0.0, 0.2, 0.3))
    assert (second.queued, second.ttft, second.e2e) == pytest.approx((0.3, 0.2, 0.3))
