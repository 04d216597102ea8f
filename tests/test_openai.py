"""The OpenAI-compatible API against the fake server, and the fake judged by the official
``openai`` package."""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import IncompleteStream, OpenAIError, Retry
from trio_infer._requester import Requester
from trio_infer.testing import FakeOpenAI, TestServer, reply, serve, sse_body

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


# --- wrong-shaped answers and bad arguments are typed errors (issue #10, defect 12) -----------

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def chat_body(**choice: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, **choice}]}


# (what the server answers, the field the error must name)
WRONG_ANSWERS: list[tuple[Any, str]] = [
    ({"choices": 5}, "choices"),
    ({"choices": {"0": {}}}, "choices"),
    ({"choices": [5]}, "choices[0]"),
    ({"choices": ["x"]}, "choices[0]"),
    (chat_body(message=[]), "choices[0].message"),
    (chat_body(message="x"), "choices[0].message"),
    (chat_body(message={"content": 7}), "choices[0].message.content"),
    (chat_body(message={"content": ["a"]}), "choices[0].message.content"),
    (chat_body(message={"content": "x", "role": 5}), "choices[0].message.role"),
    (chat_body(index="a"), "choices[0].index"),
    (chat_body(index=True), "choices[0].index"),
    (chat_body(index=-1), "choices[0].index"),
    (chat_body(index=1.0), "choices[0].index"),
    (chat_body(finish_reason=5), "choices[0].finish_reason"),
    (chat_body(finish_reason=["stop"]), "choices[0].finish_reason"),
    ({**chat_body(), "usage": 5}, "usage"),
    ({**chat_body(), "usage": [1, 2]}, "usage"),
    ({**chat_body(), "usage": {"completion_tokens": "abc"}}, "usage.completion_tokens"),
    ({**chat_body(), "usage": {"completion_tokens": -1}}, "usage.completion_tokens"),
    ({**chat_body(), "usage": {"completion_tokens": True}}, "usage.completion_tokens"),
    ({**chat_body(), "usage": {"completion_tokens": 1.5}}, "usage.completion_tokens"),
    ({**chat_body(), "usage": {"prompt_tokens": "3"}}, "usage.prompt_tokens"),
    ({**chat_body(), "usage": {"total_tokens": {}}}, "usage.total_tokens"),
    ({**chat_body(), "id": 5}, "id"),
    ({**chat_body(), "model": ["m"]}, "model"),
]


async def answering(
    nursery: trio.Nursery, body: Any, *, status: int = 200, event_stream: bool = False
) -> TestServer:
    if event_stream:
        wire = sse_body([b if isinstance(b, str) else json.dumps(b) for b in body])
        handler = reply(wire, status=status, headers=[("content-type", "text/event-stream")])
    else:
        handler = reply(
            body if isinstance(body, bytes) else json.dumps(body).encode(), status=status
        )
    server: TestServer = await nursery.start(serve, handler)
    return server


@pytest.mark.parametrize(("answer", "field"), WRONG_ANSWERS)
async def test_a_wrong_shaped_completion_is_an_openai_error(
    nursery: trio.Nursery, answer: Any, field: str
) -> None:
    server = await answering(nursery, answer)
    async with trio_infer.Client(server.url, retry=Retry.disabled()) as client:
        with pytest.raises(OpenAIError) as info:
            await client.openai.chat_completions(model="m", messages=MESSAGES)
        assert client.stats().permits_in_use == 0
    assert field in str(info.value)
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"choices": [{"text": 7}]}, "choices[0].text"),
        ({"choices": [{"text": None, "finish_reason": 1}]}, "choices[0].finish_reason"),
        ({"choices": [{"text": "a", "index": "0"}]}, "choices[0].index"),
    ],
)
async def test_a_wrong_shaped_text_completion_is_an_openai_error(
    nursery: trio.Nursery, answer: Any, field: str
) -> None:
    server = await answering(nursery, answer)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match=re.escape(field)):
            await client.openai.completions(model="m", prompt="x")


