"""Retries of transient failures, inside the permit, and the fault-injection handlers."""

from __future__ import annotations

import email.utils
import random

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import ConfigError, Retry, Timeouts
from trio_infer._retry import parse_retry_after
from trio_infer.testing import (
    TestServer,
    abort_after,
    close_after,
    drip,
    refusing_port,
    reply,
    serve,
    sse_then_reset,
    stall,
    storm,
)

FAST = Retry(attempts=3, backoff=0.01)


def assert_quiet(client: trio_infer.Client) -> None:
    """Nothing leaked: no permit held, no connection active or connecting."""
    stats = client.stats()
    assert stats.permits_in_use == 0
    for endpoint in stats.endpoints:
        assert (endpoint.active, endpoint.connecting) == (0, 0)


# --- the policy -----------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    retry = Retry(backoff=0.1, max_backoff=0.5, jitter="none")
    assert [retry.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittered = Retry(backoff=0.1, max_backoff=0.5)
    rng = random.Random(7)
    delays = [jittered.delay(3, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 0.4 for d in delays)
    assert max(delays) > 0.3 and min(delays) < 0.1  # spread over the whole range


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    retry = Retry(max_retry_after=30)
    assert retry.delay(1, retry_after=12.0) == 12.0
    assert retry.delay(1, retry_after=3600.0) == 30.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0)
    assert parse_retry_after(email.utils.formatdate(now - 7, usegmt=True), now=now) == 0.0
    for bad in (None, "", "soon", "-3", "1.5"):
        assert parse_retry_after(bad) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attempts": 0}, "attempts=0"),
        ({"attempts": 2.5}, "attempts=2.5"),
        ({"backoff": -1}, "backoff=-1"),
        ({"jitter": "some"}, "jitter='some'"),
        ({"statuses": [503, 999]}, "999"),
        ({"statuses": 503}, "statuses=503"),
    ],
)
def test_bad_retry_policies(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Retry(**kwargs)  # type: ignore[arg-type]


# --- statuses -------------------------------------------------------------------------------


async def test_a_503_storm_is_ridden_out_on_one_connection(nursery: trio.Nursery) -> None:
    handler = storm(2)
    server: TestServer = await nursery.start(serve, handler)
    async with trio_infer.Client(server.url, retry=FAST) as client:
        with trio.fail_after(10):
            response = await client.request("GET", "/")
        assert (response.status, response.content) == (200, b"ok")
        assert [a.outcome for a in response.attempts] == ["status 503", "status 503", "status 200"]
        assert [a.number for a in response.attempts] == [1, 2, 3]
        stats = client.stats().endpoints[0]
        # the two 503s set aside are retries, not responses of the call (issue 10: responses
        # and responses_by_class count the same thing)
        assert (stats.retries, stats.responses, dict(stats.responses_by_class)["2xx"]) == (2, 1, 1)
        assert_quiet(client)
    assert (handler.served, len(server.requests), server.connections_total) == (2, 3, 1)


async def test_retry_after_sets_the_wait(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server: TestServer = await nursery.start(serve, storm(1, status=429, retry_after="7"))
    async with trio_infer.Client(server.url, retry=Retry(max_retry_after=60)) as client:
        start = trio.current_time()
        response = await client.request("GET", "/")
        assert response.status == 200
        assert response.attempts[0].retry_after == 7.0
        assert trio.current_time() - start == pytest.approx(7.0)


async def test_a_storm_longer_than_the_attempts_returns_the_last_answer(
    nursery: trio.Nursery,
) -> None:
    server: TestServer = await nursery.start(serve, storm(10))
    async with trio_infer.Client(server.url, retry=FAST) as client:
        response = await client.request("GET", "/")
        assert response.status == 503
        assert len(response.attempts) == 3
        with pytest.raises(trio_infer.HTTPStatusError):
            response.raise_for_status()
        assert_quiet(client)


async def test_other_statuses_are_not_retried(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, reply(b"no", status=500))
    async with trio_infer.Client(server.url, retry=FAST) as client:
        response = await client.request("GET", "/")
    assert (response.status, len(response.attempts), len(server.requests)) == (500, 1, 1)


async def test_a_post_is_retried_on_status_only_when_allowed(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, storm(1))
    async with trio_infer.Client(server.url, retry=FAST) as client:
        assert (await client.request("POST", "/", json={})).status == 503
        response = await client.request("POST", "/", json={}, retry_non_idempotent=True)
        assert (response.status, len(response.attempts)) == (200, 1)  # the storm was over
    server2: TestServer = await nursery.start(serve, storm(1))
    async with trio_infer.Client(server2.url, retry=FAST, retry_non_idempotent=True) as client:
        response = await client.request("POST", "/", json={})
        assert (response.status, len(response.attempts)) == (200, 2)


# --- transport failures ---------------------------------------------------------------------


async def test_refused_connections_are_retried_then_raised() -> None:
    async with trio_infer.Client(f"127.0.0.1:{refusing_port()}", retry=FAST) as client:
        with trio.fail_after(10), pytest.raises(trio_infer.ConnectError) as info:
            await client.request("POST", "/", json={})  # nothing was sent: safe even for POST
        attempts = info.value.attempts
        assert [a.number for a in attempts] == [1, 2, 3]
        assert all("connection refused" in a.outcome for a in attempts)
        assert attempts[-1].retry_after is None
        stats = client.stats().endpoints[0]
        assert (stats.retries, stats.failures, stats.closed_by("error")) == (2, 1, 3)
        assert_quiet(client)


@pytest.mark.parametrize("fault", [abort_after(b""), close_after(b"")], ids=["reset", "close"])
async def test_closed_before_any_byte_is_retried_for_idempotent_calls(
    nursery: trio.Nursery, fault: object
) -> None:
    server: TestServer = await nursery.start(serve, fault)
    async with trio_infer.Client(server.url, retry=FAST) as client:
        with trio.fail_after(10), pytest.raises(trio_infer.ReadError) as info:
            await client.request("GET", "/")
        assert len(info.value.attempts) == 3
        assert len(server.requests) == 3
        with pytest.raises(trio_infer.ReadError) as info:
            await client.request("POST", "/", json={})
        assert info.value.attempts == ()  # it may have reached the application
        assert len(server.requests) == 4
        assert_quiet(client)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Le", trio_infer.ReadError),  # reset mid-headers
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", trio_infer.ReadError),  # mid-body
        (b"HTTP/1.1 2x0 OK\r\n\r\n", trio_infer.RemoteProtocolError),  # malformed status line
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", trio_infer.RemoteProtocolError),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",  # bad chunk size
            trio_infer.RemoteProtocolError,
        ),
    ],
)
async def test_failures_after_the_first_byte_are_never_retried(
    nursery: trio.Nursery, parser: str, raw: bytes, error: type[Exception]
) -> None:
    server: TestServer = await nursery.start(serve, abort_after(raw))
    async with trio_infer.Client(server.url, parser=parser, retry=FAST) as client:
        with trio.fail_after(10), pytest.raises(error) as info:
            await client.request("GET", "/")
        assert info.value.attempts == ()  # type: ignore[attr-defined]
        assert (len(server.requests), client.stats().endpoints[0].retries) == (1, 0)
        assert_quiet(client)


