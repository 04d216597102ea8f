"""The main job: ``trio-infer bench``, in-process and as the installed command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import trio

from trio_infer import ConfigError
from trio_infer._bench import percentile, run_bench
from trio_infer._cli import _headers, build_parser
from trio_infer.testing import Responder, ServerRequest, TestServer, serve


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


# --- issue 11, defect 7: a refused request is an error, never throughput -----------------------


def vllm_like(request: ServerRequest) -> tuple[int, bytes]:
    """vLLM answers 400 to a JSON body sent without a JSON Content-Type."""
    if request.header("content-type") != "application/json":
        return 400, b'{"error": {"message": "expected application/json"}}'
    return 200, b'{"ok": true}'


async def vllm_handler(request: ServerRequest, respond: Responder) -> None:
    status, body = vllm_like(request)
    await respond.send_json(json.loads(body), status)


async def test_non_2xx_answers_are_errors_not_throughput(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, vllm_handler)
    result = await run_bench(
        [server.url], requests=20, concurrency=4, path="/v1/x", method="POST", body=b"{}"
    )
    assert (result.requests, result.throughput, result.failed) == (0, 0.0, 20)
    assert result.errors == {"HTTP 400": 20}
    assert result.statuses == {400: 20}
    assert result.latencies == result.ttfb == []
    assert "errors       20" in result.report()


async def test_streamed_non_2xx_answers_are_errors(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, vllm_handler)
    result = await run_bench(
        [server.url], requests=6, concurrency=2, path="/v1/x", method="POST", stream=True
    )
    assert (result.requests, result.events, result.errors) == (0, 0, {"HTTP 400": 6})


async def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "trio_infer._cli", "bench", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def test_cli_data_is_sent_as_json(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, vllm_handler)
    out = await run_cli(
        "--url", server.url, "-n", "10", "-c", "2", "--path", "/v1/x",
        "--data", '{"model": "m"}',
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert b"{200: 10}" in out.stdout
    assert {r.header("content-type") for r in server.requests} == {"application/json"}
    assert {r.method for r in server.requests} == {"POST"}  # --data implies POST, as curl -d


async def test_cli_fails_when_the_server_refuses(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, vllm_handler)
    out = await run_cli(
        "--url", server.url, "-n", "5", "-c", "1", "--method", "POST", "--path", "/v1/x",
        "--data", "{}", "--content-type", "text/plain",
    )  # fmt: skip
    assert out.returncode == 1
    assert b"requests     0 ok" in out.stdout
    assert b"'HTTP 400': 5" in out.stdout
    assert b"5 of 5 calls failed" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "a=b"], "is not JSON: say what it is with --content-type"),
        (["--header", "no colon"], "expected 'Name: value'"),
        (["--header", ": v"], "expected 'Name: value'"),
        (["--header", "X Y: v"], "not allowed in a header name"),
        (["--header", "X-A: a\x01b"], "control character U+0001"),
        (["--header", "Content-Length: 5"], "set by the client"),
        (
            ["--content-type", "a/b", "--header", "content-type: c/d"],
            "both given",
        ),
    ],
)
def test_cli_refuses_unclear_bodies_and_headers(args: list[str], message: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_infer._cli", "bench", "--url", "http://127.0.0.1:1", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_headers_are_sent() -> None:
    args = build_parser().parse_args(
        ["bench", "-H", "Authorization: Bearer x", "--data", "[1]", "-H", "X-A:b"]
    )
    assert _headers(args) == [
        ("Authorization", "Bearer x"),
        ("X-A", "b"),
        ("Content-Type", "application/json"),
    ]