def chunk(**choice: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": "tok"}, **choice}]}


WRONG_CHUNKS: list[tuple[Any, str]] = [
    ({"choices": 5}, "choices"),
    ({"choices": "abc"}, "choices"),
    ({"choices": [5]}, "choices[0]"),
    (chunk(delta="x"), "choices[0].delta"),
    (chunk(delta=[]), "choices[0].delta"),
    (chunk(delta={"content": 7}), "choices[0].delta.content"),
    (chunk(delta={"content": "a", "role": []}), "choices[0].delta.role"),
    (chunk(index="a"), "choices[0].index"),
    (chunk(index=None), "choices[0].index"),
    (chunk(finish_reason=5), "choices[0].finish_reason"),
    ({"choices": [], "usage": 5}, "usage"),
    ({"choices": [], "usage": {"completion_tokens": "abc"}}, "usage.completion_tokens"),
    ({"choices": [], "usage": {"completion_tokens": -3}}, "usage.completion_tokens"),
    ({"choices": [], "usage": {"completion_tokens": False}}, "usage.completion_tokens"),
    ({"choices": [], "usage": {"completion_tokens": 2.0}}, "usage.completion_tokens"),
]


@pytest.mark.parametrize(("bad", "field"), WRONG_CHUNKS)
async def test_a_wrong_shaped_stream_chunk_is_an_openai_error(
    nursery: trio.Nursery, bad: Any, field: str
) -> None:
    server = await answering(nursery, [chunk(), bad, chunk()], event_stream=True)
    async with trio_infer.Client(server.url) as client:
        texts = []
        with pytest.raises(OpenAIError) as info:
            async with client.openai.stream_chat_completions(model="m", messages=MESSAGES) as s:
                async for c in s:
                    texts.append(c.text)
        assert client.stats().permits_in_use == 0
    assert texts == ["tok"]  # the good chunk before it was delivered
    assert field in str(info.value)
    assert info.value.body == bad  # the offending chunk, for the record


async def test_a_wrong_shaped_text_stream_chunk_is_an_openai_error(nursery: trio.Nursery) -> None:
    server = await answering(nursery, [{"choices": [{"index": 0, "text": 7}]}], event_stream=True)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match=re.escape("choices[0].text")):
            async with client.openai.stream_completions(model="m", prompt="x") as stream:
                async for _ in stream:
                    pass  # pragma: no cover


async def test_the_value_in_the_message_is_truncated(nursery: trio.Nursery) -> None:
    server = await answering(nursery, {"choices": "x" * 100_000})
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError) as info:
            await client.openai.chat_completions(model="m", messages=MESSAGES)
    assert "choices" in str(info.value)
    assert len(str(info.value)) < 1000


TWO_VECTORS = [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]


async def test_embeddings_come_back_in_input_order(nursery: trio.Nursery) -> None:
    server = await answering(nursery, {"data": TWO_VECTORS, "model": "m"})
    async with trio_infer.Client(server.url) as client:
        done = await client.openai.embeddings(model="m", input=["a", "b"])
    assert done.vectors == ((1.0,), (2.0,))


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"data": {}}, "data"),
        ({"data": 5}, "data"),
        ({"data": [5]}, "data[0]"),
        ({"data": [{"index": 0, "embedding": "x"}]}, "data[0].embedding"),
        ({"data": [{"index": 0, "embedding": 5}]}, "data[0].embedding"),
        ({"data": [{"index": 0, "embedding": [1.0, "a"]}]}, "data[0].embedding"),
        ({"data": [{"index": 0, "embedding": [1.0, True]}]}, "data[0].embedding"),
        ({"data": [{"index": 0, "embedding": [[1.0]]}]}, "data[0].embedding"),
        ({"data": [{"index": "a", "embedding": [1.0]}]}, "data[0].index"),
        ({"data": [{"index": 1.5, "embedding": [1.0]}]}, "data[0].index"),
        (
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]},
            "index",
        ),  # two vectors for one input, none for the other
        ({"data": [{"index": 0, "embedding": [1.0]}]}, "2 inputs"),  # one vector is missing
        ({"data": TWO_VECTORS, "model": 5}, "model"),
        ({"data": TWO_VECTORS, "usage": {"prompt_tokens": "x"}}, "usage.prompt_tokens"),
    ],
)
async def test_a_wrong_shaped_embeddings_answer_is_an_openai_error(
    nursery: trio.Nursery, answer: Any, field: str
) -> None:
    server = await answering(nursery, answer)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError) as info:
            await client.openai.embeddings(model="m", input=["a", "b"])
    assert field in str(info.value)


