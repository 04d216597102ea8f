"""``python -m trio_infer.testing [--host H] [--port P]``: run the test server's default app.

Prints ``listening on URL`` once ready (the benchmark reads it), then serves until killed.
Handler errors are answered 500 and logged to stderr, never raised: the server runs on.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import trio

from ._server import TestServer, serve


async def _main(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        server: TestServer = await nursery.start(
            partial(serve, host=host, port=port, raise_handler_errors=False)
        )
        print(f"listening on {server.url}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trio_infer.testing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        trio.run(_main, args.host, args.port)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
