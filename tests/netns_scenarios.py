"""Port- and descriptor-exhaustion scenarios, each run in a fresh process (see test_budget_netns).

``python tests/netns_scenarios.py SCENARIO`` enters a new network namespace (root, Linux), brings
its loopback up, narrows ``ip_local_port_range`` to 4 ports (a per-namespace sysctl, so the host
is untouched), runs the scenario and prints its findings as one JSON object.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import resource
import socket
import struct
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

import trio_infer
from trio_infer.testing import Responder, ServerRequest, TestServer, serve

PORTS = (40000, 40003)  # four ephemeral ports per (source, destination) pair
D1, D2 = 8001, 8002  # listener ports outside the range, so they take none of it
CLONE_NEWNET = 0x40000000


def enter_namespace(narrow_ports: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare(CLONE_NEWNET): {os.strerror(code)}")
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, request))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    if narrow_ports:
        with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
            f.write(f"{PORTS[0]} {PORTS[1]}")


def listener(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)  # connections complete in the backlog; nobody needs to accept them
    return s


def fill(bind: Callable[[socket.socket], None]) -> dict[str, Any]:
    """Open connections from 127.0.0.2 to D1 and D2 alternately until the kernel refuses."""
    opened: list[socket.socket] = []
    error = ""
    try:
        for i in range(64):
            s = socket.socket()
            opened.append(s)
            # Closed with a reset, not FIN: a closed connection would sit in TIME_WAIT and
            # its port would count as taken for the next round.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                bind(s)
                s.connect(("127.0.0.1", D1 if i % 2 == 0 else D2))
            except OSError as exc:
                error = errno.errorcode.get(exc.errno or 0, str(exc))
                break
        return {"connected": len(opened) - 1, "error": error}
    finally:
        for s in opened:
            s.close()


def scenario_bind_no_port() -> dict[str, Any]:
    from trio_infer._sources import bind_source

    listeners = [listener(D1), listener(D2)]
    try:
        return {
            "with_option": fill(lambda s: bind_source(s, "127.0.0.2")),
            "plain_bind": fill(lambda s: s.bind(("127.0.0.2", 0))),
        }
    finally:
        for s in listeners:
            s.close()


async def _held(release: trio.Event, request: ServerRequest, respond: Responder) -> None:
    await release.wait()
    await respond.start(200, length=2)
    await respond.send(b"ok")
    await respond.end()


async def scenario_client_multiplier() -> dict[str, Any]:
    """One source address, two destinations: the client holds 2 x 4 connections at once."""
    release = trio.Event()
    handler = partial(_held, release)
    async with trio.open_nursery() as nursery:
        servers: list[TestServer] = [
            await nursery.start(partial(serve, handler, port=port)) for port in (D1, D2)
        ]
        async with trio_infer.Client(
            [s.url for s in servers], source_addresses=["127.0.0.2"], limiter=64
        ) as client:
            assert client.budget is not None
            statuses: list[int] = []

            async def call() -> None:
                statuses.append((await client.request("GET", "/")).status)

            async with trio.open_nursery() as calls:
                for _ in range(8):
                    calls.start_soon(call)
                with trio.fail_after(10):
                    for s in servers:
                        await s.wait_until(lambda s: s.connections_open == 4)
                held = sum(s.connections_open for s in servers)
                peers = sorted({r.peer[0] for s in servers for r in s.requests})
                release.set()
            result = {
                "max_connections": client.max_connections,
                "binding": client.budget.binding,
                "held_at_once": held,
                "statuses": statuses,
                "peers": peers,
            }
        nursery.cancel_scope.cancel()
    return result


async def scenario_ports_exhausted() -> dict[str, Any]:
    """Three of the four ports taken by another socket owner: the client's second concurrent
    connection finds none and fails at once, typed and counted."""
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        server: TestServer = await nursery.start(partial(serve, partial(_held, release), port=D1))
        squatters = []
        for _ in range(3):
            s = socket.socket()
            s.connect(("127.0.0.1", D1))
            squatters.append(s)
        async with trio_infer.Client(server.url) as client:
            first = trio.Event()
            statuses: list[int] = []

            async def call() -> None:
                statuses.append((await client.request("GET", "/")).status)
                first.set()

            nursery.start_soon(call)
            with trio.fail_after(10):
                await server.wait_until(lambda s: s.connections_open == 4)
                try:
                    await client.request("GET", "/")
                except trio_infer.Error as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    is_connect_error = isinstance(exc, trio_infer.ConnectError)
                else:
                    error, is_connect_error = "", False
                release.set()
                await first.wait()
            stats = client.stats()
            result = {
                "max_connections": client.max_connections,
                "error": error,
                "is_connect_error": is_connect_error,
                "first_status": statuses,
                "ports_exhausted": stats.endpoints[0].ports_exhausted,
                "permits_in_use": stats.permits_in_use,
                "open_after": stats.open_connections,
            }
        for s in squatters:
            s.close()
        nursery.cancel_scope.cancel()
    return result


async def scenario_fds_exhausted() -> dict[str, Any]:
    """The process runs out of descriptors under a client: the next connect fails at once,
    typed and counted, and the client recovers when descriptors free up."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    async with trio.open_nursery() as nursery:
        server: TestServer = await nursery.start(serve)
        async with trio_infer.Client(server.url, keepalive=trio_infer.KeepAlive.off()) as client:
            hog: list[int] = []
            try:
                while True:
                    hog.append(os.dup(0))
            except OSError as exc:
                if exc.errno != errno.EMFILE:
                    raise
            try:
                with trio.fail_after(10):
                    await client.request("GET", "/json")
            except trio_infer.Error as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                error = ""
            for fd in hog:
                os.close(fd)
            after = (await client.request("GET", "/json")).status
            stats = client.stats()
            assert client.budget is not None
            result = {
                "max_connections": client.max_connections,
                "binding": client.budget.binding,
                "error": error,
                "fds_exhausted": stats.endpoints[0].fds_exhausted,
                "status_after": after,
                "permits_in_use": stats.permits_in_use,
            }
        nursery.cancel_scope.cancel()
    return result


SCENARIOS: dict[str, Callable[[], Any]] = {
    "bind_no_port": scenario_bind_no_port,
    "client_multiplier": scenario_client_multiplier,
    "ports_exhausted": scenario_ports_exhausted,
    "fds_exhausted": scenario_fds_exhausted,
}


def main() -> None:
    name = sys.argv[1]
    enter_namespace(narrow_ports=name != "fds_exhausted")
    run = SCENARIOS[name]
    result = trio.run(run) if name != "bind_no_port" else run()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
