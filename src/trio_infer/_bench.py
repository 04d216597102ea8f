"""``trio-infer bench``: N requests at concurrency C through the full client path.

With no URL it starts the embedded test server (``python -m trio_infer.testing``) in a child
process, so the server and the client each get a core.

Only 2xx answers are throughput: any other status is an error, counted by status (``HTTP
400``) next to the exceptions, and kept out of the latency figures, so a server that refuses
every request cannot pass for a fast one (issue 11: vLLM answered 400 to a body sent without
Content-Type, and the benchmark printed 1,406 req/s and "errors 0").
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
import trio

from ._client import Client
from ._errors import ConfigError, Error
from ._response import Response
from ._timeouts import Timeouts

__all__ = ["BenchResult", "embedded_server", "percentile", "run_bench"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, nearest-rank method."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@attrs.frozen
class BenchResult:
    """What one benchmark run measured.

    Attributes:
        requests: calls answered with a 2xx status: the throughput.
        errors: calls that failed: by exception class name, and ``"HTTP <status>"`` for
            answers with any other status.
        statuses: answered calls by status code (all statuses).
        elapsed: wall-clock seconds of the measured run.
        latencies: per 2xx call, seconds from the call to the last byte, sorted.
        ttfb: per 2xx call, seconds from the call to the first response byte, sorted.
        events: SSE events received (0 unless streaming).
        connections_opened: connections the client opened during the run.
    """

    requests: int
    errors: dict[str, int]
    statuses: dict[int, int]
    elapsed: float
    latencies: list[float]
    ttfb: list[float]
    events: int
    connections_opened: int

    @property
    def throughput(self) -> float:
        """2xx answers per second."""
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def report(self) -> str:
        ms = 1000.0
        errors = f"  {dict(sorted(self.errors.items()))}" if self.errors else ""
        lines = [
            f"requests     {self.requests} ok (2xx)  in {self.elapsed:.2f}s  -> "
            f"{self.throughput:,.0f} req/s",
            f"statuses     {dict(sorted(self.statuses.items()))}",
            f"errors       {self.failed}{errors}",
            f"connections  {self.connections_opened} opened",
        ]
        if self.events:
            lines.append(
                f"events       {self.events}  -> {self.events / self.elapsed:,.0f} events/s"
            )
        for name, values in (("latency", self.latencies), ("ttfb", self.ttfb)):
            cells = "  ".join(
                f"p{q:g} {percentile(values, q) * ms:.2f}" for q in (50, 90, 99, 99.9)
            )
            lines.append(f"{name:12} {cells}  max {max(values, default=math.nan) * ms:.2f}  (ms)")
        return "\n".join(lines)


async def run_bench(
    urls: Sequence[str],
    *,
    requests: int,
    concurrency: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    stream: bool = False,
    parser: str = "httptools",
    source_addresses: Sequence[str] = (),
) -> BenchResult:
    """Send ``requests`` calls with ``concurrency`` callers through one client."""
    if requests < 1 or concurrency < 1:
        raise ConfigError(f"requests={requests} and concurrency={concurrency} must both be >= 1")
    latencies: list[float] = []
    ttfb: list[float] = []
    errors: dict[str, int] = {}
    statuses: dict[int, int] = {}
    events = 0
    remaining = requests
    timeouts = Timeouts(connect=10, read=60)
    async with Client(
        list(urls),
        limiter=concurrency,
        parser=parser,
        timeouts=timeouts,
        source_addresses=source_addresses,
    ) as client:
        opened_before = client.stats().opened

        def failed(kind: str) -> None:
            errors[kind] = errors.get(kind, 0) + 1

        async def read_events(response: Response) -> str | None:
            """Count a stream's events; why the call failed, if it did: an event that is not
            JSON, or an error event (vLLM's when generation fails mid-stream)."""
            nonlocal events
            async for event in response.aiter_sse():
                if event.data == "[DONE]":
                    continue
                try:
                    data = json.loads(event.data)
                except ValueError:
                    return "invalid SSE event (not JSON)"
                if event.event == "error" or (type(data) is dict and "error" in data):
                    return "error event in the stream"
                events += 1
            return None

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                try:
                    if stream:
                        async with client.stream(
                            method, path, content=body, headers=headers
                        ) as response:
                            if response.is_success:
                                problem = await read_events(response)
                                if problem is not None:
                                    failed(problem)
                                    continue
                    else:
                        response = await client.request(method, path, content=body, headers=headers)
                except Error as exc:
                    failed(type(exc).__name__)
                    continue
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if not response.is_success:
                    failed(f"HTTP {response.status}")
                    continue
                timing = response.timing
                if timing.end is not None:
                    latencies.append(timing.end - timing.start)
                ttfb.append(timing.first_byte - timing.start)

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(min(concurrency, requests)):
                nursery.start_soon(caller)
        elapsed = trio.current_time() - start
        opened = client.stats().opened - opened_before
    latencies.sort()
    ttfb.sort()
    return BenchResult(
        requests=sum(n for status, n in statuses.items() if 200 <= status < 300),
        errors=errors,
        statuses=statuses,
        elapsed=elapsed,
        latencies=latencies,
        ttfb=ttfb,
        events=events,
        connections_opened=opened,
    )


@contextmanager
def embedded_server() -> Iterator[str]:
    """Run the test server's default app in a child process; yield its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trio_infer.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the embedded test server did not start (it said {line!r})")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
