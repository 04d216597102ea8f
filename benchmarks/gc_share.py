"""How much of trio-infer's time at high concurrency goes to Python's cyclic GC.

    python benchmarks/gc_share.py

Runs the json scenario of ``bench_http.py`` (same nginx, same pinning) for trio-infer alone,
at 64 and 1024 concurrent, with the garbage collector on and off, alternating, two rounds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import CLIENT_CPU, pin, run_nginx  # noqa: E402

CHILD = """
import gc, sys
sys.path.insert(0, sys.argv[4])
if sys.argv[2] == "off":
    gc.disable()
from _clients import CLIENTS
count, elapsed = CLIENTS["trio-infer"](sys.argv[1], "json", int(sys.argv[3]), 1.5)
print(int(count / elapsed))
"""


def main() -> None:
    with run_nginx() as url:
        for _round in range(2):
            for concurrency in ("64", "1024"):
                for gc_mode in ("on", "off"):
                    out = subprocess.run(
                        [
                            *pin(CLIENT_CPU),
                            sys.executable,
                            "-c",
                            CHILD,
                            url,
                            gc_mode,
                            concurrency,
                            str(HERE),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    print(
                        f"concurrency {concurrency:>5}  gc {gc_mode:3}  {out.stdout.strip()} req/s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
