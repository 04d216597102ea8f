"""A second round of attacks on the exchange core of issue 10, on loopback: TLS, retries
with keep-alive policies, several endpoints under one cap, the protocol layers through the
client, and misuse of a Response. Each attack ends by checking the client's statistics.

Four of these broke the core first (a complete but unread TLS stream was not pooled, a
retried 503 cut short was raised, a TLS handshake reset was not retried, a bad
``aread(max_bytes=)`` was untyped) and were fixed; the others are regression guards. Servers are byte-level scripts (``attack_helpers``); moments come
from events and ``wait_all_tasks_blocked``, time from a mock clock.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio
import trio.testing
import trustme

import trio_infer
from attack_helpers import (
    RawConn,
    RawTLS,
    assert_settled,
    client_context,
    response,
    start_raw_server,
)
from trio_infer import KeepAlive, Retry, Timeouts


def assert_consistent(client: trio_infer.Client) -> None:
    """The statistics agree with themselves: what was opened is closed or open, every
    response has a class, nothing waits and no permit is held."""
    stats = client.stats()
    assert stats.opened == stats.closed + stats.open_connections, stats
    assert stats.permits_in_use == 0, stats
    assert stats.waiting == 0, stats
    for e in stats.endpoints:
        assert e.responses == sum(n for _, n in e.responses_by_class), e
        assert e.opened == e.closed_total + e.idle + e.active + e.connecting, e
    assert_settled(client)


async def echo_targets(conn: RawConn) -> None:
    while (request := await conn.read_request()) is not None:
        await conn.send(response(b"own:" + request.target))


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


async def serve_raw_tls(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> str:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return f"https://localhost:{listeners[0].socket.getsockname()[1]}"


async def test_a_server_that_picks_h2_is_a_typed_connect_error_and_leaks_nothing(
    nursery: trio.Nursery, parser: str, ca: trustme.CA
) -> None:
    context = server_context(ca, ["h2", "http/1.1"])

    async def handle(stream: trio.SocketStream) -> None:
        tls = RawTLS(stream, context)
        try:
            await tls.handshake()
            await tls.read_head()
        except (trio.BrokenResourceError, ssl.SSLError):
            pass

    url = await serve_raw_tls(nursery, handle)
    offering_h2 = client_context(ca)
    offering_h2.set_alpn_protocols(["h2", "http/1.1"])
    async with trio_infer.Client(url, ssl_context=offering_h2, parser=parser) as client:
        with trio.fail_after(5), pytest.raises(trio_infer.ConnectError, match="h2"):
            await client.request("GET", "/")
        assert_consistent(client)
        assert client.stats().open_connections == 0
    assert offering_h2.get_ca_certs()  # still the caller's context, usable


@pytest.mark.parametrize("when", ["before-hello", "after-hello"])
async def test_a_server_that_resets_during_the_handshake_is_a_typed_error(
    nursery: trio.Nursery, parser: str, ca: trustme.CA, when: str
) -> None:
    async def reset(stream: trio.SocketStream) -> None:
        if when == "after-hello":
            await stream.receive_some(65536)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    url = await serve_raw_tls(nursery, reset)
    async with trio_infer.Client(
        url, ssl_context=client_context(ca), parser=parser, retry=Retry(backoff=0.001)
    ) as client:
        with trio.fail_after(5), pytest.raises(trio_infer.ConnectError):
            await client.request("POST", "/", content=b"x")
        assert_consistent(client)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_reset_during_the_tls_handshake_is_retried_like_a_refused_connect(
    nursery: trio.Nursery, parser: str, ca: trustme.CA, method: str
) -> None:
    """_retry.py: "a connection that could not be established (refused, reset, ...):
    nothing reached the server, so even a POST is safe". The first connection is reset
    after the ClientHello; the second is served."""
    context = server_context(ca)
    accepted = 0

    async def reset_first(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        try:
            if accepted == 1:
                await stream.receive_some(65536)
                linger = struct.pack("ii", 1, 0)
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                await stream.aclose()
                return
            tls = RawTLS(stream, context)
            await tls.handshake()
            while (head := await tls.read_head()) is not None:
                await tls.send_records(response(b"own:" + head.split(b" ")[1]))
        except (trio.BrokenResourceError, ssl.SSLError, trio.ClosedResourceError):
            pass

    url = await serve_raw_tls(nursery, reset_first)
    async with trio_infer.Client(
        url, ssl_context=client_context(ca), parser=parser, retry=Retry(backoff=0.001)
    ) as client:
        with trio.fail_after(5):
            answer = await client.request(method, "/x", content=b"x")
        assert answer.content == b"own:/x"
        assert client.stats().retries == 1
        assert_consistent(client)


@pytest.mark.parametrize("what", ["close-client", "cancel"])
async def test_interrupting_a_stalled_tls_handshake_leaks_nothing(
    nursery: trio.Nursery, parser: str, ca: trustme.CA, what: str
) -> None:
    hello = trio.Event()

    async def stall(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)  # the ClientHello, never answered
        hello.set()
        await trio.sleep_forever()

    url = await serve_raw_tls(nursery, stall)
    raised: list[BaseException] = []
    with trio.fail_after(5):
        async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
            with trio.CancelScope() as scope:

                async def interrupt() -> None:
                    await hello.wait()
                    await trio.testing.wait_all_tasks_blocked()
                    assert client.stats().connecting == 1
                    if what == "cancel":
                        scope.cancel()
                    else:
                        client.close()

                nursery.start_soon(interrupt)
                try:
                    await client.request("GET", "/")
                except BaseException as exc:
                    raised.append(exc)
                    if not isinstance(exc, trio_infer.Error):
                        raise
            stats = client.stats()
    if what == "close-client":
        assert [type(e) for e in raised] == [trio_infer.ClientClosed]
    else:
        assert [type(e) for e in raised] == [trio.Cancelled]
    assert (stats.opened, stats.closed, stats.open_connections) == (1, 1, 0)
    assert stats.permits_in_use == 0


@pytest.mark.parametrize("server_sends", ["close_notify", "garbage-record", "close_notify+fin"])
async def test_a_tls_server_that_ends_its_side_while_idle_costs_no_call(
    nursery: trio.Nursery, parser: str, ca: trustme.CA, server_sends: str
) -> None:
    """After the first answer the server sends close_notify (or a garbage record): the
    next call, a POST, must go on a fresh connection, not fail as may-have-been-processed."""
    context = server_context(ca)
    sent = trio.Event()

    async def handle(stream: trio.SocketStream) -> None:
        tls = RawTLS(stream, context)
        try:
            await tls.handshake()
            while (head := await tls.read_head()) is not None:
                target = head.split(b" ")[1]
                await tls.send_records(response(b"own:" + target))
                if target == b"/one":
                    if server_sends == "garbage-record":
                        await stream.send_all(b"\x17\x03\x03\x00\x05garbg")
                    else:
                        with contextlib.suppress(ssl.SSLWantReadError):
                            tls.tls.unwrap()
                        await tls._flush()
                        if server_sends == "close_notify+fin":
                            await stream.send_eof()
                    sent.set()
        except (trio.BrokenResourceError, ssl.SSLError, trio.ClosedResourceError):
            pass

    url = await serve_raw_tls(nursery, handle)
    async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
        with trio.fail_after(5):
            assert (await client.request("GET", "/one")).content == b"own:/one"
            await sent.wait()
            await trio.testing.wait_all_tasks_blocked()
            second = await client.request("POST", "/two", content=b"x")
            assert second.content == b"own:/two"
        assert_consistent(client)


@pytest.mark.parametrize("server_sends", ["close_notify", "garbage-record"])
async def test_a_tls_server_that_ends_mid_body_is_a_typed_read_error(
    nursery: trio.Nursery, parser: str, ca: trustme.CA, server_sends: str
) -> None:
    context = server_context(ca)

    async def handle(stream: trio.SocketStream) -> None:
        tls = RawTLS(stream, context)
        try:
            await tls.handshake()
            await tls.read_head()
            await tls.send_records(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
            if server_sends == "garbage-record":
                await stream.send_all(b"\x17\x03\x03\x00\x05garbg")
            else:
                with contextlib.suppress(ssl.SSLWantReadError):
                    tls.tls.unwrap()
                await tls._flush()
            await stream.receive_some(65536)
        except (trio.BrokenResourceError, ssl.SSLError, trio.ClosedResourceError):
            pass

    url = await serve_raw_tls(nursery, handle)
    async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
        with trio.fail_after(5), pytest.raises(trio_infer.ReadError):
            await client.request("GET", "/")
        assert_consistent(client)


async def test_closing_a_tls_stream_from_another_task_mid_body_is_stream_closed(
    nursery: trio.Nursery, parser: str, ca: trustme.CA
) -> None:
    context = server_context(ca)
    first_part = trio.Event()

    async def handle(stream: trio.SocketStream) -> None:
        tls = RawTLS(stream, context)
        try:
            await tls.handshake()
            while (head := await tls.read_head()) is not None:
                target = head.split(b" ")[1]
                if target == b"/stream":
                    await tls.send_records(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
                    first_part.set()
                    await trio.sleep_forever()
                await tls.send_records(response(b"own:" + target))
        except (trio.BrokenResourceError, ssl.SSLError, trio.ClosedResourceError):
            pass

    url = await serve_raw_tls(nursery, handle)
    errors: list[BaseException] = []
    async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
        with trio.fail_after(5):
            async with client.stream("GET", "/stream") as stream:

                async def reader() -> None:
                    try:
                        await stream.aread()
                    except BaseException as exc:
                        errors.append(exc)

                async with trio.open_nursery() as pair:
                    pair.start_soon(reader)
                    await first_part.wait()
                    await trio.testing.wait_all_tasks_blocked()
                    stream.close()
            assert [type(e) for e in errors] == [trio_infer.StreamClosed]
            assert (await client.request("GET", "/after")).content == b"own:/after"
        assert_consistent(client)


async def test_a_tls_body_that_arrived_whole_but_unread_pools_the_connection(
    nursery: trio.Nursery, parser: str, ca: trustme.CA
) -> None:
    """Issue 14: a stream whose body has fully arrived but was not read is pooled, not
    closed as interrupted. The head and the body come as two TLS records."""
    context = server_context(ca)

    async def handle(stream: trio.SocketStream) -> None:
        tls = RawTLS(stream, context)
        try:
            await tls.handshake()
            while (head := await tls.read_head()) is not None:
                target = head.split(b" ")[1]
                await tls.send_records(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
                await trio.lowlevel.checkpoint()
                await tls.send_records(target[:5].ljust(5, b"."))
        except (trio.BrokenResourceError, ssl.SSLError, trio.ClosedResourceError):
            pass

    url = await serve_raw_tls(nursery, handle)
    async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
        with trio.fail_after(5):
            async with client.stream("GET", "/a") as stream:
                assert stream.status == 200
                await trio.testing.wait_all_tasks_blocked()  # the body record has arrived
            assert (await client.request("GET", "/b")).content == b"/b..."
        stats = client.stats()
        assert stats.endpoints[0].closed_by("interrupted") == 0, stats
        assert stats.opened == 1
        assert_consistent(client)


# --- retries x keep-alive ------------------------------------------------------------------


def storm(n_503: int, extra: bytes = b"retry-after: 0\r\n") -> Callable[[RawConn], Awaitable[None]]:
    """The first ``n_503`` requests (across connections) get a 503; then each its own."""
    answered = 0

    async def script(conn: RawConn) -> None:
        nonlocal answered
        while (request := await conn.read_request()) is not None:
            answered += 1
            close = b"connection: close" in request.head.lower()
            closing = b"connection: close\r\n" if close else b""
            if answered <= n_503:
                await conn.send(response(b"busy" * 100, 503, extra + closing))
            else:
                await conn.send(response(b"own:" + request.target, extra=closing))
            if close:
                return

    return script


@pytest.mark.parametrize(
    "policy",
    [KeepAlive.off(), KeepAlive.recycle(max_requests=1), KeepAlive.recycle(max_requests=2)],
    ids=["off", "recycle1", "recycle2"],
)
@pytest.mark.parametrize("storm_size", [1, 2, 3])
async def test_a_503_storm_with_retry_after_under_each_keepalive_policy(
    nursery: trio.Nursery, parser: str, policy: KeepAlive, storm_size: int
) -> None:
    server = await start_raw_server(nursery, storm(storm_size))
    async with trio_infer.Client(
        server.url, parser=parser, keepalive=policy, retry=Retry(attempts=3, backoff=0.001)
    ) as client:
        with trio.fail_after(5):
            answer = await client.request("GET", "/x")
            if storm_size < 3:
                assert answer.content == b"own:/x"
            else:
                assert answer.status == 503
            assert [a.outcome for a in answer.attempts][-1] == f"status {answer.status}"
            assert len(answer.attempts) == min(storm_size + 1, 3)
            assert (await client.request("GET", "/y")).content == b"own:/y"
        stats = client.stats()
        assert stats.retries == min(storm_size, 2)
        assert stats.responses == 2
        assert_consistent(client)


@pytest.mark.parametrize("max_requests", [1, 2, 3])
async def test_recycled_connections_carry_at_most_max_requests(
    nursery: trio.Nursery, parser: str, max_requests: int
) -> None:
    server = await start_raw_server(nursery, storm(0))
    async with trio_infer.Client(
        server.url, parser=parser, keepalive=KeepAlive.recycle(max_requests=max_requests)
    ) as client:
        with trio.fail_after(5):
            for n in range(6):
                assert (await client.request("GET", f"/{n}")).content == f"own:/{n}".encode()
        assert len(server.connections) == -(-6 // max_requests)
        assert client.stats().endpoints[0].closed_by("policy") == 6 // max_requests
        assert_consistent(client)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_stale_recycled_connection_is_replaced_once_or_refused(
    nursery: trio.Nursery, parser: str, method: str
) -> None:
    """recycle(max_requests=3): the server closes the connection after the first answer
    (without saying so). The second call hits the stale race."""

    async def close_after_one(conn: RawConn) -> None:
        request = await conn.read_request()
        if request is not None:
            await conn.send(response(b"own:" + request.target))
            await trio.lowlevel.checkpoint()
        # the next request on this connection is read, then the connection is dropped
        await conn.read_request()

    server = await start_raw_server(nursery, close_after_one)
    async with trio_infer.Client(
        server.url,
        parser=parser,
        keepalive=KeepAlive.recycle(max_requests=3),
        retry=Retry.disabled(),
    ) as client:
        with trio.fail_after(5):
            assert (await client.request(method, "/a")).content == b"own:/a"
            # The server reads the next request before closing: a POST may have been
            # processed, a GET is re-sent once.
            if method == "GET":
                assert (await client.request(method, "/b")).content == b"own:/b"
                assert client.stats().endpoints[0].stale_retries <= 1
            else:
                try:
                    answer = await client.request(method, "/b")
                except trio_infer.RequestMayHaveBeenProcessed:
                    assert server.targets().count(b"/b") == 1
                else:
                    assert answer.content == b"own:/b"
                    assert server.targets().count(b"/b") == 1
        assert_consistent(client)


async def test_per_call_retry_and_timeouts_mixed_in_one_client(
    nursery: trio.Nursery, parser: str
) -> None:
    """Calls with their own retry and timeouts, side by side on one client's connections:
    each gets its own policy's outcome. (A real clock: the limits are small, and only
    outcomes are asserted, never durations.)"""

    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            kind = request.target.split(b"/")[1]
            if kind == b"hang":
                await conn.wait_eof()
                return
            if kind == b"busy":
                await conn.send(response(b"busy", 503))
            else:
                await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(
        server.url, parser=parser, retry=Retry(attempts=5, backoff=0.01)
    ) as client:
        results: dict[str, object] = {}

        async def call(name: str, target: str, **options: object) -> None:
            try:
                results[name] = (await client.request("GET", target, **options)).status  # type: ignore[arg-type]
            except trio_infer.Error as exc:
                results[name] = type(exc).__name__

        async with trio.open_nursery() as calls:
            calls.start_soon(partial(call, "one-attempt", "/busy/1", retry=Retry(attempts=1)))
            calls.start_soon(partial(call, "default", "/busy/2"))
            calls.start_soon(partial(call, "short-read", "/hang/3", timeouts=Timeouts(read=0.05)))
            calls.start_soon(
                partial(
                    call,
                    "total",
                    "/busy/4",
                    timeouts=Timeouts(total=0.05),
                    retry=Retry(attempts=5, backoff=10, jitter="none"),
                )
            )
            calls.start_soon(partial(call, "ok", "/ok/5", timeouts=Timeouts(read=5)))
        assert results == {
            "one-attempt": 503,
            "default": 503,
            "short-read": "ReadTimeout",
            "total": "TotalTimeout",
            "ok": 200,
        }
        stats = client.stats().endpoints[0]
        assert stats.retries == 4 + 1  # "default" 4 times; "total" once, cut in its backoff
        assert dict(stats.errors) == {"ReadTimeout": 1, "TotalTimeout": 1}
        assert stats.failures == 2
        assert stats.responses == 3
        assert_consistent(client)


@pytest.mark.parametrize("during", ["backoff", "hand-off", "connect", "retry-after"])
async def test_a_total_timeout_fires_in_every_wait_and_leaks_nothing(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock, during: str
) -> None:
    gate = trio.Event()

    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target == b"/hold":
                await gate.wait()
            if request.target == b"/busy":
                extra = b"retry-after: 30\r\n" if during == "retry-after" else b""
                await conn.send(response(b"busy", 503, extra))
            else:
                await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, script)
    if during == "connect":
        # a listener that never accepts and whose backlog is full is not portable; a TLS
        # handshake that is never answered is a connect that never ends
        async def stall(stream: trio.SocketStream) -> None:
            await trio.sleep_forever()

        url = await serve_raw_tls(nursery, stall)
        context: ssl.SSLContext | None = ssl.create_default_context()
    else:
        url, context = server.url, None
    async with trio_infer.Client(
        url,
        parser=parser,
        ssl_context=context,
        max_connections=1,
        retry=Retry(attempts=5, backoff=10, jitter="none"),
    ) as client:
        with trio.fail_after(100):
            async with trio.open_nursery() as calls:
                if during == "hand-off":
                    calls.start_soon(client.request, "GET", "/hold")
                    await server.wait_until(lambda s: len(s.requests) == 1)
                target = "/busy" if during in ("backoff", "retry-after") else "/x"
                with pytest.raises(trio_infer.TotalTimeout):
                    await client.request("GET", target, timeouts=Timeouts(total=5))
                gate.set()
        assert_consistent(client)
        stats = client.stats().endpoints[0]
        assert dict(stats.errors) == {"TotalTimeout": 1}
        if during != "connect":
            assert (await client.request("GET", "/after")).content == b"own:/after"


# --- several endpoints under one cap -------------------------------------------------------


@pytest.mark.parametrize("per_endpoint", [None, 1])
@pytest.mark.parametrize("max_connections", [1, 2])
async def test_waiters_of_three_endpoints_under_a_smaller_cap_are_served_in_order(
    nursery: trio.Nursery, parser: str, per_endpoint: int | None, max_connections: int
) -> None:
    """Three endpoints, a cap below that: queued calls of every endpoint are served first
    come first served, each gets its own answer, and idle connections of one endpoint are
    evicted for waiters of another."""
    gate = trio.Event()

    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            await gate.wait()
            await conn.send(response(b"own:" + request.target))

    servers = [await start_raw_server(nursery, script) for _ in range(3)]
    order: list[str] = []
    async with trio_infer.Client(
        [s.url for s in servers],
        parser=parser,
        max_connections=max_connections,
        max_connections_per_endpoint=per_endpoint,
        limiter=32,
    ) as client:

        async def call(name: str) -> None:
            answer = await client.request("GET", f"/{name}")
            assert answer.content == f"own:/{name}".encode()
            order.append(name)

        with trio.fail_after(10):
            async with trio.open_nursery() as calls:
                for n in range(12):
                    calls.start_soon(call, str(n))
                    await trio.testing.wait_all_tasks_blocked()
                stats = client.stats()
                assert stats.waiting == 12 - max_connections
                gate.set()
        assert sorted(order, key=int) == [str(n) for n in range(12)]
        assert_consistent(client)
        assert client.stats().open_connections <= max_connections
        # first come, first served: calls were queued in order, so they end in order
        # within one endpoint's connection
        for e in range(3):
            mine = [name for name in order if int(name) % 3 == e]
            assert mine == sorted(mine, key=int)


async def test_an_endpoint_that_refuses_connections_does_not_hold_up_the_others(
    nursery: trio.Nursery, parser: str
) -> None:
    good = await start_raw_server(nursery, echo_targets)
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    async with trio_infer.Client(
        [good.url, f"http://127.0.0.1:{dead}"],
        parser=parser,
        max_connections=1,
        retry=Retry(attempts=3, backoff=0.001),
    ) as client:
        outcomes: list[str] = []

        async def call(n: int) -> None:
            try:
                answer = await client.request("POST", f"/{n}", content=b"x")
            except trio_infer.ConnectError:
                outcomes.append("refused")
            else:
                assert answer.content == f"own:/{n}".encode()
                outcomes.append("answered")

        with trio.fail_after(10):
            async with trio.open_nursery() as calls:
                for n in range(8):
                    calls.start_soon(call, n)
        assert sorted(outcomes) == ["answered"] * 4 + ["refused"] * 4
        stats = client.stats()
        assert stats.endpoints[1].opened == stats.endpoints[1].closed_by("error") == 12
        assert stats.endpoints[1].retries == 8
        assert dict(stats.endpoints[1].errors) == {"ConnectError": 4}
        assert_consistent(client)


async def test_idle_expiry_across_endpoints_while_both_queue(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    """One connection for two endpoints, idle connections expiring: calls of both
    endpoints queue, each is served in the order it came (the idle connection of one
    endpoint is evicted for the other's waiter), and the last idle connection expires."""

    async def slow(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            await trio.sleep(0.3)
            await conn.send(response(b"own:" + request.target))

    servers = [await start_raw_server(nursery, slow) for _ in range(2)]
    async with trio_infer.Client(
        [s.url for s in servers],
        parser=parser,
        max_connections=1,
        keepalive=KeepAlive.on(idle_timeout=0.2),
    ) as client:
        done: list[int] = []

        async def call(n: int) -> None:
            assert (await client.request("GET", f"/{n}")).content == f"own:/{n}".encode()
            done.append(n)

        async with trio.open_nursery() as calls:
            for n in range(8):
                calls.start_soon(call, n)
                await trio.sleep(0.001)  # queued, in this order
            assert client.stats().waiting == 7
        assert done == list(range(8))
        await trio.sleep(1)  # the last idle connection expires
        stats = client.stats()
        assert stats.open_connections == 0
        assert (
            stats.endpoints[0].closed_by("evicted") + stats.endpoints[1].closed_by("evicted") == 7
        )
        assert_consistent(client)


# --- the protocol layers through the client ------------------------------------------------


def header(request: bytes, name: bytes) -> bytes:
    for line in request.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return b""


def chunk_event(call: bytes) -> bytes:
    body = {"choices": [{"index": 0, "delta": {"content": call.decode()}}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def protocol_server(conn: RawConn) -> None:
    """Behaves as the request's ``x-kind`` header says; everything it sends names the call
    (``x-call``), so an answer delivered to the wrong call shows."""
    while (request := await conn.read_request()) is not None:
        kind = header(request.head, b"x-kind")
        call = header(request.head, b"x-call")
        sse_head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        if kind in (b"sse-bytewise", b"sse-no-done", b"sse-error"):
            events = chunk_event(call) * 2
            if kind == b"sse-error":
                events += b'event: error\ndata: {"error": {"message": "boom ' + call + b'"}}\n\n'
                events += chunk_event(call)
            if kind != b"sse-no-done":
                events += b"data: [DONE]\n\n"
            wire = sse_head + b"transfer-encoding: chunked\r\n\r\n"
            wire += b"".join(b"1\r\n%c\r\n" % byte for byte in events) + b"0\r\n\r\n"
            for i in range(len(wire)):  # every byte its own write
                if not await conn.send(wire[i : i + 1]):
                    return
                await trio.lowlevel.checkpoint()
        elif kind == b"big-4xx":
            body = b'{"error": {"message": "' + call + b'", "pad": "' + b"p" * (2 << 20) + b'"}}'
            await conn.send(response(body, 400))
        elif kind == b"not-json":
            await conn.send(response(b"<html>" + call + b"</html>"))
        elif kind.startswith(b"kserve-"):
            payload = json.dumps(
                {
                    "model_name": call.decode(),
                    "outputs": [
                        {
                            "name": "y",
                            "shape": [2],
                            "datatype": "INT32",
                            "parameters": {"binary_data_size": 8},
                        }
                    ],
                }
            ).encode()
            blob = struct.pack("<2i", 1, 2)
            length = {
                b"kserve-true": b"%d" % len(payload),
                b"kserve-long": b"%d" % (len(payload) + len(blob) + 1),
                b"kserve-short": b"%d" % (len(payload) - 3),
                b"kserve-blob": b"%d" % (len(payload) + 4),
                b"kserve-neg": b"-1",
                b"kserve-huge": b"9" * 40,
            }[kind]
            extra = b"inference-header-content-length: " + length + b"\r\n"
            await conn.send(response(payload + blob, extra=extra))
        else:
            await conn.send(response(b'{"data": [], "call": "' + call + b'"}'))


async def run_protocol_call(client: trio_infer.Client, kind: str, call: str) -> object:
    """One call of the protocol layers; returns what it produced or the error's class."""
    headers = {"x-kind": kind, "x-call": call}
    messages = [{"role": "user", "content": "hi"}]
    try:
        if kind.startswith("sse"):
            texts = []
            async with client.openai.stream_chat_completions(
                model="m", messages=messages, headers=headers
            ) as stream:
                async for chunk in stream:
                    texts.append(chunk.text)
            assert set(texts) == {call}
            return "".join(texts)
        if kind.startswith("kserve"):
            tensor = trio_infer.Tensor("x", [1], "INT32", [1])
            result = await client.kserve.infer("m", [tensor], headers=headers)
            assert result.model_name == call
            return result.output("y").data
        if kind == "big-4xx-stream":
            async with client.openai.stream_chat_completions(
                model="m", messages=messages, headers={**headers, "x-kind": "big-4xx"}
            ):
                raise AssertionError("a 400 must raise")
        if kind == "embeddings":
            await client.openai.embeddings(model="m", input="a", headers=headers)
            raise AssertionError("an answer without vectors must raise")
        await client.openai.completions(model="m", prompt="p", headers=headers)
        raise AssertionError("must raise")
    except trio_infer.Error as exc:
        error = exc
    # the server's message names the call: never another call's error
    assert call in str(error) or kind not in ("big-4xx", "sse-error"), error
    return type(error).__name__


PROTOCOL_EXPECTED = {
    "sse-bytewise": "cc",
    "sse-no-done": "IncompleteStream",
    "sse-error": "OpenAIError",
    "big-4xx": "OpenAIError",
    "big-4xx-stream": "OpenAIError",
    "not-json": "OpenAIError",
    "embeddings": "OpenAIError",
    "kserve-true": (1, 2),
    "kserve-long": "KServeError",
    "kserve-short": "KServeError",
    "kserve-blob": "KServeError",
    "kserve-neg": "KServeError",
    "kserve-huge": "KServeError",
}


@pytest.mark.parametrize("limiter", [1, 4])
async def test_the_protocol_layers_against_a_hostile_server_raise_typed_errors_only(
    nursery: trio.Nursery, parser: str, limiter: int
) -> None:
    server = await start_raw_server(nursery, protocol_server)
    results: dict[str, object] = {}
    async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as client:

        async def call(kind: str) -> None:
            results[kind] = await run_protocol_call(client, kind, "c")

        with trio.fail_after(10):
            async with trio.open_nursery() as calls:
                for kind in PROTOCOL_EXPECTED:
                    calls.start_soon(call, kind)
        assert results == PROTOCOL_EXPECTED
        assert_consistent(client)


async def test_own_answers_for_interleaved_protocol_calls_on_few_connections(
    nursery: trio.Nursery, parser: str
) -> None:
    server = await start_raw_server(nursery, protocol_server)
    async with trio_infer.Client(server.url, parser=parser, max_connections=2) as client:
        seen: list[object] = []

        async def call(n: int) -> None:
            kind = ["sse-bytewise", "kserve-true", "not-json"][n % 3]
            seen.append(await run_protocol_call(client, kind, f"call{n}"))

        with trio.fail_after(10):
            async with trio.open_nursery() as calls:
                for n in range(9):
                    calls.start_soon(call, n)
        assert sorted(map(str, seen)) == sorted(
            ["call0call0", "call3call3", "call6call6"] + ["(1, 2)"] * 3 + ["OpenAIError"] * 3
        )
        assert_consistent(client)


# --- Response misuse -------------------------------------------------------------------------


async def chunked_body(conn: RawConn) -> None:
    while (request := await conn.read_request()) is not None:
        if request.target == b"/empty":
            await conn.send(response(b""))
            continue
        await conn.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in (b"data: a\n\n", b"data: " + request.target + b"\n\n"):
            await conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            await trio.lowlevel.checkpoint()
        await conn.send(b"0\r\n\r\n")


@pytest.mark.parametrize(
    "misuse",
    [
        "bytes-then-sse",
        "sse-then-aread",
        "aread-max-0",
        "aread-max-0-empty",
        "aclose-twice",
        "kept-then-aread",
        "kept-then-iterate",
        "close-mid-iteration-then-iterate",
        "aread-too-small-then-aread",
        "iterator-made-twice",
    ],
)
async def test_misusing_a_response_raises_typed_errors_and_leaks_nothing(
    nursery: trio.Nursery, parser: str, misuse: str
) -> None:
    server = await start_raw_server(nursery, chunked_body)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            target = "/empty" if misuse.endswith("empty") else "/s"
            kept: trio_infer.Response | None = None
            try:
                async with client.stream("GET", target) as stream:
                    kept = stream
                    if misuse == "bytes-then-sse":
                        async for _ in stream.aiter_bytes():
                            break
                        with pytest.raises(trio_infer.UsageError):
                            stream.aiter_sse()
                    elif misuse == "sse-then-aread":
                        async for _ in stream.aiter_sse():
                            break
                        with pytest.raises(trio_infer.UsageError):
                            await stream.aread()
                    elif misuse.startswith("aread-max-0"):
                        if misuse.endswith("empty"):
                            assert await stream.aread(max_bytes=0) == b""
                        else:
                            with pytest.raises(trio_infer.ResponseTooLarge):
                                await stream.aread(max_bytes=0)
                    elif misuse == "aclose-twice":
                        await stream.aclose()
                        await stream.aclose()
                        assert stream.is_closed
                    elif misuse == "close-mid-iteration-then-iterate":
                        events = stream.aiter_sse()
                        await events.__anext__()
                        stream.close()
                        with pytest.raises(trio_infer.StreamClosed):
                            async for _ in events:
                                pass
                    elif misuse == "aread-too-small-then-aread":
                        with pytest.raises(trio_infer.ResponseTooLarge):
                            await stream.aread(max_bytes=3)
                        with pytest.raises(trio_infer.Error):
                            await stream.aread()
                    elif misuse == "iterator-made-twice":
                        stream.aiter_bytes()
                        with pytest.raises(trio_infer.UsageError):
                            stream.aiter_bytes()
            except trio_infer.Error as exc:  # pragma: no cover - shown by the assert
                raise AssertionError(f"the block itself raised {exc!r}") from exc
            assert kept is not None
            if misuse == "kept-then-aread":
                with pytest.raises(trio_infer.StreamClosed):
                    await kept.aread()
            elif misuse == "kept-then-iterate":
                with pytest.raises(trio_infer.StreamClosed):
                    async for _ in kept.aiter_sse():
                        pass
            assert kept.is_closed
            answer = await client.request("GET", "/after")
            assert [e.data async for e in answer.aiter_sse()] == ["a", "/after"]
            assert [e.data async for e in answer.aiter_sse()] == ["a", "/after"]
        assert_consistent(client)


async def test_a_shared_limiter_outlives_a_client_closed_while_its_calls_queue(
    nursery: trio.Nursery, parser: str
) -> None:
    gate = trio.Event()

    async def gated(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target == b"/hold":
                await gate.wait()
            await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, gated)
    limiter = trio.CapacityLimiter(1)
    outcomes: list[object] = []
    with trio.fail_after(5):
        async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as other:
            async with trio.open_nursery() as calls:
                calls.start_soon(other.request, "GET", "/hold")
                await server.wait_until(lambda s: len(s.requests) == 1)
                async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as a:

                    async def queued(n: int) -> None:
                        try:
                            await a.request("GET", f"/{n}")
                        except trio_infer.ClientClosed:
                            outcomes.append("closed")

                    for n in range(3):
                        calls.start_soon(queued, n)
                    await trio.testing.wait_all_tasks_blocked()
                    assert a.stats().endpoints[0].waiting_for_permit == 3
                await trio.testing.wait_all_tasks_blocked()
                assert outcomes == ["closed"] * 3
                assert a.stats().endpoints[0].waiting_for_permit == 0
                gate.set()
            assert limiter.borrowed_tokens == 0
            assert (await other.request("GET", "/next")).content == b"own:/next"
            assert_consistent(other)
    assert server.targets() == [b"/hold", b"/next"]


@pytest.mark.parametrize("cut", ["eof", "reset"])
async def test_a_retried_503_whose_body_is_cut_short_is_retried_not_raised(
    nursery: trio.Nursery, parser: str, cut: str
) -> None:
    """The 503 is retried whatever its body: a body cut short by the server's close is no
    reason to give up the retry (urllib3 drains and ignores errors) nor to lose the attempt."""
    answered = 0

    async def script(conn: RawConn) -> None:
        nonlocal answered
        while (request := await conn.read_request()) is not None:
            answered += 1
            if answered == 1:
                await conn.send(b"HTTP/1.1 503 X\r\ncontent-length: 100\r\n\r\nbusy")
                if cut == "reset":
                    await conn.reset()
                return
            await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(
        server.url, parser=parser, retry=Retry(attempts=3, backoff=0.001)
    ) as client:
        with trio.fail_after(5):
            answer = await client.request("GET", "/x")
            assert answer.content == b"own:/x"
            assert [a.outcome for a in answer.attempts] == ["status 503", "status 200"]
        assert_consistent(client)


@pytest.mark.parametrize("max_bytes", ["10", -1], ids=["str", "negative"])
async def test_a_bad_max_bytes_is_a_typed_usage_error_that_keeps_the_response(
    nursery: trio.Nursery, parser: str, max_bytes: object
) -> None:
    server = await start_raw_server(nursery, chunked_body)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            async with client.stream("GET", "/s") as stream:
                with pytest.raises(trio_infer.Error, match="max_bytes"):
                    await stream.aread(max_bytes=max_bytes)  # type: ignore[arg-type]
                assert not stream.is_closed  # the caller's mistake, not the server's
                assert b"/s" in await stream.aread()
        stats = client.stats()
        assert stats.failures == 0
        assert_consistent(client)
