"""The client against the in-process test server over real loopback sockets, both backends."""

from __future__ import annotations

import json
import socket

import pytest
import trio
import trio.testing

import trio_infer
from helpers import gated_reply, half_body_then_hold, stall
from trio_infer.testing import (
    Responder,
    ServerRequest,
    TestServer,
    abort_after,
    open_server,
    reply,
    serve,
)


def assert_quiet(client: trio_infer.Client) -> None:
    """No permit held and no connection active: the invariants every test ends with."""
    stats = client.stats()
    assert client.limiter.borrowed_tokens == 0
    assert stats.active == 0 and stats.connecting == 0 and stats.waiting == 0


async def test_get_json(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        response = await client.request("GET", "/json")
        assert response.status == 200
        assert response.json()["ok"] is True
        assert response.headers["Content-Type"] == "application/json"
        assert response.http_version == "1.1"
        assert response.url == f"{server.url}/json"
        t = response.timing
        assert t.start <= t.connected <= t.sent <= t.first_byte <= t.end  # type: ignore[operator]
        assert_quiet(client)


async def test_post_json_body_and_headers(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(
        server.url, parser=parser, headers={"Authorization": "Bearer s3cret"}
    ) as client:
        response = await client.request(
            "POST", "/echo", json={"prompt": "hé"}, headers={"X-Trace": "1"}, params={"a": "1 2"}
        )
        echo = response.json()
        headers = dict(echo["headers"])
        assert echo["method"] == "POST"
        assert echo["target"] == "/echo?a=1+2"
        assert json.loads(echo["body"]) == {"prompt": "hé"}
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == str(len(echo["body"].encode()))
        assert headers["authorization"] == "Bearer s3cret"
        assert headers["x-trace"] == "1"
        assert headers["host"] == server.url.split("//")[1]


async def test_per_call_headers_override_client_headers(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser, headers={"X-Model": "a"}) as client:
        echo = (await client.request("GET", "/echo", headers={"x-model": "b"})).json()
        assert [v for k, v in echo["headers"] if k == "x-model"] == ["b"]


async def test_bytes_body_and_empty_post(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        echo = (await client.request("PUT", "/echo", content=b"\x00raw")).json()
        assert echo["body"] == "\x00raw"
        echo = (await client.request("POST", "/echo")).json()
        assert ["content-length", "0"] in echo["headers"]


@pytest.mark.parametrize("chunk_size", [0, 1, 7])
async def test_chunked_body(nursery: trio.Nursery, parser: str, chunk_size: int) -> None:
    body = bytes(range(256)) * 20
    server = await nursery.start(serve, reply(body, chunked=True, chunk_size=chunk_size))
    async with trio_infer.Client(server.url, parser=parser) as client:
        for _ in range(2):
            assert (await client.request("GET", "/")).content == body
        assert client.stats().endpoints[0].reused == 1


async def test_head_204_304_have_no_body_and_keep_the_connection(
    nursery: trio.Nursery, parser: str
) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        status = int(request.path.strip("/") or 200)
        headers = [] if status in (204, 304) else [("content-type", "text/plain")]
        await respond.start(status, headers, length=None if status in (204, 304) else 5)
        await respond.send(b"hello")
        await respond.end()

    server = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser) as client:
        head = await client.request("HEAD", "/")
        assert (head.status, head.content, head.headers["content-length"]) == (200, b"", "5")
        assert (await client.request("GET", "/204")).content == b""
        assert (await client.request("GET", "/304")).content == b""
        assert (await client.request("GET", "/")).content == b"hello"
        stats = client.stats().endpoints[0]
        assert (stats.opened, stats.reused) == (1, 3)


async def test_informational_responses_are_skipped(nursery: trio.Nursery, parser: str) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.informational(100)
        await respond.informational(103, [("link", "</x>; rel=preload")])
        await respond.start(200, length=2)
        await respond.send(b"ok")
        await respond.end()

    server = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser) as client:
        response = await client.request("POST", "/", content=b"x")
        assert (response.status, response.content) == (200, b"ok")
        assert "link" not in response.headers


async def test_server_connection_close_is_honoured(nursery: trio.Nursery, parser: str) -> None:
    server = await nursery.start(serve, reply(b"bye", close=True))
    async with trio_infer.Client(server.url, parser=parser) as client:
        for _ in range(3):
            assert (await client.request("GET", "/")).content == b"bye"
        stats = client.stats().endpoints[0]
        assert (stats.opened, stats.reused, stats.closed_by("server_close"), stats.idle) == (
            3,
            0,
            3,
            0,
        )
    await server.wait_until(lambda s: s.connections_open == 0)


async def test_body_delimited_by_close(nursery: trio.Nursery, parser: str) -> None:
    async def graceful(request: ServerRequest, respond: Responder) -> None:
        await respond.send_raw(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")

    server = await nursery.start(serve, graceful)
    async with trio_infer.Client(server.url, parser=parser) as client:
        response = await client.request("GET", "/")
        assert response.content == b"until the end"
        assert client.stats().endpoints[0].idle == 0


async def test_keepalive_off_sends_connection_close(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(
        server.url, parser=parser, keepalive=trio_infer.KeepAlive.off()
    ) as client:
        for _ in range(3):
            echo = (await client.request("GET", "/echo")).json()
            assert ["connection", "close"] in echo["headers"]
        stats = client.stats().endpoints[0]
        assert (stats.opened, stats.reused, stats.closed_by("policy")) == (3, 0, 3)


async def test_round_robin_over_endpoints(nursery: trio.Nursery, parser: str) -> None:
    servers = [await nursery.start(serve, reply(str(i))) for i in range(3)]
    async with trio_infer.Client([s.url for s in servers], parser=parser) as client:
        bodies = [(await client.request("GET", "/")).text for _ in range(9)]
        assert bodies == ["0", "1", "2"] * 3
        assert [e.responses for e in client.stats().endpoints] == [3, 3, 3]


async def test_base_path_is_prefixed(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url + "/api/", parser=parser) as client:
        response = await client.request("GET", "/echo")
        assert response.json()["target"] == "/api/echo"
        assert response.url == f"{server.url}/api/echo"
        assert response.endpoint == f"{server.url}/api"


async def test_status_errors_are_responses_until_raised(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        response = await client.request("GET", "/status/503")
        assert response.status == 503 and not response.is_success
        with pytest.raises(trio_infer.HTTPStatusError, match="503") as info:
            response.raise_for_status()
        assert info.value.response is response
        ok = await client.request("GET", "/json")
        assert ok.raise_for_status() is ok
        assert_quiet(client)


async def test_stream_sse(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with client.stream("GET", "/sse", params={"n": 5}) as response:
            assert response.status == 200
            assert client.limiter.borrowed_tokens == 1
            events = [event async for event in response.aiter_sse()]
            # the body ended: permit back and connection pooled before the block exits
            assert client.limiter.borrowed_tokens == 0
            assert response.is_closed
        assert [e.data for e in events[:-1]] == [
            json.dumps({"index": i, "text": f"tok{i}"}) for i in range(5)
        ]
        assert events[-1].data == "[DONE]"
        assert all(e.received_at >= response.timing.first_byte for e in events)
        assert response.timing.end >= max(e.received_at for e in events)  # type: ignore[operator]
        assert client.stats().endpoints[0].idle == 1


async def test_stream_lines_and_bytes(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with client.stream("GET", "/sse", params={"n": 2}) as response:
            lines = [line.text async for line in response.aiter_lines()]
        assert lines == [
            'data: {"index": 0, "text": "tok0"}',
            "",
            'data: {"index": 1, "text": "tok1"}',
            "",
            "data: [DONE]",
            "",
        ]
        async with client.stream("GET", "/json") as response:
            chunks = [chunk async for chunk in response.aiter_bytes()]
        assert json.loads(b"".join(c.data for c in chunks))["ok"] is True
        async with client.stream("GET", "/json") as response:
            with pytest.raises(trio_infer.ResponseNotRead):
                _ = response.content
            assert (await response.aread()) == response.content
        assert_quiet(client)


async def test_body_is_read_once(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with client.stream("GET", "/sse", params={"n": 2}) as response:
            iterator = response.aiter_sse()
            with pytest.raises(RuntimeError, match="already being iterated"):
                response.aiter_bytes()
            assert len([e async for e in iterator]) == 3
        # a fully read response iterates over its stored content
        response = await client.request("GET", "/sse", params={"n": 2})
        assert len([e async for e in response.aiter_sse()]) == 3


async def test_connect_refused_is_connect_error(parser: str) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        async with trio_infer.Client(f"127.0.0.1:{port}", parser=parser) as client:
            with pytest.raises(trio_infer.ConnectError, match="connection refused") as info:
                await client.request("GET", "/")
            assert info.value.phase == "connect"
            assert info.value.endpoint == f"http://127.0.0.1:{port}"
            assert_quiet(client)
            assert client.stats().open_connections == 0


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        (b"", trio_infer.ReadError, "reset by peer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", trio_infer.ReadError, "reset by peer"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            trio_infer.ReadError,
            "reset by peer",
        ),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", trio_infer.RemoteProtocolError, "invalid HTTP/1.1"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
            trio_infer.RemoteProtocolError,
            "invalid",
        ),
    ],
)
async def test_broken_responses_raise_typed_errors(
    nursery: trio.Nursery, parser: str, raw: bytes, error: type[Exception], match: str
) -> None:
    server = await nursery.start(serve, abort_after(raw))
    # one attempt: the retry of the reset-before-any-byte case is test_retry.py's
    async with trio_infer.Client(
        server.url, parser=parser, retry=trio_infer.Retry.disabled()
    ) as client:
        with pytest.raises(error, match=match):
            await client.request("GET", "/")
        assert_quiet(client)
        stats = client.stats().endpoints[0]
        assert (stats.failures, stats.closed_by("error"), stats.idle) == (1, 1, 0)


async def test_reset_mid_stream_raises_read_error(nursery: trio.Nursery, parser: str) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, [("content-type", "text/event-stream")])
        await respond.send(b"data: 1\n\n")
        await respond.abort()

    server = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser) as client:
        received = []
        with pytest.raises(trio_infer.ReadError):
            async with client.stream("GET", "/") as response:
                async for event in response.aiter_sse():
                    received.append(event.data)
        assert received == ["1"]
        assert_quiet(client)


async def test_stale_pooled_connection_is_replaced_transparently(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    """The server closes an idle keepalive connection; the next request must not fail."""
    first_connection_done = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await reply(b"ok")(request, respond)
        if request.connection_index == 0:
            first_connection_done.set()
            await (
                respond.abort()
            )  # server drops the connection after answering, like an idle timeout

    server = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser) as client:
        assert (await client.request("GET", "/")).content == b"ok"
        await first_connection_done.wait()
        await server.wait_until(lambda s: s.connections_open == 0)
        await trio.sleep(1)  # idle past FRESH_IDLE: checked on checkout
        assert (await client.request("POST", "/", content=b"x")).content == b"ok"
        stats = client.stats().endpoints[0]
        assert (stats.failures, stats.opened, stats.closed_by("server_close")) == (0, 2, 1)
        assert stats.stale_retries == 0  # the liveness check caught it before sending


async def test_stale_race_after_checkout_retries_once(
    nursery: trio.Nursery, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the liveness check cannot see: the server closes after the check passed."""
    server = await nursery.start(serve, reply(b"ok"))
    async with trio_infer.Client(server.url, parser=parser) as client:
        await client.request("GET", "/")
        pool = client._pools[0]
        (conn,) = pool.idle
        # Pretend the peer's FIN is still in flight when we check, then deliver it.
        monkeypatch.setattr(type(conn), "is_readable", lambda self: False)
        await server.wait_until(lambda s: s.connections_open == 1)
        conn.raw.shutdown(trio.socket.SHUT_RDWR)
        assert (await client.request("GET", "/")).content == b"ok"
        stats = client.stats().endpoints[0]
        assert (stats.stale_retries, stats.failures, stats.opened) == (1, 0, 2)


async def test_a_fresh_connection_failing_is_not_retried(
    nursery: trio.Nursery, parser: str
) -> None:
    server = await nursery.start(serve, abort_after(b""))
    one_attempt = trio_infer.Retry.disabled()  # the retry policy's own retries aside
    async with trio_infer.Client(server.url, parser=parser, retry=one_attempt) as client:
        with pytest.raises(trio_infer.ReadError):
            await client.request("GET", "/")
        assert client.stats().endpoints[0].stale_retries == 0
        assert len(server.requests) == 1


async def test_read_timeout(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    server = await nursery.start(serve, stall)
    timeouts = trio_infer.Timeouts(read=5)
    async with trio_infer.Client(server.url, parser=parser, timeouts=timeouts) as client:
        start = trio.current_time()
        with pytest.raises(trio_infer.ReadTimeout, match="read timeout") as info:
            await client.request("GET", "/")
        assert 5 <= trio.current_time() - start <= 5.5
        assert info.value.phase == "read"
        assert isinstance(info.value, TimeoutError)
        assert_quiet(client)


async def test_slow_drip_within_read_timeout_succeeds(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def drip(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, length=5)
        for byte in b"hello":
            await trio.sleep(3)
            await respond.send(bytes([byte]))
        await respond.end()

    server = await nursery.start(serve, drip)
    async with trio_infer.Client(
        server.url, parser=parser, timeouts=trio_infer.Timeouts(read=5)
    ) as client:
        assert (await client.request("GET", "/")).content == b"hello"
        with pytest.raises(trio_infer.TotalTimeout):
            await client.request("GET", "/", timeouts=trio_infer.Timeouts(read=5, total=10))
        assert_quiet(client)


async def test_slow_consumer_is_not_a_read_timeout(
    server: TestServer, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio_infer.Client(
        server.url, parser=parser, timeouts=trio_infer.Timeouts(read=1)
    ) as client:
        async with client.stream("GET", "/sse", params={"n": 3}) as response:
            count = 0
            async for _ in response.aiter_sse():
                await trio.sleep(5)  # the caller dawdles; the server is not to blame
                count += 1
        assert count == 4


async def test_total_timeout_covers_the_stream_block(
    server: TestServer, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        with pytest.raises(trio_infer.TotalTimeout):
            async with client.stream(
                "GET", "/sse", timeouts=trio_infer.Timeouts(total=2)
            ) as response:
                async for _ in response.aiter_sse():
                    await trio.sleep(1)
        assert_quiet(client)


async def test_connect_timeout(parser: str, autojump_clock: trio.testing.MockClock) -> None:
    """A peer that never answers the SYN: a listener whose accept queue is full (and never
    accepted) drops further handshakes, so the connect hangs until ConnectTimeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):  # more than the accept queue holds
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    try:
        timeouts = trio_infer.Timeouts(connect=3)
        async with trio_infer.Client(
            f"127.0.0.1:{address[1]}",
            parser=parser,
            timeouts=timeouts,
            retry=trio_infer.Retry.disabled(),
        ) as client:
            start = trio.current_time()
            with pytest.raises(trio_infer.ConnectTimeout, match="connect timeout") as info:
                await client.request("GET", "/")
            assert 3 <= trio.current_time() - start <= 3.5
            assert info.value.phase == "connect"
            assert_quiet(client)
            stats = client.stats()
            assert (stats.open_connections, stats.endpoints[0].closed_by("error")) == (0, 1)
    finally:
        for sock in [*fillers, listener]:
            sock.close()


async def test_pool_timeout_when_no_permit(
    server: TestServer, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    limiter = trio.CapacityLimiter(1)
    async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as client:
        await limiter.acquire()
        with pytest.raises(trio_infer.PoolTimeout, match="no permit"):
            await client.request("GET", "/json", timeouts=trio_infer.Timeouts(pool=2))
        limiter.release()
        assert (await client.request("GET", "/json")).status == 200


async def test_max_connections_waits_for_a_slot(nursery: trio.Nursery, parser: str) -> None:
    gate = trio.Event()
    server = await nursery.start(serve, gated_reply(gate))
    async with trio_infer.Client(server.url, parser=parser, max_connections=2) as client:
        async with trio.open_nursery() as inner:
            for _ in range(5):
                inner.start_soon(client.request, "GET", "/")
            await server.wait_until(lambda s: s.in_flight == 2)
            await trio.testing.wait_all_tasks_blocked()
            stats = client.stats()
            assert (stats.open_connections, stats.endpoints[0].waiting_for_connection) == (2, 3)
            gate.set()
        assert server.max_in_flight == 2
        assert client.stats().opened == 2


async def test_max_connections_evicts_idle_of_another_endpoint(
    nursery: trio.Nursery, parser: str
) -> None:
    a = await nursery.start(serve, reply(b"a"))
    b = await nursery.start(serve, reply(b"b"))
    async with trio_infer.Client([a.url, b.url], parser=parser, max_connections=1) as client:
        assert [(await client.request("GET", "/")).text for _ in range(4)] == ["a", "b", "a", "b"]
        stats = client.stats()
        assert stats.open_connections == 1
        assert sum(e.closed_by("evicted") for e in stats.endpoints) == 3


async def test_idle_connections_expire(
    server: TestServer, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    keepalive = trio_infer.KeepAlive.on(idle_timeout=4)
    async with trio_infer.Client(server.url, parser=parser, keepalive=keepalive) as client:
        await client.request("GET", "/json")
        await trio.sleep(3)
        assert client.stats().idle == 1
        await trio.sleep(1.5)
        stats = client.stats()
        assert (stats.idle, stats.endpoints[0].closed_by("idle_expired")) == (0, 1)
        await server.wait_until(lambda s: s.connections_open == 0)
        assert (await client.request("GET", "/json")).status == 200


async def test_max_idle(nursery: trio.Nursery, parser: str) -> None:
    gate = trio.Event()
    server = await nursery.start(serve, gated_reply(gate))
    async with trio_infer.Client(
        server.url, parser=parser, keepalive=trio_infer.KeepAlive.on(max_idle=2)
    ) as client:
        async with trio.open_nursery() as inner:
            for _ in range(5):
                inner.start_soon(client.request, "GET", "/")
            await server.wait_until(lambda s: s.in_flight == 5)
            gate.set()
        stats = client.stats().endpoints[0]
        assert (stats.idle, stats.closed_by("max_idle")) == (2, 3)


async def test_client_exit_closes_everything(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with trio.open_nursery() as inner:
            for _ in range(10):
                inner.start_soon(client.request, "GET", "/json")
        assert client.stats().idle >= 1
    stats = client.stats()
    assert (stats.idle, stats.active, stats.open_connections) == (0, 0, 0)
    assert stats.opened == stats.closed
    await server.wait_until(lambda s: s.connections_open == 0)
    with pytest.raises(trio_infer.ClientClosed, match="closed"):
        await client.request("GET", "/json")


async def test_cancelling_the_client_block_closes_everything(
    nursery: trio.Nursery, parser: str
) -> None:
    started = trio.Event()
    server = await nursery.start(serve, half_body_then_hold(started))
    limiter = trio.CapacityLimiter(8)
    with trio.CancelScope() as scope:
        async with (
            trio_infer.Client(server.url, parser=parser, limiter=limiter) as client,
            trio.open_nursery() as callers,
        ):
            for _ in range(5):
                callers.start_soon(client.request, "GET", "/")
            await server.wait_until(lambda s: s.in_flight == 5)
            await started.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert limiter.borrowed_tokens == 0
    stats = client.stats()
    assert (stats.active, stats.open_connections, stats.opened, stats.closed) == (0, 0, 5, 5)
    await server.wait_until(lambda s: s.connections_open == 0)


async def test_client_exit_mid_stream_returns_the_permit(server: TestServer, parser: str) -> None:
    """A task outside the client's block is streaming when the client closes."""
    limiter = trio.CapacityLimiter(4)
    streaming = trio.Event()
    errors: list[BaseException] = []

    async def streamer(client: trio_infer.Client) -> None:
        try:
            async with client.stream("GET", "/sse", params={"n": 3, "gap": 60}) as response:
                async for _ in response.aiter_sse():
                    streaming.set()
        except trio_infer.StreamClosed as exc:
            errors.append(exc)

    async with trio.open_nursery() as outer:
        async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as client:
            outer.start_soon(streamer, client)
            await streaming.wait()
            assert limiter.borrowed_tokens == 1
        assert limiter.borrowed_tokens == 0
    assert len(errors) == 1
    assert limiter.borrowed_tokens == 0
    assert client.stats().endpoints[0].closed_by("shutdown") == 1


async def test_exceptions_in_the_block_pass_through_unwrapped(server: TestServer) -> None:
    with pytest.raises(KeyError):
        async with trio_infer.Client(server.url):
            raise KeyError("mine")


async def test_client_must_be_entered(server: TestServer) -> None:
    client = trio_infer.Client(server.url)
    with pytest.raises(RuntimeError, match="async with"):
        await client.request("GET", "/")
    async with client:
        pass
    with pytest.raises(RuntimeError, match="entered once"):
        async with client:
            pass


async def test_unresolvable_host_fails_on_enter() -> None:
    with pytest.raises(trio_infer.ConnectError, match="cannot resolve"):
        async with trio_infer.Client("http://no-such-host.invalid:1"):
            pass


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "GE T", "path": "/"}, "method"),
        ({"method": "GET", "path": "relative"}, "must start with '/'"),
        ({"method": "GET", "path": "/", "headers": {"x": "a\r\nInjected: 1"}}, "CR, LF"),
        ({"method": "GET", "path": "/", "headers": {"bad name": "x"}}, "token"),
        ({"method": "POST", "path": "/", "json": {}, "content": b"x"}, "either"),
        ({"method": "POST", "path": "/", "content": "text"}, "bytes"),
    ],
)
async def test_invalid_requests_are_rejected_before_sending(
    server: TestServer, kwargs: dict[str, object], match: str
) -> None:
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match=match):
            await client.request(**kwargs)  # type: ignore[arg-type]
        assert server.requests == []


async def test_non_ascii_paths_are_percent_encoded(server: TestServer) -> None:
    async with trio_infer.Client(server.url) as client:
        assert (await client.request("GET", "/é x/echo")).json()["target"] == "/%C3%A9%20x/echo"


async def test_per_request_latency(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = await nursery.start(serve, reply(b"ok", latency=lambda r: float(r.query["s"])))
    async with trio_infer.Client(server.url) as client:
        for seconds in (1.0, 7.0):
            response = await client.request("GET", "/", params={"s": seconds})
            assert seconds <= response.timing.ttfb < seconds + 0.1


async def test_open_server_context_manager() -> None:
    async with open_server(reply(b"hi")) as server, trio_infer.Client(server.url) as client:
        assert (await client.request("GET", "/")).content == b"hi"


async def test_secret_headers_are_not_in_reprs(server: TestServer) -> None:
    async with trio_infer.Client(server.url, headers={"Authorization": "Bearer s3cret"}) as client:
        response = await client.request("GET", "/echo")
        assert "s3cret" not in repr(client) + repr(response)