async def test_a_reset_mid_stream_is_raised_not_retried(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, sse_then_reset(["a", "b"]))
    async with trio_infer.Client(server.url, retry=FAST) as client:
        seen = []
        with trio.fail_after(10), pytest.raises(trio_infer.ReadError):
            async with client.stream("GET", "/") as response:
                async for event in response.aiter_sse():
                    seen.append(event.data)
        assert seen == ["a", "b"]
        assert len(server.requests) == 1
        assert_quiet(client)


async def test_a_slow_drip_is_fine_until_a_gap_exceeds_the_read_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    slow: TestServer = await nursery.start(serve, drip(b"abcdef", gap=0.5))
    async with trio_infer.Client(slow.url, timeouts=Timeouts(read=1)) as client:
        assert (await client.request("GET", "/")).content == b"abcdef"  # 3 s in all
    slower: TestServer = await nursery.start(serve, drip(b"abcdef", gap=2))
    async with trio_infer.Client(slower.url, timeouts=Timeouts(read=1), retry=FAST) as client:
        with pytest.raises(trio_infer.ReadTimeout):
            await client.request("GET", "/")
        assert client.stats().endpoints[0].retries == 0
        assert_quiet(client)


async def test_a_stall_times_out_and_is_not_retried(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server: TestServer = await nursery.start(serve, stall)
    async with trio_infer.Client(server.url, timeouts=Timeouts(read=5), retry=FAST) as client:
        with pytest.raises(trio_infer.ReadTimeout):
            await client.request("GET", "/")
        assert len(server.requests) == 1
        assert_quiet(client)


async def test_the_total_deadline_covers_retries_and_their_waits(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server: TestServer = await nursery.start(serve, storm(5, retry_after="10"))
    async with trio_infer.Client(server.url, timeouts=Timeouts(total=15)) as client:
        start = trio.current_time()
        with pytest.raises(trio_infer.TotalTimeout):
            await client.request("GET", "/")
        assert trio.current_time() - start == pytest.approx(15)
        assert len(server.requests) == 2
        assert_quiet(client)


async def test_a_retrying_call_keeps_its_one_permit(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    # While the first call waits out a Retry-After, it still holds the only permit: the
    # second call queues instead of widening concurrency, and goes once the first is done.
    server: TestServer = await nursery.start(serve, storm(1, retry_after="5"))
    async with trio_infer.Client(server.url, limiter=1) as client:
        statuses: list[int] = []

        async def call() -> None:
            statuses.append((await client.request("GET", "/")).status)

        async with trio.open_nursery() as calls:
            calls.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            calls.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            stats = client.stats()
            assert (stats.permits_in_use, stats.tasks_waiting_for_permit) == (1, 1)
            assert len(server.requests) == 1
            mock_clock.jump(5)
        assert statuses == [200, 200]
        assert server.max_in_flight == 1
        assert_quiet(client)