async def test_base64_embeddings_are_decoded(nursery: trio.Nursery) -> None:
    # encoding_format="base64": little-endian float32, as OpenAI sends it.
    vector = base64.b64encode(struct.pack("<3f", 1.0, -2.5, 0.5)).decode()
    server = await answering(nursery, {"data": [{"index": 0, "embedding": vector}]})
    async with trio_infer.Client(server.url) as client:
        done = await client.openai.embeddings(model="m", input="a", encoding_format="base64")
    assert done.vectors == ((1.0, -2.5, 0.5),)


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"data": 5}, "data"),
        ({"data": [5]}, "data[0]"),
        ({"data": [{"owned_by": "x"}]}, "data[0].id"),
        ({"data": [{"id": 5}]}, "data[0].id"),
        ({"data": [{"id": "m", "owned_by": 5}]}, "data[0].owned_by"),
    ],
)
async def test_a_wrong_shaped_models_answer_is_an_openai_error(
    nursery: trio.Nursery, answer: Any, field: str
) -> None:
    server = await answering(nursery, answer)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError) as info:
            await client.openai.models()
    assert field in str(info.value)


async def test_an_error_answer_with_odd_fields_is_still_an_openai_error(
    nursery: trio.Nursery,
) -> None:
    server = await answering(
        nursery, {"error": {"message": ["m"], "type": 5, "code": "c"}}, status=400
    )
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError) as info:
            await client.openai.chat_completions(model="m", messages=MESSAGES)
    assert (info.value.status, info.value.type, info.value.code) == (400, "5", "c")
    assert "m" in info.value.message


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("chat_completions", {"model": None, "messages": MESSAGES}, "model"),
    ("chat_completions", {"model": 5, "messages": MESSAGES}, "model"),
    ("chat_completions", {"model": "", "messages": MESSAGES}, "model"),
    ("chat_completions", {"model": "m", "messages": 5}, "messages"),
    ("chat_completions", {"model": "m", "messages": "hi"}, "messages"),
    ("chat_completions", {"model": "m", "messages": [5]}, "messages[0]"),
    ("chat_completions", {"model": "m", "messages": None}, "messages"),
    ("chat_completions", {"model": "m", "messages": MESSAGES, "stream": True}, "stream"),
    ("completions", {"model": "m", "prompt": 5}, "prompt"),
    ("completions", {"model": "m", "prompt": None}, "prompt"),
    ("completions", {"model": "m", "prompt": [1.5]}, "prompt"),
    ("completions", {"model": "m", "prompt": ["a", 1]}, "prompt"),
    ("embeddings", {"model": "m", "input": 5}, "input"),
    ("embeddings", {"model": "m", "input": [{"a": 1}]}, "input"),
    ("embeddings", {"model": None, "input": "a"}, "model"),
]


