"""Start nginx (Debian's package) on a free loopback port, serving a small JSON body at
``/json`` and a 64-event SSE body at ``/sse``. A context manager; stops nginx on exit."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SSE_EVENTS = 64
JSON_BODY = json.dumps({"id": "cmpl-0", "object": "text_completion", "ok": True}).encode()


def sse_body(n: int = SSE_EVENTS) -> bytes:
    events = [
        "data: "
        + json.dumps({"id": "cmpl-0", "choices": [{"index": 0, "text": f" tok{i}"}]})
        + "\n\n"
        for i in range(n)
    ]
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


#: nginx runs on SERVER_CPU and every client on CLIENT_CPU. Left to itself the scheduler
#: sometimes puts both on one core (measured: trio-infer 24k req/s on a shared core against
#: 40k on separate ones), which made medians jump between runs.
SERVER_CPU = 1
CLIENT_CPU = 0


def pin(cpu: int) -> list[str]:
    """A ``taskset`` prefix pinning a command to ``cpu``, or nothing where that is impossible."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return []
    return [taskset, "-c", str(cpu)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_nginx() -> str:
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if path is None:
        raise SystemExit("nginx not found: install it with 'apt-get install -y nginx-light'")
    return path


@contextlib.contextmanager
def run_nginx(workers: int = 1) -> Iterator[str]:
    nginx = find_nginx()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="trio-infer-nginx-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx workers drop to an unprivileged user when started as root
        (root / "www").mkdir()
        (root / "www" / "json").write_bytes(JSON_BODY)
        (root / "www" / "sse").write_bytes(sse_body())
        conf = root / "nginx.conf"
        conf.write_text(
            f"""
worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        root {root}/www;
        location = /json {{ default_type application/json; }}
        location = /sse {{ default_type text/event-stream; }}
    }}
}}
"""
        )
        proc = subprocess.Popen(
            [*pin(SERVER_CPU), nginx, "-c", str(conf), "-p", str(root)], stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err = proc.stderr.read().decode() if proc.stderr else ""
                        raise SystemExit(f"nginx did not start: {err}") from None
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)
