"""The OpenAI-compatible API (vLLM, SGLang, TGI, llama.cpp, OpenAI itself), with the timing
a benchmark needs: ``client.openai``.

Responses are decoded with msgspec (the fastest of json, orjson and msgspec on a typical
stream chunk here: 2.67, 0.59 and 0.51 us, ``benchmarks/micro.py``) into plain dicts, so fields this module does not
know are kept (``.raw``), and wrapped in frozen typed values for the fields it does.

Streaming (``stream_chat_completions`` / ``stream_completions``) asks for usage in the last
chunk (``stream_options.include_usage``) unless told not to. The summary's token count comes
from that usage when the server sends it, else from the number of chunks that carried text,
and ``token_count_source`` says which. Timing follows vLLM's benchmark definitions, measured
from the moment the call got its permit (waiting for one is the client's own queueing, and is
reported apart as ``queued``, so a saturated limiter cannot pass for a slow server): TTFT to
the first chunk with text, inter-token latencies between consecutive chunks with text,
TPOT = (last - first) / (completion tokens - 1), e2e to ``data: [DONE]``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import attrs
import msgspec

from ._errors import Error

if TYPE_CHECKING:
    from ._client import Client
    from ._response import Response
    from ._retry import Retry
    from ._timeouts import Timeouts

__all__ = [
    "Completion",
    "Embeddings",
    "IncompleteStream",
    "Model",
    "OpenAIAPI",
    "OpenAIError",
    "StreamChunk",
    "StreamSummary",
    "TokenStream",
    "Usage",
]

_decode = msgspec.json.Decoder().decode


class OpenAIError(Error):
    """The server answered with an error: a 4xx/5xx JSON error body, or an ``error`` event
    inside a stream.

    Attributes:
        status: the HTTP status (for an in-stream error, the stream's, usually 200).
        message: the server's message.
        type, code: the error's ``type`` and ``code`` fields when the server sent them.
        body: the decoded error body or event, when it was JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        code: Any = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{message} (status {status})")
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.body = body


class IncompleteStream(OpenAIError):
    """A stream ended without its ``data: [DONE]`` terminator: the answer may be cut short."""


def _error_from(body: Any, status: int, fallback: str) -> OpenAIError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return OpenAIError(
            str(error.get("message") or fallback),
            status=status,
            type=error.get("type"),
            code=error.get("code"),
            body=body,
        )
    if isinstance(error, str):
        return OpenAIError(error, status=status, body=body)
    if isinstance(body, dict) and "message" in body:  # some servers put it at the top
        return OpenAIError(str(body["message"]), status=status, type=body.get("type"), body=body)
    return OpenAIError(fallback, status=status, body=body)


def _decode_or_none(data: bytes | str) -> Any:
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return None


@attrs.frozen
class Usage:
    """Token counts as the server reported them."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    raw: Mapping[str, Any] = attrs.field(repr=False)

    @classmethod
    def from_raw(cls, raw: Any) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        return cls(
            raw.get("prompt_tokens"), raw.get("completion_tokens"), raw.get("total_tokens"), raw
        )


@attrs.frozen
class Choice:
    """One choice: ``text`` is the completion's text or the chat message's content."""

    index: int
    text: str
    finish_reason: str | None
    role: str | None
    raw: Mapping[str, Any] = attrs.field(repr=False)


@attrs.frozen
class Completion:
    """A non-streaming completion or chat completion.

    Attributes:
        text: the first choice's text (``""`` when there is none).
        response: the HTTP response it came in (status, headers, timing).
    """

    id: str | None
    model: str | None
    choices: tuple[Choice, ...]
    usage: Usage | None
    raw: Mapping[str, Any] = attrs.field(repr=False)
    response: Response = attrs.field(repr=False, eq=False)

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


@attrs.frozen
class StreamChunk:
    """One streamed chunk that carried choices.

    Attributes:
        text: the text it adds (chat: ``delta.content``; completions: ``text``), first choice.
        index: the choice it belongs to.
        finish_reason: set on a choice's last chunk.
        received_at: ``trio.current_time()`` when it arrived.
        raw: the whole decoded chunk, unknown fields included.
    """

    text: str
    index: int
    finish_reason: str | None
    received_at: float
    raw: Mapping[str, Any] = attrs.field(repr=False)


@attrs.frozen
class StreamSummary:
    """A finished stream, measured.

    Attributes:
        text: all chunks' text, in order.
        prompt_tokens: from the server's usage, if it sent any.
        completion_tokens: from usage, else the number of chunks that carried text.
        token_count_source: ``"usage"`` or ``"chunks"``: where ``completion_tokens`` came from.
        chunks: chunks received that carried choices.
        queued: seconds the call waited for a permit before it could be sent (client-side).
        ttft: seconds from the permit to the first chunk with text (None: no text).
        inter_token_latencies: seconds between consecutive chunks with text.
        tpot: (last text chunk - first) / (completion_tokens - 1); None below 2 tokens.
        e2e: seconds from the permit to the end of the stream.
        finish_reason: the first choice's finish reason.
        usage: the server's usage, if sent.
    """

    text: str
    prompt_tokens: int | None
    completion_tokens: int
    token_count_source: Literal["usage", "chunks"]
    chunks: int
    queued: float
    ttft: float | None
    inter_token_latencies: tuple[float, ...]
    tpot: float | None
    e2e: float
    finish_reason: str | None
    usage: Usage | None


@attrs.frozen
class Embeddings:
    """An embeddings response: one vector per input, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    model: str | None
    usage: Usage | None
    raw: Mapping[str, Any] = attrs.field(repr=False)


@attrs.frozen
class Model:
    id: str
    owned_by: str | None
    raw: Mapping[str, Any] = attrs.field(repr=False)


def _choice_text(choice: Mapping[str, Any], chat: bool) -> tuple[str, str | None]:
    if chat:
        message = choice.get("message") or choice.get("delta") or {}
        return message.get("content") or "", message.get("role")
    return choice.get("text") or "", None


class TokenStream:
    """The chunks of a streaming (chat) completion, as they arrive (``async for``), and its
    :attr:`summary` once it has ended."""

    def __init__(self, response: Response, chat: bool) -> None:
        self.response = response
        self._chat = chat
        self._events = response.aiter_sse()
        self._texts: list[str] = []
        self._text_times: list[float] = []
        self._chunks = 0
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._summary: StreamSummary | None = None

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> StreamChunk:
        if self._summary is not None:
            raise StopAsyncIteration
        async for event in self._events:
            data = event.data
            if data == "[DONE]":
                self._finish(event.received_at)
                raise StopAsyncIteration
            body = _decode_or_none(data)
            if event.event == "error" or (isinstance(body, dict) and "error" in body):
                raise _error_from(body, self.response.status, f"error event: {data[:200]}")
            if not isinstance(body, dict):
                raise OpenAIError(
                    f"a stream chunk is not a JSON object: {data[:200]!r}",
                    status=self.response.status,
                )
            usage = body.get("usage")
            if usage:
                self._usage = Usage.from_raw(usage)
            choices = body.get("choices")
            if not choices:
                continue  # the usage-only chunk at the end, or a keep-alive
            choice = choices[0]
            text, _role = _choice_text(choice, self._chat)
            finish = choice.get("finish_reason")
            if finish is not None and choice.get("index", 0) == 0:
                self._finish_reason = finish
            self._chunks += 1
            if text:
                self._texts.append(text)
                self._text_times.append(event.received_at)
            return StreamChunk(text, choice.get("index", 0), finish, event.received_at, body)
        raise IncompleteStream(
            "the stream ended without 'data: [DONE]'", status=self.response.status
        )

    def _finish(self, end: float) -> None:
        timing = self.response.timing
        start = timing.permitted
        times = self._text_times
        usage = self._usage
        if usage is not None and usage.completion_tokens is not None:
            tokens, source = usage.completion_tokens, "usage"
        else:
            tokens, source = len(times), "chunks"
        self._summary = StreamSummary(
            text="".join(self._texts),
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=tokens,
            token_count_source=source,  # type: ignore[arg-type]
            chunks=self._chunks,
            queued=timing.queued,
            ttft=times[0] - start if times else None,
            inter_token_latencies=tuple(b - a for a, b in itertools.pairwise(times)),
            tpot=(times[-1] - times[0]) / (tokens - 1) if tokens > 1 and times else None,
            e2e=end - start,
            finish_reason=self._finish_reason,
            usage=usage,
        )

    @property
    def summary(self) -> StreamSummary:
        """The measured stream; available once iteration has ended."""
        if self._summary is None:
            raise RuntimeError("the summary is available once the stream has ended")
        return self._summary


class OpenAIAPI:
    """OpenAI-compatible calls through a :class:`Client`: ``client.openai``.

    Paths are ``{prefix}/chat/completions`` etc. with ``prefix="/v1"``, joined to each
    endpoint's base URL, so endpoints are server roots (``http://host:8000``). Each call also
    takes ``headers=``, ``timeouts=`` and ``retry=`` for the HTTP request; every other keyword
    goes into the JSON body as given (``max_tokens``, ``temperature``, ``extra`` fields...).
    """

    def __init__(self, client: Client, prefix: str = "/v1") -> None:
        self._client = client
        self.prefix = prefix.rstrip("/")

    async def chat_completions(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> Completion:
        body = {"model": model, "messages": list(messages), **params}
        return await self._complete("/chat/completions", body, True, headers, timeouts, retry)

    async def completions(
        self,
        *,
        model: str,
        prompt: str | Sequence[str] | Sequence[int],
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> Completion:
        body = {"model": model, "prompt": prompt, **params}
        return await self._complete("/completions", body, False, headers, timeouts, retry)

    def stream_chat_completions(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        include_usage: bool = True,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> AbstractAsyncContextManager[TokenStream]:
        """``async with client.openai.stream_chat_completions(...) as stream:`` then
        ``async for chunk in stream``; ``stream.summary`` after the loop."""
        body = {"model": model, "messages": list(messages), **params}
        return self._stream(
            "/chat/completions", body, True, include_usage, headers, timeouts, retry
        )

    def stream_completions(
        self,
        *,
        model: str,
        prompt: str | Sequence[str] | Sequence[int],
        include_usage: bool = True,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> AbstractAsyncContextManager[TokenStream]:
        body = {"model": model, "prompt": prompt, **params}
        return self._stream("/completions", body, False, include_usage, headers, timeouts, retry)

    async def embeddings(
        self,
        *,
        model: str,
        input: str | Sequence[str],
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> Embeddings:
        body = {"model": model, "input": input, **params}
        raw, _response = await self._call("POST", "/embeddings", body, headers, timeouts, retry)
        items = sorted(raw.get("data") or [], key=lambda item: item.get("index", 0))
        return Embeddings(
            vectors=tuple(tuple(item.get("embedding") or ()) for item in items),
            model=raw.get("model"),
            usage=Usage.from_raw(raw.get("usage")),
            raw=raw,
        )

    async def models(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
    ) -> list[Model]:
        raw, _response = await self._call("GET", "/models", None, headers, timeouts, retry)
        return [Model(str(m.get("id")), m.get("owned_by"), m) for m in raw.get("data") or []]

    # --- plumbing --------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        headers: Mapping[str, str] | None,
        timeouts: Timeouts | None,
        retry: Retry | None,
    ) -> tuple[dict[str, Any], Response]:
        response = await self._client.request(
            method,
            self.prefix + path,
            json=body,
            headers=headers,
            timeouts=timeouts,
            retry=retry,
        )
        raw = _decode_or_none(response.content)
        if response.status >= 400:
            raise _error_from(raw, response.status, f"{response.status} {response.reason}")
        if not isinstance(raw, dict):
            raise OpenAIError(
                f"the response is not a JSON object: {response.content[:200]!r}",
                status=response.status,
            )
        return raw, response

    async def _complete(
        self,
        path: str,
        body: dict[str, Any],
        chat: bool,
        headers: Mapping[str, str] | None,
        timeouts: Timeouts | None,
        retry: Retry | None,
    ) -> Completion:
        raw, response = await self._call("POST", path, body, headers, timeouts, retry)
        choices = []
        for choice in raw.get("choices") or []:
            text, role = _choice_text(choice, chat)
            choices.append(
                Choice(choice.get("index", 0), text, choice.get("finish_reason"), role, choice)
            )
        return Completion(
            id=raw.get("id"),
            model=raw.get("model"),
            choices=tuple(choices),
            usage=Usage.from_raw(raw.get("usage")),
            raw=raw,
            response=response,
        )

    @asynccontextmanager
    async def _stream(
        self,
        path: str,
        body: dict[str, Any],
        chat: bool,
        include_usage: bool,
        headers: Mapping[str, str] | None,
        timeouts: Timeouts | None,
        retry: Retry | None,
    ) -> AsyncIterator[TokenStream]:
        body["stream"] = True
        if include_usage:
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
        async with self._client.stream(
            "POST",
            self.prefix + path,
            json=body,
            headers=headers,
            timeouts=timeouts,
            retry=retry,
        ) as response:
            if response.status >= 400:
                content = await response.aread()
                raise _error_from(
                    _decode_or_none(content),
                    response.status,
                    f"{response.status} {response.reason}",
                )
            yield TokenStream(response, chat)
