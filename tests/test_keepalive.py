"""Keep-alive policies (on, off, recycle), per-endpoint overrides, and worker identity stats."""

from __future__ import annotations

import socket
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import ConfigError, KeepAlive
from trio_infer.testing import Responder, ServerRequest, TestServer, default_app, reply, serve


async def test_recycle_by_requests_closes_after_the_nth_exchange(server: TestServer) -> None:
    async with trio_infer.Client(server.url, keepalive=KeepAlive.recycle(max_requests=3)) as client:
        for _ in range(7):
            assert (await client.request("GET", "/json")).status == 200
        stats = client.stats().endpoints[0]
    assert server.connections_total == 3
    # the last exchange of each full connection asks the server to close first
    closes = [r.header("connection") for r in server.requests]
    assert closes == [None, None, "close", None, None, "close", None]
    assert [r.connection_index for r in server.requests] == [0, 0, 0, 1, 1, 1, 2]
    assert (stats.opened, stats.reused, stats.closed_by("policy")) == (3, 4, 2)
    assert stats.closed_by("server_close") == 0


async def test_recycle_by_age_stops_reusing_old_connections(
    server: TestServer, mock_clock: trio.testing.MockClock
) -> None:
    async with trio_infer.Client(server.url, keepalive=KeepAlive.recycle(max_age=10)) as client:
        await client.request("GET", "/json")
        await client.request("GET", "/json")
        mock_clock.jump(11)
        await client.request("GET", "/json")
        stats = client.stats().endpoints[0]
    assert [r.connection_index for r in server.requests] == [0, 0, 1]
    assert (stats.reused, stats.closed_by("policy")) == (1, 1)


