"""Connection states, close reasons and exchange phases, and the one table that moves states.

Theory of operation (in the manner of h11's ``_state.py``):

Rule 1: a connection is in exactly one :class:`ConnState`, and only :func:`next_state` decides
whether it may move. ``CLOSED`` is terminal: every way of closing a connection (its exchange's
end, an error, idle expiry, eviction, shutdown) asks for ``CLOSED``, and only the first request
is carried out. That is what "settled exactly once" means: the slot a connection holds and the
close reason it is counted under are settled by the one transition into ``CLOSED``; any later
close of the same connection is answered with :data:`ALREADY_CLOSED` and changes nothing.

Rule 2: any other move not in the table is a bug in this package, not a condition of the
network: :class:`IllegalTransition` is raised and nothing changes.

=============  =======================  ===================================================
from           to                       when
=============  =======================  ===================================================
CONNECTING     ACTIVE                   connected (TCP and TLS) for the exchange that opened it
ACTIVE         IDLE                     its exchange finished cleanly and it may be reused
IDLE           ACTIVE                   taken from the pool, or handed to a waiting exchange
any but        CLOSED                   closed, for one of :data:`CLOSE_REASONS`
CLOSED
=============  =======================  ===================================================
"""

from __future__ import annotations

import enum
from typing import Final, Literal, overload

__all__ = [
    "ALREADY_CLOSED",
    "CLOSE_REASONS",
    "PHASES",
    "CloseReason",
    "ConnState",
    "IllegalTransition",
    "Phase",
    "next_state",
]


class ConnState(enum.Enum):
    CONNECTING = "connecting"
    ACTIVE = "active"
    IDLE = "idle"
    CLOSED = "closed"

    # Members are singletons, so identity hashing is exact; Enum's own __hash__ runs Python
    # code, and the table below is consulted twice per exchange on the hot path.
    __hash__ = object.__hash__


CloseReason = Literal[
    "policy",  # the keep-alive policy asked for it (KeepAlive.off / recycle)
    "idle_expired",  # idle longer than idle_timeout
    "max_idle",  # checked in while max_idle connections were already idle
    "server_close",  # the server closed it or asked to (Connection: close, EOF, data while idle)
    "error",  # the exchange failed: network, protocol or timeout error
    "interrupted",  # the caller cancelled, or closed a stream before its end
    "evicted",  # closed to make room for a connection to another endpoint
    "shutdown",  # the client closed
]

#: Why a connection was closed (keys of ``EndpointStats.closed``), in the order reported.
CLOSE_REASONS: Final[tuple[CloseReason, ...]] = (
    "policy",
    "idle_expired",
    "max_idle",
    "server_close",
    "error",
    "interrupted",
    "evicted",
    "shutdown",
)

Phase = Literal["pool", "connect", "write", "read", "total"]
PHASES: Final[tuple[Phase, ...]] = ("pool", "connect", "write", "read", "total")


class IllegalTransition(RuntimeError):
    """A move the state table does not allow: a bug in trio-infer, never a network condition."""


#: The answer of :func:`next_state` for a close of a connection that is already closed.
ALREADY_CLOSED: Final = None

_C, _A, _I, _X = ConnState.CONNECTING, ConnState.ACTIVE, ConnState.IDLE, ConnState.CLOSED
_MOVES: Final[frozenset[tuple[ConnState, ConnState]]] = frozenset(
    {(_C, _A), (_A, _I), (_I, _A), (_C, _X), (_A, _X), (_I, _X)}
)


@overload
def next_state(current: ConnState, wanted: Literal[ConnState.CLOSED]) -> ConnState | None: ...


@overload
def next_state(
    current: ConnState, wanted: Literal[ConnState.CONNECTING, ConnState.ACTIVE, ConnState.IDLE]
) -> ConnState: ...


@overload
def next_state(current: ConnState, wanted: ConnState) -> ConnState | None: ...


def next_state(current: ConnState, wanted: ConnState) -> ConnState | None:
    """The state to move to, or :data:`ALREADY_CLOSED` (``None``) for a repeated close.

    Raises :class:`IllegalTransition` (and the caller changes nothing) for any other move
    that the table in the module docstring does not list.
    """
    if (current, wanted) in _MOVES:
        return wanted
    if current is _X and wanted is _X:
        return ALREADY_CLOSED
    raise IllegalTransition(f"a connection cannot move from {current.value} to {wanted.value}")
