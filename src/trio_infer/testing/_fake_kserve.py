"""A fake KServe v2 / Triton server: the handler :class:`FakeKServe`, for :func:`serve`.

Models: ``identity`` (``OUTPUT0`` = ``INPUT0``, any datatype and shape) and ``add``
(``OUTPUT0`` = ``INPUT0`` + ``INPUT1``, elementwise, numeric datatypes). Health, server and
model metadata, model ready and config, and inference in JSON or with the binary tensor
extension both ways (``binary_data_size`` inputs, ``binary_data``/``binary_data_output``
outputs), as Triton serves them. Errors come as ``{"error": "..."}`` with status 400, 404 or
405 (a known path with the wrong method, with ``Allow``).

Every field the fake reads is checked, and a bad one is a 400 naming it by its place in the
request (``inputs[0].shape``, ``outputs[1].parameters.binary_data``): the body must be a JSON
object (NaN and Infinity are not JSON); ``inputs`` a list of objects with a string ``name``, a
``shape`` of whole numbers >= 0 holding at most :data:`MAX_ELEMENTS` elements, a KServe
``datatype``, and either ``data`` (a list, nested or flat, of values of that datatype: ``BOOL``
true/false, integers within their type's range, finite numbers that the float type can hold,
``BYTES`` strings) or ``parameters.binary_data_size`` bytes of the binary part, exactly the
size the shape needs; ``outputs`` a list of objects with a string ``name``; ``id`` a string;
``inference-header-content-length`` a byte count within the body. A sum that overflows its
datatype is refused too (Triton would wrap integers and give infinities), so every answer is a
value the datatype can carry and valid JSON.
"""

from __future__ import annotations

import json
import math
import struct
import urllib.parse
from typing import Any, Final

from .._errors import ConfigError
from .._tensor import DATATYPES, Tensor
from ._server import Responder, ServerRequest
from ._validate import Rejected, describe, json_object, optional_bool, optional_object

__all__ = ["FakeKServe"]

#: The most elements one input tensor may hold (a shape is a promise of memory).
MAX_ELEMENTS: Final = 1 << 24

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

#: datatype -> little-endian struct format of one element (BYTES has none)
_FORMATS: Final = {
    "BOOL": "<?",
    "INT8": "<b",
    "INT16": "<h",
    "INT32": "<i",
    "INT64": "<q",
    "UINT8": "<B",
    "UINT16": "<H",
    "UINT32": "<I",
    "UINT64": "<Q",
    "FP16": "<e",
    "FP32": "<f",
    "FP64": "<d",
}


