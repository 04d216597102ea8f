"""One worker of :func:`trio_infer.testing.open_worker_server` (a separate module, so that
``python -m`` does not find it already imported by the package)."""

from __future__ import annotations

import argparse
import importlib
import os
import socket

import trio

from ._server import Handler, TestServer


def _load(app: str) -> Handler:
    module, _, name = app.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name or "default_app")
    return handler


async def _serve_worker(fd: int, worker_id: str, app: str, header: str) -> None:
    sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
    listener = trio.SocketListener(sock)
    server = TestServer(_load(app), "", sock.getsockname()[1])
    server.response_headers = ((header, worker_id),)
    async with trio.open_nursery() as nursery:
        print("ready", flush=True)
        await trio.serve_listeners(server.serve_connection, [listener], handler_nursery=nursery)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trio_infer.testing._worker_main")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--app", default="trio_infer.testing:default_app")
    parser.add_argument("--header", default="x-worker-id")
    args = parser.parse_args(argv)
    os.set_inheritable(args.fd, False)
    trio.run(_serve_worker, args.fd, args.worker_id, args.app, args.header)


if __name__ == "__main__":
    main()
