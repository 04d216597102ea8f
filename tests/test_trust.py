"""Regression tests for the core defects of issue 10: each one failed on the code before it.

Desync (stray bytes), replay (a POST re-sent after the server processed it), use after close,
close() from inside the block, close racing a reader, FIFO connection hand-off, body limits,
and the small ones (caller's SSLContext, sweeper tick, pool deadline per attempt, an unread
but complete stream pooled, agreeing counters, an early 413, write progress, KI protection).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from functools import partial

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import Retry, Timeouts
from trio_infer.testing import (
    Responder,
    ServerRequest,
    TestServer,
    reply,
    serve,
    storm,
)


def assert_quiet(client: trio_infer.Client) -> None:
    stats = client.stats()
    assert stats.permits_in_use == 0
    assert (stats.active, stats.connecting, stats.waiting) == (0, 0, 0)


# --- 3. stray bytes on an idle connection never become the next response ----------------


@pytest.mark.parametrize("then_close", [True, False])
async def test_stray_bytes_on_an_idle_connection_are_not_the_next_response(
    nursery: trio.Nursery, parser: str, mock_clock: trio.testing.MockClock, then_close: bool
) -> None:
    """The clock stands still, so the connection is idle for 0 s: no idle-time heuristic."""
    stray_written = trio.Event()
    keep_open = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        if request.connection_index == 0:
            await reply(b"first")(request, respond)
            await respond.send_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray")
            stray_written.set()
            if not then_close:
                await keep_open.wait()
            return
        await reply(b"second")(request, respond)

    server: TestServer = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser) as client:
        assert (await client.request("GET", "/")).content == b"first"
        await stray_written.wait()
        if then_close:
            await server.wait_until(lambda s: s.connections_open == 0)
        else:
            await trio.testing.wait_all_tasks_blocked()
        assert (await client.request("GET", "/")).content == b"second"
        assert client.stats().endpoints[0].opened == 2
        assert_quiet(client)
        keep_open.set()


# --- 4. a request the server may have processed is not re-sent ----------------------------


def _closes_on_second_request(processed: list[str]) -> Callable[..., object]:
    """Answers the first request of connection 0, reads the second, 'processes' it, and closes
    without answering: what a server that crashed mid-request (or timed out) looks like."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        if request.connection_index == 0 and len(processed) == 0 and request.target == "/work":
            processed.append(request.method)
            await respond.send_raw(b"")  # closes the connection after the handler
            return
        await reply(b"ok")(request, respond)

    return handler


@pytest.mark.parametrize(
    "retry", [Retry.disabled(), Retry()], ids=["retry-disabled", "retry-default"]
)
async def test_a_post_the_server_may_have_processed_is_not_resent(
    nursery: trio.Nursery, parser: str, retry: Retry
) -> None:
    processed: list[str] = []
    server: TestServer = await nursery.start(serve, _closes_on_second_request(processed))
    async with trio_infer.Client(server.url, parser=parser, retry=retry) as client:
        await client.request("GET", "/")
        with pytest.raises(trio_infer.RequestMayHaveBeenProcessed) as info:
            await client.request("POST", "/work", content=b"charge the card")
        assert isinstance(info.value, trio_infer.ReadError)
        assert "may have been processed" in str(info.value)
        assert [r.method for r in server.requests if r.target == "/work"] == ["POST"]
        assert_quiet(client)


async def test_a_post_is_resent_when_the_caller_opts_in(nursery: trio.Nursery, parser: str) -> None:
    processed: list[str] = []
    server: TestServer = await nursery.start(serve, _closes_on_second_request(processed))
    async with trio_infer.Client(server.url, parser=parser, retry_non_idempotent=True) as client:
        await client.request("GET", "/")
        response = await client.request("POST", "/work", content=b"x")
        assert response.content == b"ok"
        assert len(response.attempts) == 2
        assert [r.method for r in server.requests if r.target == "/work"] == ["POST", "POST"]


async def test_a_post_with_an_idempotency_key_may_be_resent(
    nursery: trio.Nursery, parser: str
) -> None:
    processed: list[str] = []
    server: TestServer = await nursery.start(serve, _closes_on_second_request(processed))
    async with trio_infer.Client(server.url, parser=parser) as client:
        await client.request("GET", "/")
        response = await client.request(
            "POST", "/work", content=b"x", headers={"Idempotency-Key": "k1"}
        )
        assert response.content == b"ok" and len(response.attempts) == 2