class FakeKServe:
    """Configurable fake; ``ready`` and ``live`` flip the health answers."""

    def __init__(self) -> None:
        self.live = True
        self.ready = True
        self.infer_requests = 0

    async def __call__(self, request: ServerRequest, respond: Responder) -> None:
        try:
            await self._route(request, respond)
        except Rejected as rejected:
            await respond.send_json({"error": rejected.message}, rejected.status, rejected.headers)

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
            raise Rejected(f"no route {request.path}", 404)
        model, rest = parts[2], parts[3:]
        if model not in _METADATA:
            raise Rejected(f"Request for unknown model: '{model}' is not found", 404)
        version = "1"
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
            if version != "1":
                raise Rejected(
                    f"Request for unknown model: '{model}' version {version} is not found", 404
                )
        if rest == []:
            _method(request, "GET")
            await respond.send_json(
                {"name": model, "versions": ["1"], "platform": "fake", **_METADATA[model]},
            )
        elif rest == ["ready"]:
            await respond.send_json({}, 200 if self.ready else 503)
        elif rest == ["config"]:
            await respond.send_json({"name": model, "platform": "fake", "max_batch_size": 0})
        elif rest == ["infer"]:
            _method(request, "POST")
            await self._infer(model, version, request, respond)
        else:
            raise Rejected(f"no route {request.method} {request.path}", 404)

    async def _infer(
        self, model: str, version: str, request: ServerRequest, respond: Responder
    ) -> None:
        self.infer_requests += 1
        body = request.body
        length = _header_length(request)
        header = json_object(body[:length] if length is not None else body, "the request JSON")
        blob = body[length:] if length is not None else b""
        raw_inputs = header.get("inputs")
        if raw_inputs is None:
            raw_inputs = []
        if not isinstance(raw_inputs, list):
            raise Rejected(f"inputs: must be a list of input tensors, got {describe(raw_inputs)}")
        inputs: dict[str, Tensor] = {}
        offset = 0
        for i, entry in enumerate(raw_inputs):
            tensor, offset = _input(f"inputs[{i}]", entry, blob, offset)
            inputs[tensor.name] = tensor
        if model == "identity":
            source = inputs.get("INPUT0")
            if source is None:
                raise Rejected("expected input INPUT0")
            result = _tensor("OUTPUT0", source.shape, source.datatype, list(source.data))
        else:
            a, b = inputs.get("INPUT0"), inputs.get("INPUT1")
            if a is None or b is None:
                raise Rejected("expected inputs INPUT0 and INPUT1")
            if a.shape != b.shape or a.datatype != b.datatype or a.datatype in ("BYTES", "BOOL"):
                raise Rejected("INPUT0 and INPUT1 must be numeric tensors of one shape and type")
            sums = [x + y for x, y in zip(a.data, b.data, strict=True)]
            for j, (x, y, total) in enumerate(zip(a.data, b.data, sums, strict=True)):
                if not _fits(a.datatype, total):
                    raise Rejected(
                        f"INPUT0 + INPUT1 overflows {a.datatype} at element {j}: "
                        f"{x!r} + {y!r} = {total!r}"
                    )
            result = _tensor("OUTPUT0", a.shape, a.datatype, sums)
        parameters = optional_object(header, "parameters")
        binary = bool(optional_bool(parameters, "binary_data_output", "parameters."))
        requested = _outputs(header)
        if requested:
            if "OUTPUT0" not in requested:
                raise Rejected(f"unknown outputs requested: {sorted(requested)}")
            choice = requested["OUTPUT0"]
            binary = binary if choice is None else choice
        out: dict[str, Any] = {
            "name": result.name,
            "shape": list(result.shape),
            "datatype": result.datatype,
        }
        response = {"model_name": model, "model_version": version, "outputs": [out]}
        if "id" in header:
            if not isinstance(header["id"], str):
                raise Rejected(f"id: must be a string, got {describe(header['id'])}")
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


def _method(request: ServerRequest, method: str) -> None:
    if request.method != method:
        raise Rejected(
            f"{request.path} answers {method}, not {request.method}",
            405,
            headers=[("allow", method)],
        )


