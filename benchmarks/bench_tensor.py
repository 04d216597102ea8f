"""Large binary tensors: trio-infer against tritonclient, in one run, against one server.

    python benchmarks/bench_tensor.py                          # FakeKServe in a subprocess
    python benchmarks/bench_tensor.py --url 127.0.0.1:8103     # a real Triton (model "add")
    python benchmarks/bench_tensor.py --elements 2000000 --rounds 7 --calls 5

The case (issue #11, defect 6): add two FP32 tensors of ``--elements`` elements on the
server's ``add`` model (``OUTPUT0 = INPUT0 + INPUT1``), binary tensor extension in and out,
the answer as a numpy array. Each call is timed whole, from the numpy arrays to the result's
numpy array (tensor making, encoding, the HTTP exchange, decoding): ``Tensor.from_numpy`` ...
``output().as_numpy()`` for trio-infer, ``InferInput.set_data_from_numpy`` ...
``InferResult.as_numpy`` for tritonclient.

The server runs in another process, so it never shares the clients' event loop: FakeKServe
served by ``trio_infer.testing.serve`` (pinned to core 1 and the clients to core 0 where
``taskset`` and two cores allow), or the server at ``--url``. Rounds alternate the clients
(the first one in a round alternates too), each client making ``--calls`` calls per round
after one untimed warm-up call on its connection; the table gives each client's median call
time over all rounds, its min-max, and the ratio of the medians. Both clients' answers are
checked against numpy's sum once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import CLIENT_CPU, SERVER_CPU, pin  # noqa: E402

import trio_infer  # noqa: E402
from trio_infer import Tensor  # noqa: E402


async def _serve_fake() -> None:
    from trio_infer.testing import FakeKServe, serve

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve, FakeKServe(), max_request_body=1 << 30, raise_handler_errors=False)
        )
        print(f"listening on {server.url}", flush=True)


def start_fake() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*pin(SERVER_CPU), sys.executable, str(Path(__file__).resolve()), "--serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"the fake server did not start: {line!r}")
    return process, line.split()[-1]


def tritonclient_call(url: str) -> tuple[Callable[[Any, Any], Any], Callable[[], None]]:
    import tritonclient.http as httpclient  # type: ignore[import-untyped]

    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))

    def call(a: Any, b: Any) -> Any:
        inputs = [
            httpclient.InferInput("INPUT0", list(a.shape), "FP32"),
            httpclient.InferInput("INPUT1", list(b.shape), "FP32"),
        ]
        inputs[0].set_data_from_numpy(a, binary_data=True)
        inputs[1].set_data_from_numpy(b, binary_data=True)
        outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=True)]
        return client.infer("add", inputs, outputs=outputs).as_numpy("OUTPUT0")

    return call, client.close


async def trio_infer_call(client: trio_infer.Client, a: Any, b: Any) -> Any:
    result = await client.kserve.infer(
        "add",
        [Tensor.from_numpy("INPUT0", a), Tensor.from_numpy("INPUT1", b)],
        ["OUTPUT0"],
        binary_inputs=True,
        binary_outputs=True,
    )
    return result.output("OUTPUT0").as_numpy()


async def run(url: str, elements: int, rounds: int, calls: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(11)
    a = rng.standard_normal(elements, dtype=np.float32)
    b = rng.standard_normal(elements, dtype=np.float32)
    expected = a + b
    times: dict[str, list[float]] = {"trio-infer": [], "tritonclient": []}
    triton, close_triton = tritonclient_call(url)
    http_url = url if url.startswith("http") else "http://" + url
    async with trio_infer.Client(http_url, timeouts=trio_infer.Timeouts(read=120)) as client:
        # One warm-up call each: connections open, both answers checked.
        assert np.array_equal(await trio_infer_call(client, a, b), expected)
        assert np.array_equal(triton(a, b), expected)
        for round_ in range(rounds):
            order = ["trio-infer", "tritonclient"]
            if round_ % 2:
                order.reverse()
            for name in order:
                for _ in range(calls):
                    start = time.perf_counter()
                    if name == "trio-infer":
                        await trio_infer_call(client, a, b)
                    else:
                        triton(a, b)  # blocks the loop, which has nothing else to do
                    times[name].append(time.perf_counter() - start)
    close_triton()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running KServe v2 server with an FP32 'add' model")
    parser.add_argument("--elements", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(_serve_fake)
        return
    process = None
    if args.url:
        url, server = args.url, args.url
    else:
        process, url = start_fake()
        server = "FakeKServe (trio_infer.testing.serve, a subprocess)"
        if pin(CLIENT_CPU):
            os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        times = trio.run(run, url, args.elements, args.rounds, args.calls)
    finally:
        if process is not None:
            process.kill()
            process.wait()
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"add two {args.elements:,}-element FP32 tensors, binary in and out; server: {server}; "
        f"{args.rounds} rounds x {args.calls} calls per client"
    )
    print("| client | median ms | min-max ms | ratio to tritonclient |")
    print("|---|---|---|---|")
    for name, t in times.items():
        ratio = medians[name] / medians["tritonclient"]
        print(
            f"| {name} | {medians[name] * 1e3:.1f} | {min(t) * 1e3:.1f}-{max(t) * 1e3:.1f} | "
            f"{ratio:.2f}x |"
        )


if __name__ == "__main__":
    main()