async def test_a_stale_resend_of_a_get_is_an_attempt_and_counted(
    nursery: trio.Nursery, parser: str
) -> None:
    processed: list[str] = []
    server: TestServer = await nursery.start(serve, _closes_on_second_request(processed))
    async with trio_infer.Client(server.url, parser=parser, retry=Retry.disabled()) as client:
        await client.request("GET", "/")
        response = await client.request("GET", "/work")
        assert response.content == b"ok"
        first, second = response.attempts
        assert "ReadError" in first.outcome and second.outcome == "status 200"
        stats = client.stats().endpoints[0]
        assert (stats.stale_retries, stats.failures) == (1, 0)


# --- 5. nothing after close ----------------------------------------------------------------


async def _start_outside(
    nursery: trio.Nursery, call: Callable[[], object], errors: list[BaseException]
) -> None:
    async def run() -> None:
        try:
            await call()  # type: ignore[misc]
        except BaseException as exc:
            errors.append(exc)
            if not isinstance(exc, Exception):
                raise

    nursery.start_soon(run)


@pytest.mark.parametrize("waiting_for", ["permit", "connection"])
async def test_calls_queued_when_the_block_exits_fail_without_a_socket(
    nursery: trio.Nursery, parser: str, waiting_for: str
) -> None:
    gate = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await gate.wait()
        await reply(b"ok")(request, respond)

    server: TestServer = await nursery.start(serve, handler)
    errors: list[BaseException] = []
    # one permit, or one connection: the second call queues for it
    limits = {"limiter": 1} if waiting_for == "permit" else {"max_connections": 1}
    # the client's block ends first: the queued call must then fail at once, without a socket
    async with (
        trio.open_nursery() as outside,
        trio_infer.Client(server.url, parser=parser, **limits) as client,  # type: ignore[arg-type]
    ):
        await _start_outside(outside, lambda: client.request("GET", "/held"), errors)
        await server.wait_until(lambda s: len(s.requests) == 1)
        await _start_outside(outside, lambda: client.request("GET", "/queued"), errors)
        await trio.testing.wait_all_tasks_blocked()
        if waiting_for == "permit":
            assert client.limiter.statistics().tasks_waiting == 1
        else:
            assert client.stats().endpoints[0].waiting_for_connection == 1
    gate.set()
    assert len(errors) == 2 and all(isinstance(e, trio_infer.ClientClosed) for e in errors)
    assert server.connections_total == 1
    assert [r.target for r in server.requests] == ["/held"]