@pytest.mark.parametrize(("method", "kwargs", "argument"), BAD_CALLS)
async def test_bad_arguments_are_invalid_requests(
    nursery: trio.Nursery, method: str, kwargs: dict[str, Any], argument: str
) -> None:
    server = await answering(nursery, chat_body())
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest) as info:
            await getattr(client.openai, method)(**kwargs)
    assert f"{argument}=" in str(info.value) or f"{argument} " in str(info.value)
    assert server.requests == []  # nothing was sent


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"model": None, "messages": MESSAGES}, "model"),
        ({"model": "m", "messages": 5}, "messages"),
        ({"model": "m", "messages": MESSAGES, "stream_options": 5}, "stream_options"),
        ({"model": "m", "messages": MESSAGES, "include_usage": "yes"}, "include_usage"),
        ({"model": "m", "messages": MESSAGES, "stream": False}, "stream"),
    ],
)
async def test_bad_stream_arguments_are_invalid_requests(
    nursery: trio.Nursery, kwargs: dict[str, Any], argument: str
) -> None:
    server = await answering(nursery, [chunk()], event_stream=True)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match=argument):
            async with client.openai.stream_chat_completions(**kwargs):
                pass  # pragma: no cover
    assert server.requests == []


async def test_a_bad_prefix_is_a_config_error(nursery: trio.Nursery) -> None:
    server = await answering(nursery, chat_body())
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.ConfigError, match="prefix"):
            trio_infer.OpenAIAPI(client, prefix=5)  # type: ignore[arg-type]


# --- error bodies are read with a bound (issue #10, defect 9) --------------------------------


async def test_a_huge_error_body_of_a_stream_is_not_read_whole(nursery: trio.Nursery) -> None:
    from trio_infer import _openai

    limit = _openai.ERROR_BODY_LIMIT
    server = await answering(nursery, b"x" * (limit + 1), status=500)
    async with trio_infer.Client(server.url, retry=Retry.disabled()) as client:
        with pytest.raises(OpenAIError) as info:
            async with client.openai.stream_completions(model="m", prompt="x"):
                pass  # pragma: no cover
        assert client.stats().permits_in_use == 0
    assert info.value.status == 500
    assert f"larger than ERROR_BODY_LIMIT={limit}" in str(info.value)


async def test_an_error_body_within_the_limit_is_read(nursery: trio.Nursery) -> None:
    from trio_infer import _openai

    body = json.dumps({"error": {"message": "no " + "x" * 1000}}).encode()
    assert len(body) < _openai.ERROR_BODY_LIMIT
    server = await answering(nursery, body, status=400)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(OpenAIError, match="no xxx") as info:
            async with client.openai.stream_completions(model="m", prompt="x"):
                pass  # pragma: no cover
    assert info.value.status == 400


# --- the protocol layers need only a Requester ----------------------------------------------


class Recording:
    """A Requester that is not a Client: it records each call and hands it on."""

    def __init__(self, client: trio_infer.Client) -> None:
        self.client = client
        self.calls: list[tuple[str, str, str]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> trio_infer.Response:
        self.calls.append(("request", method, path))
        return await self.client.request(method, path, **kwargs)

    def stream(
        self, method: str, path: str, **kwargs: Any
    ) -> AbstractAsyncContextManager[trio_infer.Response]:
        self.calls.append(("stream", method, path))
        return self.client.stream(method, path, **kwargs)


async def test_the_protocol_layers_run_over_any_requester(nursery: trio.Nursery) -> None:
    server = await start(nursery, FakeOpenAI(output_tokens=2))
    async with trio_infer.Client(server.url) as client:
        requester: Requester = Recording(client)
        api = trio_infer.OpenAIAPI(requester, prefix="/v1/")
        done = await api.completions(model="fake-model", prompt="x")
        async with api.stream_completions(model="fake-model", prompt="x") as stream:
            texts = [chunk.text async for chunk in stream]
    assert (done.text, texts) == ("tok0 tok1 ", ["tok0 ", "tok1 "])
    assert requester.calls == [  # type: ignore[attr-defined]
        ("request", "POST", "/v1/completions"),
        ("stream", "POST", "/v1/completions"),
    ]
