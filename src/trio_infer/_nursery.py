"""A nursery for the background tasks of an ``async with`` object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["open_background_nursery"]


@asynccontextmanager
async def open_background_nursery() -> AsyncIterator[trio.Nursery]:
    """Yield a nursery whose tasks are cancelled and awaited when the block exits.

    Unlike a plain ``trio.open_nursery()``, the body's own exception is not handed to the
    nursery, so it reaches the caller as raised (a ``ValueError`` stays a ``ValueError``, not
    an ``ExceptionGroup`` around one). A background task that crashes still cancels the body
    and its error is raised from the exit.
    """
    manager = trio.open_nursery()
    nursery = await manager.__aenter__()
    try:
        yield nursery
    finally:
        nursery.cancel_scope.cancel()
        await manager.__aexit__(None, None, None)
