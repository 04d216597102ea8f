"""Handlers shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import trio

from trio_infer.testing import Handler, Responder, ServerRequest, reply


def gated_reply(gate: trio.Event, body: bytes = b"ok") -> Handler:
    """A handler that answers only once ``gate`` is set (to hold exchanges in flight)."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await gate.wait()
        await reply(body)(request, respond)

    return handler


def half_body_then_hold(started: trio.Event) -> Handler:
    """Send half of a 10-byte body, set ``started``, then hold until the client disconnects."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, length=10)
        await respond.send(b"12345")
        started.set()
        await respond.wait_for_disconnect()

    return handler


async def stall(request: ServerRequest, respond: Responder) -> None:
    """A handler that never answers (the client's read timeout must fire)."""
    await trio.sleep_forever()


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every exception chained to it."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        pending += (item.__cause__, item.__context__)
