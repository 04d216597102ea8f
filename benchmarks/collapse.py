"""Where the json rate goes between 64 and 1024 requests in flight.

    python benchmarks/collapse.py            # about 2 minutes; needs nginx, like bench_http.py

Part 1, the floor: a bare loop (httptools on trio sockets, one request per connection at a
time, connections taken least-recently-used) with 64 in flight over 64 connections, 64 in
flight over 1024 open connections, and 1024 in flight, each with the cyclic GC on and off.
It separates the cost of open sockets from the cost of requests in flight, and both from the GC.

Part 2, trio-infer's garbage collections: with ``gc.callbacks``, how many young-generation
collections ran, how long they took in total, and the largest young generation seen at the
start of one (``gc.get_objects(0)`` on a sample of collections), at 64 and at 1024 in flight.

Same nginx and pinning as ``bench_http.py``; every run is a fresh process.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import CLIENT_CPU, pin, run_nginx  # noqa: E402

SECONDS = 1.5
ROUNDS = 3

FLOOR = r"""
import gc, sys, time
import trio, httptools
url, in_flight, connections, gc_mode, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
if gc_mode == "off":
    gc.disable()
host, port = url.rsplit("//", 1)[1].split(":")
request = b"GET /json HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"

class Parsed:
    def __init__(self):
        self.done = False
    def on_message_complete(self):
        self.done = True

async def main():
    free = []
    for _ in range(connections):
        sock = trio.socket.socket()
        await sock.connect((host, int(port)))
        free.append(sock)
    count = 0
    async def worker(stop):
        nonlocal count
        while trio.current_time() < stop:
            sock = free.pop(0)  # least recently used: every open connection takes turns
            parsed = Parsed()
            parser = httptools.HttpResponseParser(parsed)
            await sock.send(request)
            while not parsed.done:
                parser.feed_data(await sock.recv(65536))
            free.append(sock)
            count += 1
    for warm in (True, False):
        count = 0
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            stop = trio.current_time() + (0.3 if warm else seconds)
            for _ in range(in_flight):
                nursery.start_soon(worker, stop)
    print(count / (time.perf_counter() - start))

trio.run(main)
"""

GC_PROBE = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[4])
from _clients import CLIENTS
state = {"n": 0, "seconds": 0.0, "largest_young": 0, "start": 0.0}
def callback(phase, info):
    if info["generation"] != 0:
        return
    if phase == "start":
        state["n"] += 1
        if state["n"] % 5 == 0:  # sample: listing the young generation is itself costly
            state["largest_young"] = max(state["largest_young"], len(gc.get_objects(0)))
        state["start"] = time.perf_counter()
    else:
        state["seconds"] += time.perf_counter() - state["start"]
gc.callbacks.append(callback)
wall = time.perf_counter()
count, elapsed = CLIENTS["trio-infer"](sys.argv[1], "json", int(sys.argv[2]), float(sys.argv[3]))
wall = time.perf_counter() - wall  # warm-up included, as in the callbacks' totals
print(json.dumps({"rate": count / elapsed, "wall": wall, **state}))
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run(
        [*pin(CLIENT_CPU), sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def main() -> None:
    floor_cases = [(64, 64), (64, 1024), (1024, 1024)]
    with run_nginx() as url:
        rates: dict[tuple[int, int, str], list[float]] = {}
        for _round in range(ROUNDS):
            for in_flight, connections in floor_cases:
                for gc_mode in ("on", "off"):
                    rate = float(
                        run(FLOOR, url, str(in_flight), str(connections), gc_mode, str(SECONDS))
                    )
                    rates.setdefault((in_flight, connections, gc_mode), []).append(rate)
        base = statistics.median(rates[(64, 64, "on")])
        print("## floor: bare httptools loop on trio sockets (median req/s, ratio to 64/64 GC on)")
        print("| in flight | connections open | GC | req/s | ratio |")
        print("|---|---|---|---|---|")
        for (in_flight, connections, gc_mode), values in rates.items():
            median = statistics.median(values)
            print(
                f"| {in_flight} | {connections} | {gc_mode} | {median:,.0f} | {median / base:.2f} |"
            )
        print()
        print("## trio-infer: young-generation collections during a json run")
        print(
            "| in flight | req/s | gen-0 collections | their time | share of wall time "
            "| per request | largest young generation |"
        )
        print("|---|---|---|---|---|---|---|")
        for concurrency in (64, 1024):
            probe = json.loads(run(GC_PROBE, url, str(concurrency), str(SECONDS), str(HERE)))
            share = probe["seconds"] / probe["wall"]
            print(
                f"| {concurrency} | {probe['rate']:,.0f} | {probe['n']} | "
                f"{probe['seconds'] * 1e3:.0f} ms | {share:.1%} | "
                f"{share / probe['rate'] * 1e6:.2f} us | {probe['largest_young']:,} objects |"
            )


if __name__ == "__main__":
    main()
