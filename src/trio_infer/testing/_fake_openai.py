"""A fake OpenAI-compatible server: the handler :class:`FakeOpenAI`, for :func:`serve`.

Routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (both
with ``"stream": true`` too, honouring ``stream_options.include_usage``), ``POST
/v1/embeddings``. The completion is ``output_tokens`` tokens ``"tok0 "``, ``"tok1 "``, ...
(``max_tokens`` caps it: finish reason ``"length"``, else ``"stop"``); one token per stream
chunk, the first after ``ttft`` seconds, the next ones ``itl`` apart. Responses carry an
extra field (``"x_fake": {...}``), as real servers add their own, so clients can be checked
to keep unknown fields. The prompt counts one token per whitespace-separated word.

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

import json
from typing import Any

import trio

from ._server import Responder, ServerRequest
from ._validate import Rejected, describe, json_object, optional_bool, optional_object

__all__ = ["FakeOpenAI"]

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
    ) -> None:
        self.model = model
        self.output_tokens = output_tokens
        self.ttft = ttft
        self.itl = itl
        self.usage = usage
        self.error_after = error_after
        self.drop_done = drop_done
        self.dimensions = dimensions
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
        n = self.output_tokens if limit is None else min(self.output_tokens, limit)
        finish = "length" if limit is not None and limit < self.output_tokens else "stop"
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": n,
            "total_tokens": prompt_words + n,
        }
        tokens = [f"tok{i} " for i in range(n)]
        if stream:
            usage_chunk = usage if self.usage and include_usage else None
            await self._stream(respond, chat, tokens, finish, usage_chunk)
            return
        text = "".join(tokens)
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish}
        await respond.send_json(
            {
                "id": f"cmpl-{self.calls}",
                "object": "chat.completion" if chat else "text_completion",
                "created": 0,
                "model": self.model,
                "choices": [choice],
                "usage": usage if self.usage else None,
                "x_fake": {"call": self.calls},
            },
        )

    async def _stream(
        self,
        respond: Responder,
        chat: bool,
        tokens: list[str],
        finish: str,
        usage: dict[str, int] | None,
    ) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        kind = "chat.completion.chunk" if chat else "text_completion"

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

        if chat:
            await respond.send(
                chunk(
                    [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ]
                )
            )
        for i, token in enumerate(tokens):
            await trio.sleep(self.ttft if i == 0 else self.itl)
            if self.error_after is not None and i == self.error_after:
                error = {
                    "error": {"message": "the engine failed", "type": "server_error", "code": 500}
                }
                await respond.send(b"data: " + json.dumps(error).encode() + b"\n\n")
                await respond.end()
                return
            last = i == len(tokens) - 1
            piece = {"content": token} if chat else None
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish if last else None}
            choice.update({"delta": piece} if chat else {"text": token})
            await respond.send(chunk([choice], {"x_fake": {"token": i}}))
        if usage is not None:
            await respond.send(chunk([], {"usage": usage}))
        if not self.drop_done:
            await respond.send(b"data: [DONE]\n\n")
        await respond.end()

    async def _embeddings(self, body: dict[str, Any], respond: Responder) -> None:
        items = _inputs(body)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [float(len(str(text)) + d) for d in range(self.dimensions)],
            }
            for i, text in enumerate(items)
        ]
        words = sum(len(str(text).split()) for text in items)
        await respond.send_json(
            {
                "object": "list",
                "data": data,
                "model": self.model,
                "usage": {"prompt_tokens": words, "total_tokens": words},
            },
        )


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
