"""trio-infer against its peers, in one run, against one nginx on loopback.

    python benchmarks/bench_http.py                       # everything, 3 rounds
    python benchmarks/bench_http.py --rounds 5 --seconds 3 --markdown out.md

For each scenario (``json``: a small JSON body, decoded; ``sse``: a 64-event SSE stream, every
event JSON-decoded) and each concurrency, every client runs in a fresh process for
``--seconds`` after a warm-up. Rounds interleave the clients (rotating their order), so a
noisy neighbour hurts everyone alike, and the table shows each client's median with its
ratio to aiohttp measured in the same run. Numbers are requests/s (json) or events/s (sse).
nginx (one worker) is pinned to one core and the clients to the other (see ``_nginx.py``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _clients import CLIENTS  # noqa: E402
from _nginx import CLIENT_CPU, pin, run_nginx  # noqa: E402


def run_one(client: str, url: str, scenario: str, concurrency: int, seconds: float) -> float:
    out = subprocess.run(
        [
            *pin(CLIENT_CPU),
            sys.executable,
            str(HERE / "_clients.py"),
            client,
            url,
            scenario,
            str(concurrency),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds * 10 + 60,
    )
    if out.returncode != 0:
        raise SystemExit(f"{client} {scenario} c={concurrency} failed:\n{out.stderr}")
    count, elapsed = out.stdout.split()
    return int(count) / float(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--scenarios", nargs="+", default=["json", "sse"], choices=["json", "sse"])
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=list(CLIENTS))
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    results: dict[tuple[str, int, str], list[float]] = {}
    with run_nginx() as url:
        for round_index in range(args.rounds):
            order = (
                args.clients[round_index % len(args.clients) :]
                + args.clients[: round_index % len(args.clients)]
            )
            for scenario in args.scenarios:
                for concurrency in args.concurrency:
                    for client in order:
                        rate = run_one(client, url, scenario, concurrency, args.seconds)
                        results.setdefault((scenario, concurrency, client), []).append(rate)
                        print(
                            f"round {round_index + 1}: {scenario:4} c={concurrency:<5} {client:16} {rate:10.0f}/s",
                            file=sys.stderr,
                            flush=True,
                        )

    lines = [
        f"rounds={args.rounds} seconds={args.seconds}; median rate, (ratio to aiohttp in the same run), "
        f"[min-max]",
        "",
        "| scenario | concurrency | " + " | ".join(args.clients) + " |",
        "|---|---|" + "---|" * len(args.clients),
    ]
    for scenario in args.scenarios:
        for concurrency in args.concurrency:
            base = statistics.median(
                results.get((scenario, concurrency, "aiohttp"), [float("nan")])
            )
            cells = []
            for client in args.clients:
                rates = results[(scenario, concurrency, client)]
                median = statistics.median(rates)
                cells.append(
                    f"{median:,.0f} ({median / base:.2f}x) [{min(rates):,.0f}-{max(rates):,.0f}]"
                )
            unit = "req/s" if scenario == "json" else "events/s"
            lines.append(f"| {scenario} ({unit}) | {concurrency} | " + " | ".join(cells) + " |")
    for scenario in args.scenarios:
        if 64 in args.concurrency and 1024 in args.concurrency and "trio-infer" in args.clients:
            at64 = statistics.median(results[(scenario, 64, "trio-infer")])
            at1024 = statistics.median(results[(scenario, 1024, "trio-infer")])
            lines.append("")
            lines.append(
                f"trio-infer {scenario}: 1024 concurrent / 64 concurrent = {at1024 / at64:.2f}"
            )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
