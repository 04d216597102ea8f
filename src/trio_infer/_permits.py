"""Permits: one borrowed token of the fan-out limiter per network exchange.

Rules:

1. A permit is taken with :meth:`Permit.try_acquire` or :meth:`Permit.acquire`, on behalf of the ``Permit`` object, not of
   the task, so whichever task finishes the exchange can give it back: the caller's task for
   ``request()``, or another task that closes a streaming response.
2. Taking is FIFO (``trio.CapacityLimiter`` wakes waiters in arrival order). A caller cancelled
   while waiting holds nothing afterwards: trio removes it from the queue before ``Cancelled``
   is delivered, and a waiter that was already handed the token is rescheduled with it and
   cannot be cancelled out of it.
3. Between ``acquire`` returning and the caller entering the ``try`` whose ``finally`` gives
   the permit back there is no checkpoint, so no cancellation can strand a token (the gap of
   httpcore issue #1093).
4. :meth:`Permit.release` is synchronous and idempotent: the first call returns the token and
   every later call does nothing. It is safe in ``finally`` blocks, in ``__aexit__`` under
   cancellation, and from the client's shutdown path racing the owner's own release.

A permit covers only the network exchange: waiting for a connection, connecting, sending,
and receiving until the body is complete or the response is closed.
"""

from __future__ import annotations

import trio

__all__ = ["Permit"]


class Permit:
    __slots__ = ("_limiter", "held")

    def __init__(self, limiter: trio.CapacityLimiter) -> None:
        self._limiter = limiter
        self.held = False

    def try_acquire(self) -> bool:
        """Take a token without waiting if one is free and nobody is queued (FIFO is kept:
        trio refuses a barging acquire while tasks wait). Not a checkpoint: the exchange's
        first receive is."""
        try:
            self._limiter.acquire_on_behalf_of_nowait(self)
        except trio.WouldBlock:
            return False
        self.held = True
        return True

    async def acquire(self) -> None:
        await self._limiter.acquire_on_behalf_of(self)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._limiter.release_on_behalf_of(self)

    def __repr__(self) -> str:
        return f"<Permit held={self.held}>"
