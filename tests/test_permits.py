"""Permits: FIFO, shared bounds, and release on every path, cancellation included."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import trio_infer
from helpers import half_body_then_hold, stall
from trio_infer.testing import Responder, ServerRequest, TestServer, open_server, serve


def assert_released(client: trio_infer.Client, limiter: trio.CapacityLimiter | None = None) -> None:
    stats = client.stats()
    assert (limiter or client.limiter).borrowed_tokens == 0
    assert (stats.active, stats.connecting, stats.waiting) == (0, 0, 0)
    # every open connection is an idle one: no slot is held by a connection nobody owns
    assert stats.open_connections == stats.idle


async def test_excess_callers_wait_in_fifo_order(nursery: trio.Nursery, parser: str) -> None:
    gate = trio.Event()

    async def handler(request: ServerRequest, respond: Responder) -> None:
        if request.path == "/first":
            await gate.wait()
        body = request.path.encode()
        await respond.start(200, length=len(body))
        await respond.send(body)
        await respond.end()

    server = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, parser=parser, limiter=1) as client:
        async with trio.open_nursery() as callers:
            callers.start_soon(client.request, "GET", "/first")
            await server.wait_until(lambda s: s.in_flight == 1)
            for i in range(10):
                callers.start_soon(client.request, "GET", f"/{i}")
                await trio.testing.wait_all_tasks_blocked()  # caller i is queued before i+1 starts
            assert client.stats().endpoints[0].waiting_for_permit == 10
            gate.set()
        assert [r.path for r in server.requests] == ["/first"] + [f"/{i}" for i in range(10)]
        assert_released(client)


async def test_shared_limiter_bounds_server_concurrency_across_clients(
    nursery: trio.Nursery, parser: str
) -> None:
    async def handler(request: ServerRequest, respond: Responder) -> None:
        # Yield a few times so that in-flight requests overlap as much as the bound allows.
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        await respond.start(200, length=2)
        await respond.send(b"ok")
        await respond.end()

    server = await nursery.start(serve, handler)
    limiter = trio.CapacityLimiter(5)
    async with (
        trio_infer.Client(server.url, parser=parser, limiter=limiter) as a,
        trio_infer.Client(server.url, parser=parser, limiter=limiter) as b,
        trio_infer.Client(server.url, parser=parser, limiter=limiter) as c,
    ):
        async with trio.open_nursery() as callers:
            for client in (a, b, c):
                for _ in range(40):
                    callers.start_soon(client.request, "GET", "/")
        assert len(server.requests) == 120
        assert server.max_in_flight == 5  # reached, never exceeded
        for client in (a, b, c):
            assert_released(client, limiter)


async def test_released_on_success_and_on_http_error(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser, limiter=2) as client:
        await client.request("GET", "/json")
        assert_released(client)
        response = await client.request("GET", "/status/500")
        with pytest.raises(trio_infer.HTTPStatusError):
            response.raise_for_status()
        assert_released(client)


async def test_released_on_cancel_while_waiting_for_a_permit(
    server: TestServer, parser: str
) -> None:
    limiter = trio.CapacityLimiter(1)
    async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as client:
        await limiter.acquire()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as inner:
                inner.start_soon(client.request, "GET", "/json")
                await trio.testing.wait_all_tasks_blocked()
                assert limiter.statistics().tasks_waiting == 1
                scope.cancel()
        limiter.release()
        assert_released(client)
        assert server.requests == []


async def test_released_on_cancel_mid_body(nursery: trio.Nursery, parser: str) -> None:
    body_started = trio.Event()
    server = await nursery.start(serve, half_body_then_hold(body_started))
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with trio.open_nursery() as inner:
            inner.start_soon(client.request, "GET", "/")
            await body_started.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert client.limiter.borrowed_tokens == 1
            inner.cancel_scope.cancel()
        assert_released(client)
        assert client.stats().endpoints[0].closed_by("interrupted") == 1
        await server.wait_until(lambda s: s.connections_open == 0)


async def test_released_when_breaking_out_of_aiter_sse(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        async with client.stream("GET", "/sse", params={"n": 50, "gap": 1}) as response:
            async for event in response.aiter_sse():
                assert json.loads(event.data)["index"] == 0
                break
            assert client.limiter.borrowed_tokens == 1  # the stream is still open here
        assert_released(client)
        stats = client.stats().endpoints[0]
        assert (stats.idle, stats.closed_by("interrupted")) == (
            0,
            1,
        )  # its framing is unknown: closed


async def test_released_when_an_exception_leaves_the_stream_block(
    server: TestServer, parser: str
) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        with pytest.raises(ZeroDivisionError):
            async with client.stream("GET", "/sse", params={"n": 50, "gap": 1}) as response:
                async for _ in response.aiter_sse():
                    1 / 0  # noqa: B018
        assert_released(client)


async def test_stream_closed_from_another_task(server: TestServer, parser: str) -> None:
    async with trio_infer.Client(server.url, parser=parser) as client:
        first = trio.Event()
        async with client.stream("GET", "/sse", params={"n": 50, "gap": 60}) as response:

            async def closer() -> None:
                await first.wait()
                await trio.testing.wait_all_tasks_blocked()  # the reader is blocked in a receive
                await response.aclose()
                assert client.limiter.borrowed_tokens == 0  # returned by the closing task

            async with trio.open_nursery() as inner:
                inner.start_soon(closer)
                with pytest.raises(trio_infer.StreamClosed):
                    async for _ in response.aiter_sse():
                        first.set()
        assert_released(client)


async def test_released_on_timeout(
    nursery: trio.Nursery, parser: str, autojump_clock: trio.testing.MockClock
) -> None:
    server = await nursery.start(serve, stall)
    async with trio_infer.Client(
        server.url, parser=parser, timeouts=trio_infer.Timeouts(read=1)
    ) as client:
        for _ in range(3):
            with pytest.raises(trio_infer.ReadTimeout):
                await client.request("GET", "/")
        assert_released(client)


async def test_permit_is_not_held_while_the_caller_waits_elsewhere(
    server: TestServer, parser: str
) -> None:
    """request() returns with the permit back: it covers only the network exchange."""
    async with trio_infer.Client(server.url, parser=parser, limiter=1) as client:
        response = await client.request("GET", "/json")
        assert client.limiter.borrowed_tokens == 0
        assert response.json()["ok"]


# --- the property: cancellation anywhere leaks nothing -----------------------------------


class CancelAfterSteps(trio.abc.Instrument):
    """Cancel a task's scope just before its n-th step: a cancellation at a random point."""

    def __init__(self) -> None:
        self.plans: dict[trio.lowlevel.Task, tuple[int, trio.CancelScope]] = {}
        self.steps: dict[trio.lowlevel.Task, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        plan = self.plans.get(task)
        if plan is None:
            return
        count = self.steps[task] = self.steps.get(task, 0) + 1
        if count == plan[0]:
            plan[1].cancel()


async def _property_handler(request: ServerRequest, respond: Responder) -> None:
    kind = request.path.strip("/")
    if kind == "slow-head":
        await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()
    if kind == "sse":
        await respond.start(200, [("content-type", "text/event-stream")])
        for i in range(6):
            await respond.send(f"data: {i}\n\n".encode())
            await trio.lowlevel.checkpoint()
        await respond.end()
        return
    body = b"x" * (20000 if kind == "big" else 10)
    await respond.start(200, length=len(body))
    for i in range(0, len(body), 2048):
        await respond.send(body[i : i + 2048])
        await trio.lowlevel.checkpoint()
    await respond.end()


calls = st.lists(
    st.tuples(
        st.sampled_from(["json", "slow-head", "big", "sse"]),
        st.integers(min_value=1, max_value=14),  # cancel before this step of the caller's task
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=calls, parser=st.sampled_from(["httptools", "h11"]), permits=st.integers(1, 4))
async def test_cancellation_at_random_points_leaks_nothing(
    calls: list[tuple[str, int]], parser: str, permits: int
) -> None:
    instrument = CancelAfterSteps()
    trio.lowlevel.add_instrument(instrument)
    limiter = trio.CapacityLimiter(permits)
    try:
        with trio.fail_after(30):
            async with open_server(_property_handler) as server:
                async with trio_infer.Client(server.url, parser=parser, limiter=limiter) as client:

                    async def call(kind: str, steps: int) -> None:
                        with trio.CancelScope() as scope:
                            instrument.plans[trio.lowlevel.current_task()] = (steps, scope)
                            if kind == "sse":
                                async with client.stream("GET", "/sse") as response:
                                    async for _ in response.aiter_sse():
                                        pass
                            else:
                                await client.request("GET", f"/{kind}")
                        event(f"{kind}: {'cancelled' if scope.cancelled_caught else 'completed'}")

                    async with trio.open_nursery() as callers:
                        for kind, steps in calls:
                            callers.start_soon(call, kind, steps)
                    instrument.plans.clear()

                    assert_released(client, limiter)
                    # the pool is still sound: a request after the carnage succeeds
                    assert (await client.request("GET", "/json")).status == 200
                    assert_released(client, limiter)
                stats = client.stats()
                assert stats.opened == stats.closed  # every socket the client opened was closed
                assert stats.open_connections == 0
                await server.wait_until(lambda s: s.connections_open == 0)
    finally:
        trio.lowlevel.remove_instrument(instrument)


# --- the property, wider: slot waits, backoff, closes from other tasks, shutdown ------------


async def _wide_handler(request: ServerRequest, respond: Responder) -> None:
    kind = request.path.strip("/")
    if kind == "flaky" and request.header("x-try") is None:
        # a 503 the first time each call asks: the call sleeps a backoff, then retries
        seen = _wide_handler.seen  # type: ignore[attr-defined]
        call = request.header("x-call") or ""
        if call not in seen:
            seen.add(call)
            await respond.start(503, length=0)
            await respond.end()
            return
    await _property_handler(request, respond)


wide_calls = st.lists(
    st.tuples(
        st.sampled_from(["json", "slow-head", "big", "sse", "flaky"]),
        st.integers(min_value=1, max_value=20),  # the caller is cancelled before this step
        st.none() | st.integers(min_value=0, max_value=6),  # a sibling closes the stream then
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=wide_calls,
    parser=st.sampled_from(["httptools", "h11"]),
    permits=st.integers(1, 4),
    max_connections=st.sampled_from([None, 1, 2]),
    shutdown_after=st.none() | st.integers(min_value=0, max_value=30),
)
async def test_shutdown_closes_and_cancellation_anywhere_leak_nothing(
    calls: list[tuple[str, int, int | None]],
    parser: str,
    permits: int,
    max_connections: int | None,
    shutdown_after: int | None,
) -> None:
    """Callers run outside the client's block (as tasks of an application would), wait for
    permits and connection slots, sleep in backoff, get their streams closed by siblings,
    are cancelled at random steps, and the client may close under all of them. Whatever
    happens: every error is typed, no token or slot leaks, and nothing opens after close."""
    _wide_handler.seen = set()  # type: ignore[attr-defined]
    instrument = CancelAfterSteps()
    trio.lowlevel.add_instrument(instrument)
    limiter = trio.CapacityLimiter(permits)
    retry = trio_infer.Retry(attempts=3, backoff=0.001)
    outcomes: list[str] = []
    try:
        with trio.fail_after(30):
            async with open_server(_wide_handler) as server:
                client = trio_infer.Client(
                    server.url,
                    parser=parser,
                    limiter=limiter,
                    max_connections=max_connections,
                    retry=retry,
                )
                done = trio.Event()
                remaining = len(calls)

                async def call(index: int, kind: str, steps: int, close_at: int | None) -> None:
                    nonlocal remaining
                    headers = {"x-call": str(index)}
                    try:
                        with trio.CancelScope() as scope:
                            instrument.plans[trio.lowlevel.current_task()] = (steps, scope)
                            if kind == "sse" or close_at is not None:
                                async with client.stream(
                                    "GET", f"/{kind}", headers=headers
                                ) as response:

                                    async def closer(r: trio_infer.Response = response) -> None:
                                        for _ in range(close_at or 0):
                                            await trio.lowlevel.checkpoint()
                                        r.close()

                                    async with trio.open_nursery() as pair:
                                        if close_at is not None:
                                            pair.start_soon(closer)
                                        async for _ in response.aiter_bytes():
                                            pass
                            else:
                                await client.request("GET", f"/{kind}", headers=headers)
                        outcomes.append("cancelled" if scope.cancelled_caught else "completed")
                    except* (trio_infer.StreamClosed, trio_infer.PoolTimeout) as group:
                        outcomes.append(type(group.exceptions[0]).__name__)
                    finally:
                        remaining -= 1
                        if not remaining:
                            done.set()

                async with trio.open_nursery() as application:
                    async with client:
                        for index, (kind, steps, close_at) in enumerate(calls):
                            application.start_soon(call, index, kind, steps, close_at)
                        if shutdown_after is None:
                            await done.wait()
                        else:
                            for _ in range(shutdown_after):
                                await trio.lowlevel.checkpoint()
                    opened_at_close = client.stats().opened
                    instrument.plans.clear()
                event(f"shutdown early: {shutdown_after is not None and not done.is_set()}")
                stats = client.stats()
                assert limiter.borrowed_tokens == 0
                assert (stats.active, stats.connecting, stats.open_connections) == (0, 0, 0)
                assert stats.opened == stats.closed == opened_at_close
                await server.wait_until(lambda s: s.connections_open == 0)
                with pytest.raises(trio_infer.ClientClosed):
                    await client.request("GET", "/json")
    finally:
        trio.lowlevel.remove_instrument(instrument)
    assert len(outcomes) == len(calls)
