"""Serve the KServe-v2 check models on a real KServe ModelServer (same names as Triton, MLServer).

  add             FP32 INPUT0 + FP32 INPUT1 -> FP32 OUTPUT0
  identity_bytes  INPUT0 -> OUTPUT0 (the numpy array KServe decoded, sent back)
  identity_fp32   INPUT0 -> OUTPUT0

KServe's REST server hard-codes host="0.0.0.0" in its uvicorn.Config; this script replaces
uvicorn.Config in its own process with one forced to 127.0.0.1, so nothing listens beyond
loopback. gRPC is turned off. Runs in the `kserve` venv (hence `importlib`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any


def _loopback_only() -> None:
    uvicorn: Any = importlib.import_module("uvicorn")
    original = uvicorn.Config

    def config(*args: Any, **kwargs: Any) -> Any:
        kwargs["host"] = "127.0.0.1"
        return original(*args, **kwargs)

    uvicorn.Config = config


def _models() -> list[Any]:
    kserve: Any = importlib.import_module("kserve")

    def respond(model: Any, payload: Any, arrays: dict[str, Any]) -> Any:
        outputs = []
        for name, arr in arrays.items():
            datatype = "BYTES" if arr.dtype.kind in "OSU" else payload.inputs[0].datatype
            out = kserve.InferOutput(name=name, shape=list(arr.shape), datatype=datatype)
            # Kept raw here; InferResponse.to_rest picks JSON or binary per the request's
            # `binary_data_output` / per-output `binary_data`, as KServe's own models do.
            out.set_data_from_numpy(arr, binary_data=True)
            outputs.append(out)
        return kserve.InferResponse(
            response_id=payload.id or "",
            model_name=model.name,
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    class Base(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.ready = True

    class Add(Base):
        async def predict(
            self, payload: Any, headers: Any = None, response_headers: Any = None
        ) -> Any:
            by_name = {i.name: i.as_numpy() for i in payload.inputs}
            return respond(self, payload, {"OUTPUT0": by_name["INPUT0"] + by_name["INPUT1"]})

    class Identity(Base):
        async def predict(
            self, payload: Any, headers: Any = None, response_headers: Any = None
        ) -> Any:
            return respond(self, payload, {"OUTPUT0": payload.inputs[0].as_numpy()})

    return [Add("add"), Identity("identity_bytes"), Identity("identity_fp32")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8105)
    args = parser.parse_args()
    # kserve parses sys.argv at import time; it must not see ours.
    sys.argv = sys.argv[:1]
    _loopback_only()
    kserve = importlib.import_module("kserve")
    server = kserve.ModelServer(http_port=args.port, enable_grpc=False, workers=1)
    server.start(_models())


if __name__ == "__main__":
    main()
