"""A fake OpenAI-compatible server: the handler :class:`FakeOpenAI`, for :func:`serve`.

Routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (both
with ``"stream": true`` too, honouring ``stream_options.include_usage``), ``POST
/v1/embeddings``. The completion is ``output_tokens`` tokens ``"tok0 "``, ``"tok1 "``, ...
(``max_tokens`` caps it: finish reason ``"length"``, else ``"stop"``); one token per stream
chunk, the first after ``ttft`` seconds, the next ones ``itl`` apart. Responses carry an
extra field (``"x_fake": {...}``), as real servers add their own, so clients can be checked
to keep unknown fields. The prompt counts one token per whitespace-separated word.

Choices: ``n`` choices per prompt (a completion's ``prompt`` may be a list: choice ``p * n +
j`` is prompt ``p``'s ``j``-th, as vLLM numbers them; choice 0 of prompt 0 says ``"tok0 "``...,
choice ``c`` says ``"tok0/c "``...). Streams interleave the choices one per chunk, as vLLM and
llama.cpp do (``choice_per_chunk=False``: every choice of a step in one chunk).

Switches that reproduce what real servers do (issue 11 saw each of them):

* ``split_characters``: every third token ends inside a UTF-8 character, so its chunk
  carries an empty delta and the next one the whole character (``"é "``), as vLLM and
  llama.cpp stream a byte-level tokenizer's partial characters; usage still counts both.
* ``coalesce=k``: a stream chunk carries k tokens, as a loaded vLLM merges the outputs its
  client has not read yet; ``return_token_ids: true`` in the request adds each chunk's
  ``token_ids``, as vLLM does.
* ``stream_usage=False``: streams ignore ``stream_options.include_usage`` (no usage chunk).
* ``end_pause``: seconds between ``data: [DONE]`` and the end of the body, which comes in a
  separate packet, as uvicorn sends the chunked terminator after the generator returns.
* ``cut_after``: the stream stops after that many tokens per choice and still sends
  ``data: [DONE]``, without a finish reason, then closes the connection without ending the
  chunked body (llama-cpp-python, when a new request arrives).
* ``style="llama.cpp"``: a chat opens with ``delta: {"role": "assistant"}`` (no content)
  and closes each choice with a chunk of its own that carries the finish reason and no token
  (``delta: {}``; a completion's ``text: ""``);
  ``"vllm"`` (the default) opens with ``{"role": "assistant", "content": ""}`` and puts the
  finish reason on the last token's chunk.
* embeddings honour ``encoding_format="base64"`` (float32 little-endian, as vLLM and OpenAI
  send it); ``per_token_embeddings`` answers a vector per word instead of one per input, as a
  pooling server's token embeddings do.

Fault injection: :meth:`FakeOpenAI.fail_next` answers the next calls with an error status and
an OpenAI error body; ``error_after`` sends an error event in the stream after that many
tokens; ``drop_done`` ends streams without ``data: [DONE]``.

Bad requests get OpenAI's error shape, ``{"error": {"message", "type":
"invalid_request_error", "param", "code"}}``: 400 for a body that is not a JSON object or a
field of the wrong type (``prompt``: a string or a list of strings and token lists;
``messages``: a list of objects whose ``content`` is a string, null or a list of parts;
``max_tokens`` / ``max_completion_tokens``: null or a whole number >= 1; ``stream``,
``stream_options.include_usage``: true, false or null; ``input``: a string or a list of
strings and token lists), 404 for an unknown path and 405 (with ``Allow``) for a known path
with the wrong method. A ``max_tokens`` above ``output_tokens`` is capped by it, so no request
makes the fake generate more than it was configured to.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any, Final, Literal

import trio

from ._server import Responder, ServerRequest
from ._validate import Rejected, describe, json_object, optional_bool, optional_object

__all__ = ["FakeOpenAI"]

#: the most choices a request may ask for (``n`` times the prompts)
MAX_CHOICES: Final = 64

#: path -> the one method it answers
_ROUTES = {
    "/v1/models": "GET",
    "/v1/completions": "POST",
    "/v1/chat/completions": "POST",
    "/v1/embeddings": "POST",
}


class FakeOpenAI:
    """Configurable fake; see the module docstring. Attributes may be changed between calls."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        output_tokens: int = 8,
        ttft: float = 0.0,
        itl: float = 0.0,
        usage: bool = True,
        error_after: int | None = None,
        drop_done: bool = False,
        dimensions: int = 4,
        choice_per_chunk: bool = True,
        split_characters: bool = False,
        stream_usage: bool = True,
        end_pause: float | None = None,
        cut_after: int | None = None,
        style: Literal["vllm", "llama.cpp"] = "vllm",
        per_token_embeddings: bool = False,
        coalesce: int = 1,
    ) -> None:
        for name, value, lowest in (
            ("output_tokens", output_tokens, 0),
            ("dimensions", dimensions, 1),
            ("coalesce", coalesce, 1),
            ("error_after", error_after, 0),
            ("cut_after", cut_after, 0),
        ):
            if value is not None and (type(value) is not int or value < lowest):
                raise ValueError(f"{name}={value!r}: expected a whole number >= {lowest}")
        for name, seconds in (("ttft", ttft), ("itl", itl), ("end_pause", end_pause)):
            if seconds is not None and (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not 0 <= seconds < math.inf
            ):
                raise ValueError(f"{name}={seconds!r}: expected seconds >= 0")
        if style not in ("vllm", "llama.cpp"):
            raise ValueError(f"style={style!r}: expected 'vllm' or 'llama.cpp'")
        self.model = model
        self.output_tokens = output_tokens
        self.ttft = ttft
        self.itl = itl
        self.usage = usage
        self.error_after = error_after
        self.drop_done = drop_done
        self.dimensions = dimensions
        self.choice_per_chunk = choice_per_chunk
        self.split_characters = split_characters
        self.stream_usage = stream_usage
        self.end_pause = end_pause
        self.cut_after = cut_after
        self.style = style
        self.per_token_embeddings = per_token_embeddings
        self.coalesce = coalesce
        self._failures: list[tuple[int, str]] = []
        self.calls = 0

    def fail_next(self, n: int = 1, *, status: int = 503, message: str = "overloaded") -> None:
        """Answer the next ``n`` calls with ``status`` and an OpenAI error body."""
        self._failures += [(status, message)] * n

    async def __call__(self, request: ServerRequest, respond: Responder) -> None:
        self.calls += 1
        if self._failures:
            status, message = self._failures.pop(0)
            await respond.send_json(
                {"error": {"message": message, "type": "server_error", "code": status}},
                status,
            )
            return
        try:
            await self._route(request, respond)
        except Rejected as rejected:
            error = {
                "message": rejected.message,
                "type": "invalid_request_error",
                "param": rejected.param,
                "code": None,
            }
            await respond.send_json({"error": error}, rejected.status, rejected.headers)

    async def _route(self, request: ServerRequest, respond: Responder) -> None:
        path = request.path.rstrip("/")
        method = _ROUTES.get(path)
        if method is None:
            raise Rejected(f"no route {request.method} {path}", 404)
        if request.method != method:
            raise Rejected(
                f"{path} answers {method}, not {request.method}", 405, headers=[("allow", method)]
            )
        if path == "/v1/models":
            await respond.send_json(
                {
                    "object": "list",
                    "data": [{"id": self.model, "object": "model", "owned_by": "fake"}],
                },
            )
            return
        body = json_object(request.body)
        if path == "/v1/embeddings":
            await self._embeddings(body, respond)
            return
        chat = path == "/v1/chat/completions"
        prompt_words = _message_words(body) if chat else _prompt_words(body)
        limit = _max_tokens(body, "max_tokens")
        fallback = _max_tokens(body, "max_completion_tokens")
        if limit is None:
            limit = fallback
        stream = optional_bool(body, "stream")
        include_usage = optional_bool(
            optional_object(body, "stream_options"), "include_usage", "stream_options."
        )
        tokens = self.output_tokens if limit is None else min(self.output_tokens, limit)
        finish = "length" if limit is not None and limit < self.output_tokens else "stop"
        n = _whole(body, "n", 1)
        choices = n * (1 if chat else _prompt_count(body))
        if choices > MAX_CHOICES:
            raise Rejected(
                f"n: {n} choices for each of {choices // n} prompts is more than this fake "
                f"serves ({MAX_CHOICES})",
                param="n",
            )
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": tokens * choices,
            "total_tokens": prompt_words + tokens * choices,
        }
        texts = [[self._piece(i, c) for i in range(tokens)] for c in range(choices)]
        if stream:
            usage_chunk = usage if self.usage and self.stream_usage and include_usage else None
            token_ids = optional_bool(body, "return_token_ids")
            await self._stream(respond, chat, texts, finish, usage_chunk, bool(token_ids))
            return
        answers = []
        for c, pieces in enumerate(texts):
            text = "".join(pieces)
            if chat:
                answers.append(
                    {
                        "index": c,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                )
            else:
                answers.append({"index": c, "text": text, "finish_reason": finish})
        await respond.send_json(
            {
                "id": f"cmpl-{self.calls}",
                "object": "chat.completion" if chat else "text_completion",
                "created": 0,
                "model": self.model,
                "choices": answers,
                "usage": usage if self.usage else None,
                "x_fake": {"call": self.calls},
            },
        )

    def _piece(self, i: int, choice: int) -> str:
        """Token ``i`` of a choice: with ``split_characters`` every third token is the first
        half of a two-byte character (no text yet), and the next one completes it."""
        if self.split_characters and i % 3 == 1:
            return ""
        if self.split_characters and i % 3 == 2:
            return "\u00e9 "
        return f"tok{i} " if choice == 0 else f"tok{i}/{choice} "

    async def _stream(
        self,
        respond: Responder,
        chat: bool,
        texts: list[list[str]],
        finish: str,
        usage: dict[str, int] | None,
        token_ids: bool,
    ) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        kind = "chat.completion.chunk" if chat else "text_completion"
        llama = self.style == "llama.cpp"

        def chunk(choices: list[Any], extra: dict[str, Any] | None = None) -> bytes:
            body = {
                "id": f"cmpl-{self.calls}",
                "object": kind,
                "created": 0,
                "model": self.model,
                "choices": choices,
                **(extra or {}),
            }
            return b"data: " + json.dumps(body).encode() + b"\n\n"

        async def send(choices: list[Any], extra: dict[str, Any] | None = None) -> None:
            if self.choice_per_chunk:
                for choice in choices:
                    await respond.send(chunk([choice], extra))
            else:
                await respond.send(chunk(choices, extra))

        if chat:
            opening = {"role": "assistant"} if llama else {"role": "assistant", "content": ""}
            await send(
                [{"index": c, "delta": opening, "finish_reason": None} for c in range(len(texts))]
            )
        tokens = len(texts[0]) if texts else 0
        steps = tokens if self.cut_after is None else min(tokens, self.cut_after)
        group = self.coalesce
        for i in range(0, steps, group):
            await trio.sleep(self.ttft if i == 0 else self.itl)
            if self.error_after is not None and i <= self.error_after < i + group:
                error = {
                    "error": {"message": "the engine failed", "type": "server_error", "code": 500}
                }
                await respond.send(b"data: " + json.dumps(error).encode() + b"\n\n")
                await respond.end()
                return
            # A cut stream never reaches its last token, so never carries a finish reason.
            ids = range(i, min(i + group, steps))
            last = ids[-1] == tokens - 1 and not llama
            step = []
            for c, pieces in enumerate(texts):
                piece = "".join(pieces[j] for j in ids)
                choice: dict[str, Any] = {"index": c, "finish_reason": finish if last else None}
                if last:
                    choice["stop_reason"] = None  # vLLM adds it to its last token's chunk
                choice.update({"delta": {"content": piece}} if chat else {"text": piece})
                if token_ids:
                    choice["token_ids"] = [1000 + j for j in ids]
                step.append(choice)
            await send(step, {"x_fake": {"token": i}})
        if llama and steps == tokens:
            # llama-cpp-python's closing chunk stands for no token (it stops before the
            # end-of-sequence token): an empty delta in a chat, empty text in a completion.
            closing: dict[str, Any] = {"delta": {}} if chat else {"text": ""}
            await send(
                [{"index": c, "finish_reason": finish, **closing} for c in range(len(texts))]
            )
        if usage is not None and steps == tokens:  # a cut stream sends no usage (llama.cpp)
            await respond.send(chunk([], {"usage": usage}))
        if not self.drop_done:
            await respond.send(b"data: [DONE]\n\n")
        if steps < tokens:
            # llama.cpp closes a cut stream's connection after [DONE], without ending the
            # chunked body (and despite its "connection: keep-alive").
            await respond.send_raw(b"")
            return
        if self.end_pause is not None:
            await trio.sleep(self.end_pause)
        await respond.end()

    async def _embeddings(self, body: dict[str, Any], respond: Responder) -> None:
        items = _inputs(body)
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise Rejected(
                f"encoding_format: must be 'float' or 'base64', got {describe(encoding)}",
                param="encoding_format",
            )
        data = []
        for i, text in enumerate(items):
            vector = [float(len(str(text)) + d) for d in range(self.dimensions)]
            embedding: Any
            if self.per_token_embeddings:
                words = max(1, len(str(text).split()))
                embedding = [[x + w for x in vector] for w in range(words)]
            elif encoding == "base64":
                packed = struct.pack(f"<{len(vector)}f", *vector)
                embedding = base64.b64encode(packed).decode("ascii")
            else:
                embedding = vector
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        words = sum(len(str(text).split()) for text in items)
        await respond.send_json(
            {
                "object": "list",
                "data": data,
                "model": self.model,
                "usage": {"prompt_tokens": words, "total_tokens": words},
            },
        )


def _whole(body: dict[str, Any], name: str, default: int) -> int:
    value = _max_tokens(body, name)
    return default if value is None else value


def _prompt_count(body: dict[str, Any]) -> int:
    """How many prompts a completion carries (a list of strings or token lists is several)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and not _is_tokens(prompt):
        return len(prompt)
    return 1


def _max_tokens(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 1:  # bool is an int, and not a count
        raise Rejected(
            f"{name}: must be null or a whole number >= 1, got {describe(value)}", param=name
        )
    return value


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and all(type(t) is int for t in value)


def _prompt_words(body: dict[str, Any]) -> int:
    """The prompt's size: a word per whitespace-separated word, a token per token id."""
    prompt = body.get("prompt")
    if prompt is None:
        return 0
    if isinstance(prompt, str):
        return len(prompt.split())
    if isinstance(prompt, list):
        if _is_tokens(prompt):
            return len(prompt)
        if all(isinstance(p, str) or _is_tokens(p) for p in prompt):
            return sum(len(p.split()) if isinstance(p, str) else len(p) for p in prompt)
    raise Rejected(
        "prompt: must be a string, a list of strings, or token ids (a list of whole numbers, "
        f"or a list of them), got {describe(prompt)}",
        param="prompt",
    )


def _message_words(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if messages is None:
        return 0
    if not isinstance(messages, list):
        raise Rejected(
            f"messages: must be a list of message objects, got {describe(messages)}",
            param="messages",
        )
    words = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise Rejected(f"{where}: must be an object, got {describe(message)}", param=where)
        role = message.get("role")
        if role is not None and not isinstance(role, str):
            raise Rejected(f"{where}.role: must be a string, got {describe(role)}", param=where)
        content = message.get("content")
        if content is None:
            continue
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for j, part in enumerate(content):
                text = part.get("text") if isinstance(part, dict) else None
                if not isinstance(part, dict) or not isinstance(text, str | None):
                    raise Rejected(
                        f"{where}.content[{j}]: must be a content part object with a string "
                        f"'text', got {describe(part)}",
                        param=f"{where}.content",
                    )
                words += len(text.split()) if text else 0
        else:
            raise Rejected(
                f"{where}.content: must be a string, null or a list of content parts, "
                f"got {describe(content)}",
                param=f"{where}.content",
            )
    return words


def _inputs(body: dict[str, Any]) -> list[Any]:
    inputs = body.get("input")
    if inputs is None:
        return []
    if isinstance(inputs, str) or (inputs and _is_tokens(inputs)):  # one input, not a list
        return [inputs]
    if not isinstance(inputs, list):
        raise Rejected(
            f"input: must be a string or a list of strings and token lists, got {describe(inputs)}",
            param="input",
        )
    for i, item in enumerate(inputs):
        if not (isinstance(item, str) or _is_tokens(item)):
            raise Rejected(
                f"input[{i}]: must be a string or a list of token ids, got {describe(item)}",
                param="input",
            )
    return inputs
