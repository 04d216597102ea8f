"""A multi-process test server that shares one listening socket, as ``uvicorn --workers N`` does.

The parent binds and listens; N worker processes inherit the socket and each runs the test
server on it, so the kernel hands every new connection to whichever worker accepts first (the
accept race). Each worker tags its responses with its id (``"0"`` ... ``"N-1"``) in a header,
which ``Client(worker_header=...)`` counts. A keep-alive connection stays with the worker that
accepted it, which is what ``docs/keepalive.md`` is about.

    async with open_worker_server(4) as server:
        async with trio_infer.Client(server.url, worker_header=server.header) as client:
            ...

A worker is ``python -m trio_infer.testing._worker_main --fd FD --worker-id ID``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

__all__ = ["WorkerServer", "open_worker_server"]

#: Seconds the workers get to start before ``open_worker_server`` gives up.
START_TIMEOUT = 30.0


@attrs.frozen
class WorkerServer:
    """A running multi-process test server.

    Attributes:
        url: its base URL.
        port: the shared listening port.
        header: the response header carrying the worker id.
        pids: the worker processes, in worker-id order.
    """

    url: str
    port: int
    header: str
    pids: tuple[int, ...]

    @property
    def worker_ids(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(len(self.pids)))


@asynccontextmanager
async def open_worker_server(
    workers: int = 4,
    *,
    app: str = "trio_infer.testing:default_app",
    host: str = "127.0.0.1",
    port: int = 0,
    header: str = "x-worker-id",
) -> AsyncIterator[WorkerServer]:
    """Start ``workers`` processes serving ``app`` (``"module:handler"``) on one shared socket;
    yields once every worker is accepting. Leaving the block kills the workers."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be a whole number >= 1")
    listener = socket.create_server((host, port), backlog=4096)
    bound = listener.getsockname()[1]
    fd = listener.fileno()
    processes: list[trio.Process] = []
    try:
        for worker_id in range(workers):
            processes.append(
                await trio.lowlevel.open_process(
                    [
                        sys.executable,
                        "-m",
                        "trio_infer.testing._worker_main",
                        "--fd",
                        str(fd),
                        "--worker-id",
                        str(worker_id),
                        "--app",
                        app,
                        "--header",
                        header,
                    ],
                    pass_fds=(fd,),
                    stdout=subprocess.PIPE,
                )
            )
        # A worker says "ready" just before it starts accepting; traffic before every
        # worker is ready would all go to the first one and skew the accept race.
        with trio.fail_after(START_TIMEOUT):
            for process in processes:
                assert process.stdout is not None
                line = await _read_line(process.stdout)
                if line != b"ready":
                    raise RuntimeError(
                        f"worker {process.pid} did not start (said {line!r}; its stderr is above)"
                    )
        url_host = f"[{host}]" if ":" in host else host
        yield WorkerServer(
            url=f"http://{url_host}:{bound}",
            port=bound,
            header=header,
            pids=tuple(p.pid for p in processes),
        )
    finally:
        listener.close()
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)  # forceful: nothing of theirs needs saving
        with trio.move_on_after(10, shield=True):
            for process in processes:
                await process.wait()
                if process.stdout is not None:
                    await process.stdout.aclose()


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            break
        data += chunk
    return data.strip()
