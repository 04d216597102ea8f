"""The OpenAI-compatible API (vLLM, SGLang, TGI, llama.cpp, OpenAI itself), with the timing
a benchmark needs: ``client.openai``.

Responses are decoded with msgspec (the fastest of json, orjson and msgspec on a typical
stream chunk here: 2.67, 0.59 and 0.51 us, ``benchmarks/micro.py``) into plain dicts, so fields this module does not
know are kept (``.raw``), and wrapped in frozen typed values for the fields it does.

Streaming (``stream_chat_completions`` / ``stream_completions``) asks for usage in the last
chunk (``stream_options.include_usage``) unless told not to. Every figure is kept per choice
(``n > 1`` and a list of prompts give several, and servers send one choice per chunk, in any
order), and the summary states the aggregate ones apart.

What counts as a token: a chunk whose choice carries the text field (``delta.content`` in a
chat, ``text`` in a completion), *empty strings included*: vLLM and llama.cpp send an empty
delta for a token that ends inside a UTF-8 character, and counting only chunks with text
undercounts (24 of 32 on vLLM). Not counted: chunks without the field, a chat's opening
chunk that announces the role with empty content, and a closing chunk with empty text and a
finish reason (llama-cpp-python's closes a choice without standing for a token), unless it
carries vLLM's ``stop_reason`` key (vLLM's last chunk is its last token's: one that ends
inside a character, or end-of-sequence). A loaded vLLM also coalesces tokens: one chunk then
stands for several, so a chunk count is a lower bound. Exact counts come from the server's
``usage`` (one total for all choices; asked for by default), or per choice from the
``token_ids`` vLLM adds to each chunk with ``return_token_ids=True``: usage wins, then token
ids, then chunks, and ``token_count_source`` names where each count came from.

Timing follows vLLM's benchmark definitions, measured from the moment the call got its permit
(waiting for one is the client's own queueing, and is reported apart as ``queued``, so a
saturated limiter cannot pass for a slow server): TTFT to a choice's first token chunk,
inter-token latencies between consecutive token chunks of the same choice, TPOT = (last -
first) / (completion tokens - 1), e2e to ``data: [DONE]``.

After ``data: [DONE]`` the stream reads the rest of the body (its end often comes in a later
packet: uvicorn sends the chunked terminator after the generator returns) for at most
``end_grace`` seconds, so the connection goes back to the pool instead of being closed.
"""

from __future__ import annotations

import base64
import itertools
import math
import struct
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs
import msgspec

from ._errors import ConfigError, Error, InvalidRequest, ResponseTooLarge, UsageError

if TYPE_CHECKING:
    from ._requester import Requester
    from ._response import Response
    from ._retry import Retry
    from ._timeouts import Timeouts

