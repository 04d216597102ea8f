"""Size limits, statistics totals, the stats log line, and secrets kept out of all of them."""

from __future__ import annotations

import json
import logging

import pytest
import trio
import trio.testing

import trio_infer
from trio_infer import Retry
from trio_infer.testing import TestServer, abort_after, reply, serve, storm

TOKEN = "sk-very-secret-token"


async def test_an_oversized_head_is_refused(nursery: trio.Nursery, parser: str) -> None:
    server: TestServer = await nursery.start(serve, reply(b"", headers=[("x-big", "x" * 5000)]))
    async with trio_infer.Client(server.url, parser=parser, max_header_bytes=4096) as client:
        with pytest.raises(trio_infer.ResponseTooLarge, match="max_header_bytes=4096"):
            await client.request("GET", "/")
        assert client.stats().endpoints[0].closed_by("error") == 1
        assert client.stats().permits_in_use == 0
    async with trio_infer.Client(server.url, parser=parser) as client:  # the default is 64 KiB
        assert (await client.request("GET", "/")).headers["x-big"] == "x" * 5000


async def test_an_oversized_body_is_refused_but_can_be_streamed(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(
        serve, reply(b"y" * 10_000, chunked=True, chunk_size=1000)
    )
    async with trio_infer.Client(server.url, max_body_bytes=4096) as client:
        with pytest.raises(trio_infer.ResponseTooLarge, match=r"max_body_bytes=4096.*stream\(\)"):
            await client.request("GET", "/")
        async with client.stream("GET", "/") as response:
            assert len(await response.aread()) == 10_000
        assert client.stats().permits_in_use == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_header_bytes", 0),
        ("max_body_bytes", -1),
        ("max_header_bytes", None),
        ("stats_interval", 0),
    ],
)
def test_bad_limits(name: str, value: object) -> None:
    with pytest.raises(trio_infer.ConfigError, match=name):
        trio_infer.Client("127.0.0.1:1", **{name: value})  # type: ignore[arg-type]


async def test_totals_by_outcome_bytes_and_errors(nursery: trio.Nursery) -> None:
    ok: TestServer = await nursery.start(serve, reply(b"12345"))
    missing: TestServer = await nursery.start(serve, reply(b"no", status=404))
    broken: TestServer = await nursery.start(serve, abort_after(b"HTTP/1.1 200 OK\r\nContent-Le"))
    async with trio_infer.Client(
        [ok.url, missing.url, broken.url], retry=Retry.disabled()
    ) as client:
        for _ in range(2):
            await client.request("GET", "/")
            await client.request("GET", "/")
            with pytest.raises(trio_infer.ReadError):
                await client.request("GET", "/")
        stats = client.stats()
    first, second, third = stats.endpoints
    assert dict(first.responses_by_class)["2xx"] == 2
    assert dict(second.responses_by_class) == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 2, "5xx": 0}
    assert third.errors == (("ReadError", 2),)
    assert stats.responses_by_class == {"1xx": 0, "2xx": 2, "3xx": 0, "4xx": 2, "5xx": 0}
    assert stats.errors == {"ReadError": 2}
    request_bytes = len(ok.requests[0].method) + 1  # counted from what was written
    assert first.bytes_sent > request_bytes * 2
    assert first.bytes_received >= 2 * len(b"HTTP/1.1 200 OK\r\n\r\n12345")
    assert third.bytes_received == 2 * len(b"HTTP/1.1 200 OK\r\nContent-Le")
    assert stats.bytes_sent == sum(e.bytes_sent for e in stats.endpoints)


async def test_per_source_address_counts(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, reply(b"ok"))
    async with trio_infer.Client(server.url, source_addresses=["127.0.0.2", "127.0.0.3"]) as client:
        async with trio.open_nursery() as calls:
            for _ in range(4):
                calls.start_soon(client.request, "GET", "/")
        sources = client.stats().endpoints[0].sources
    assert [(s.address, s.idle, s.active) for s in sources] == [
        ("127.0.0.2", 2, 0),
        ("127.0.0.3", 2, 0),
    ]


async def test_stats_are_logged_once_per_interval_without_secrets(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    server: TestServer = await nursery.start(serve, storm(1))
    caplog.set_level(logging.INFO, logger="trio_infer")
    async with trio_infer.Client(
        server.url, stats_interval=10, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        await client.request("GET", "/")
        await trio.sleep(25)
    lines = [r for r in caplog.records if r.name == "trio_infer"]
    assert len(lines) == 2
    summary = json.loads(lines[0].getMessage().split(" ", 2)[2])
    assert summary["responses"]["2xx"] == 1
    assert summary["retries"] == 1
    assert lines[0].trio_infer_stats == summary  # type: ignore[attr-defined]
    assert TOKEN not in caplog.text


async def test_secrets_stay_out_of_reprs_and_errors(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, abort_after(b"HTTP/1.1 200 OK\r\n"))
    secret_headers = {"Authorization": f"Bearer {TOKEN}", "api-key": TOKEN}
    client = trio_infer.Client(server.url, headers=secret_headers, retry=Retry.disabled())
    assert TOKEN not in repr(client)
    async with client:
        with pytest.raises(trio_infer.ReadError) as info:
            await client.request("GET", "/", headers={"X-Api-Key": TOKEN})
        assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
        assert TOKEN not in repr(client.stats())
    echo: TestServer = await nursery.start(serve, reply(b"", headers=[("Set-Cookie", TOKEN)]))
    async with trio_infer.Client(echo.url) as client:
        response = await client.request("GET", "/")
    assert response.headers["set-cookie"] == TOKEN  # readable on purpose...
    assert TOKEN not in repr(response.headers)  # ...but never shown
    for bad in ({"Authorization": TOKEN + "\u20ac"}, {"Authorization": 5}):
        with pytest.raises(trio_infer.ConfigError) as config_info:
            trio_infer.Client(server.url, headers=bad)  # type: ignore[arg-type]
        assert TOKEN not in str(config_info.value)
