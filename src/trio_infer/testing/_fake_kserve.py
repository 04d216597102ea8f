"""A fake KServe v2 / Triton server: the handler :class:`FakeKServe`, for :func:`serve`.

Models: ``identity`` (``OUTPUT0`` = ``INPUT0``, any datatype and shape) and ``add``
(``OUTPUT0`` = ``INPUT0`` + ``INPUT1``, elementwise, numeric datatypes). Health, server and
model metadata, model ready and config, and inference in JSON or with the binary tensor
extension both ways (``binary_data_size`` inputs, ``binary_data``/``binary_data_output``
outputs), as Triton serves them. Errors come as ``{"error": "..."}`` with status 400 or 404.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from .._tensor import Tensor
from ._server import Responder, ServerRequest

__all__ = ["FakeKServe"]

_METADATA = {
    "identity": {
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [-1]}],
        "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1]}],
    },
    "add": {
        "inputs": [
            {"name": "INPUT0", "datatype": "FP32", "shape": [-1]},
            {"name": "INPUT1", "datatype": "FP32", "shape": [-1]},
        ],
        "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1]}],
    },
}


class _Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class FakeKServe:
    """Configurable fake; ``ready`` and ``live`` flip the health answers."""

    def __init__(self) -> None:
        self.live = True
        self.ready = True
        self.infer_requests = 0

    async def __call__(self, request: ServerRequest, respond: Responder) -> None:
        try:
            await self._route(request, respond)
        except _Fail as fail:
            await respond.send_json({"error": fail.message}, fail.status)

    async def _route(self, request: ServerRequest, respond: Responder) -> None:
        parts = [urllib.parse.unquote(p) for p in request.path.strip("/").split("/")]
        if parts == ["v2", "health", "live"]:
            await respond.send_json({}, 200 if self.live else 503)
            return
        if parts == ["v2", "health", "ready"]:
            await respond.send_json({}, 200 if self.ready else 503)
            return
        if parts == ["v2"]:
            await respond.send_json(
                {"name": "fake-kserve", "version": "1", "extensions": ["binary_tensor_data"]},
            )
            return
        if len(parts) < 3 or parts[:2] != ["v2", "models"]:
            raise _Fail(404, f"no route {request.path}")
        model, rest = parts[2], parts[3:]
        if model not in _METADATA:
            raise _Fail(404, f"Request for unknown model: '{model}' is not found")
        version = "1"
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
            if version != "1":
                raise _Fail(
                    404, f"Request for unknown model: '{model}' version {version} is not found"
                )
        if rest == [] and request.method == "GET":
            await respond.send_json(
                {"name": model, "versions": ["1"], "platform": "fake", **_METADATA[model]},
            )
        elif rest == ["ready"]:
            await respond.send_json({}, 200 if self.ready else 503)
        elif rest == ["config"]:
            await respond.send_json({"name": model, "platform": "fake", "max_batch_size": 0})
        elif rest == ["infer"] and request.method == "POST":
            await self._infer(model, version, request, respond)
        else:
            raise _Fail(404, f"no route {request.method} {request.path}")

    async def _infer(
        self, model: str, version: str, request: ServerRequest, respond: Responder
    ) -> None:
        self.infer_requests += 1
        length = request.header("inference-header-content-length")
        body = request.body
        try:
            header = json.loads(body[: int(length)] if length is not None else body)
        except ValueError as exc:
            raise _Fail(400, f"failed to parse the request JSON: {exc}") from None
        blob = body[int(length) :] if length is not None else b""
        inputs: dict[str, Tensor] = {}
        offset = 0
        for entry in header.get("inputs") or []:
            size = (entry.get("parameters") or {}).get("binary_data_size")
            try:
                if size is not None:
                    raw = blob[offset : offset + size]
                    offset += size
                    tensor = Tensor.from_bytes(
                        entry["name"], entry["shape"], entry["datatype"], raw
                    )
                else:
                    tensor = Tensor.from_json(entry)
            except Exception as exc:
                raise _Fail(400, f"input {entry.get('name')!r}: {exc}") from None
            inputs[tensor.name] = tensor
        if model == "identity":
            source = inputs.get("INPUT0")
            if source is None:
                raise _Fail(400, "expected input INPUT0")
            result = Tensor("OUTPUT0", source.shape, source.datatype, source.data)
        else:
            a, b = inputs.get("INPUT0"), inputs.get("INPUT1")
            if a is None or b is None:
                raise _Fail(400, "expected inputs INPUT0 and INPUT1")
            if a.shape != b.shape or a.datatype != b.datatype or a.datatype in ("BYTES", "BOOL"):
                raise _Fail(400, "INPUT0 and INPUT1 must be numeric tensors of one shape and type")
            result = Tensor(
                "OUTPUT0", a.shape, a.datatype, [x + y for x, y in zip(a.data, b.data, strict=True)]
            )
        binary = bool((header.get("parameters") or {}).get("binary_data_output"))
        requested = header.get("outputs")
        if requested:
            names = {
                o["name"]: bool((o.get("parameters") or {}).get("binary_data", binary))
                for o in requested
            }
            if "OUTPUT0" not in names:
                raise _Fail(400, f"unknown outputs requested: {sorted(names)}")
            binary = names["OUTPUT0"]
        out: dict[str, Any] = {
            "name": result.name,
            "shape": list(result.shape),
            "datatype": result.datatype,
        }
        response = {"model_name": model, "model_version": version, "outputs": [out]}
        if "id" in header:
            response["id"] = header["id"]
        if not binary:
            out["data"] = result.json_data()
            await respond.send_json(response)
            return
        raw = result.to_bytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        encoded = json.dumps(response).encode()
        data = encoded + raw
        await respond.start(
            200,
            [
                ("content-type", "application/octet-stream"),
                ("inference-header-content-length", str(len(encoded))),
            ],
            length=len(data),
        )
        await respond.send(data)
        await respond.end()
