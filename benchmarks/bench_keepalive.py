"""Keep-alive policies against a real ``uvicorn --workers 4`` (and 1 worker as the baseline).

    python benchmarks/bench_keepalive.py                     # about 3 minutes
    python benchmarks/bench_keepalive.py --rounds 5 --seconds 5 --concurrency 64

For each server (4 workers, 1 worker) and each policy (on, off, recycle(8), recycle(64); and on
without TCP_QUICKACK, as most clients run), a
trio-infer client sends GETs at ``--concurrency`` for ``--seconds`` after a warm-up, and the
run reports: requests/s, workers that answered, the busiest and idlest workers' shares, their
ratio, and connections opened per request. Rounds rotate the policies' order; the table shows
medians (throughput also as a ratio to keep-alive on, measured against the same server in the
same run). The app is ``trio_infer.testing``'s worker-id app (its pid in ``x-worker-id``).
Client and server share this machine's cores, as they would on one load-test host.
"""

from __future__ import annotations

import argparse
import statistics
import time

import trio

import trio_infer
from trio_infer import KeepAlive
from trio_infer.testing import open_uvicorn

#: name -> (policy, tcp_quickack). "on, no quickack" is how most clients behave: see the
#: Nagle note in docs/keepalive.md.
POLICIES = {
    "on": (KeepAlive.on(), True),
    "on, no quickack": (KeepAlive.on(), False),
    "off": (KeepAlive.off(), True),
    "recycle(8)": (KeepAlive.recycle(max_requests=8), True),
    "recycle(64)": (KeepAlive.recycle(max_requests=64), True),
}
WARMUP = 0.5


async def measure(
    url: str, policy: KeepAlive, quickack: bool, concurrency: int, seconds: float
) -> dict[str, float]:
    async with trio_infer.Client(
        url,
        keepalive=policy,
        worker_header="x-worker-id",
        limiter=concurrency,
        tcp_quickack=quickack,
    ) as client:
        count = 0

        async def caller(stop: float) -> None:
            nonlocal count
            while trio.current_time() < stop:
                await client.request("GET", "/")
                count += 1

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(caller, trio.current_time() + WARMUP)
        before = client.stats().endpoints[0]
        count = 0
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(caller, trio.current_time() + seconds)
        elapsed = time.perf_counter() - start
        after = client.stats().endpoints[0]
    earlier = dict(before.workers)
    served = sorted((n - earlier.get(worker, 0) for worker, n in after.workers), reverse=True)
    served = [n for n in served if n > 0]
    total = sum(served)
    return {
        "rate": count / elapsed,
        "workers": len(served),
        "busiest": served[0] / total,
        "idlest": served[-1] / total,
        "conns_per_request": (after.opened - before.opened) / count,
    }


async def main(rounds: int, seconds: float, concurrency: int) -> None:
    print(f"rounds={rounds} seconds={seconds} concurrency={concurrency}")
    print()
    print(
        "| uvicorn workers | policy | req/s | vs on | workers used | busiest | idlest | busiest/idlest | connections per request |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for workers in (4, 1):
        results: dict[str, list[dict[str, float]]] = {name: [] for name in POLICIES}
        async with open_uvicorn(workers=workers) as url:
            names = list(POLICIES)
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    policy, quickack = POLICIES[name]
                    results[name].append(await measure(url, policy, quickack, concurrency, seconds))
        on_rate = statistics.median(x["rate"] for x in results["on"])
        for name, runs in results.items():
            med = {key: statistics.median(x[key] for x in runs) for key in runs[0]}
            print(
                f"| {workers} | {name} | {med['rate']:,.0f} | {med['rate'] / on_rate:.2f} | "
                f"{med['workers']:.0f} | {med['busiest']:.1%} | {med['idlest']:.1%} | "
                f"{med['busiest'] / med['idlest']:.2f} | {med['conns_per_request']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    trio.run(main, args.rounds, args.seconds, args.concurrency)
