"""A minimal ASGI app for ``uvicorn --workers`` runs: it names the worker process that
answered in ``x-worker-id`` (its pid) and answers the lifespan protocol.

``POST .../chat/completions`` streams a four-token chat as vLLM does (an OpenAI server on
uvicorn, like llama.cpp's and FastAPI apps): one body message per event, then, after
``STREAM_END_PAUSE`` (the work a server does after its last event: vLLM frees the request),
an empty last message, which uvicorn sends as the chunked terminator in a packet of its own."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BODY = b'{"ok": true}'
#: seconds between a stream's ``data: [DONE]`` and the end of its body
STREAM_END_PAUSE = 0.02


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"].endswith("/chat/completions"):
        await _stream_chat(send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
                (b"x-worker-id", str(os.getpid()).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


async def _stream_chat(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    deltas = [{"role": "assistant", "content": ""}] + [{"content": f"t{i} "} for i in range(4)]
    for i, delta in enumerate(deltas):
        finish = "stop" if i == len(deltas) - 1 else None
        chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
    await asyncio.sleep(STREAM_END_PAUSE)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
