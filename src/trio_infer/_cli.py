"""The ``trio-infer`` command."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext

import trio

from ._bench import embedded_server, run_bench
from ._budget import connection_budget
from ._errors import ConfigError, Error
from ._prepare import _encode_name, _encode_value


def _headers(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``--header`` values, and the Content-Type of ``--data``: a server that needs one (vLLM
    answers 400 without it) must not see a body of unknown type."""
    headers = []
    for value in args.header or ():
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--header {value!r}: expected 'Name: value'")
        name, rest = name.strip(), rest.strip()
        # Checked now, so a bad header is one clear error before anything is sent, not N
        # failed calls.
        _encode_value(name, rest)
        _encode_name(name)
        headers.append((name, rest))
    named = {name.lower() for name, _ in headers}
    content_type = args.content_type
    if content_type is not None and "content-type" in named:
        raise ConfigError("--content-type and --header 'Content-Type: ...' both given: keep one")
    if args.data is not None and content_type is None and "content-type" not in named:
        try:
            json.loads(args.data)
        except ValueError:
            raise ConfigError(
                f"--data {args.data[:60]!r}... is not JSON: say what it is with --content-type"
            ) from None
        content_type = "application/json"
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return headers


def _bench(args: argparse.Namespace) -> int:
    body = args.data.encode() if args.data is not None else None
    headers = _headers(args)
    server = nullcontext(args.url) if args.url else embedded_server()
    with server as url:
        urls = url if isinstance(url, list) else [url]
        where = ", ".join(urls) + ("" if args.url else "  (embedded test server)")
        print(
            f"trio-infer bench: {args.requests} x {args.method} {args.path} at concurrency "
            f"{args.concurrency} against {where}, parser {args.parser}",
            flush=True,
        )
        result = trio.run(
            lambda: run_bench(
                urls,
                requests=args.requests,
                concurrency=args.concurrency,
                path=args.path,
                method=args.method,
                body=body,
                headers=headers,
                stream=args.sse,
                parser=args.parser,
                source_addresses=args.source_address or (),
            )
        )
    print(result.report())
    if result.failed:
        print(
            f"trio-infer bench: {result.failed} of {result.failed + result.requests} calls "
            f"failed (see errors)",
            file=sys.stderr,
        )
        return 1
    return 0


def _budget(args: argparse.Namespace) -> int:
    budget = connection_budget(args.url, source_addresses=args.source_address or ())
    print(budget.describe())
    if args.max_connections is not None:
        budget.check(args.max_connections)
        print(f"max_connections={args.max_connections} fits")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-infer", description="Trio-native client for inference servers"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench",
        help="send N requests at concurrency C and report throughput and latency",
        description="Without --url, starts the embedded test server and benchmarks against it. "
        "Only 2xx answers count as throughput; other statuses are errors, and any error makes "
        "the exit status 1.",
    )
    bench.add_argument("--url", action="append", help="endpoint base URL (repeat for several)")
    bench.add_argument("-n", "--requests", type=int, default=20000)
    bench.add_argument("-c", "--concurrency", type=int, default=64)
    bench.add_argument(
        "--path", default=None, help="request path (default /json, or /sse with --sse)"
    )
    bench.add_argument("--method", help="HTTP method (default GET, or POST with --data)")
    bench.add_argument(
        "--data",
        help="request body, sent as given (Content-Type: application/json if it is JSON, "
        "else say it with --content-type)",
    )
    bench.add_argument("--content-type", help="the Content-Type of --data")
    bench.add_argument(
        "-H",
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a request header (repeat for several)",
    )
    bench.add_argument(
        "--sse", action="store_true", help="stream the response as server-sent events"
    )
    bench.add_argument("--parser", default="httptools", choices=["httptools", "h11"])
    bench.add_argument(
        "--source-address",
        action="append",
        metavar="IP",
        help="local address to bind new connections to (repeat to rotate over several)",
    )
    bench.set_defaults(func=_bench)
    budget = commands.add_parser(
        "budget",
        help="how many connections these endpoints allow, and which limit binds",
        description="Print the connection budget: ephemeral ports per (source, destination) "
        "pair x pairs, against the file-descriptor limit.",
    )
    budget.add_argument("url", nargs="+", help="endpoint base URL(s)")
    budget.add_argument(
        "--source-address", action="append", metavar="IP", help="source address (repeatable)"
    )
    budget.add_argument(
        "--max-connections", type=int, help="also check that this cap fits the budget"
    )
    budget.set_defaults(func=_budget)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "bench" and args.path is None:
        args.path = "/sse" if args.sse else "/json"
    if args.command == "bench" and args.method is None:
        args.method = "POST" if args.data is not None else "GET"  # as curl -d
    try:
        sys.exit(args.func(args))
    except Error as exc:
        print(f"trio-infer: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
