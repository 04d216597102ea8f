"""MLServer custom runtimes for the KServe-v2 check models (same names as on Triton and KServe).

  add             FP32 INPUT0 + FP32 INPUT1 -> FP32 OUTPUT0
  identity_bytes  INPUT0 -> OUTPUT0, decoded and re-encoded by MLServer's NumpyCodec
  identity_fp32   INPUT0 -> OUTPUT0, likewise

MLServer 1.7.1's REST API has no binary tensor extension (server metadata lists no extensions; a
binary body is parsed as JSON and fails), so only JSON tensors work here.

`start.sh` writes the model-settings.json files that name these classes and puts this directory on
PYTHONPATH. Runs in the `mlserver` venv; mlserver is not in the project's environment, so its
classes come through `importlib` (and subclassing them needs the `misc` ignore under --strict).
"""

from __future__ import annotations

import importlib
from typing import Any

# Any, not ModuleType: the base class below comes from a module mypy cannot see here.
_MLModel: Any = importlib.import_module("mlserver").MLModel
_types = importlib.import_module("mlserver.types")
_codecs = importlib.import_module("mlserver.codecs")


def _respond(model: Any, shape: list[int], arr: Any) -> Any:
    # MLServer's own codec both ways, so what it accepts and how it writes values is MLServer's;
    # NumpyCodec reports 1-D arrays as [n, 1], so the request's shape is put back.
    out = _codecs.NumpyCodec.encode_output(name="OUTPUT0", payload=arr)
    out.shape = shape
    return _types.InferenceResponse(model_name=model.name, outputs=[out])


def _echo(model: Any, payload: Any) -> Any:
    inp = payload.inputs[0]
    return _respond(model, inp.shape, _codecs.NumpyCodec.decode_input(inp))


class Add(_MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        return True

    async def predict(self, payload: Any) -> Any:
        by_name = {i.name: i for i in payload.inputs}
        a = _codecs.NumpyCodec.decode_input(by_name["INPUT0"])
        b = _codecs.NumpyCodec.decode_input(by_name["INPUT1"])
        return _respond(self, by_name["INPUT0"].shape, a + b)


class IdentityBytes(_MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        return True

    async def predict(self, payload: Any) -> Any:
        return _echo(self, payload)


class IdentityFp32(_MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        return True

    async def predict(self, payload: Any) -> Any:
        return _echo(self, payload)