def _header_length(request: ServerRequest) -> int | None:
    """``inference-header-content-length``: where the JSON ends and the binary data starts."""
    raw = request.header("inference-header-content-length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Rejected(f"inference-header-content-length: {describe(raw)} is not a byte count")
    length = int(raw)
    if length > len(request.body):
        raise Rejected(
            f"inference-header-content-length: {length} is more than the body's "
            f"{len(request.body)} bytes"
        )
    return length


def _tensor(name: str, shape: Any, datatype: str, data: list[Any]) -> Tensor:
    try:
        return Tensor(name, shape, datatype, data)
    except ConfigError as exc:  # the checks above should have caught it; say so, not 500
        raise Rejected(str(exc)) from None


def _whole(value: Any) -> bool:
    return type(value) is int  # bool is an int, and not a number here


def _fits(datatype: str, value: Any) -> bool:
    """Whether the JSON value ``value`` is a value of ``datatype`` (in range, if numeric)."""
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if datatype.startswith(("INT", "UINT")):
        numeric = _whole(value)
    else:
        numeric = _whole(value) or (isinstance(value, float) and math.isfinite(value))
    if not numeric:
        return False
    try:  # the type's range: struct refuses what the binary encoding could not carry
        struct.pack(_FORMATS[datatype], value)
    except (struct.error, OverflowError):
        return False
    return True


def _input(where: str, entry: Any, blob: bytes, offset: int) -> tuple[Tensor, int]:
    """One checked input tensor, and the offset of the next one's binary data."""
    if not isinstance(entry, dict):
        raise Rejected(f"{where}: must be an object, got {describe(entry)}")
    name = entry.get("name")
    if not isinstance(name, str):
        raise Rejected(f"{where}.name: must be a string, got {describe(name)}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_whole(d) and d >= 0 for d in shape):
        raise Rejected(
            f"{where}.shape: must be a list of whole numbers >= 0, got {describe(shape)}"
        )
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise Rejected(
            f"{where}: shape {shape} holds {count} elements, more than the fake's limit of "
            f"{MAX_ELEMENTS}"
        )
    datatype = entry.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise Rejected(
            f"{where}.datatype: {describe(datatype)} is not one of {', '.join(sorted(DATATYPES))}"
        )
    parameters = optional_object(entry, "parameters", f"{where}.")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not _whole(size) or size < 0:
            raise Rejected(
                f"{where}.parameters.binary_data_size: must be a whole number >= 0, "
                f"got {describe(size)}"
            )
        left = len(blob) - offset
        if size > left:
            raise Rejected(
                f"{where}.parameters.binary_data_size: {size} bytes, but only {left} bytes of "
                "binary data are left"
            )
        data = _decode(where, shape, count, datatype, blob[offset : offset + size])
        return _tensor(name, shape, datatype, data), offset + size
    raw = entry.get("data", [])
    if not isinstance(raw, list):
        raise Rejected(f"{where}.data: must be a list, got {describe(raw)}")
    values = _flatten(raw)
    if len(values) != count:
        raise Rejected(f"{where}: shape {shape} holds {count} elements but data has {len(values)}")
    for j, value in enumerate(values):
        if not _fits(datatype, value):
            raise Rejected(f"{where}.data[{j}]: {describe(value)} is not a {datatype} value")
    if datatype == "BYTES":
        values = [v.encode() for v in values]
    return _tensor(name, shape, datatype, values), offset


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:  # iterative: a deeply nested list must not exhaust the stack
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _decode(where: str, shape: list[int], count: int, datatype: str, raw: bytes) -> list[Any]:
    """The binary extension's encoding of ``count`` elements, checked to fill ``raw`` exactly."""
    if datatype != "BYTES":
        need = count * struct.calcsize(_FORMATS[datatype])
        if len(raw) != need:
            raise Rejected(
                f"{where}.parameters.binary_data_size: {len(raw)} bytes, but shape {shape} of "
                f"{datatype} needs {need}"
            )
        return list(struct.unpack(f"<{count}{_FORMATS[datatype][1]}", raw))
    items: list[Any] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(raw):
            break
        (length,) = struct.unpack_from("<I", raw, offset)
        if offset + 4 + length > len(raw):
            break
        items.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if len(items) != count or offset != len(raw):
        raise Rejected(
            f"{where}: the {len(raw)} bytes of binary data are not {count} length-prefixed "
            f"BYTES elements (shape {shape})"
        )
    return items


def _outputs(header: dict[str, Any]) -> dict[str, bool | None]:
    """The requested outputs: name -> its ``binary_data`` choice (None: not given)."""
    outputs = header.get("outputs")
    if outputs is None:
        return {}
    if not isinstance(outputs, list):
        raise Rejected(f"outputs: must be a list of objects, got {describe(outputs)}")
    requested: dict[str, bool | None] = {}
    for i, entry in enumerate(outputs):
        where = f"outputs[{i}]"
        if not isinstance(entry, dict):
            raise Rejected(f"{where}: must be an object, got {describe(entry)}")
        name = entry.get("name")
        if not isinstance(name, str):
            raise Rejected(f"{where}.name: must be a string, got {describe(name)}")
        parameters = optional_object(entry, "parameters", f"{where}.")
        requested[name] = optional_bool(parameters, "binary_data", f"{where}.parameters.")
    return requested
