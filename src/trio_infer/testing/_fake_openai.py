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
"""

from __future__ import annotations

import json
from typing import Any

import trio

from ._server import Responder, ServerRequest

__all__ = ["FakeOpenAI"]


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
        path = request.path.rstrip("/")
        if request.method == "GET" and path == "/v1/models":
            await respond.send_json(
                {
                    "object": "list",
                    "data": [{"id": self.model, "object": "model", "owned_by": "fake"}],
                },
            )
            return
        if request.method != "POST" or path not in (
            "/v1/completions",
            "/v1/chat/completions",
            "/v1/embeddings",
        ):
            await respond.send_json(
                {"error": {"message": f"no route {request.method} {path}"}}, 404
            )
            return
        try:
            body = request.json()
        except ValueError:
            await respond.send_json({"error": {"message": "the body is not JSON"}}, 400)
            return
        if path == "/v1/embeddings":
            await self._embeddings(body, respond)
            return
        chat = path == "/v1/chat/completions"
        if chat:
            prompt_words = sum(
                len(str(m.get("content", "")).split()) for m in body.get("messages", [])
            )
        else:
            prompt_words = len(str(body.get("prompt", "")).split())
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        n = self.output_tokens if limit is None else min(self.output_tokens, int(limit))
        finish = "length" if limit is not None and int(limit) < self.output_tokens else "stop"
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": n,
            "total_tokens": prompt_words + n,
        }
        tokens = [f"tok{i} " for i in range(n)]
        if body.get("stream"):
            include_usage = self.usage and bool(
                (body.get("stream_options") or {}).get("include_usage")
            )
            await self._stream(respond, chat, tokens, finish, usage if include_usage else None)
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
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
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
