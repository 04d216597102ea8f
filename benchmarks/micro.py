"""Micro-benchmarks behind two choices, one process, no network:

    python benchmarks/micro.py

1. the codecs alone: one exchange (start_request + feed of a small nginx-like response), per
   parser backend;
2. JSON decoders on a typical OpenAI stream chunk: json, orjson (if installed), msgspec.
Best of 5 repeats; absolute numbers vary with the machine, compare within one run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
import timeit
from collections.abc import Callable
from functools import partial

import msgspec

from trio_infer._codec import make_codec

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 20:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 57\r\nConnection: keep-alive\r\n\r\n"
    + b'{"id":"x","object":"text_completion","choices":[1,2,3,4]}'[:57].ljust(57)
)
HEADERS = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"trio-infer/0.1"), (b"accept", b"*/*")]
CHUNK = (
    b'{"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1732300000,'
    b'"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":null,"choices":'
    b'[{"index":0,"delta":{"content":" hello"},"logprobs":null,"finish_reason":null}]}'
)


def codec_exchange(name: str, n: int = 20000) -> float:
    codec = make_codec(name)  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            codec.start_request(b"GET", b"/json", HEADERS, b"")
            codec.feed(RESPONSE)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> None:
    for name in ("httptools", "h11"):
        print(f"codec {name:10} {codec_exchange(name) * 1e6:6.2f} us per exchange")
    decoders: dict[str, Callable[[bytes], object]] = {
        "json": json.loads,
        "msgspec": msgspec.json.Decoder().decode,
    }
    # orjson is not a dependency, only the peer the choice was made against (bench extra)
    with contextlib.suppress(ImportError):
        decoders["orjson"] = importlib.import_module("orjson").loads
    for name, decode in decoders.items():
        best = min(timeit.repeat(partial(decode, CHUNK), number=200000, repeat=5))
        print(f"decode {name:9} {best / 200000 * 1e6:6.2f} us per stream chunk")


if __name__ == "__main__":
    main()
