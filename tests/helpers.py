"""Handlers shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import trio
from hypothesis import strategies as st

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


#: hypothesis strategies for one element of each KServe datatype
TENSOR_VALUES = {
    "BOOL": st.booleans(),
    "INT8": st.integers(-(2**7), 2**7 - 1),
    "INT16": st.integers(-(2**15), 2**15 - 1),
    "INT32": st.integers(-(2**31), 2**31 - 1),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "UINT8": st.integers(0, 2**8 - 1),
    "UINT16": st.integers(0, 2**16 - 1),
    "UINT32": st.integers(0, 2**32 - 1),
    "UINT64": st.integers(0, 2**64 - 1),
    # NaN is left out where values are compared through Python floats (nan != nan); the raw
    # round trip below covers every bit pattern, NaNs included.
    "FP16": st.floats(width=16, allow_nan=False),
    "FP32": st.floats(width=32, allow_nan=False),
    "FP64": st.floats(allow_nan=False),
    "BYTES": st.binary(max_size=12),
}


def is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
