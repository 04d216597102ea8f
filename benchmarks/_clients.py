"""The clients under comparison, each run the same way: ``concurrency`` tasks issue requests
back to back for ``duration`` seconds (after a warm-up), and the run reports how many
requests (or, for SSE, JSON-decoded events) completed.

Run one client in one process: ``python benchmarks/_clients.py CLIENT URL SCENARIO CONC SECONDS``
prints ``count elapsed``. The driver (``bench_http.py``) starts a fresh process per run so no
client inherits another's heap, GC state or event loop.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

WARMUP = 0.3


def _decode_body(scenario: str, data: bytes) -> int:
    """Decode a whole body as the scenario requires; the count of JSON documents decoded."""
    if scenario == "json":
        json.loads(data)
        return 1
    return _sse_events(data.split(b"\n"))


def _sse_events(body_lines: list[bytes]) -> int:
    n = 0
    for line in body_lines:
        if line.startswith(b"data: "):
            data = line[6:]
            if data != b"[DONE]":
                json.loads(data)
                n += 1
    return n


# --- trio clients -------------------------------------------------------------------------


async def _trio_driver(
    one: Callable[[], Awaitable[int]], concurrency: int, seconds: float
) -> tuple[int, float]:
    import trio

    count = 0
    measuring = False

    async def worker(stop_at: float) -> None:
        nonlocal count
        while trio.current_time() < stop_at:
            n = await one()
            if measuring:
                count += n

    async with trio.open_nursery() as nursery:
        stop = trio.current_time() + WARMUP
        for _ in range(concurrency):
            nursery.start_soon(worker, stop)
    measuring = True
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        stop = trio.current_time() + seconds
        for _ in range(concurrency):
            nursery.start_soon(worker, stop)
    return count, time.perf_counter() - start


async def run_trio_infer(
    url: str, scenario: str, concurrency: int, seconds: float, parser: str
) -> tuple[int, float]:
    import trio_infer

    async with trio_infer.Client(url, limiter=concurrency, parser=parser) as client:
        if scenario == "json":

            async def one() -> int:
                response = await client.request("GET", "/json")
                response.json()
                return 1

        else:

            async def one() -> int:
                n = 0
                async with client.stream("GET", "/sse") as response:
                    async for event in response.aiter_sse():
                        if event.data != "[DONE]":
                            json.loads(event.data)
                            n += 1
                return n

        return await _trio_driver(one, concurrency, seconds)


async def run_httpx(url: str, scenario: str, concurrency: int, seconds: float) -> tuple[int, float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        if scenario == "json":

            async def one() -> int:
                response = await client.get("/json")
                response.json()
                return 1

        else:

            async def one() -> int:
                async with client.stream("GET", "/sse") as response:
                    lines = [line.encode() async for line in response.aiter_lines()]
                return _sse_events(lines)

        return await _trio_driver(one, concurrency, seconds)


async def run_raw_h11(
    url: str, scenario: str, concurrency: int, seconds: float
) -> tuple[int, float]:
    """h11 on trio streams, one connection per task: the pure-Python protocol floor."""
    import h11
    import trio

    host, port = url.rsplit("//", 1)[1].split(":")
    path = b"/json" if scenario == "json" else b"/sse"
    streams: list[trio.SocketStream] = []
    conns: list[h11.Connection] = []

    async def make() -> tuple[trio.SocketStream, h11.Connection]:
        stream = await trio.open_tcp_stream(host, int(port))
        streams.append(stream)
        return stream, h11.Connection(h11.CLIENT)

    free: list[tuple[trio.SocketStream, h11.Connection]] = []

    async def one() -> int:
        pair = free.pop() if free else await make()
        stream, conn = pair
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        await stream.send_all(
            conn.send(h11.Request(method="GET", target=path, headers=[("host", host)]))
            + (conn.send(h11.EndOfMessage()) or b"")
        )
        body: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        free.append(pair)
        return _decode_body(scenario, b"".join(body))

    try:
        return await _trio_driver(one, concurrency, seconds)
    finally:
        for stream in streams:
            await stream.aclose()
        del conns


async def run_raw_httptools(
    url: str, scenario: str, concurrency: int, seconds: float
) -> tuple[int, float]:
    """httptools on bare trio sockets, one connection per task, no pool, no limiter, no
    timeouts: the floor a full client on trio can approach, not a usable client."""
    import httptools
    import trio

    host, port = url.rsplit("//", 1)[1].split(":")
    path = b"/json" if scenario == "json" else b"/sse"
    request = b"GET " + path + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
    free: list[trio.socket.SocketType] = []
    opened: list[trio.socket.SocketType] = []

    class Parsed:
        def __init__(self) -> None:
            self.done = False
            self.body: list[bytes] = []

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            self.done = True

    async def one() -> int:
        if free:
            sock = free.pop()
        else:
            sock = trio.socket.socket()
            opened.append(sock)
            await sock.connect((host, int(port)))
        parsed = Parsed()
        parser = httptools.HttpResponseParser(parsed)
        await sock.send(request)
        while not parsed.done:
            parser.feed_data(await sock.recv(65536))
        free.append(sock)
        return _decode_body(scenario, b"".join(parsed.body))

    try:
        return await _trio_driver(one, concurrency, seconds)
    finally:
        for sock in opened:
            sock.close()


# --- asyncio peer -------------------------------------------------------------------------


def run_aiohttp(url: str, scenario: str, concurrency: int, seconds: float) -> tuple[int, float]:
    import asyncio

    import aiohttp

    async def main() -> tuple[int, float]:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector) as session:
            count = 0
            measuring = False

            async def one() -> int:
                if scenario == "json":
                    async with session.get("/json") as response:
                        await response.json()
                    return 1
                n = 0
                async with session.get("/sse") as response:
                    async for line in response.content:
                        if line.startswith(b"data: "):
                            data = line[6:].rstrip(b"\r\n")
                            if data != b"[DONE]":
                                json.loads(data)
                                n += 1
                return n

            async def worker(stop_at: float) -> None:
                nonlocal count
                loop = asyncio.get_running_loop()
                while loop.time() < stop_at:
                    n = await one()
                    if measuring:
                        count += n

            loop = asyncio.get_running_loop()
            stop = loop.time() + WARMUP
            await asyncio.gather(*(worker(stop) for _ in range(concurrency)))
            measuring = True
            start = time.perf_counter()
            stop = loop.time() + seconds
            await asyncio.gather(*(worker(stop) for _ in range(concurrency)))
            return count, time.perf_counter() - start

    return asyncio.run(main())


CLIENTS: dict[str, Callable[..., Any]] = {
    "trio-infer": lambda *a: _trio(run_trio_infer, *a, "httptools"),
    "trio-infer[h11]": lambda *a: _trio(run_trio_infer, *a, "h11"),
    "aiohttp": run_aiohttp,
    "httpx-trio": lambda *a: _trio(run_httpx, *a),
    "raw-h11-trio": lambda *a: _trio(run_raw_h11, *a),
    "raw-httptools-trio": lambda *a: _trio(run_raw_httptools, *a),
}


def _trio(fn: Callable[..., Awaitable[tuple[int, float]]], *args: Any) -> tuple[int, float]:
    import trio

    return trio.run(fn, *args)


if __name__ == "__main__":
    client, url, scenario, conc, seconds = sys.argv[1:6]
    count, elapsed = CLIENTS[client](url, scenario, int(conc), float(seconds))
    print(count, elapsed)
