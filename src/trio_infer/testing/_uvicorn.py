"""A real ``uvicorn`` (``--workers N``) in a subprocess, for tests and benchmarks.

uvicorn is not a dependency of trio-infer; this needs it installed (the ``test`` extra has it).
The default app (``trio_infer.testing._asgi:app``) answers every request with a small JSON body
and the answering worker's pid in ``x-worker-id``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio

__all__ = ["WORKER_ID_APP", "open_uvicorn"]

#: The ASGI app that names its worker process in ``x-worker-id``.
WORKER_ID_APP = "trio_infer.testing._asgi:app"
#: Seconds uvicorn gets to start every worker.
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def open_uvicorn(
    app: str = WORKER_ID_APP, *, workers: int = 1, args: Sequence[str] = ()
) -> AsyncIterator[str]:
    """Run ``uvicorn APP --workers N`` on a free loopback port; yields the base URL once every
    worker has finished its startup (the app must answer the lifespan protocol). Leaving the
    block stops uvicorn and its workers (SIGTERM, then SIGKILL after 5 s)."""
    port = free_port()
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "info",
            *args,
        ],
        stderr=subprocess.PIPE,
        start_new_session=True,  # one process group: the supervisor and its workers
    )
    assert process.stderr is not None
    stderr = process.stderr
    log: list[bytes] = []
    ready = trio.Event()

    async def drain() -> None:
        # uvicorn logs to stderr; reading it to the end keeps the pipe from filling up.
        # Ready takes both lines: a single uvicorn process completes the app's startup
        # before it binds the socket ("Uvicorn running on"), so startup alone let a client
        # connect too early and be refused; with --workers the supervisor binds first.
        buffered = b""
        started = 0
        listening = False
        async for chunk in stderr:
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                log.append(line)
                if b"Application startup complete." in line:
                    started += 1
                listening = listening or b"Uvicorn running on" in line
                if listening and started == workers:
                    ready.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            with trio.fail_after(START_TIMEOUT):
                await ready.wait()
            yield f"http://127.0.0.1:{port}"
            nursery.cancel_scope.cancel()
    except trio.TooSlowError:
        raise RuntimeError("uvicorn did not start:\n" + b"\n".join(log).decode()) from None
    finally:
        with trio.move_on_after(10, shield=True):
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGTERM)
                with trio.move_on_after(5):
                    await process.wait()
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
            await stderr.aclose()
