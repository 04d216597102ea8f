"""What the pool needs of a connection (in the manner of httpcore's ``interfaces.py``).

``EndpointPool`` talks to its connections only through :class:`PoolConnection`, so a
connection that carries many exchanges at once (HTTP/2: streams multiplexed on one socket,
a reader task in the client's nursery) can join the pool without the pool's rules changing:
it answers ``is_available()`` while it has stream capacity, ``is_idle()`` when it carries
nothing, and ``has_expired()`` after a GOAWAY as after stray bytes or a close here.

The HTTP/1.1 :class:`~trio_infer._http11.Connection` is the one implementation today; the
exchange drives its I/O directly (``start``, ``send_request``, ``pump``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._exchange import Exchange
    from ._state import ConnState

__all__ = ["PoolConnection"]


class PoolConnection(Protocol):
    #: moved only by the pool, through ``_state.next_state``
    state: ConnState
    #: the exchange it carries while ACTIVE (HTTP/1.1: one)
    exchange: Exchange | None
    #: the source address bound, for per-source statistics (None: the OS chose)
    source: str | None
    opened_at: float
    idle_since: float
    #: when the phase in progress must end (the sweeper enforces it), and how often to look
    deadline: float
    tick: float
    #: this client asked the server to close after the current exchange (keep-alive policy)
    last_by_policy: bool

    def is_available(self) -> bool:
        """Can it take one more exchange now?"""
        ...

    def is_idle(self) -> bool:
        """Does it carry no exchange at all?"""
        ...

    def has_expired(self) -> bool:
        """Must it never take another exchange (the peer wrote unasked, closed, or went away)?"""
        ...

    def is_reusable(self) -> bool:
        """After its exchange finished: may it carry another (keep-alive, framing intact)?"""
        ...

    def received_bytes(self) -> int:
        """Response bytes received for the current (or last) exchange, for statistics."""
        ...

    def expire(self) -> None:
        """Its phase deadline passed: fail whatever is blocked on it as that phase's timeout."""
        ...

    def close_now(self) -> None:
        """Close the socket at once (synchronous, idempotent); wakes any blocked task."""
        ...