__all__ = [
    "ChoiceDelta",
    "ChoiceSummary",
    "Completion",
    "DEFAULT_END_GRACE",
    "ERROR_BODY_LIMIT",
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

#: The most bytes of a 4xx/5xx body a streaming call reads to build its :class:`OpenAIError`.
#: Error bodies are small JSON objects; a server that sends more (an HTML page, a stream sent
#: with an error status) gets an ``OpenAIError`` that says so, with the status, and the
#: connection is closed rather than read to the end.
ERROR_BODY_LIMIT: Final = 1024 * 1024

#: Seconds a stream waits, after ``data: [DONE]``, for the end of its body, so that its
#: connection can be reused. The end normally follows within a millisecond; a server that keeps
#: the body open past this costs the connection (closed as interrupted), never the answer.
DEFAULT_END_GRACE: Final = 0.5

#: finish reasons of a choice the server gave up on (vLLM: "abort" when the engine aborts
#: it, "error" for an internal error): the stream is not complete
_FAILED_FINISH: Final = frozenset({"abort", "error"})


class OpenAIError(Error):
    """The server answered with an error (a 4xx/5xx JSON error body, or an ``error`` event
    inside a stream), or an answer that is not what the API defines (a field of the wrong
    type: the message names the field and its value).

    Attributes:
        status: the HTTP status (for an in-stream error, the stream's, usually 200).
        message: the server's message, or what was wrong with the answer.
        type, code: the error's ``type`` and ``code`` fields when the server sent them.
        body: the decoded error body, event or answer, when it was JSON.
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
        kind = error.get("type")
        return OpenAIError(
            str(error.get("message") or fallback),
            status=status,
            type=kind if kind is None or isinstance(kind, str) else str(kind),
            code=error.get("code"),
            body=body,
        )
    if isinstance(error, str):
        return OpenAIError(error, status=status, body=body)
    if isinstance(body, dict) and "message" in body:  # some servers put it at the top
        kind = body.get("type")
        return OpenAIError(
            str(body["message"]),
            status=status,
            type=kind if kind is None or isinstance(kind, str) else str(kind),
            body=body,
        )
    return OpenAIError(fallback, status=status, body=body)


def _decode_or_none(data: bytes | str) -> Any:
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return None


# --- answers of the wrong shape -------------------------------------------------------------
# Servers are checked where a field is read, with exact type tests (msgspec decodes JSON
# objects to dict and arrays to list, so ``type(x) is dict`` is exact and cheap on the stream
# path). Fields this module does not read are not checked: they stay in ``.raw``.

_MISSING: Final = object()


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    text = repr(value)
    return f"{text[:200]}... ({len(text)} characters)" if len(text) > 200 else text


def _wrong(field: str, value: Any, expected: str, status: int, body: Any) -> OpenAIError:
    return OpenAIError(
        f"the server's answer does not follow the OpenAI API: {field} is {_shown(value)}, "
        f"expected {expected}",
        status=status,
        body=body,
    )


def _count(raw: dict[str, Any], name: str, status: int, body: Any) -> int | None:
    value = raw.get(name)
    if value is None or (type(value) is int and value >= 0):
        return value
    raise _wrong(f"usage.{name}", value, "a whole number >= 0 or null", status, body)


def _optional_str(raw: dict[str, Any], name: str, field: str, status: int, body: Any) -> Any:
    value = raw.get(name)
    if value is None or type(value) is str:
        return value
    raise _wrong(field, value, "a string or null", status, body)


def _index(raw: dict[str, Any], field: str, default: int, status: int, body: Any) -> int:
    value = raw.get("index", default)
    if type(value) is int and value >= 0:
        return value
    raise _wrong(field, value, "a whole number >= 0", status, body)


def _list(raw: dict[str, Any], name: str, status: int, body: Any) -> list[Any]:
    value = raw.get(name)
    if type(value) is list:
        return value
    if value is None:
        return []
    raise _wrong(name, value, "an array or null", status, body)


@attrs.frozen
class Usage:
    """Token counts as the server reported them."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    raw: Mapping[str, Any] = attrs.field(repr=False)

    @classmethod
    def from_raw(cls, raw: Any, *, status: int = 200, body: Any = None) -> Usage | None:
        """The ``usage`` object of an answer (``None`` for null); :class:`OpenAIError` if it is
        not an object of whole-number counts (``status`` and ``body`` go into the error)."""
        if raw is None:
            return None
        body = raw if body is None else body
        if type(raw) is not dict:
            raise _wrong("usage", raw, "an object or null", status, body)
        return cls(
            _count(raw, "prompt_tokens", status, body),
            _count(raw, "completion_tokens", status, body),
            _count(raw, "total_tokens", status, body),
            raw,
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
class ChoiceDelta:
    """What one chunk adds to one choice.

    Attributes:
        index: the choice (``n > 1`` and prompt lists give several).
        text: the text it adds (chat: ``delta.content``; completions: ``text``), maybe empty.
        finish_reason: set on the choice's last chunk.
        is_token: the chunk stands for generated tokens: it carried the text field (an
            empty string included: a token that ends inside a UTF-8 character), and is not a
            chat's role-only opening chunk nor an empty closing chunk with the finish reason
            (unless that carries vLLM's ``stop_reason`` key: vLLM's last token's chunk).
        token_ids: how many token ids the choice carried (vLLM sends them with
            ``return_token_ids=True``; a chunk may stand for several tokens when a loaded
            server coalesces them), None when the server sent none.
    """

    index: int
    text: str
    finish_reason: str | None
    is_token: bool
    token_ids: int | None = None


@attrs.frozen
class StreamChunk:
    """One streamed chunk that carried choices.

    Servers send one choice per chunk (vLLM, llama.cpp and OpenAI do, interleaving the choices
    of ``n > 1``); ``text``, ``index`` and ``finish_reason`` are that choice's. A chunk with
    several has them all in ``choices``.

    Attributes:
        text: the text it adds to its choice (chat: ``delta.content``; completions: ``text``).
        index: the choice it belongs to.
        finish_reason: set on a choice's last chunk.
        received_at: ``trio.current_time()`` when it arrived.
        raw: the whole decoded chunk, unknown fields included.
        choices: every choice the chunk carried, in its order.
    """

    text: str
    index: int
    finish_reason: str | None
    received_at: float
    raw: Mapping[str, Any] = attrs.field(repr=False)
    choices: tuple[ChoiceDelta, ...] = attrs.field(repr=False, default=())


#: where a token count came from: the server's ``usage``, the ``token_ids`` the chunks carried
#: (vLLM with ``return_token_ids=True``), or the count of token chunks
TokenCountSource = Literal["usage", "token_ids", "chunks"]


@attrs.frozen
class ChoiceSummary:
    """One choice of a finished stream, measured on its own.

    Attributes:
        index: the choice.
        text: its text, in order.
        completion_tokens: its tokens: the server's ``usage`` when the stream has this one
            choice and usage was sent (usage is one total for all choices), else the token
            ids its chunks carried when every token chunk carried them, else its token chunks.
        token_count_source: ``"usage"``, ``"token_ids"`` or ``"chunks"``: where
            ``completion_tokens`` came from.
        token_chunks: its chunks that carried the text field (see ``ChoiceDelta.is_token``).
        ttft: seconds from the permit to its first token chunk (None: none came).
        inter_token_latencies: seconds between its consecutive token chunks.
        tpot: (last token chunk - first) / (completion_tokens - 1); None below 2 tokens.
        finish_reason: its finish reason; None if the stream ended without one.
    """

    index: int
    text: str
    completion_tokens: int
    token_count_source: TokenCountSource
    token_chunks: int
    ttft: float | None
    inter_token_latencies: tuple[float, ...]
    tpot: float | None
    finish_reason: str | None


@attrs.frozen
class StreamSummary:
    """A finished stream, measured: per choice in ``choices``, and in aggregate.

    Attributes:
        text: choice 0's text (as ``Completion.text``); every choice's is in ``choices``.
        choices: one :class:`ChoiceSummary` per choice, by index.
        prompt_tokens: from the server's usage, if it sent any.
        completion_tokens: all choices together: the server's usage when sent, else the sum of
            the choices' counts (token ids when every choice has them, else token chunks).
        token_count_source: ``"usage"``, ``"token_ids"`` or ``"chunks"``: where
            ``completion_tokens`` came from.
        token_chunks: chunks that carried a choice's text field, all choices.
        chunks: chunks received that carried choices.
        queued: seconds the call waited for a permit before it could be sent (client-side).
        ttft: seconds from the permit to the first token chunk of any choice (None: none).
        inter_token_latencies: every choice's inter-token latencies, choice after choice (a
            gap is always between two tokens of one choice, never across choices).
        tpot: one choice: its TPOT; several: the mean of the choices' TPOTs (None if none
            has one).
        e2e: seconds from the permit to ``data: [DONE]``.
        finish_reason: choice 0's finish reason.
        usage: the server's usage, if sent.
        complete: every choice asked for arrived and ended with a finish reason other than
            ``"abort"`` or ``"error"`` (vLLM's, for a choice it gave up on). A stream that
            ends with ``data: [DONE]`` but not complete was cut short or failed by the server
            (llama.cpp cuts a running stream when a new request arrives).
        incomplete_reason: why it is not complete (None when it is).
    """

    text: str
    choices: tuple[ChoiceSummary, ...]
    prompt_tokens: int | None
    completion_tokens: int
    token_count_source: TokenCountSource
    token_chunks: int
    chunks: int
    queued: float
    ttft: float | None
    inter_token_latencies: tuple[float, ...]
    tpot: float | None
    e2e: float
    finish_reason: str | None
    usage: Usage | None
    complete: bool
    incomplete_reason: str | None


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


def _choice(
    choice: Any, chat: bool, key: str, field: str, status: int, body: Any
) -> tuple[int, str | None, str | None, str | None]:
    """A choice's (index, text, finish_reason, role), checked; ``text`` is None when the
    choice has no text field. ``key`` is where a chat choice keeps its message: ``"delta"``
    in a stream, ``"message"`` in a whole answer (the other is accepted too, as servers mix
    them up)."""
    if type(choice) is not dict:
        raise _wrong(field, choice, "an object", status, body)
    index = choice.get("index", 0)
    if type(index) is not int or index < 0:
        raise _wrong(f"{field}.index", index, "a whole number >= 0", status, body)
    finish = choice.get("finish_reason")
    if finish is not None and type(finish) is not str:
        raise _wrong(f"{field}.finish_reason", finish, "a string or null", status, body)
    if not chat:
        text = choice.get("text")
        if text is not None and type(text) is not str:
            raise _wrong(f"{field}.text", text, "a string or null", status, body)
        return index, text, finish, None
    message = choice.get(key)
    if message is None:
        key = "message" if key == "delta" else "delta"
        message = choice.get(key)
        if message is None:
            return index, None, finish, None
    if type(message) is not dict:
        raise _wrong(f"{field}.{key}", message, "an object or null", status, body)
    text = message.get("content")
    if text is not None and type(text) is not str:
        raise _wrong(f"{field}.{key}.content", text, "a string or null", status, body)
    role = message.get("role")
    if role is not None and type(role) is not str:
        raise _wrong(f"{field}.{key}.role", role, "a string or null", status, body)
    return index, text, finish, role


def _vector(value: Any, field: str, status: int, body: Any) -> tuple[float, ...]:
    if type(value) is list and value and type(value[0]) is list:
        raise OpenAIError(
            f"the server's answer does not follow the OpenAI API: {field} is an array of "
            f"{len(value)} arrays: per-token embeddings (one vector per token), where the "
            f"embeddings API has one vector per input; ask the server for pooled embeddings "
            f"(vLLM: a model served with --runner pooling --convert embed)",
            status=status,
            body=body,
        )
    if type(value) is list:
        # One C-level pass over the types: a Python loop per element is slow on long vectors.
        if not {float, int}.issuperset(map(type, value)):
            raise _wrong(field, value, "an array of numbers or a base64 string", status, body)
        return tuple(value)
    if type(value) is str:
        # encoding_format="base64": the vector as little-endian float32, base64-encoded.
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:  # binascii.Error, and non-ASCII text
            raw = b"?"  # not base64: reported below
        if len(raw) % 4 == 0:
            return struct.unpack(f"<{len(raw) // 4}f", raw)
    raise _wrong(field, value, "an array of numbers or a base64 string", status, body)


def _vectors(raw: dict[str, Any], inputs: int, status: int) -> tuple[tuple[float, ...], ...]:
    items = _list(raw, "data", status, raw)
    by_index: dict[int, tuple[float, ...]] = {}
    for i, item in enumerate(items):
        field = f"data[{i}]"
        if type(item) is not dict:
            raise _wrong(field, item, "an object", status, raw)
        index = _index(item, f"{field}.index", i, status, raw)
        if index in by_index:
            raise _wrong(
                f"{field}.index", index, "an index no other vector has (one per input)", status, raw
            )
        by_index[index] = _vector(
            item.get("embedding", _MISSING), f"{field}.embedding", status, raw
        )
    if len(by_index) != inputs or any(i not in by_index for i in range(inputs)):
        raise OpenAIError(
            f"the server's answer does not follow the OpenAI API: {len(by_index)} vectors with "
            f"the indices {_shown(sorted(by_index))} for {inputs} inputs, expected one per "
            f"input with the indices 0 to {inputs - 1}",
            status=status,
            body=raw,
        )
    return tuple(by_index[i] for i in range(inputs))


class _ChoiceState:
    """What a stream has received of one choice so far."""

    __slots__ = ("finish_reason", "ids", "texts", "times", "unnumbered")

    def __init__(self) -> None:
        self.texts: list[str] = []
        #: when each token chunk arrived
        self.times: list[float] = []
        self.finish_reason: str | None = None
        #: token ids the chunks carried, and token chunks that carried none
        self.ids = 0
        self.unnumbered = 0

    def count(self) -> tuple[int, TokenCountSource]:
        """Its tokens without usage: the token ids when every token chunk had them."""
        if self.ids and not self.unnumbered:
            return self.ids, "token_ids"
        return len(self.times), "chunks"


class TokenStream:
    """The chunks of a streaming (chat) completion, as they arrive (``async for``), and its
    :attr:`summary` once it has ended.

    A chunk that is not what the API defines (``choices`` not an array, a ``delta`` that is
    not an object, a count that is not a whole number...) raises :class:`OpenAIError` naming
    the field, with the chunk as ``body``; the chunks before it were delivered.
    """

    def __init__(
        self,
        response: Response,
        chat: bool,
        expected_choices: int | None = None,
        end_grace: float = DEFAULT_END_GRACE,
    ) -> None:
        self.response = response
        self._chat = chat
        self._status = response.status
        self._events = response.aiter_sse()
        self._choices: dict[int, _ChoiceState] = {}
        self._expected = expected_choices
        self._end_grace = end_grace
        self._chunks = 0
        self._usage: Usage | None = None
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
                await self.response.finish(within=self._end_grace)
                raise StopAsyncIteration
            body = _decode_or_none(data)
            if event.event == "error" or (type(body) is dict and "error" in body):
                raise _error_from(body, self._status, f"error event: {data[:200]}")
            if type(body) is not dict:
                raise OpenAIError(
                    f"a stream chunk is not a JSON object: {data[:200]!r}", status=self._status
                )
            usage = body.get("usage")
            if usage is not None:
                if type(usage) is not dict:
                    raise _wrong("usage", usage, "an object or null", self._status, body)
                if usage:
                    self._usage = Usage.from_raw(usage, status=self._status, body=body)
            choices = body.get("choices")
            if type(choices) is not list:
                if choices is None:
                    continue  # a usage-only chunk, or a keep-alive
                raise _wrong("choices", choices, "an array or null", self._status, body)
            if not choices:
                continue  # the usage-only chunk at the end
            self._chunks += 1
            at = event.received_at
            deltas = tuple(
                self._add(choice, f"choices[{i}]", at, body) for i, choice in enumerate(choices)
            )
            first = deltas[0]
            return StreamChunk(first.text, first.index, first.finish_reason, at, body, deltas)
        raise IncompleteStream("the stream ended without 'data: [DONE]'", status=self._status)

    def _add(self, choice: Any, field: str, at: float, body: Any) -> ChoiceDelta:
        index, text, finish, role = _choice(choice, self._chat, "delta", field, self._status, body)
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        # Empty text is a token (one that ends inside a UTF-8 character) except in a chat's
        # opening chunk, which announces the role before any token (TGI and Ollama repeat the
        # role later, in every delta), and in a closing chunk that carries the finish reason
        # alone: llama-cpp-python's stands for no token, while vLLM's is its last token's
        # (one that ends inside a character, or end-of-sequence), and only vLLM's carries
        # the ``stop_reason`` key.
        is_token = text is not None and (
            text != ""
            or (
                not (role is not None and not state.times)
                and (finish is None or "stop_reason" in choice)
            )
        )
        if not is_token and self._chat:
            # Reasoning and tool calls are generated tokens too (vLLM's reasoning parsers
            # stream them in their own delta fields, with no content).
            delta = choice.get("delta")
            is_token = type(delta) is dict and (
                delta.get("reasoning_content") is not None
                or delta.get("reasoning") is not None
                or bool(delta.get("tool_calls"))
            )
        ids = choice.get("token_ids")
        if ids is not None:
            if type(ids) is not list:
                raise _wrong(f"{field}.token_ids", ids, "an array or null", self._status, body)
            count: int | None = len(ids)
            # vLLM's closing chunk for an end-of-sequence token carries its id: a token.
            is_token = is_token or bool(ids)
        else:
            count = None
        if is_token:
            state.texts.append(text or "")
            state.times.append(at)
            if count is None:
                state.unnumbered += 1
            else:
                state.ids += count
        if finish is not None:
            state.finish_reason = finish
        return ChoiceDelta(index, text or "", finish, is_token, count)

    def _finish(self, end: float) -> None:
        timing = self.response.timing
        start = timing.permitted
        usage = self._usage
        usage_tokens = usage.completion_tokens if usage is not None else None
        single = len(self._choices) == 1
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            times = state.times
            tokens: int
            source: TokenCountSource
            if single and usage_tokens is not None:
                tokens, source = usage_tokens, "usage"
            else:
                tokens, source = state.count()
            choices.append(
                ChoiceSummary(
                    index=index,
                    text="".join(state.texts),
                    completion_tokens=tokens,
                    token_count_source=source,
                    token_chunks=len(times),
                    ttft=times[0] - start if times else None,
                    inter_token_latencies=tuple(b - a for a, b in itertools.pairwise(times)),
                    tpot=(times[-1] - times[0]) / (tokens - 1) if tokens > 1 and times else None,
                    finish_reason=state.finish_reason,
                )
            )
        token_chunks = sum(c.token_chunks for c in choices)
        counts = [state.count() for state in self._choices.values()]
        if usage_tokens is not None:
            tokens, source = usage_tokens, "usage"
        elif counts and all(src == "token_ids" for _, src in counts):
            tokens, source = sum(n for n, _ in counts), "token_ids"
        else:
            tokens, source = token_chunks, "chunks"
        firsts = [c.ttft for c in choices if c.ttft is not None]
        tpots = [c.tpot for c in choices if c.tpot is not None]
        first = self._choices.get(0)
        reason = self._incomplete_reason()
        self._summary = StreamSummary(
            text="".join(first.texts) if first is not None else "",
            choices=tuple(choices),
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=tokens,
            token_count_source=source,
            token_chunks=token_chunks,
            chunks=self._chunks,
            queued=timing.queued,
            ttft=min(firsts) if firsts else None,
            inter_token_latencies=tuple(
                itertools.chain.from_iterable(c.inter_token_latencies for c in choices)
            ),
            tpot=sum(tpots) / len(tpots) if tpots else None,
            e2e=end - start,
            finish_reason=first.finish_reason if first is not None else None,
            usage=usage,
            complete=reason is None,
            incomplete_reason=reason,
        )

    def _incomplete_reason(self) -> str | None:
        expected = self._expected
        got = self._choices
        if not got:
            return "the stream ended with 'data: [DONE]' but carried no choice"
        if expected is not None:
            # The first few missing indices, found in at most len(got) + 5 steps: n comes
            # from the caller and may be huge.
            missing = list(itertools.islice((i for i in range(expected) if i not in got), 5))
            if missing:
                arrived = sum(1 for i in got if i < expected)
                return (
                    f"no chunk came for {expected - arrived} of the {expected} choices asked "
                    f"for (indices 0 to {expected - 1}), e.g. choice(s) {_shown(missing)}"
                )
        unfinished = [i for i in sorted(got) if got[i].finish_reason is None]
        if unfinished:
            return (
                f"choice(s) {_shown(unfinished)} ended without a finish_reason: the server cut "
                f"the stream short (it still sent 'data: [DONE]')"
            )
        failed = [i for i in sorted(got) if got[i].finish_reason in _FAILED_FINISH]
        if failed:
            reasons = sorted({str(got[i].finish_reason) for i in failed})
            return (
                f"choice(s) {_shown(failed)} ended with finish_reason {_shown(reasons)}: the "
                f"server gave up on them"
            )
        return None

    @property
    def summary(self) -> StreamSummary:
        """The measured stream; available once iteration has ended."""
        if self._summary is None:
            raise UsageError("the summary is available once the stream has ended")
        return self._summary


# --- arguments ------------------------------------------------------------------------------


def _model(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"model={_shown(model)}: expected the model's name (a string)")
    return model


def _messages(messages: Any) -> list[Any]:
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidRequest(
            f"messages={_shown(messages)}: expected a list of messages, each a mapping such "
            f"as {{'role': 'user', 'content': 'hi'}}"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequest(
                f"messages[{i}]={_shown(message)}: expected a mapping such as "
                f"{{'role': 'user', 'content': 'hi'}}"
            )
    return list(messages)


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def _texts(name: str, value: Any) -> int:
    """Check a ``prompt`` / ``input``: a string, a list of strings, a list of token ids or
    a list of token-id lists. Returns how many inputs it holds."""
    if isinstance(value, str):
        return 1
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        if value and _is_tokens(value):
            return 1
        if value and all(isinstance(item, str) or (item and _is_tokens(item)) for item in value):
            return len(value)
    raise InvalidRequest(
        f"{name}={_shown(value)}: expected a string, a list of strings, a list of token ids "
        f"or a list of token-id lists (not empty)"
    )


def _whole_answer(method: str, params: Mapping[str, Any]) -> None:
    if params.get("stream"):
        raise InvalidRequest(
            f"stream={_shown(params['stream'])}: {method}() reads the whole answer; use "
            f"stream_{method}() to stream it"
        )


class OpenAIAPI:
    """OpenAI-compatible calls through a :class:`~trio_infer._requester.Requester` (a
    :class:`Client`): ``client.openai``.

    Paths are ``{prefix}/chat/completions`` etc. with ``prefix="/v1"``, joined to each
    endpoint's base URL, so endpoints are server roots (``http://host:8000``). Each call also
    takes ``headers=``, ``timeouts=`` and ``retry=`` for the HTTP request; every other keyword
    goes into the JSON body as given (``max_tokens``, ``temperature``, ``extra`` fields...).

    Arguments of the wrong type (``model=None``, ``messages=5``, ``stream=True`` on a call
    that reads a whole answer) raise :class:`InvalidRequest` before anything is sent; answers
    of the wrong shape raise :class:`OpenAIError` naming the field.
    """

    def __init__(self, requester: Requester, prefix: str = "/v1") -> None:
        if not isinstance(prefix, str):
            raise ConfigError(f"prefix={_shown(prefix)}: expected a path such as '/v1'")
        self._requester = requester
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
        _whole_answer("chat_completions", params)
        body = {"model": _model(model), "messages": _messages(messages), **params}
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
        _whole_answer("completions", params)
        _texts("prompt", prompt)
        body = {"model": _model(model), "prompt": prompt, **params}
        return await self._complete("/completions", body, False, headers, timeouts, retry)

    def stream_chat_completions(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        include_usage: bool = True,
        end_grace: float = DEFAULT_END_GRACE,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> AbstractAsyncContextManager[TokenStream]:
        """``async with client.openai.stream_chat_completions(...) as stream:`` then
        ``async for chunk in stream``; ``stream.summary`` after the loop. ``end_grace``:
        seconds to wait after ``data: [DONE]`` for the body's end, to reuse the connection."""
        body = {"model": _model(model), "messages": _messages(messages), **params}
        return self._stream(
            "/chat/completions", body, True, 1, include_usage, end_grace, headers, timeouts, retry
        )

    def stream_completions(
        self,
        *,
        model: str,
        prompt: str | Sequence[str] | Sequence[int],
        include_usage: bool = True,
        end_grace: float = DEFAULT_END_GRACE,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> AbstractAsyncContextManager[TokenStream]:
        """As :meth:`stream_chat_completions`; a list of prompts gives ``n`` choices per
        prompt (choice ``p * n + j`` is prompt ``p``'s ``j``-th, as vLLM numbers them)."""
        prompts = _texts("prompt", prompt)
        body = {"model": _model(model), "prompt": prompt, **params}
        return self._stream(
            "/completions", body, False, prompts, include_usage, end_grace, headers, timeouts, retry
        )

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
        """One vector per input, in input order (``encoding_format="base64"`` answers are
        decoded too); an answer without exactly one vector per input is an
        :class:`OpenAIError`."""
        inputs = _texts("input", input)
        body = {"model": _model(model), "input": input, **params}
        raw, response = await self._call("POST", "/embeddings", body, headers, timeouts, retry)
        status = response.status
        return Embeddings(
            vectors=_vectors(raw, inputs, status),
            model=_optional_str(raw, "model", "model", status, raw),
            usage=Usage.from_raw(raw.get("usage"), status=status, body=raw),
            raw=raw,
        )

    async def models(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
    ) -> list[Model]:
        raw, response = await self._call("GET", "/models", None, headers, timeouts, retry)
        status = response.status
        models = []
        for i, item in enumerate(_list(raw, "data", status, raw)):
            if type(item) is not dict:
                raise _wrong(f"data[{i}]", item, "an object", status, raw)
            model_id = item.get("id", _MISSING)
            if type(model_id) is not str:
                raise _wrong(f"data[{i}].id", model_id, "a string", status, raw)
            owned_by = _optional_str(item, "owned_by", f"data[{i}].owned_by", status, raw)
            models.append(Model(model_id, owned_by, item))
        return models

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
        response = await self._requester.request(
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
        status = response.status
        choices = []
        for i, choice in enumerate(_list(raw, "choices", status, raw)):
            index, text, finish, role = _choice(
                choice, chat, "message", f"choices[{i}]", status, raw
            )
            choices.append(Choice(index, text or "", finish, role, choice))
        return Completion(
            id=_optional_str(raw, "id", "id", status, raw),
            model=_optional_str(raw, "model", "model", status, raw),
            choices=tuple(choices),
            usage=Usage.from_raw(raw.get("usage"), status=status, body=raw),
            raw=raw,
            response=response,
        )

    def _stream(
        self,
        path: str,
        body: dict[str, Any],
        chat: bool,
        prompts: int,
        include_usage: bool,
        end_grace: float,
        headers: Mapping[str, str] | None,
        timeouts: Timeouts | None,
        retry: Retry | None,
    ) -> AbstractAsyncContextManager[TokenStream]:
        # Checked here, when the call is made, so a bad argument fails before any I/O.
        n = body.get("n")
        if n is None:
            n = 1
        elif type(n) is not int or n < 1:
            raise InvalidRequest(
                f"n={_shown(n)}: expected a whole number >= 1 (choices per prompt)"
            )
        try:
            grace = float(end_grace)
        except (TypeError, ValueError, OverflowError):
            grace = math.nan
        if (
            isinstance(end_grace, bool)
            or not isinstance(end_grace, int | float)
            or not (0 <= grace < math.inf)
        ):
            raise InvalidRequest(
                f"end_grace={_shown(end_grace)}: expected seconds >= 0 (0: do not wait for the "
                f"body's end after 'data: [DONE]')"
            )
        if body.get("stream", True) is not True:
            method = "chat_completions" if chat else "completions"
            raise InvalidRequest(
                f"stream={_shown(body['stream'])}: stream_{method}() always streams; use "
                f"{method}() for the whole answer"
            )
        if not isinstance(include_usage, bool):
            raise InvalidRequest(f"include_usage={_shown(include_usage)}: expected True or False")
        options = body.get("stream_options")
        if options is not None and not isinstance(options, Mapping):
            raise InvalidRequest(
                f"stream_options={_shown(options)}: expected a mapping such as "
                f"{{'include_usage': True}}"
            )
        body["stream"] = True
        if include_usage:
            options = dict(options or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
        return self._open_stream(path, body, chat, n * prompts, grace, headers, timeouts, retry)

    @asynccontextmanager
    async def _open_stream(
        self,
        path: str,
        body: dict[str, Any],
        chat: bool,
        expected_choices: int,
        end_grace: float,
        headers: Mapping[str, str] | None,
        timeouts: Timeouts | None,
        retry: Retry | None,
    ) -> AsyncIterator[TokenStream]:
        async with self._requester.stream(
            "POST",
            self.prefix + path,
            json=body,
            headers=headers,
            timeouts=timeouts,
            retry=retry,
        ) as response:
            if response.status >= 400:
                fallback = f"{response.status} {response.reason}"
                try:
                    content = await response.aread(max_bytes=ERROR_BODY_LIMIT)
                except ResponseTooLarge as exc:
                    raise OpenAIError(
                        f"{fallback}; the error body is larger than ERROR_BODY_LIMIT="
                        f"{ERROR_BODY_LIMIT} bytes, so it was not read (the connection was "
                        f"closed)",
                        status=response.status,
                    ) from exc
                raise _error_from(_decode_or_none(content), response.status, fallback)
            yield TokenStream(response, chat, expected_choices, end_grace)
