"""Checks against a real OpenAI-compatible server (vLLM, llama.cpp...): opt-in with
``--inference-url URL`` (and ``--embeddings-url``), e.g. ``python -m pytest tests/integration
--inference-url http://127.0.0.1:8100``; ``tests/integration/servers/`` sets servers up.

Each check is one row of docs/compatibility.md. Generation is random on a tiny model, so the
checks compare the client with the server's own figures (usage, finish reasons) and with the
official ``openai`` package, never with fixed text.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

import trio_infer
from trio_infer import StreamSummary

pytestmark = pytest.mark.real_server("--inference-url")

MESSAGES = [{"role": "user", "content": "Tell me a story about a caf\u00e9 in M\u00fcnchen."}]


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("inference_url"))


@pytest.fixture
async def model(request: pytest.FixtureRequest, url: str) -> str:
    given = request.config.getoption("inference_model")
    if given:
        return str(given)
    async with trio_infer.Client(url) as client:
        return (await client.openai.models())[0].id


def client(url: str, **options: Any) -> trio_infer.Client:
    return trio_infer.Client(url, timeouts=trio_infer.Timeouts(connect=10, read=120), **options)


async def stream_summary(
    api: trio_infer.OpenAIAPI, chat: bool, model: str, **params: Any
) -> tuple[StreamSummary, list[trio_infer.StreamChunk]]:
    call = (
        api.stream_chat_completions(model=model, messages=MESSAGES, **params)
        if chat
        else api.stream_completions(model=model, prompt="Once upon a time", **params)
    )
    async with call as stream:
        chunks = [chunk async for chunk in stream]
    return stream.summary, chunks


def server_finish_reasons(chunks: list[trio_infer.StreamChunk]) -> dict[int, str | None]:
    """Each choice's finish reason, read from the raw chunks, not through the summary."""
    reasons: dict[int, str | None] = {}
    for chunk in chunks:
        for choice in chunk.raw["choices"]:
            index = choice.get("index", 0)
            reasons[index] = choice.get("finish_reason") or reasons.get(index)
    return reasons


def allowed_counts(usage_tokens: int, chunks: list[trio_infer.StreamChunk]) -> set[int]:
    """Token chunks the summary may count for one choice with this usage: all of them; one
    less too when the stream ends with an empty closing chunk, which is not counted and
    stands for a token on vLLM (its end-of-sequence token) but not on llama.cpp
    (docs/openai.md)."""
    last = chunks[-1].choices[-1] if chunks else None
    closing = last is not None and last.finish_reason is not None and not last.text
    return {usage_tokens, usage_tokens - 1} if closing else {usage_tokens}


@pytest.mark.parametrize("chat", [True, False])
async def test_n_2_choices_are_kept_apart(url: str, model: str, chat: bool) -> None:
    async with client(url) as c:
        summary, chunks = await stream_summary(
            c.openai, chat, model, n=2, max_tokens=24, temperature=1.0, seed=7
        )
    assert [choice.index for choice in summary.choices] == [0, 1]
    for choice in summary.choices:
        text = "".join(d.text for ch in chunks for d in ch.choices if d.index == choice.index)
        assert choice.text == text
    assert summary.text == summary.choices[0].text
    reasons = server_finish_reasons(chunks)
    assert [c.finish_reason for c in summary.choices] == [reasons[0], reasons[1]]
    assert summary.complete == all(reasons.values())
    if summary.usage is not None:
        assert summary.completion_tokens == summary.usage.completion_tokens
        assert summary.token_count_source == "usage"


@pytest.mark.parametrize("chat", [True, False])
async def test_token_chunks_match_usage(url: str, model: str, chat: bool) -> None:
    """32 concurrent 64-token streams: the chunk count agrees with the server's usage."""
    results: list[tuple[StreamSummary, list[trio_infer.StreamChunk]]] = []
    async with client(url) as c:

        async def one(seed: int) -> None:
            results.append(
                await stream_summary(
                    c.openai, chat, model, max_tokens=64, temperature=1.0, seed=seed
                )
            )

        async with trio.open_nursery() as nursery:
            for seed in range(32):
                nursery.start_soon(one, seed)
    wrong = []
    for summary, chunks in results:
        if summary.usage is None or summary.usage.completion_tokens is None:
            pytest.skip("the server sent no usage to compare with")
        if summary.token_chunks not in allowed_counts(summary.usage.completion_tokens, chunks):
            wrong.append((summary.token_chunks, summary.usage.completion_tokens))
    assert wrong == []


async def test_streams_reuse_their_connection(url: str, model: str) -> None:
    async with client(url) as c:
        for _ in range(50):
            await stream_summary(c.openai, True, model, max_tokens=4)
        stats = c.stats()
    assert (stats.opened, stats.reused) == (1, 49)


async def test_a_concurrent_request_never_passes_a_cut_stream_as_complete(
    url: str, model: str
) -> None:
    """llama.cpp cuts a running stream when a new request arrives; whatever the server does,
    the summary's completeness must match the finish reasons it actually sent."""
    results: list[tuple[StreamSummary, list[trio_infer.StreamChunk]]] = []
    async with client(url) as c:

        async def one() -> None:
            results.append(await stream_summary(c.openai, True, model, max_tokens=48))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
    for summary, chunks in results:
        reasons = server_finish_reasons(chunks)
        assert summary.complete == (bool(reasons) and all(reasons.values()))
        if not summary.complete:
            assert summary.incomplete_reason


async def test_the_openai_package_agrees(url: str, model: str) -> None:
    openai = pytest.importorskip("openai")

    def official() -> tuple[str, int | None]:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        try:
            done = sdk.chat.completions.create(
                model=model, messages=MESSAGES, max_tokens=16, temperature=0, seed=1
            )
            return done.choices[0].message.content or "", done.usage.completion_tokens
        finally:
            sdk.close()

    theirs = await trio.to_thread.run_sync(official)
    async with client(url) as c:
        ours = await c.openai.chat_completions(
            model=model, messages=MESSAGES, max_tokens=16, temperature=0, seed=1
        )
        summary, _ = await stream_summary(
            c.openai, True, model, max_tokens=16, temperature=0, seed=1
        )
    assert ours.usage is not None
    assert (ours.text, ours.usage.completion_tokens) == theirs
    assert summary.text == ours.text  # greedy: the stream says the same


@pytest.mark.real_server("--embeddings-url")
async def test_embeddings_float_and_base64_agree(request: pytest.FixtureRequest) -> None:
    url = str(request.config.getoption("embeddings_url"))
    async with client(url) as c:
        name = (await c.openai.models())[0].id
        floats = await c.openai.embeddings(model=name, input=["a caf\u00e9", "b"])
        packed = await c.openai.embeddings(
            model=name, input=["a caf\u00e9", "b"], encoding_format="base64"
        )
    assert isinstance(packed.raw["data"][0]["embedding"], str)
    assert len(floats.vectors) == 2
    for a, b in zip(floats.vectors, packed.vectors, strict=True):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-6)
