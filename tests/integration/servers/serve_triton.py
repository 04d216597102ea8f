"""Serve the KServe-v2 check models on a real Triton (tritonserver shipped by nvidia-pytriton).

Models (the same names and tensors on Triton, MLServer and KServe, so one suite runs on all three):
  add             FP32 INPUT0 [-1] + FP32 INPUT1 [-1] -> FP32 OUTPUT0 [-1]
  identity_bytes  BYTES INPUT0 [-1] -> BYTES OUTPUT0 [-1] (the bytes as they arrived)
  identity_fp32   FP32 INPUT0 [-1] -> FP32 OUTPUT0 [-1]

HTTP on 127.0.0.1:$PORT (default 8103); gRPC on PORT+10 and metrics on PORT+20, loopback too.
Runs in the `triton` venv; pytriton is not in the project's environment, hence `importlib`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any


def _add(requests: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"OUTPUT0": r["INPUT0"] + r["INPUT1"]} for r in requests]


def _identity(requests: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"OUTPUT0": r["INPUT0"]} for r in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8103)
    args = parser.parse_args()
    np = importlib.import_module("numpy")
    triton_mod = importlib.import_module("pytriton.triton")
    cfg = importlib.import_module("pytriton.model_config")
    port: int = args.port
    config = triton_mod.TritonConfig(
        http_address="127.0.0.1",
        http_port=port,
        grpc_address="127.0.0.1",
        grpc_port=port + 10,
        metrics_address="127.0.0.1",
        metrics_port=port + 20,
        log_verbose=0,
    )

    def tensor(name: str, dtype: Any) -> Any:
        return cfg.Tensor(name=name, dtype=dtype, shape=(-1,))

    # batching=False: shapes are exactly what the client sends, no implicit batch dimension.
    no_batch = cfg.ModelConfig(batching=False)
    with triton_mod.Triton(config=config) as triton:
        triton.bind(
            model_name="add",
            infer_func=_add,
            inputs=[tensor("INPUT0", np.float32), tensor("INPUT1", np.float32)],
            outputs=[tensor("OUTPUT0", np.float32)],
            config=no_batch,
        )
        triton.bind(
            model_name="identity_bytes",
            infer_func=_identity,
            inputs=[tensor("INPUT0", np.bytes_)],
            outputs=[tensor("OUTPUT0", np.bytes_)],
            config=no_batch,
        )
        triton.bind(
            model_name="identity_fp32",
            infer_func=_identity,
            inputs=[tensor("INPUT0", np.float32)],
            outputs=[tensor("OUTPUT0", np.float32)],
            config=no_batch,
        )
        triton.serve()


if __name__ == "__main__":
    main()
