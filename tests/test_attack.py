"""The new exchange core attacked on loopback, by a hostile server and a careless user.

Every test here is an attack on the core of issue 10: those that broke it failed first and
were fixed (each names what it broke), the others are attacks it withstood, kept as
regression guards. A hostile server here is a byte-level script (``attack_helpers``), so it
can write anything at any moment; exact moments come from events, ``wait_all_tasks_blocked``
and an instrument that acts just before a given task's next step (``BeforeStep``).
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest
import trio
import trio.testing
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trio_infer
from attack_helpers import (
    BeforeStep,
    RawConn,
    RawTLS,
    assert_settled,
    client_context,
    response,
    start_raw_server,
)
from trio_infer import KeepAlive, Retry, Timeouts


async def echo_targets(conn: RawConn) -> None:
    """Answer every request with ``own:<target>``: a body that names its request."""
    while (request := await conn.read_request()) is not None:
        await conn.send(response(b"own:" + request.target))


@pytest.fixture
async def instrument() -> AsyncIterator[BeforeStep]:
    hooks = BeforeStep()
    trio.lowlevel.add_instrument(hooks)
    try:
        yield hooks
    finally:
        trio.lowlevel.remove_instrument(hooks)


# --- TLS servers ---------------------------------------------------------------------------


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


async def serve_tls(
    nursery: trio.Nursery,
    ca: trustme.CA,
    handler: Callable[[trio.SSLStream[trio.SocketStream]], Awaitable[None]],
) -> str:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    tls = [trio.SSLListener(lst, server_context(ca), https_compatible=True) for lst in listeners]
    await nursery.start(trio.serve_listeners, handler, tls)
    return f"https://localhost:{port}"


# === 1. a response delivered to the wrong call (desync) ====================================


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_stream_closed_as_its_reader_wakes_does_not_pool_the_connection_under_it(
    nursery: trio.Nursery, parser: str, instrument: BeforeStep, method: str
) -> None:
    """The reader is woken by the last body bytes; just before it runs, another task closes
    the response. close() drains those bytes, finds the body complete and pools the
    connection, while the reader goes back to waiting on the same socket. The next call's
    wait then fails (BusyResourceError): a GET is sent twice, a POST fails with
    RequestMayHaveBeenProcessed, and had the reader run later it would read the next call's
    response as its own."""
    go = trio.Event()
    rest_sent = trio.Event()

    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target == b"/stream":
                await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
                await go.wait()
                await conn.send(b"67890")
                rest_sent.set()
            else:
                await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, script)
    reader_errors: list[BaseException] = []
    with trio.fail_after(5):
        async with trio_infer.Client(server.url, parser=parser) as client:
            async with client.stream("GET", "/stream") as stream:

                async def reader() -> None:
                    try:
                        async for _ in stream.aiter_bytes():
                            pass
                    except trio_infer.Error as exc:
                        reader_errors.append(exc)

                async with trio.open_nursery() as pair:
                    pair.start_soon(reader)
                    await trio.testing.wait_all_tasks_blocked()  # parked in pump
                    [reader_task] = pair.child_tasks
                    instrument.hooks[reader_task] = stream.close
                    go.set()
                    await rest_sent.wait()
                    await trio.testing.wait_all_tasks_blocked()
                    assert not instrument.hooks  # the close ran just before the reader's step
                    second = await client.request(method, "/second")
            assert second.content == b"own:/second"
            assert server.targets().count(b"/second") == 1
            assert all(isinstance(e, trio_infer.StreamClosed) for e in reader_errors)
            assert client.stats().endpoints[0].stale_retries == 0
            assert_settled(client)


@pytest.mark.parametrize("server_does", ["stray-bytes", "close"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_connection_handed_to_a_waiter_is_checked_when_the_waiter_uses_it(
    nursery: trio.Nursery, parser: str, instrument: BeforeStep, server_does: str, method: str
) -> None:
    """max_connections=1: B waits while A's stream holds the connection. A's end hands the
    connection to B (checked: nothing pending). Before B runs, the server writes a stray
    response on it (or closes it). B then sends on it anyway: it gets the stray bytes as its
    response, or (after the close) a GET is sent twice and a POST fails with
    RequestMayHaveBeenProcessed although the close was visible before anything was sent."""
    server = await start_raw_server(nursery, echo_targets)
    outcome: list[object] = []
    with trio.fail_after(5):
        async with trio_infer.Client(server.url, parser=parser, max_connections=1) as client:

            async def waiter() -> None:
                try:
                    outcome.append((await client.request(method, "/b")).content)
                except trio_infer.Error as exc:
                    outcome.append(exc)

            def server_acts() -> None:
                sock = server.connections[0].stream.socket
                if server_does == "stray-bytes":
                    os.write(sock.fileno(), response(b"STRAY"))
                else:
                    sock.shutdown(socket.SHUT_WR)

            async with (
                trio.open_nursery() as waiters,
                client.stream("GET", "/a") as first,
            ):
                waiters.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                assert client.stats().endpoints[0].waiting_for_connection == 1
                [waiter_task] = waiters.child_tasks
                instrument.hooks[waiter_task] = server_acts
                assert await first.aread() == b"own:/a"  # ends A: hands the connection to B
            assert not instrument.hooks
            assert outcome == [b"own:/b"]
            assert server.targets() == [b"/a", b"/b"]
            assert_settled(client)


async def test_a_stray_tls_record_is_not_the_next_response(
    nursery: trio.Nursery, parser: str, ca: trustme.CA
) -> None:
    """The server sends a response and a stray one as two TLS records in one TCP segment.
    The client's TLS layer pulls both off the socket and decrypts the first: the socket is
    empty, so a reuse check that only polls the socket passes, and the next call's response
    is the stray record (it was, before has_expired() looked into the TLS buffers)."""
    context = server_context(ca)
    answered = 0

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal answered
        tls = RawTLS(stream, context)
        try:
            await tls.handshake()
            while (head := await tls.read_head()) is not None:
                answered += 1
                target = head.split(b" ")[1]
                if answered == 1:
                    await tls.send_records(response(b"first"), response(b"STRAY"))
                else:
                    await tls.send_records(response(b"own:" + target))
        except (trio.BrokenResourceError, ssl.SSLError):
            pass

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    url = f"https://localhost:{listeners[0].socket.getsockname()[1]}"
    with trio.fail_after(5):
        async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
            assert (await client.request("GET", "/one")).content == b"first"
            assert (await client.request("GET", "/two")).content == b"own:/two"


# Guards: stray bytes that plain connections already catch.


async def test_a_response_written_twice_in_one_segment_is_not_the_next_response(
    nursery: trio.Nursery, parser: str
) -> None:
    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            stray = response(b"STRAY") if request.target == b"/one" else b""
            await conn.send(response(b"own:" + request.target) + stray)

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            assert (await client.request("GET", "/one")).content == b"own:/one"
            assert (await client.request("GET", "/two")).content == b"own:/two"
            async with client.stream("GET", "/one") as stream:  # unread: drained on close
                await server.wait_until(lambda s: len(s.requests) == 3)
                await trio.testing.wait_all_tasks_blocked()
            assert stream.status == 200
            assert (await client.request("GET", "/three")).content == b"own:/three"
        assert_settled(client)


async def test_a_body_sent_to_head_is_not_the_next_response(
    nursery: trio.Nursery, parser: str
) -> None:
    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.method == b"HEAD":
                await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" + response(b""))
            else:
                await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            try:
                head = await client.request("HEAD", "/")
            except trio_infer.RemoteProtocolError:
                pass  # refusing the bytes after the head is as good as never reading them
            else:
                assert (head.status, head.content) == (200, b"")
            await trio.testing.wait_all_tasks_blocked()
            assert (await client.request("GET", "/two")).content == b"own:/two"
        assert_settled(client)


async def test_the_rest_of_a_large_retried_503_is_not_the_next_response(
    nursery: trio.Nursery, parser: str
) -> None:
    """A 503 body larger than what the retry reads before reusing the connection."""
    answered = 0

    async def script(conn: RawConn) -> None:
        nonlocal answered
        while (request := await conn.read_request()) is not None:
            answered += 1
            if answered == 1:
                await conn.send(response(b"B" * 200_000, 503))
            else:
                await conn.send(response(b"own:" + request.target))

    server = await start_raw_server(nursery, script)
    retry = Retry(backoff=0.001)
    async with trio_infer.Client(server.url, parser=parser, retry=retry) as client:
        with trio.fail_after(5):
            assert (await client.request("GET", "/busy")).content == b"own:/busy"
            assert (await client.request("GET", "/two")).content == b"own:/two"
        assert_settled(client)


# === 2. sending what must not be sent (replay) =============================================


async def test_a_tls_post_whose_head_reached_the_server_is_not_resent(
    nursery: trio.Nursery, parser: str, ca: trustme.CA
) -> None:
    heads: list[bytes] = []

    async def read_head_then_reset(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some(65536)
            heads.append(head.split(b"\r\n", 1)[0])
            raw = stream.transport_stream.socket
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    url = await serve_tls(nursery, ca, read_head_then_reset)
    async with trio_infer.Client(url, ssl_context=client_context(ca), parser=parser) as client:
        with trio.fail_after(10), pytest.raises(trio_infer.TransportError):
            await client.request("POST", "/charge", content=b"x" * (32 << 20))
        assert heads == [b"POST /charge HTTP/1.1"]
        assert_settled(client)


async def test_a_plain_post_whose_head_reached_the_server_is_not_resent(
    nursery: trio.Nursery, parser: str
) -> None:
    async def read_head_then_reset(conn: RawConn) -> None:
        await conn.read_head_only()
        await conn.reset()

    server = await start_raw_server(nursery, read_head_then_reset)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5), pytest.raises(trio_infer.TransportError):
            await client.request("POST", "/charge", content=b"x" * (32 << 20))
        assert server.targets() == [b"/charge"]
        assert_settled(client)


async def test_an_early_answer_then_a_reset_during_an_upload_is_one_request_and_typed(
    nursery: trio.Nursery, parser: str
) -> None:
    """The server answers 413 before reading the body, then resets: the answer may be lost
    with the reset, but the POST is never sent again and nothing is held."""

    async def answer_early_then_reset(conn: RawConn) -> None:
        await conn.read_head_only()
        await conn.send(response(b"too big", 413, b"connection: close\r\n"))
        await conn.reset()

    server = await start_raw_server(nursery, answer_early_then_reset)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            try:
                answer = await client.request("POST", "/upload", content=b"x" * (32 << 20))
            except trio_infer.TransportError:
                pass
            else:
                assert (answer.status, answer.content) == (413, b"too big")
        assert server.targets() == [b"/upload"]
        assert_settled(client)


# === 3. only typed errors =================================================================


@pytest.mark.parametrize(
    "value",
    [
        b"\xb2",
        b"\xb9\xb3",
        b"Fri, 31 Dec 9999999999999999999 23:59:59 GMT",
        b"Fri, 31 Dec 1999 23:59:59 +9999999999999999",
    ],
    ids=["superscript-two", "superscripts", "huge-year", "huge-offset"],
)
async def test_a_hostile_retry_after_is_ignored_not_raised(
    nursery: trio.Nursery, parser: str, value: bytes
) -> None:
    answered = 0

    async def script(conn: RawConn) -> None:
        nonlocal answered
        while await conn.read_request() is not None:
            answered += 1
            extra = b"retry-after: " + value + b"\r\n"
            await conn.send(response(b"busy", 503, extra) if answered == 1 else response(b"ok"))

    server = await start_raw_server(nursery, script)
    retry = Retry(backoff=0.001)
    async with trio_infer.Client(server.url, parser=parser, retry=retry) as client:
        with trio.fail_after(5):
            assert (await client.request("GET", "/")).content == b"ok"
        assert_settled(client)


async def test_cancelling_a_blocked_upload_raises_cancelled_not_a_group(
    nursery: trio.Nursery, parser: str
) -> None:
    head_read = trio.Event()

    async def read_head_then_stall(conn: RawConn) -> None:
        await conn.read_head_only()
        head_read.set()
        await trio.sleep_forever()  # the body is never read: the upload blocks

    server = await start_raw_server(nursery, read_head_then_stall)
    raised: list[type[BaseException]] = []
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            with trio.CancelScope() as scope:

                async def cancel_when_blocked() -> None:
                    await head_read.wait()
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()

                nursery.start_soon(cancel_when_blocked)
                try:
                    await client.request("POST", "/", content=b"x" * (32 << 20))
                except BaseException as exc:
                    raised.append(type(exc))
                    raise
            assert raised == [trio.Cancelled]
        assert_settled(client)


@pytest.mark.parametrize(
    "misuse",
    ["request-before-enter", "enter-twice", "enter-after-close", "aread-after-iter", "iter-twice"],
)
async def test_misusing_a_response_or_the_client_raises_a_typed_error(
    nursery: trio.Nursery, parser: str, misuse: str
) -> None:
    server = await start_raw_server(nursery, echo_targets)
    client = trio_infer.Client(server.url, parser=parser)
    with pytest.raises(trio_infer.Error):
        if misuse == "request-before-enter":
            await client.request("GET", "/")
        elif misuse == "enter-after-close":
            async with client:
                pass
            async with client:
                pass
        else:
            async with client:
                if misuse == "enter-twice":
                    async with client:
                        pass
                async with client.stream("GET", "/") as stream:
                    async for _ in stream.aiter_bytes():
                        break
                    if misuse == "aread-after-iter":
                        await stream.aread()
                    else:
                        stream.aiter_bytes()


async def test_eof_at_every_offset_of_a_response_is_a_typed_error_and_leaks_nothing(
    nursery: trio.Nursery, parser: str
) -> None:
    whole = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nx-a: b\r\n\r\n0123456789"
    cut = [0]

    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target == b"/cut":
                await conn.send(whole[: cut[0]])
                return
            await conn.send(response(b"fine"))

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser, retry=Retry.disabled()) as client:
        with trio.fail_after(10):
            for cut[0] in range(len(whole)):
                for streaming in (False, True):
                    with pytest.raises(trio_infer.TransportError):
                        if streaming:
                            async with client.stream("GET", "/cut") as stream:
                                await stream.aread()
                        else:
                            await client.request("GET", "/cut")
                    assert_settled(client)
                    assert (await client.request("GET", "/ok")).content == b"fine"
        stats = client.stats()
        assert stats.opened == stats.closed + stats.idle


@pytest.mark.parametrize("status", [b"000", b"099", b"600", b"999"])
async def test_a_status_outside_100_599_is_refused_and_the_counters_agree(
    nursery: trio.Nursery, parser: str, status: bytes
) -> None:
    async def script(conn: RawConn) -> None:
        while await conn.read_request() is not None:
            await conn.send(b"HTTP/1.1 " + status + b" X\r\ncontent-length: 2\r\n\r\nok")

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5), pytest.raises(trio_infer.RemoteProtocolError):
            await client.request("GET", "/")
        stats = client.stats().endpoints[0]
        assert stats.responses == sum(n for _, n in stats.responses_by_class) == 0
        assert_settled(client)


async def test_an_endless_stream_of_interim_responses_is_bounded(
    nursery: trio.Nursery, parser: str
) -> None:
    async def flood(conn: RawConn) -> None:
        await conn.read_request()
        while await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 50):
            pass

    server = await start_raw_server(nursery, flood)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(10), pytest.raises(trio_infer.TransportError):
            await client.request("GET", "/")
        assert_settled(client)


# === 4. closing, cancelling, waiting: nothing leaks =======================================


@pytest.mark.parametrize("what", ["cancel", "close-client"])
@pytest.mark.parametrize("grant", ["pooled-connection", "fresh-slot"])
async def test_a_waiter_interrupted_while_a_connection_is_on_its_way_leaks_nothing(
    nursery: trio.Nursery, parser: str, what: str, grant: str
) -> None:
    """A's end hands B (queued for the only connection) its grant; B is cancelled, or the
    client closes, before B runs."""

    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            close = grant == "fresh-slot" and request.target == b"/a"
            extra = b"connection: close\r\n" if close else b""
            await conn.send(response(b"own:" + request.target, extra=extra))
            if close:
                return

    server = await start_raw_server(nursery, script)
    outcome: list[object] = []
    client = trio_infer.Client(server.url, parser=parser, max_connections=1)
    with trio.fail_after(5):
        async with trio.open_nursery() as outside, client:
            b_scope = trio.CancelScope()

            async def waiter() -> None:
                try:
                    with b_scope:
                        outcome.append((await client.request("GET", "/b")).content)
                except trio_infer.Error as exc:
                    outcome.append(exc)

            async with client.stream("GET", "/a") as first:
                outside.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                assert client.stats().endpoints[0].waiting_for_connection == 1
                await first.aread()
            if what == "cancel":
                b_scope.cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert outcome == []
                assert_settled(client)
                assert (await client.request("GET", "/c")).content == b"own:/c"
            else:
                client.close()
        stats = client.stats()
    if what == "close-client":
        assert len(outcome) == 1 and isinstance(outcome[0], trio_infer.ClientClosed)
    assert (stats.permits_in_use, stats.open_connections) == (0, 0)
    assert stats.opened == stats.closed
    assert b"/b" not in server.targets()


@pytest.mark.parametrize("bound", ["connections", "permits"])
async def test_a_request_inside_a_stream_that_holds_the_only_slot_times_out(
    nursery: trio.Nursery, parser: str, bound: str
) -> None:
    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target == b"/sse":
                await conn.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                await conn.send(b"9\r\ndata: 1\n\n\r\n")
                await conn.wait_eof()
                return
            await conn.send(response(b"fine"))

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(
        server.url,
        parser=parser,
        timeouts=Timeouts(pool=0.2),
        max_connections=1 if bound == "connections" else None,
        limiter=1 if bound == "permits" else 256,
    ) as client:
        with trio.fail_after(5):
            async with client.stream("GET", "/sse") as stream:
                async for _ in stream.aiter_sse():
                    with pytest.raises(trio_infer.PoolTimeout):
                        await client.request("GET", "/inner")
                    break
        assert_settled(client)
        assert b"/inner" not in server.targets()


@pytest.mark.parametrize(
    "policy",
    [KeepAlive.off(), KeepAlive.recycle(max_requests=2), KeepAlive.on(max_idle=0)],
    ids=["off", "recycle", "no-idle"],
)
@pytest.mark.parametrize("endpoints", [1, 2])
async def test_keepalive_policies_with_queued_callers_answer_every_call_its_own(
    nursery: trio.Nursery, parser: str, policy: KeepAlive, endpoints: int
) -> None:
    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            await trio.lowlevel.checkpoint()
            close = b"connection: close" in request.head.lower()
            extra = b"connection: close\r\n" if close else b""
            await conn.send(response(b"own:" + request.target, extra=extra))
            if close:
                return

    servers = [await start_raw_server(nursery, script) for _ in range(endpoints)]
    async with trio_infer.Client(
        [s.url for s in servers], parser=parser, max_connections=1, limiter=6, keepalive=policy
    ) as client:

        async def caller(me: int) -> None:
            for n in range(4):
                target = f"/{me}/{n}"
                assert (await client.request("GET", target)).content == f"own:{target}".encode()

        with trio.fail_after(10):
            async with trio.open_nursery() as callers:
                for me in range(6):
                    callers.start_soon(caller, me)
        assert_settled(client)
        assert client.stats().open_connections <= 1
        assert sum(len(s.requests) for s in servers) == 24


async def test_two_endpoints_capped_at_one_connection_each_answer_every_call_its_own(
    nursery: trio.Nursery, parser: str
) -> None:
    servers = [await start_raw_server(nursery, echo_targets) for _ in range(2)]
    async with trio_infer.Client(
        [s.url for s in servers],
        parser=parser,
        max_connections=3,
        max_connections_per_endpoint=1,
        limiter=8,
    ) as client:

        async def caller(me: int) -> None:
            for n in range(4):
                target = f"/{me}/{n}"
                assert (await client.request("GET", target)).content == f"own:{target}".encode()

        with trio.fail_after(10):
            async with trio.open_nursery() as callers:
                for me in range(8):
                    callers.start_soon(caller, me)
        assert_settled(client)
        assert all(e.opened == 1 for e in client.stats().endpoints)


@pytest.mark.parametrize("how", ["break", "raise", "cancel", "close-then-iterate"])
@pytest.mark.parametrize("at", [0, 2])
async def test_leaving_a_stream_early_in_every_way_leaks_nothing(
    nursery: trio.Nursery, parser: str, how: str, at: int
) -> None:
    async def script(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target != b"/s":
                await conn.send(response(b"own:" + request.target))
                continue
            await conn.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(4):
                await conn.send(b"3\r\nab%d\r\n" % i)
                await trio.lowlevel.checkpoint()
            await conn.send(b"0\r\n\r\n")

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser) as client:
        with trio.fail_after(5):
            with trio.CancelScope() as scope:
                try:
                    async with client.stream("GET", "/s") as stream:
                        index = 0
                        async for _ in stream.aiter_bytes():
                            if index == at:
                                if how == "break":
                                    break
                                if how == "raise":
                                    raise KeyError("the caller's own")
                                if how == "cancel":
                                    scope.cancel()
                                    await trio.lowlevel.checkpoint()
                                await stream.aclose()
                            index += 1
                except KeyError:
                    assert how == "raise"
                except trio_infer.StreamClosed:
                    assert how == "close-then-iterate"
            assert_settled(client)
            assert (await client.request("GET", "/x")).content == b"own:/x"
            assert_settled(client)


async def test_a_response_used_after_the_client_closed_raises_typed_errors(
    nursery: trio.Nursery, parser: str
) -> None:
    async def script(conn: RawConn) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
        await conn.wait_eof()

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with client.stream("GET", "/") as stream:
            client.close()
            client.close()
            with pytest.raises(trio_infer.StreamClosed):
                await stream.aread()
            with pytest.raises(trio_infer.StreamClosed):
                async for _ in stream.aiter_bytes():
                    pass
        with pytest.raises(trio_infer.ClientClosed):
            await client.request("GET", "/")
        assert_settled(client)
    stats = client.stats()
    assert (stats.opened, stats.closed, stats.open_connections) == (1, 1, 0)


async def test_reading_a_stream_after_the_client_closed_says_the_client_closed(
    nursery: trio.Nursery, parser: str
) -> None:
    async def script(conn: RawConn) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
        await conn.wait_eof()

    server = await start_raw_server(nursery, script)
    async with (
        trio_infer.Client(server.url, parser=parser) as client,
        client.stream("GET", "/") as stream,
    ):
        client.close()
        with pytest.raises(trio_infer.ClientClosed):
            await stream.aread()


async def test_closing_the_client_from_another_task_mid_body_raises_client_closed(
    nursery: trio.Nursery, parser: str
) -> None:
    started = trio.Event()

    async def script(conn: RawConn) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
        started.set()
        await conn.wait_eof()

    server = await start_raw_server(nursery, script)
    async with trio_infer.Client(server.url, parser=parser) as client:

        async def closer() -> None:
            await started.wait()
            await trio.testing.wait_all_tasks_blocked()
            client.close()

        nursery.start_soon(closer)
        with trio.fail_after(5), pytest.raises(trio_infer.ClientClosed):
            await client.request("GET", "/")
        assert_settled(client)
        assert client.stats().endpoints[0].closed_by("shutdown") == 1


# === 5. timeouts, attempts and statistics =================================================


async def test_the_tls_write_timeout_is_a_limit_on_progress(
    nursery: trio.Nursery, parser: str, ca: trustme.CA, autojump_clock: trio.testing.MockClock
) -> None:
    """The server reads 1 MiB every half second; the client must not time out while it makes
    progress (it did when a TLS send was one send_all under one deadline)."""
    size = 8 << 20

    async def slow_reader(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            got = len(data.split(b"\r\n\r\n", 1)[1])
            while got < size:
                await trio.sleep(0.5)  # 1 MiB every half second: 4 s in all
                target = got + (1 << 20)
                while got < min(target, size):
                    got += len(await stream.receive_some(1 << 20))
            await stream.send_all(response(b"ok"))
        except trio.BrokenResourceError:
            pass

    url = await serve_tls(nursery, ca, slow_reader)
    async with trio_infer.Client(
        url, ssl_context=client_context(ca), parser=parser, timeouts=Timeouts(write=2)
    ) as client:
        assert (await client.request("POST", "/", content=b"x" * size)).content == b"ok"


@pytest.mark.parametrize("sweeper", ["parked", "awake"])
async def test_a_tiny_per_call_read_timeout_fires_on_time(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock, sweeper: str
) -> None:
    async def stall_on_slow(conn: RawConn) -> None:
        while (request := await conn.read_request()) is not None:
            if request.target == b"/slow":
                await conn.wait_eof()
                return
            await conn.send(response(b"ok"))

    server = await start_raw_server(nursery, stall_on_slow)
    async with trio_infer.Client(server.url, parser=parser) as client:
        if sweeper == "awake":  # an idle connection keeps the sweeper awake
            await client.request("GET", "/")
        start = trio.current_time()
        with pytest.raises(trio_infer.ReadTimeout):
            await client.request("GET", "/slow", timeouts=Timeouts(read=0.01))
        # a tenth of the limit is the sweeper's promise; 0.1 s is the client's own tick
        assert trio.current_time() - start <= 0.01 + 0.002


async def test_a_total_timeout_after_retries_reports_the_attempts(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    async def always_503(conn: RawConn) -> None:
        while await conn.read_request() is not None:
            await conn.send(response(b"busy", 503))

    server = await start_raw_server(nursery, always_503)
    retry = Retry(attempts=5, backoff=10, jitter="none")
    async with trio_infer.Client(server.url, parser=parser, retry=retry) as client:
        with pytest.raises(trio_infer.TotalTimeout) as info:
            await client.request("GET", "/", timeouts=Timeouts(total=15))
        assert [a.outcome for a in info.value.attempts][:2] == ["status 503", "status 503"]


async def test_pool_timeouts_are_counted_alike_whatever_was_waited_for(
    nursery: trio.Nursery, parser: str
) -> None:
    gate = trio.Event()

    async def gated(conn: RawConn) -> None:
        while await conn.read_request() is not None:
            await gate.wait()
            await conn.send(response(b"ok"))

    server = await start_raw_server(nursery, gated)
    limiter = trio.CapacityLimiter(1)
    async with (
        trio_infer.Client(server.url, parser=parser, max_connections=1) as a,
        trio_infer.Client(server.url, parser=parser, limiter=limiter) as b,
        trio.open_nursery() as holder,
    ):
        try:
            holder.start_soon(a.request, "GET", "/held")
            await server.wait_until(lambda s: len(s.requests) == 1)
            with pytest.raises(trio_infer.PoolTimeout):  # waiting for the connection slot
                await a.request("GET", "/", timeouts=Timeouts(pool=0.05))
            async with limiter:
                with pytest.raises(trio_infer.PoolTimeout):  # waiting for the permit
                    await b.request("GET", "/", timeouts=Timeouts(pool=0.05))
        finally:
            gate.set()
    slot, permit = a.stats().endpoints[0], b.stats().endpoints[0]
    assert (permit.failures, permit.errors) == (slot.failures, slot.errors)


# === 6. the property: a hostile server, a careless application ============================


class Steps(trio.abc.Instrument):
    """Cancel a call's scope before its n-th step; close the client before the run's n-th
    step (of any task)."""

    def __init__(self) -> None:
        self.plans: dict[trio.lowlevel.Task, tuple[int, trio.CancelScope]] = {}
        self.steps: dict[trio.lowlevel.Task, int] = {}
        self.global_plan: tuple[int, Callable[[], object]] | None = None
        self.global_steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.global_steps += 1
        plan = self.global_plan
        if plan is not None and self.global_steps == plan[0]:
            self.global_plan = None
            plan[1]()
        mine = self.plans.get(task)
        if mine is not None:
            count = self.steps[task] = self.steps.get(task, 0) + 1
            if count == mine[0]:
                mine[1].cancel()


def hostile_server() -> Callable[[RawConn], Awaitable[None]]:
    """A server that behaves as the request's first path segment says; every body it sends
    names the request's target, so an answer given to the wrong call shows."""
    answered_503: set[bytes] = set()

    async def hostile(conn: RawConn) -> None:
        while (request := await conn.read_head_only()) is not None:
            target = request.target
            kind = target.split(b"/")[1]
            if kind.startswith(b"early"):  # answer before reading the body, close or reset
                await conn.send(response(b"body:" + target, 413, b"connection: close\r\n"))
                if kind == b"earlyrst":
                    await conn.reset()
                return
            if not await conn.skip_body(request):
                return
            if kind == b"big":
                body = b"body:" + target + b"." * 70000
                await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
                for i in range(0, len(body), 16384):
                    await conn.send(body[i : i + 16384])
            elif kind == b"sse":
                await conn.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                for _ in range(4):
                    piece = b"data: " + target + b"\n\n"
                    await conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await trio.lowlevel.checkpoint()
                await conn.send(b"0\r\n\r\n")
            elif kind == b"503" and target not in answered_503:
                answered_503.add(target)
                await conn.send(response(b"busy:" + target, 503, b"retry-after: 0\r\n"))
            elif kind == b"interim":
                await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                await trio.lowlevel.checkpoint()
                await conn.send(b"HTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\n" + response(target))
            elif kind == b"slowhead":
                data = response(b"body:" + target)
                for i in range(0, len(data), 7):
                    await conn.send(data[i : i + 7])
                    await trio.lowlevel.checkpoint()
            elif kind == b"hang":
                await conn.wait_eof()
                return
            elif kind == b"stray":
                # its own answer and one nobody asked for, written before the connection can
                # be reused: never to be read as the next call's response. (Bytes written
                # after the reuse check, while the next request is in flight, cannot be told
                # from its answer by any HTTP/1.1 client; see _pool.py rule 4.)
                await conn.send(response(b"body:" + target) + response(b"STRAY"))
            elif kind == b"drop":
                return
            elif kind == b"reset":
                await conn.reset()
                return
            else:  # ok, closeafter, closeidle, and 503 the second time
                close = kind == b"closeafter"
                extra = b"connection: close\r\n" if close else b""
                await conn.send(response(b"body:" + target, extra=extra))
                if close:
                    return
                if kind == b"closeidle":
                    await trio.lowlevel.checkpoint()
                    return

    return hostile


