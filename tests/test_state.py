"""The connection state table, table-first (h11's test style), and the pool's one close."""

from __future__ import annotations

import itertools

import pytest
import trio

import trio_infer
from trio_infer._state import (
    ALREADY_CLOSED,
    ConnState,
    IllegalTransition,
    next_state,
)
from trio_infer.testing import TestServer

CN, AC, ID, CL = ConnState.CONNECTING, ConnState.ACTIVE, ConnState.IDLE, ConnState.CLOSED

#: every (from, to) pair and what the table answers: the state, ALREADY_CLOSED, or illegal
EXPECTED: dict[tuple[ConnState, ConnState], ConnState | type[Exception] | None] = {
    (CN, CN): IllegalTransition,
    (CN, AC): AC,
    (CN, ID): IllegalTransition,  # a new connection carries the exchange that opened it
    (CN, CL): CL,
    (AC, CN): IllegalTransition,
    (AC, AC): IllegalTransition,  # one exchange at a time on HTTP/1.1
    (AC, ID): ID,
    (AC, CL): CL,
    (ID, CN): IllegalTransition,
    (ID, AC): AC,
    (ID, ID): IllegalTransition,  # checked in twice: a double settle
    (ID, CL): CL,
    (CL, CN): IllegalTransition,  # CLOSED is terminal
    (CL, AC): IllegalTransition,
    (CL, ID): IllegalTransition,
    (CL, CL): ALREADY_CLOSED,
}


def test_the_table_covers_every_pair() -> None:
    assert set(EXPECTED) == set(itertools.product(ConnState, repeat=2))


@pytest.mark.parametrize(("move", "expected"), list(EXPECTED.items()), ids=str)
def test_each_move(
    move: tuple[ConnState, ConnState], expected: ConnState | type[Exception] | None
) -> None:
    current, wanted = move
    if isinstance(expected, type):
        with pytest.raises(expected, match=f"from {current.value} to {wanted.value}"):
            next_state(current, wanted)
    else:
        assert next_state(current, wanted) is expected


async def test_a_connection_is_settled_once_whoever_closes_it(server: TestServer) -> None:
    """The pool's one transition into CLOSED: a second close (the sweeper's, the exchange's,
    the shutdown's) changes no count and frees no second slot."""
    async with trio_infer.Client(server.url) as client:
        await client.request("GET", "/json")
        pool = client._pools[0]
        (conn,) = pool.idle
        pool.close(conn, "evicted")
        pool.close(conn, "error")
        pool.close(conn, "shutdown")
        stats = client.stats()
        assert (stats.open_connections, stats.endpoints[0].closed_by("evicted")) == (0, 1)
        assert stats.endpoints[0].closed_total == 1
        assert conn.state is CL
        with pytest.raises(IllegalTransition):
            pool.checkin(conn, 0.0)  # an illegal move raises and changes nothing
        assert (conn.state, len(pool.idle), client.stats().open_connections) == (CL, 0, 0)
        await trio.lowlevel.checkpoint()