async def test_calls_sleeping_in_retry_backoff_fail_when_the_block_exits(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    server: TestServer = await nursery.start(serve, storm(100, status=503))
    errors: list[BaseException] = []
    slow = Retry(attempts=5, backoff=30, jitter="none")
    async with (
        trio.open_nursery() as outside,
        trio_infer.Client(server.url, parser=parser, retry=slow) as client,
    ):
        await _start_outside(outside, lambda: client.request("GET", "/"), errors)
        await server.wait_until(lambda s: len(s.requests) == 1)
        await trio.testing.wait_all_tasks_blocked(cushion=0.001)
    assert len(errors) == 1 and isinstance(errors[0], trio_infer.ClientClosed)
    assert len(server.requests) == 1


async def test_calls_after_the_block_fail_at_once(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        pass
    with pytest.raises(trio_infer.ClientClosed):
        await client.request("GET", "/json")
    with pytest.raises(trio_infer.ClientClosed):
        async with client.stream("GET", "/json"):
            pass
    assert server.connections_total == 0


# --- 6. close() inside the block does not cancel the body ----------------------------------


async def test_close_inside_the_block_does_not_cancel_the_body(
    server: TestServer, parser: str
) -> None:
    reached = False
    escaped: BaseException | None = None
    try:
        async with trio_infer.Client(server.url, parser=parser) as client:
            await client.request("GET", "/json")
            client.close()
            await trio.lowlevel.checkpoint()
            with pytest.raises(trio_infer.ClientClosed):
                await client.request("GET", "/json")
            reached = True
    except BaseException as exc:  # a Cancelled would otherwise vanish into the test runner
        escaped = exc
    assert escaped is None and reached


# --- 7. closing a stream from another task only ever raises typed errors -------------------


async def test_close_from_another_task_racing_the_reader(
    nursery: trio.Nursery, parser: str
) -> None:
    body_sent = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        await respond.start(200, length=5)
        await respond.send(b"")
        await request_head_read.wait()
        await respond.send(b"hello")
        await respond.end()
        body_sent.set()

    server: TestServer = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser) as client:
        for delay in range(6):
            for _ in range(3):
                request_head_read = trio.Event()
                body_sent = trio.Event()
                async with client.stream("GET", "/") as response:
                    request_head_read.set()
                    await body_sent.wait()
                    await trio.testing.wait_all_tasks_blocked()

                    async def closer(steps: int = delay, r: trio_infer.Response = response) -> None:
                        for _ in range(steps):
                            await trio.lowlevel.checkpoint()
                        await r.aclose()

                    async def reader(r: trio_infer.Response = response) -> None:
                        with contextlib.suppress(trio_infer.StreamClosed):
                            await r.aread()

                    async with trio.open_nursery() as race:
                        race.start_soon(reader)
                        race.start_soon(closer)
                assert_quiet(client)
        assert client.stats().endpoints[0].failures == 0


# --- 8. connection-slot waits are FIFO: a returned connection goes to the first waiter ------


async def test_a_returned_connection_goes_to_the_first_waiter(
    nursery: trio.Nursery, parser: str
) -> None:
    server: TestServer = await nursery.start(serve, reply(b"ok"))
    order: list[int] = []
    async with trio_infer.Client(server.url, parser=parser, max_connections=1) as client:

        async def caller(me: int) -> None:
            for _ in range(5):
                await client.request("GET", "/", headers={"x-caller": str(me)})

        async with trio.open_nursery() as callers:
            for me in range(3):
                callers.start_soon(caller, me)
        order = [int(r.header("x-caller") or -1) for r in server.requests]
    assert sorted(order[:3]) == [0, 1, 2]
    # after the first round the connection rotates strictly: nobody takes it back twice
    assert all(order[i] == order[i + 3] for i in range(len(order) - 3)), order


# --- 9. max_body_bytes counts the body that arrived with the head ---------------------------


@pytest.mark.parametrize("size", [1025, 4096, 60000])
async def test_max_body_bytes_counts_the_body_that_came_with_the_head(
    nursery: trio.Nursery, parser: str, size: int
) -> None:
    async def head_and_body_in_one_write(request: ServerRequest, respond: Responder) -> None:
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size
        await respond.send_raw(head + b"x" * size)

    server: TestServer = await nursery.start(serve, head_and_body_in_one_write)
    async with trio_infer.Client(server.url, parser=parser, max_body_bytes=1024) as client:
        with pytest.raises(trio_infer.ResponseTooLarge):
            await client.request("GET", "/")
        assert_quiet(client)


async def test_max_body_bytes_lets_the_limit_itself_through(
    nursery: trio.Nursery, parser: str
) -> None:
    server: TestServer = await nursery.start(serve, reply(b"x" * 1024))
    async with trio_infer.Client(server.url, parser=parser, max_body_bytes=1024) as client:
        assert len((await client.request("GET", "/")).content) == 1024


# --- 14. the smaller ones ------------------------------------------------------------------


def test_the_callers_ssl_context_is_not_mutated() -> None:
    calls: list[object] = []

    class Recording(ssl.SSLContext):
        def set_alpn_protocols(self, protocols: object) -> None:
            calls.append(protocols)

    context = Recording(ssl.PROTOCOL_TLS_CLIENT)
    trio_infer.Client("https://127.0.0.1:8443", ssl_context=context)
    assert calls == []


async def test_a_tiny_per_call_timeout_does_not_speed_up_the_sweeper_for_good(
    server: TestServer, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    steps = 0

    class CountSweeps(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            nonlocal steps
            if task.name == "trio_infer sweeper":
                steps += 1

    async with trio_infer.Client(server.url, parser=parser) as client:
        await client.request("GET", "/json", timeouts=Timeouts(read=0.001))
        instrument = CountSweeps()
        trio.lowlevel.add_instrument(instrument)
        try:
            await trio.sleep(3)  # an idle connection keeps the sweeper awake
        finally:
            trio.lowlevel.remove_instrument(instrument)
        assert client.stats().idle == 1
    assert steps <= 40  # the client's own tick is 0.1 s; 0.001 s would be ~3000 steps


async def test_the_pool_timeout_counts_from_each_attempt(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Attempt 2 begins after a 2 s backoff and must wait 0.5 s for the only connection;
    a pool deadline counted from the start of the call (1 s) would have passed already."""
    release = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        if request.target == "/hold":
            await trio.sleep(1.5)
            await reply(b"held")(request, respond)
        elif len([r for r in server.requests if r.target == "/"]) == 1:
            await reply(b"busy", status=503)(request, respond)
        else:
            await reply(b"ok")(request, respond)

    server = await nursery.start(serve, handler)
    retry = Retry(attempts=2, backoff=2, jitter="none")
    async with trio_infer.Client(
        server.url, parser=parser, max_connections=1, retry=retry, timeouts=Timeouts(pool=1)
    ) as client:

        async def holder() -> None:
            await trio.sleep(1)
            await client.request("GET", "/hold")
            release.set()

        nursery.start_soon(holder)
        response = await client.request("GET", "/")
        assert response.content == b"ok" and len(response.attempts) == 2
        await release.wait()


async def test_a_complete_but_unread_stream_is_pooled(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with client.stream("GET", "/json") as response:
            await server.wait_until(lambda s: s.in_flight == 0)
            await trio.testing.wait_all_tasks_blocked()
        assert response.status == 200
        stats = client.stats().endpoints[0]
        assert (stats.idle, stats.closed_by("interrupted"), stats.responses) == (1, 0, 1)
        await client.request("GET", "/json")
        assert client.stats().endpoints[0].reused == 1


async def test_responses_and_responses_by_class_agree_after_a_retry(
    nursery: trio.Nursery, parser: str
) -> None:
    server = await nursery.start(serve, storm(1, status=503))
    async with trio_infer.Client(server.url, parser=parser, retry=Retry(backoff=0.001)) as client:
        assert (await client.request("GET", "/")).status == 200
        stats = client.stats().endpoints[0]
        assert sum(n for _, n in stats.responses_by_class) == stats.responses == 1
        assert stats.retries == 1


async def test_an_early_413_is_returned_not_hidden_behind_a_write_error(
    nursery: trio.Nursery, parser: str
) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        raise AssertionError("the body is never read by this server")

    async def early_413(stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(65536)
            if not data:
                return
            head += data
        await stream.send_all(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big!"
        )
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, early_413, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    async with trio_infer.Client(f"http://127.0.0.1:{port}", parser=parser) as client:
        response = await client.request("POST", "/upload", content=b"x" * (32 << 20))
        assert (response.status, response.content) == (413, b"too big!")
        assert_quiet(client)


async def test_the_write_timeout_is_a_limit_on_progress_not_on_the_whole_send(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    size = 32 << 20

    async def slow_reader(stream: trio.SocketStream) -> None:
        got = 0
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(65536)
        got = len(head.split(b"\r\n\r\n", 1)[1])
        while got < size:
            await trio.sleep(0.5)  # reads 1 MiB every half second: 16 s in all
            got += len(await stream.receive_some(1 << 20))
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    listeners = await nursery.start(partial(trio.serve_tcp, slow_reader, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    async with trio_infer.Client(
        f"http://127.0.0.1:{port}", parser=parser, timeouts=Timeouts(write=2)
    ) as client:
        response = await client.request("POST", "/", content=b"x" * size)
        assert response.content == b"ok"


async def test_release_paths_are_protected_from_keyboard_interrupt(
    server: TestServer, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    protected: list[bool] = []
    original = trio.CapacityLimiter.release_on_behalf_of

    def recording(self: trio.CapacityLimiter, borrower: object) -> None:
        protected.append(trio.lowlevel.currently_ki_protected())
        original(self, borrower)

    monkeypatch.setattr(trio.CapacityLimiter, "release_on_behalf_of", recording)
    async with trio_infer.Client(server.url, parser=parser) as client:
        await client.request("GET", "/json")
        async with client.stream("GET", "/sse") as response:
            async for _ in response.aiter_sse():
                break
    assert protected and all(protected), protected


# --- 9. a stream that never ends an event cannot fill memory --------------------------------


@pytest.mark.parametrize("kind", ["sse", "lines"])
async def test_an_endless_event_or_line_is_refused_not_buffered(
    nursery: trio.Nursery, parser: str, kind: str
) -> None:
    server: TestServer = await nursery.start(
        serve, reply(b"data: " + b"x" * 70_000, chunked=True, chunk_size=4096)
    )
    async with trio_infer.Client(server.url, parser=parser) as client:
        with pytest.raises(trio_infer.ResponseTooLarge, match="65536"):
            async with client.stream("GET", "/") as response:
                if kind == "sse":
                    async for _ in response.aiter_sse(max_event_bytes=65536):
                        pass
                else:
                    async for _ in response.aiter_lines(max_line_bytes=65536):
                        pass
        assert_quiet(client)
        stats = client.stats().endpoints[0]
        assert (stats.closed_by("error"), dict(stats.errors)) == (1, {"ResponseTooLarge": 1})


# --- 12. bad input to the client is a typed error, naming the value ------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"endpoints": 8000}, "8000"),
        ({"endpoints": [8000]}, "8000"),
        ({"endpoints": "http://h\u00e9st:8000"}, "xn--"),
        ({"endpoints": "http://h:8000/b\u00e4se", "headers": 5}, "headers"),
        ({"endpoints": "http://h:8000", "headers": "str"}, "headers"),
        ({"endpoints": "http://h:8000", "headers": [("a", "b", "c")]}, "header"),
        ({"endpoints": "http://h:8000", "headers": {"x-a": "1\x01"}}, "U\\+0001"),
        ({"endpoints": "http://h:8000", "headers": {"content-length": "0"}}, "content-length"),
    ],
)
def test_bad_client_arguments_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(trio_infer.ConfigError, match=match):
        trio_infer.Client(**kwargs)  # type: ignore[arg-type]