KINDS = ["ok", "big", "sse", "503", "interim", "slowhead", "hang", "drop", "reset"]
KINDS += ["closeafter", "closeidle", "early", "earlyrst", "stray"]
hostile_calls = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from(["GET", "POST"]),
        st.booleans(),  # stream()
        st.none() | st.integers(1, 25),  # the caller is cancelled before this step
        st.none() | st.integers(0, 8),  # a sibling closes the stream after this many checkpoints
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    calls=hostile_calls,
    parser=st.sampled_from(["httptools", "h11"]),
    permits=st.integers(1, 4),
    max_connections=st.sampled_from([None, 1, 2]),
    endpoints=st.integers(1, 2),
    policy=st.sampled_from(["on", "off", "recycle"]),
    close_at=st.none() | st.integers(1, 400),
)
async def test_a_hostile_server_and_a_careless_application_get_typed_errors_and_own_answers(
    calls: list[tuple[str, str, bool, int | None, int | None]],
    parser: str,
    permits: int,
    max_connections: int | None,
    endpoints: int,
    policy: str,
    close_at: int | None,
) -> None:
    """Whatever the server does and whenever callers are cancelled, streams closed by
    siblings or the client closed: only typed errors (or the caller's own Cancelled), every
    answer the one to its own request, nothing held or opened after the end."""
    steps = Steps()
    untyped: list[str] = []
    desync: list[tuple[str, bytes]] = []
    keepalive = {
        "on": KeepAlive.on(),
        "off": KeepAlive.off(),
        "recycle": KeepAlive.recycle(max_requests=2),
    }[policy]
    trio.lowlevel.add_instrument(steps)
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as servers:
                script = hostile_server()
                hosts = [await start_raw_server(servers, script) for _ in range(endpoints)]
                client = trio_infer.Client(
                    [h.url for h in hosts],
                    parser=parser,
                    limiter=trio.CapacityLimiter(permits),
                    max_connections=max_connections,
                    keepalive=keepalive,
                    retry=Retry(attempts=3, backoff=0.001),
                    timeouts=Timeouts(read=0.3),
                )
                remaining = len(calls)
                all_done = trio.Event()

                async def call(
                    index: int,
                    kind: str,
                    method: str,
                    streaming: bool,
                    cancel_at: int | None,
                    close_after: int | None,
                ) -> None:
                    nonlocal remaining
                    target = f"/{kind}/{index}"
                    body = b"x" * (3 << 20) if kind.startswith("early") else None
                    try:
                        with trio.CancelScope() as scope:
                            if cancel_at is not None:
                                steps.plans[trio.lowlevel.current_task()] = (cancel_at, scope)
                            if streaming:
                                async with client.stream(method, target, content=body) as r:

                                    async def closer(r: trio_infer.Response = r) -> None:
                                        for _ in range(close_after or 0):
                                            await trio.lowlevel.checkpoint()
                                        r.close()

                                    async with trio.open_nursery() as pair:
                                        if close_after is not None:
                                            pair.start_soon(closer)
                                        data = b"".join([c.data async for c in r.aiter_bytes()])
                            else:
                                data = (await client.request(method, target, content=body)).content
                            if target.encode() not in data:
                                desync.append((target, data[:60]))
                    except BaseExceptionGroup as group:
                        _, rest = group.split((trio_infer.Error, trio.Cancelled))
                        if rest is not None:
                            untyped.append(repr(rest))
                    except trio_infer.Error:
                        pass
                    except Exception as exc:
                        untyped.append(repr(exc))
                    finally:
                        remaining -= 1
                        if not remaining:
                            all_done.set()

                async with trio.open_nursery() as application:
                    async with client:
                        if close_at is not None:
                            steps.global_steps = 0
                            steps.global_plan = (close_at, client.close)
                        for index, plan in enumerate(calls):
                            application.start_soon(call, index, *plan)
                        await all_done.wait()
                    opened_at_close = client.stats().opened
                steps.plans.clear()
                steps.global_plan = None
                assert not untyped, untyped
                assert not desync, desync
                stats = client.stats()
                assert stats.permits_in_use == 0
                assert (stats.active, stats.connecting, stats.open_connections) == (0, 0, 0)
                assert stats.opened == stats.closed == opened_at_close
                # the server may accept a connection after the close (the kernel completed it
                # before), but never one the client did not open before it
                assert sum(len(h.connections) for h in hosts) <= opened_at_close
                for e in stats.endpoints:
                    assert (e.waiting_for_permit, e.waiting_for_connection) == (0, 0)
                    assert sum(n for _, n in e.responses_by_class) == e.responses
                servers.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
