"""A fake KServe v2 / Triton server: the handler :class:`FakeKServe`, for :func:`serve`.

Models: ``identity`` (``OUTPUT0`` = ``INPUT0``, any datatype and shape, byte for byte) and
``add`` (``OUTPUT0`` = ``INPUT0`` + ``INPUT1``, elementwise, ``FP32`` as its metadata says;
numpy does the sum when it is installed, so large tensors are cheap). Health, server and
model metadata, model ready and config, and inference in JSON or with the binary tensor
extension both ways (``binary_data_size`` inputs, ``binary_data``/``binary_data_output``
outputs), as Triton serves them. Errors come as ``{"error": "..."}``.

It behaves as Triton 2.51 does where a client can tell (server ``src/http_server.cc``, core
``src/infer_request.cc`` and ``src/model.cc``, tag v2.51.0 / r24.10), with Triton's status
and text, then the fake's detail in parentheses naming the field by its place:

* JSON data Triton cannot read is a **500** (its ``TRITONSERVER_ERROR_INTERNAL``): a ``BYTES``
  element that is not a string ("Unable to parse JSON bytes array: attempt to access JSON
  non-string as string"), a numeric or ``BOOL`` element of the wrong JSON type ("Unable to
  parse 'data': attempt to access JSON non-number as double", ...), ``data`` that is not an
  array, and a number of elements that does not match the shape ("Unable to parse 'data':
  Shape does not match true shape of 'data' field").
* What the core refuses is a **400**: an input of the wrong datatype for the model ("[request
  id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model 'add' expects
  'FP32'"), an unknown input or output ("unexpected inference input 'X' for model 'add'"), a
  missing or extra input ("expected 2 inputs but got 1 inputs ..."), an input given twice,
  binary data of the wrong size ("input byte size mismatch ..."), ``BYTES`` of the wrong
  element count; and ``FP16`` in JSON either way ("receiving FP16 data via JSON is not
  supported ...").
* ``BYTES`` are echoed faithfully: binary in, binary out, byte for byte; and a ``BYTES`` output
  sent as JSON is written raw into the JSON string, UTF-8 or not, as Triton's writer does
  (no validation), so a client sees exactly what Triton would send.

Where Triton accepts something but would answer a value its datatype cannot carry, the fake
is stricter and answers 400 naming the field: integers outside their type's range (Triton
casts them), finite numbers too large for ``FP32`` (Triton rounds them to inf), and a sum that
overflows. Every other field the fake reads is checked too, and a bad one is a 400 naming it
(``inputs[0].shape``, ``outputs[1].parameters.binary_data``): the body must be a JSON object
(NaN and Infinity are not JSON); ``shape`` whole numbers >= 0 holding at most
:data:`MAX_ELEMENTS` elements, each below 2**63 (Triton's shapes are int64: it reads a dimension
from 2**63 to 2**64 - 1 as negative, and answers 500 for one above); a KServe
``datatype``; ``binary_data_size`` within the binary part; ``id`` a string;
``inference-header-content-length`` a byte count within the body (read without ``int()`` of
a header of thousands of digits).
A known path with the wrong method is a 405 with ``Allow``.
"""

from __future__ import annotations

import json
import math
import struct
import urllib.parse
from collections.abc import Callable
from typing import Any, Final

import attrs

from .._errors import ConfigError
from .._tensor import DATATYPES, Tensor, _flatten
from ._server import Responder, ServerRequest
from ._validate import Rejected, describe, json_object, optional_bool, optional_object

__all__ = ["FakeKServe"]

#: The most elements one input tensor may hold (a shape is a promise of memory).
MAX_ELEMENTS: Final = 1 << 24
#: Triton's shapes are int64: a dimension is below this
_DIM_LIMIT: Final = 1 << 63

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