async def test_recycle_by_age_finishes_the_current_exchange_first(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    proceed = trio.Event()

    async def gated(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, length=2)
        await proceed.wait()
        await respond.send(b"ok")
        await respond.end()

    server: TestServer = await nursery.start(serve, gated)
    async with trio_infer.Client(server.url, keepalive=KeepAlive.recycle(max_age=10)) as client:
        async with client.stream("GET", "/") as response:
            mock_clock.jump(11)  # the connection ages out while its exchange runs
            proceed.set()
            assert await response.aread() == b"ok"
        stats = client.stats().endpoints[0]
        assert (stats.idle, stats.closed_by("policy")) == (0, 1)


async def test_keepalive_off_closes_every_connection_by_policy(server: TestServer) -> None:
    async with trio_infer.Client(server.url, keepalive=KeepAlive.off()) as client:
        for _ in range(3):
            await client.request("GET", "/json")
        stats = client.stats().endpoints[0]
    assert server.connections_total == 3
    assert all(r.header("connection") == "close" for r in server.requests)
    assert (stats.reused, stats.closed_by("policy")) == (0, 3)


async def test_a_server_close_is_never_reused_whatever_the_policy(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, reply(b"x", close=True))
    async with trio_infer.Client(server.url, keepalive=KeepAlive.recycle(max_requests=5)) as client:
        for _ in range(3):
            await client.request("GET", "/")
        stats = client.stats().endpoints[0]
    assert server.connections_total == 3
    assert (stats.closed_by("server_close"), stats.closed_by("policy")) == (3, 0)


async def test_policy_can_be_overridden_per_endpoint(nursery: trio.Nursery) -> None:
    pooled: TestServer = await nursery.start(serve, default_app)
    single: TestServer = await nursery.start(serve, default_app)
    async with trio_infer.Client(
        [pooled.url, single.url],
        keepalive=KeepAlive.on(),
        endpoint_keepalive={single.url.replace("http://", ""): KeepAlive.off()},
    ) as client:
        for _ in range(6):
            await client.request("GET", "/json")
    assert (pooled.connections_total, single.connections_total) == (1, 3)
    assert all(r.header("connection") == "close" for r in single.requests)
    assert not any(r.header("connection") for r in pooled.requests)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: KeepAlive.recycle(), "needs max_requests or max_age"),
        (lambda: KeepAlive.recycle(max_requests=0), "max_requests=0"),
        (lambda: KeepAlive.recycle(max_requests=-1), "max_requests=-1"),
        (lambda: KeepAlive.recycle(max_age=0), "max_age=0"),
        (lambda: KeepAlive("on", max_requests=3), "belong to KeepAlive.recycle"),
        (
            lambda: trio_infer.Client(
                "127.0.0.1:1", endpoint_keepalive={"127.0.0.1:2": KeepAlive.off()}
            ),
            "'127.0.0.1:2', which is not one of this client's endpoints",
        ),
        (
            lambda: trio_infer.Client("127.0.0.1:1", endpoint_keepalive={"127.0.0.1:1": "off"}),  # type: ignore[dict-item]
            "must be a trio_infer.KeepAlive",
        ),
        (lambda: trio_infer.Client("127.0.0.1:1", worker_header=" "), "worker_header"),
        (lambda: trio_infer.Client("127.0.0.1:1", worker_interval=0), "worker_interval=0"),
    ],
)
def test_bad_policies(make: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()  # type: ignore[operator]


async def tagged(request: ServerRequest, respond: Responder) -> None:
    """Answers as worker w<connection index mod 2>; /untagged answers without the header."""
    headers = (
        [] if request.path == "/untagged" else [("X-Worker-Id", f"w{request.connection_index % 2}")]
    )
    await respond.start(200, headers, length=0)
    await respond.end()


async def test_requests_are_counted_per_worker(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    server: TestServer = await nursery.start(serve, tagged)
    async with trio_infer.Client(
        server.url, keepalive=KeepAlive.off(), worker_header="x-worker-id", worker_interval=1
    ) as client:
        for _ in range(6):
            await client.request("GET", "/")
        await client.request("GET", "/untagged")
        stats = client.stats().endpoints[0]
        assert stats.workers == (("w0", 3), ("w1", 3))
        assert (stats.workers_seen, stats.busiest_share, stats.idlest_share) == (2, 0.5, 0.5)
        assert stats.imbalance == 1.0
        assert (stats.workers_active, stats.untagged_responses) == (2, 1)
        mock_clock.jump(2)
        assert client.stats().endpoints[0].workers_active == 0
        await client.request("GET", "/")  # connection 7: w1
        stats = client.stats().endpoints[0]
        assert stats.workers == (("w1", 4), ("w0", 3))
        assert stats.workers_active == 1
        assert stats.imbalance == pytest.approx(4 / 3)


async def test_workers_are_not_tracked_by_default(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, tagged)
    async with trio_infer.Client(server.url) as client:
        await client.request("GET", "/")
        stats = client.stats().endpoints[0]
    assert (stats.workers, stats.untagged_responses, stats.imbalance) == ((), 0, float("inf"))


async def test_each_endpoint_counts_its_own_workers(nursery: trio.Nursery) -> None:
    first: TestServer = await nursery.start(serve, tagged)
    second: TestServer = await nursery.start(
        partial(serve, reply(b"", headers=[("x-worker-id", "solo")]))
    )
    async with trio_infer.Client([first.url, second.url], worker_header="X-Worker-Id") as client:
        for _ in range(4):
            await client.request("GET", "/")
        one, two = client.stats().endpoints
    assert (one.workers, two.workers) == ((("w0", 2),), (("solo", 2),))


# --- quick acknowledgements ----------------------------------------------------------------

QUICKACK = getattr(socket, "TCP_QUICKACK", None)


@pytest.mark.skipif(QUICKACK is None, reason="TCP_QUICKACK is Linux-only")
@pytest.mark.parametrize("enabled", [True, False])
async def test_a_partial_response_is_acknowledged_at_once(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    # The timing effect (40 ms per response against a Nagle server) is measured in
    # benchmarks/bench_keepalive.py; here: the client asks for the immediate ACK exactly when
    # it has part of a response and has to wait for the rest, never for a whole response.
    calls: list[int] = []

    class Recording(socket.socket):
        def setsockopt(self, level: int, option: int, value: Any, *rest: Any) -> None:
            if (level, option) == (socket.IPPROTO_TCP, QUICKACK):
                calls.append(value)
            super().setsockopt(level, option, value, *rest)

    monkeypatch.setattr(socket, "socket", Recording)  # the pool opens connections with it
    more = trio.Event()

    async def split(request: ServerRequest, respond: Responder) -> None:
        if request.path == "/whole":  # in one write, so it cannot arrive in parts
            await respond.send_raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
            )
            return
        await respond.start(200, length=4)
        await more.wait()
        await respond.send(b"body")
        await respond.end()

    server: TestServer = await nursery.start(serve, split)
    async with trio_infer.Client(server.url, tcp_quickack=enabled) as client:
        await client.request("GET", "/whole")
        assert calls == []
        async with client.stream("GET", "/split") as response, trio.open_nursery() as readers:
            readers.start_soon(response.aread)
            await trio.testing.wait_all_tasks_blocked()  # the reader waits for the body
            assert calls == ([1] if enabled else [])
            more.set()
        assert response.content == b"body"
        assert calls == ([1] if enabled else [])
