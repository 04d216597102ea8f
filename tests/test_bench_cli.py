"""The main job: ``trio-infer bench``, in-process and as the installed command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trio_infer import ConfigError
from trio_infer._bench import percentile, run_bench
from trio_infer.testing import TestServer


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50,
        99,
        100,
    )
    assert percentile([7.0], 99.9) == 7.0


async def test_run_bench_json(server: TestServer, parser: str) -> None:
    result = await run_bench([server.url], requests=200, concurrency=8, path="/json", parser=parser)
    assert (result.requests, result.errors, result.statuses) == (200, {}, {200: 200})
    assert len(result.latencies) == len(result.ttfb) == 200
    assert result.connections_opened == 8
    assert "req/s" in result.report()


async def test_run_bench_sse(server: TestServer) -> None:
    result = await run_bench([server.url], requests=20, concurrency=4, path="/sse", stream=True)
    assert (result.requests, result.events) == (20, 20 * 64)
    assert "events/s" in result.report()


async def test_run_bench_counts_errors(server: TestServer) -> None:
    result = await run_bench(["127.0.0.1:1"], requests=5, concurrency=2, path="/")
    assert result.requests == 0
    assert result.errors == {"ConnectError": 5}


async def test_run_bench_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="concurrency=0"):
        await run_bench(["127.0.0.1:1"], requests=5, concurrency=0, path="/")


def test_cli_runs_against_the_embedded_server() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_infer._cli", "bench", "-n", "300", "-c", "8"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "embedded test server" in out.stdout
    assert "requests     300" in out.stdout
    assert "{200: 300}" in out.stdout


def test_cli_reports_a_bad_url_cleanly() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_infer._cli", "bench", "--url", "ftp://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "scheme 'ftp'" in out.stderr
    assert "Traceback" not in out.stderr


def budget_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_infer._cli", "budget", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_the_budget() -> None:
    done = budget_cli(
        "127.0.0.1:8000",
        "http://127.0.0.1:8001/v1",
        "--source-address",
        "127.0.0.2",
        "--source-address",
        "127.0.0.3",
    )
    assert done.returncode == 0, done.stderr
    assert "destinations                 127.0.0.1:8000, 127.0.0.1:8001" in done.stdout
    assert "(source, destination) pairs  4" in done.stdout
    assert "max connections" in done.stdout


def test_cli_budget_rejects_a_cap_that_does_not_fit() -> None:
    done = budget_cli("127.0.0.1:8000", "--max-connections", "999999999")
    assert done.returncode == 2
    assert "max_connections=999999999 exceeds the" in done.stderr