#: model -> (its inputs: name -> datatype, None for any; its outputs)
_MODELS: Final[dict[str, tuple[dict[str, str | None], tuple[str, ...]]]] = {
    "identity": ({"INPUT0": None}, ("OUTPUT0",)),
    "add": ({"INPUT0": "FP32", "INPUT1": "FP32"}, ("OUTPUT0",)),
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
        # The binary inputs stay views of the request body: nothing is copied to read them.
        blob = memoryview(body)[length:] if length is not None else memoryview(b"")
        request_id = header.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise Rejected(f"id: must be a string, got {describe(request_id)}")
        # Triton's core prefixes its errors with the request's id (InferenceRequest::LogRequest).
        log = f"[request id: {request_id or '<id_unknown>'}] "
        raw_inputs = header.get("inputs")
        if raw_inputs is None:
            raw_inputs = []
        if not isinstance(raw_inputs, list):
            raise Rejected(f"inputs: must be a list of input tensors, got {describe(raw_inputs)}")
        taken: dict[str, Tensor | _Binary] = {}
        offset = 0
        for i, entry in enumerate(raw_inputs):
            tensor, offset = _input(f"inputs[{i}]", entry, blob, offset, taken, model, log)
            taken[tensor.name] = tensor
        parameters = optional_object(header, "parameters")
        binary = bool(optional_bool(parameters, "binary_data_output", "parameters."))
        requested = _outputs(header)
        inputs = _check_against_model(model, taken, requested, log)
        if requested:
            choice = requested["OUTPUT0"]
            binary = binary if choice is None else choice
        result = _identity(inputs) if model == "identity" else _add(inputs)
        out: dict[str, Any] = {
            "name": result.name,
            "shape": list(result.shape),
            "datatype": result.datatype,
        }
        response: dict[str, Any] = {
            "model_name": model,
            "model_version": version,
            "outputs": [out],
        }
        if request_id is not None:
            response["id"] = request_id
        if not binary:
            if result.datatype == "FP16":
                # http_server.cc WriteDataToJson: FP16 has no JSON form (INVALID_ARG -> 400).
                raise Rejected(
                    "sending FP16 data via JSON is not supported. Please use the binary data "
                    "format for output"
                )
            out["data"] = _json_data(result)
            # Triton's writer copies BYTES into JSON strings as they are, UTF-8 or not
            # (WriteDataToJson -> AppendStringRef; no kWriteValidateEncodingFlag), and writes
            # inf and nan as Infinity and NaN: surrogateescape gives back those very bytes.
            data = json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode(
                "utf-8", "surrogateescape"
            )
            await respond.start(200, [("content-type", "application/json")], length=len(data))
            await respond.send(data)
            await respond.end()
            return
        buffer = result.to_buffer()
        out["parameters"] = {"binary_data_size": buffer.nbytes}
        encoded = json.dumps(response, separators=(",", ":")).encode()
        data = b"".join([encoded, buffer])
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


def _check_against_model(
    model: str, inputs: dict[str, Tensor | _Binary], requested: dict[str, bool | None], log: str
) -> dict[str, Tensor]:
    """Triton's core checks of a request against the model, in its order and words
    (core ``src/infer_request.cc`` ``Normalize``/``ValidateRequestInputs``, ``src/model.cc``
    ``GetInput``/``GetOutput``); all INVALID_ARG, which Triton answers 400."""
    expected, outputs = _MODELS[model]
    for name in requested:
        if name not in outputs:
            raise Rejected(f"unexpected inference output '{name}' for model '{model}'")
    if len(inputs) != len(expected):
        missing = [name for name in expected if name not in inputs]
        raise Rejected(
            f"{log}expected {len(expected)} inputs but got {len(inputs)} inputs for model "
            f"'{model}'. Got input(s) {_listing(list(inputs)) if inputs else '[]'}, but missing "
            f"required input(s) {_listing(missing)}. Please provide all required input(s)."
        )
    for name, tensor in inputs.items():
        if name not in expected:
            raise Rejected(f"unexpected inference input '{name}' for model '{model}'")
        wanted = expected[name]
        if wanted is not None and tensor.datatype != wanted:
            raise Rejected(
                f"{log}inference input '{name}' data-type is '{tensor.datatype}', but model "
                f"'{model}' expects '{wanted}'"
            )
    return {
        name: tensor.tensor(model, log) if isinstance(tensor, _Binary) else tensor
        for name, tensor in inputs.items()
    }


def _listing(names: list[str]) -> str:
    # Triton builds "['a','b']" by appending "'a'," and dropping the last character, so an
    # empty list of missing inputs comes out as "]": kept, so tests can match its text.
    return "[" + ",".join(f"'{name}'" for name in names) + "]" if names else "]"


def _identity(inputs: dict[str, Tensor]) -> Tensor:
    source = inputs["INPUT0"]
    # The same bytes, byte for byte, without a copy (a view of the request body).
    return Tensor.from_bytes("OUTPUT0", source.shape, source.datatype, source.to_buffer())


def _add(inputs: dict[str, Tensor]) -> Tensor:
    a, b = inputs["INPUT0"], inputs["INPUT1"]
    if a.shape != b.shape:
        raise Rejected("INPUT0 and INPUT1 must be numeric tensors of one shape and type")
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is in the test extras
        return _add_values(a, b)
    x, y = a.as_numpy(), b.as_numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        total = x + y
    overflow = np.flatnonzero(np.isinf(total) & np.isfinite(x) & np.isfinite(y))
    if overflow.size:
        j = int(overflow[0])
        flat_x, flat_y = x.reshape(-1), y.reshape(-1)
        raise Rejected(
            f"INPUT0 + INPUT1 overflows {a.datatype} at element {j}: "
            f"{flat_x[j].item()!r} + {flat_y[j].item()!r} = inf"
        )
    return Tensor.from_numpy("OUTPUT0", total, a.datatype)


def _add_values(a: Tensor, b: Tensor) -> Tensor:
    """``add`` without numpy: the elements as Python values, rounded and checked by struct."""
    sums = [x + y for x, y in zip(a.data, b.data, strict=True)]
    for j, (x, y, total) in enumerate(zip(a.data, b.data, sums, strict=True)):
        if not _fits(a.datatype, total):
            raise Rejected(
                f"INPUT0 + INPUT1 overflows {a.datatype} at element {j}: {x!r} + {y!r} = {total!r}"
            )
    return _tensor("OUTPUT0", a.shape, a.datatype, sums)


def _json_data(tensor: Tensor) -> list[Any]:
    if tensor.datatype == "BYTES":
        return [item.decode("utf-8", "surrogateescape") for item in tensor.data]
    return tensor.json_data()


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
    digits = raw.lstrip("0") or "0"
    # Compared by its digits first: int() of thousands of digits raises ValueError.
    if len(digits) > len(str(len(request.body))) or int(digits) > len(request.body):
        raise Rejected(
            f"inference-header-content-length: {describe(raw)} is more than the body's "
            f"{len(request.body)} bytes"
        )
    return int(digits)


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


def _input(
    where: str,
    entry: Any,
    blob: memoryview,
    offset: int,
    inputs: dict[str, Tensor | _Binary],
    model: str,
    log: str,
) -> tuple[Tensor | _Binary, int]:
    """One input as Triton's HTTP layer reads it (JSON data checked, binary data taken), and
    the offset of the next one's binary data."""
    if not isinstance(entry, dict):
        raise Rejected(f"{where}: must be an object, got {describe(entry)}")
    name = entry.get("name")
    if not isinstance(name, str):
        raise Rejected(f"{where}.name: must be a string, got {describe(name)}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_whole(d) and 0 <= d < _DIM_LIMIT for d in shape):
        raise Rejected(
            f"{where}.shape: must be a list of whole numbers from 0 to 2**63 - 1 (int64), got "
            f"{describe(shape)}"
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
    if name in inputs:  # core InferenceRequest::AddOriginalInput
        raise Rejected(f"input '{name}' already exists in request")
    parameters = optional_object(entry, "parameters", f"{where}.")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not _whole(size) or size < 0:
            raise Rejected(
                f"{where}.parameters.binary_data_size: must be a whole number >= 0, "
                f"got {describe(size)}"
            )
        left = len(blob) - offset
        if size > left:  # http_server.cc EVBufferToInput (INVALID_ARG)
            raise Rejected(
                f"unexpected size for input '{name}', expecting {size} additional bytes for "
                f"model '{model}' ({where}.parameters.binary_data_size: {size} bytes, but only "
                f"{left} bytes of binary data are left)"
            )
        raw = blob[offset : offset + size]
        return _Binary(where, name, shape, datatype, raw), offset + size
    raw_data = entry.get("data", [])
    if not isinstance(raw_data, list):
        raise Rejected(
            f"Unable to parse 'data': attempt to access JSON non-array as array "
            f"({where}.data: must be a list, got {describe(raw_data)})",
            _INTERNAL,
        )
    if datatype == "FP16":  # http_server.cc ReadDataFromJson (INVALID_ARG)
        raise Rejected(
            f"receiving FP16 data via JSON is not supported. Please use the binary data format "
            f"for input {name}"
        )
    values = _flatten(raw_data) if count else []  # Triton reads no data for an empty shape
    if datatype == "BYTES":
        return _json_bytes_input(where, name, shape, count, values, model, log), offset
    access = _ACCESS[datatype]
    for j, value in enumerate(values):
        # http_server.cc ReadDataFromJsonHelper: the length is checked before each element,
        # then the element's JSON type (TritonJson As*): both INTERNAL, which Triton answers
        # 500.
        if j >= count:
            raise _shape_mismatch(where, shape, count, len(values))
        if not access.accepts(value):
            raise Rejected(
                f"Unable to parse 'data': attempt to access JSON {access.words} "
                f"({where}.data[{j}]: {describe(value)} is not a {datatype} value)",
                _INTERNAL,
            )
    if len(values) != count:
        raise _shape_mismatch(where, shape, count, len(values))
    for j, value in enumerate(values):
        # Stricter than Triton, which casts out-of-range integers and rounds too-large floats
        # to inf: the fake refuses them, so its answers are values of their datatype.
        if not _fits(datatype, value):
            raise Rejected(f"{where}.data[{j}]: {describe(value)} is not a {datatype} value")
    return _tensor(name, shape, datatype, values), offset


@attrs.frozen
class _Access:
    """How Triton reads one JSON element of a datatype (TritonJson's ``As*``): the check,
    and the words of its error."""

    words: str
    accepts: Callable[[Any], bool]


_INT64: Final = (-(1 << 63), (1 << 63) - 1)
_UINT64: Final = (0, (1 << 64) - 1)
_ACCESS: Final = {
    "BOOL": _Access("non-boolean as boolean", lambda v: isinstance(v, bool)),
    **dict.fromkeys(
        ("INT8", "INT16", "INT32", "INT64"),
        _Access(
            "non-signed-integer as signed-integer",
            lambda v: _whole(v) and _INT64[0] <= v <= _INT64[1],
        ),
    ),
    **dict.fromkeys(
        ("UINT8", "UINT16", "UINT32", "UINT64"),
        _Access(
            "non-unsigned-integer as unsigned-integer",
            lambda v: _whole(v) and _UINT64[0] <= v <= _UINT64[1],
        ),
    ),
    **dict.fromkeys(
        ("FP32", "FP64"),
        _Access(
            "non-number as double",
            lambda v: _whole(v) or (isinstance(v, float) and math.isfinite(v)),
        ),
    ),
}

#: Triton answers errors of its JSON reading (TRITONSERVER_ERROR_INTERNAL) with 500.
_INTERNAL: Final = 500


def _shape_mismatch(where: str, shape: list[int], count: int, got: int) -> Rejected:
    return Rejected(
        f"Unable to parse 'data': Shape does not match true shape of 'data' field "
        f"({where}: shape {shape} holds {count} elements but data has {got})",
        _INTERNAL,
    )


def _json_bytes_input(
    where: str,
    name: str,
    shape: list[int],
    count: int,
    values: list[Any],
    model: str,
    log: str,
) -> Tensor:
    for j, value in enumerate(values):
        # http_server.cc JsonBytesArrayByteSize reads every element as a string first.
        if not isinstance(value, str):
            raise Rejected(
                f"Unable to parse JSON bytes array: attempt to access JSON non-string as string "
                f"({where}.data[{j}] is {describe(value)}: a BYTES element in JSON is a string)",
                _INTERNAL,
            )
    if len(values) != count:
        # The length then passes the HTTP layer (it counts bytes, not elements); the core's
        # ValidateBytesInputs counts the elements.
        if len(values) > count:
            message = (
                f"unexpected number of string elements {count + 1} for inference input "
                f"'{name}' for model '{model}', expecting {count}"
            )
        else:
            message = (
                f"expected {count} string elements for inference input '{name}' for model "
                f"'{model}', got {len(values)}"
            )
        raise Rejected(f"{log}{message} ({where}: shape {shape})")
    # surrogatepass: a lone surrogate escape (\udcff) stays the bytes it stands for.
    return _tensor(name, shape, "BYTES", [v.encode("utf-8", "surrogatepass") for v in values])


@attrs.frozen
class _Binary:
    """A binary input as the HTTP layer takes it: bytes for a name, a shape and a datatype.
    Triton checks them against the shape later, in its core, after the model's checks."""

    where: str
    name: str
    shape: list[int]
    datatype: str
    raw: memoryview

    def tensor(self, model: str, log: str) -> Tensor:
        name, shape, datatype, raw = self.name, self.shape, self.datatype, self.raw
        if datatype != "BYTES":
            need = math.prod(shape) * struct.calcsize(_FORMATS[datatype])
            if len(raw) != need:  # core InferenceRequest::Normalize
                raise Rejected(
                    f"{log}input byte size mismatch for input '{name}' for model '{model}'. "
                    f"Expected {need}, got {len(raw)} ({self.where}.parameters.binary_data_size)"
                )
        try:
            return Tensor.from_bytes(name, shape, datatype, raw)
        except ConfigError as exc:  # BYTES whose lengths do not fill the bytes exactly
            raise Rejected(
                f"{log}expected {math.prod(shape)} string elements for inference input "
                f"'{name}' for model '{model}': the {len(raw)} bytes of binary data are not "
                f"{math.prod(shape)} length-prefixed BYTES elements ({self.where}: {exc})"
            ) from None


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
