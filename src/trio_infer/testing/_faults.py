"""Scriptable server faults, for testing a client's (or a proxy's) reliability.

Each is a handler for :func:`trio_infer.testing.serve`. Faults that act on a connection (reset,
close) end it; the others answer normally apart from the fault. A refused connection needs no
server at all: :func:`refusing_port` gives a loopback port nothing listens on.

==========================  =========================================================
fault                       handler
==========================  =========================================================
accept, then close (FIN)    ``close_after(b"")``
reset mid-headers / body    ``abort_after(b"HTTP/1.1 200 OK\\r\\nContent-Le")`` etc.
reset mid-SSE-stream        ``sse_then_reset(events)``
drip bytes slowly           ``drip(body, gap=...)``
stall forever               ``stall``
503 storm                   ``storm(n, status=503, retry_after=None)``
malformed responses         ``abort_after(raw)`` / ``close_after(raw)`` with the bytes
oversized headers           ``reply(b"", headers=[("x-big", "x" * n)])``
==========================  =========================================================
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import trio

from ._server import Handler, Responder, ServerRequest, reply, sse_body

__all__ = ["close_after", "drip", "refusing_port", "sse_then_reset", "stall", "storm"]


def refusing_port() -> int:
    """A loopback port with no listener: connecting to it is refused at once. (Bound and
    released here, so another program could take it in between: a test should not care.)"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def close_after(raw: bytes) -> Handler:
    """Write ``raw`` (possibly nothing), then close the connection gracefully (FIN)."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.send_raw(raw)  # marks the connection to be closed after the handler

    return handler


def sse_then_reset(events: Sequence[str]) -> Handler:
    """Start an SSE stream, send ``events``, then reset the connection mid-stream."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(sse_body(events, done=False))
        await respond.abort()

    return handler


def drip(body: bytes, *, gap: float, chunk: int = 1) -> Handler:
    """Answer with ``body`` (content-length framed), ``chunk`` bytes every ``gap`` seconds."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, length=len(body))
        for i in range(0, len(body), chunk):
            await trio.sleep(gap)
            await respond.send(body[i : i + chunk])
        await respond.end()

    return handler


async def stall(request: ServerRequest, respond: Responder) -> None:
    """Never answer (until the client gives up or the server stops)."""
    await trio.sleep_forever()


class storm:
    """Answer the first ``n`` requests with ``status`` (and ``Retry-After`` if given), then
    behave as ``then`` (default: 200 with a small body). ``served`` counts the storm's answers.
    """

    def __init__(
        self,
        n: int,
        *,
        status: int = 503,
        retry_after: str | None = None,
        then: Handler | None = None,
    ) -> None:
        self.remaining = n
        self.served = 0
        headers = [("retry-after", retry_after)] if retry_after is not None else []
        self._storm = reply(b"overloaded", status=status, headers=headers)
        self._then = then or reply(b"ok")

    async def __call__(self, request: ServerRequest, respond: Responder) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            self.served += 1
            await self._storm(request, respond)
        else:
            await self._then(request, respond)
