"""The KServe v2 / Triton REST protocol: ``client.kserve``.

Health, metadata and inference, JSON or with the binary tensor extension (which Triton uses
for large tensors) in either direction: ``binary_inputs=True`` sends input data as raw bytes
after the JSON header (``Inference-Header-Content-Length``), ``binary_outputs=True`` asks for
outputs the same way. Servers that only speak JSON work with both off (the default).

Answers are checked as they are decoded: an answer of the wrong shape (``outputs`` not an
array, an output without ``name``/``shape``/``datatype``, a shape that is not whole numbers
from 0 to 2**63 - 1, a ``binary_data_size`` that does not match the tensor or the body, data of the wrong
length or type, a number beyond the float range) is a :class:`KServeError` naming the output
and the field, never a ``TypeError`` or ``struct.error``. Bad arguments are
:class:`InvalidRequest` (for tensors, :class:`ConfigError` when the :class:`Tensor` is made),
and nothing is sent: that includes what JSON cannot carry (``inf``/``nan`` in data or
parameters, ``BYTES`` that are not UTF-8), a tensor parameter ``binary_data_size`` (the
binary extension's own), and an ``Inference-Header-Content-Length`` header (``infer``'s own).
A decoded binary output's ``parameters`` leave out ``binary_data_size``, which described the
response's bytes, so the tensor can be sent on as it is, in JSON or binary.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
import msgspec

from ._errors import ConfigError, Error, InvalidRequest
from ._tensor import Tensor, _flatten

if TYPE_CHECKING:
    from ._requester import Requester
    from ._response import Response
    from ._retry import Retry
    from ._timeouts import Timeouts

__all__ = [
    "InferResult",
    "KServeAPI",
    "KServeError",
    "decode_infer_response",
    "encode_infer_request",
]

HEADER_LENGTH: Final = "inference-header-content-length"
#: the most digits a byte count can have (2**63 - 1 has 19): more is no body's length
_MAX_DIGITS: Final = 19
#: the tensor parameter that says how many binary bytes a tensor takes
_BINARY_SIZE: Final = "binary_data_size"
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class KServeError(Error):
    """The server answered an error (``{"error": "..."}``), or a response broke the protocol.

    Attributes:
        status: the HTTP status.
        message: the server's ``error`` text.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(f"{message} (status {status})")
        self.status = status
        self.message = message


@attrs.frozen
class InferResult:
    """An inference response: its output tensors (binary or JSON, decoded alike)."""

    model_name: str | None
    model_version: str | None
    id: str | None
    parameters: Mapping[str, Any]
    outputs: tuple[Tensor, ...]
    raw: Mapping[str, Any] = attrs.field(repr=False)

    def output(self, name: str) -> Tensor:
        for tensor in self.outputs:
            if tensor.name == name:
                return tensor
        raise KeyError(f"no output {name!r}; the outputs are {[t.name for t in self.outputs]}")


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text[:200]}... ({len(text)} characters)" if len(text) > 200 else text


def _check_request(
    inputs: Any,
    outputs: Any,
    binary_inputs: Any,
    binary_outputs: Any,
    parameters: Any,
    request_id: Any,
) -> None:
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Sequence):
        raise InvalidRequest(f"inputs={_shown(inputs)}: expected a list of trio_infer.Tensor")
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, Tensor):
            raise InvalidRequest(f"inputs[{i}]={_shown(tensor)}: expected a trio_infer.Tensor")
    if outputs is not None:
        if isinstance(outputs, str | bytes) or not isinstance(outputs, Sequence):
            raise InvalidRequest(
                f"outputs={_shown(outputs)}: expected a list of output names (or None for all)"
            )
        for i, name in enumerate(outputs):
            if not isinstance(name, str):
                raise InvalidRequest(f"outputs[{i}]={_shown(name)}: expected an output name")
    for flag, value in (("binary_inputs", binary_inputs), ("binary_outputs", binary_outputs)):
        if not isinstance(value, bool):
            raise InvalidRequest(f"{flag}={_shown(value)}: expected True or False")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidRequest(f"parameters={_shown(parameters)}: expected a mapping or None")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequest(f"request_id={_shown(request_id)}: expected a string or None")


def _non_finite(value: Any, where: str) -> tuple[str, float] | None:
    """The place and value of the first ``inf`` or ``nan`` in the JSON-like ``value``, or
    None. msgspec writes them as ``null``: a value silently changed, so they are looked for."""
    stack: list[tuple[Any, str]] = [(value, where)]
    seen: set[int] = set()  # a container that holds itself is msgspec's error to report
    while stack:
        item, place = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return place, item
        elif isinstance(item, Mapping | list | tuple) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, Mapping) else enumerate(item)
            stack.extend(reversed([(v, f"{place}[{k!r}]") for k, v in pairs]))
    return None


def _check_parameters(parameters: Mapping[str, Any], where: str) -> None:
    found = _non_finite(parameters, where)
    if found is not None:
        place, value = found
        raise InvalidRequest(
            f"{place} is {value!r}, which JSON cannot carry (it would be sent as null); pass a "
            f"finite number, or a string the model reads"
        )


def encode_infer_request(
    inputs: Sequence[Tensor],
    outputs: Sequence[str] | None = None,
    *,
    binary_inputs: bool = False,
    binary_outputs: bool = False,
    parameters: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, int | None]:
    """The request body, and the JSON header's length when binary data follows it.

    :class:`InvalidRequest` for arguments of the wrong type, and for data JSON cannot carry
    (``inf``/``nan``, ``BYTES`` that are not UTF-8), naming the tensor and the element: send
    those with ``binary_inputs=True``. ``inf``/``nan`` in the request's or a tensor's
    ``parameters`` are refused too (the header is JSON either way), and so is a tensor
    parameter ``binary_data_size``: it is the binary extension's, set here.

    With ``binary_inputs=True`` the body is the JSON header followed by each tensor's
    :meth:`Tensor.to_buffer`, joined once: a tensor made from a numpy array or bytes is
    copied into the body and nowhere else.
    """
    _check_request(inputs, outputs, binary_inputs, binary_outputs, parameters, request_id)
    header: dict[str, Any] = {}
    if request_id is not None:
        header["id"] = request_id
    request_parameters = dict(parameters or {})
    if request_parameters:
        _check_parameters(request_parameters, "parameters")
    buffers: list[Any] = []
    entries = []
    for tensor in inputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "shape": list(tensor.shape),
            "datatype": tensor.datatype,
        }
        tensor_parameters = dict(tensor.parameters)
        if tensor_parameters:
            if _BINARY_SIZE in tensor_parameters:
                raise InvalidRequest(
                    f"tensor {tensor.name!r}: parameters[{_BINARY_SIZE!r}] is the binary "
                    f"extension's own (set from the data with binary_inputs=True); remove it"
                )
            _check_parameters(tensor_parameters, f"tensor {tensor.name!r}: parameters")
        if binary_inputs:
            buffer = tensor.to_buffer()
            tensor_parameters[_BINARY_SIZE] = buffer.nbytes
            buffers.append(buffer)
        else:
            bad = tensor._first_non_finite()
            if bad is not None:
                raise InvalidRequest(
                    f"tensor {tensor.name!r}: data[{bad}] is {tensor.data[bad]!r}, which JSON "
                    f"cannot carry; send it with binary_inputs=True"
                )
            entry["data"] = tensor.json_data()
        if tensor_parameters:
            entry["parameters"] = tensor_parameters
        entries.append(entry)
    header["inputs"] = entries
    if outputs is not None:
        header["outputs"] = [
            {"name": name, "parameters": {"binary_data": binary_outputs}} for name in outputs
        ]
    elif binary_outputs:
        request_parameters["binary_data_output"] = True
    if request_parameters:
        header["parameters"] = request_parameters
    try:
        encoded = _encode(header)
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        raise InvalidRequest(
            f"the request cannot be encoded as JSON ({exc}); parameters and tensor data must "
            f"be JSON values (numpy scalars too: send them with binary_inputs=True)"
        ) from None
    if buffers:
        return b"".join([encoded, *buffers]), len(encoded)
    return encoded, None


_MISSING: Final = object()


def _wrong(where: str, value: Any, expected: str, status: int) -> KServeError:
    shown = "missing" if value is _MISSING else _shown(value)
    return KServeError(
        f"the server's answer does not follow the KServe v2 protocol: {where} is {shown}, "
        f"expected {expected}",
        status=status,
    )


def _decode_header(header: bytes, header_length: int | None, status: int) -> Any:
    """The JSON header, as msgspec reads it; failing that, as tritonclient reads it.

    Triton writes what strict JSON has no room for: ``inf``/``nan`` outputs as ``Infinity``
    and ``NaN`` (rapidjson's ``kWriteNanAndInfFlag``), and ``BYTES`` outputs copied raw into
    JSON strings, UTF-8 or not (``src/http_server.cc``, ``WriteDataToJson`` ->
    ``AppendStringRef``; ``triton_json.h`` writes without ``kWriteValidateEncodingFlag``).
    tritonclient reads the first with ``json.loads``, and so do we; the second cannot be text,
    so it is a :class:`KServeError` naming the output and the element, never replaced (a
    ``\\ud800`` escape, which has no bytes, too). Where ``json.loads`` would read a finite
    number beyond the float range (``1e400``) as ``inf``, it is a :class:`KServeError` naming
    the output instead.
    """
    try:
        return _decode(header)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        problem = str(exc)
        not_utf8 = isinstance(exc, UnicodeDecodeError)
    except RecursionError:
        problem, not_utf8 = "it is nested too deeply", False
    overflowed: list[_Overflow] = []

    def parse_float(text: str) -> Any:
        value = float(text)
        if math.isinf(value):  # only a literal (NaN and Infinity go to parse_constant)
            overflowed.append(_Overflow(text))
            return overflowed[-1]
        return value

    try:
        body = json.loads(bytes(header).decode("utf-8", "surrogateescape"), parse_float=parse_float)
    except (ValueError, RecursionError):  # msgspec's own message is the one to show
        body = _MISSING
    if body is not _MISSING:
        _refuse_bytes_that_are_not_text(body, status)
        if overflowed:
            raise _overflow_error(body, overflowed[0], status)
    if not_utf8:
        problem = f"it is not UTF-8 ({problem})"
    if body is _MISSING or not_utf8:
        if header_length is None:
            raise KServeError(f"the response is not valid JSON: {problem}", status=status)
        raise KServeError(
            f"the response's JSON header (its first {header_length} bytes, from "
            f"Inference-Header-Content-Length) is not valid JSON: {problem}",
            status=status,
        )
    return body


class _Overflow:
    """A JSON number literal too large for a float, where ``json.loads`` would give ``inf``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _holds(value: Any, marker: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if item is marker:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _overflow_error(body: Any, marker: _Overflow, status: int) -> KServeError:
    outputs = body.get("outputs") if isinstance(body, dict) else None
    where = "the answer"
    for i, out in enumerate(outputs if isinstance(outputs, list) else ()):
        if _holds(out, marker):
            name = out.get("name") if isinstance(out, dict) else None
            where = f"output {name!r} (outputs[{i}])"
            break
    return KServeError(
        f"the server's answer does not follow the KServe v2 protocol: {where} holds the number "
        f"{_shown(marker.text)}, beyond the range of any float (a JSON reader would make it "
        f"inf)",
        status=status,
    )


def _refuse_bytes_that_are_not_text(body: Any, status: int) -> None:
    """Raise naming the first ``BYTES`` output element of ``body`` that was not UTF-8 (read
    with ``surrogateescape``, so its bytes are known), if there is one."""
    outputs = body.get("outputs") if isinstance(body, dict) else None
    for i, out in enumerate(outputs if isinstance(outputs, list) else ()):
        if not isinstance(out, dict) or out.get("datatype") != "BYTES":
            continue
        data = out.get("data")
        for j, item in enumerate(_flatten(data) if isinstance(data, list) else ()):
            if not isinstance(item, str):
                continue
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                try:
                    raw = item.encode("utf-8", "surrogateescape")
                except UnicodeEncodeError:  # a "\ud800" escape: no bytes stand behind it
                    raw = item.encode("utf-8", "surrogatepass")
                raise KServeError(
                    f"output {out.get('name')!r} (outputs[{i}]): data[{j}] is {_shown(raw)}, "
                    f"which is not UTF-8: the server wrote BYTES into JSON that JSON cannot "
                    f"carry as text; ask for this output with binary_outputs=True",
                    status=status,
                ) from None


def decode_infer_response(
    content: bytes, header_length: int | None, status: int = 200
) -> InferResult:
    """Decode a response body (``header_length`` from ``Inference-Header-Content-Length``).

    Every output is checked (see the module docstring); the binary outputs must use up the
    bytes after the JSON header exactly, and are decoded as views of ``content`` (no copy:
    their :meth:`Tensor.as_numpy` is read-only and keeps ``content`` alive).
    :class:`KServeError` names what is wrong; a ``BYTES`` output that came as JSON but is not
    UTF-8 (Triton writes such bytes raw) names the output, the element and the fix,
    ``binary_outputs=True``.
    """
    view = memoryview(content)
    if header_length is None:
        header, blob = content, view[:0]
    else:
        if type(header_length) is not int or not 0 <= header_length <= len(content):
            raise KServeError(
                f"the JSON header length {_shown(header_length)} "
                f"(Inference-Header-Content-Length) is outside the body of {len(content)} bytes",
                status=status,
            )
        # The binary outputs stay views of the body: decoded without a copy (Tensor.from_bytes).
        header, blob = bytes(view[:header_length]), view[header_length:]
    body = _decode_header(header, header_length, status)
    if not isinstance(body, dict):
        raise KServeError("the response is not a JSON object", status=status)
    outputs = body.get("outputs")
    if outputs is None:
        outputs = []
    elif type(outputs) is not list:
        raise _wrong("outputs", outputs, "an array of output tensors", status)
    tensors = []
    offset = 0
    for i, out in enumerate(outputs):
        where = f"outputs[{i}]"
        if type(out) is not dict:
            raise _wrong(where, out, "an object", status)
        name = out.get("name", _MISSING)
        if type(name) is not str:
            raise _wrong(f"{where}.name", name, "a string", status)
        for key, expected in (
            ("shape", "an array of whole numbers >= 0"),
            ("datatype", "a string"),
        ):
            if key not in out:
                raise _wrong(f"output {name!r} ({where}): {key}", _MISSING, expected, status)
        parameters = out.get("parameters")
        if parameters is not None and type(parameters) is not dict:
            raise _wrong(f"{where}.parameters", parameters, "an object", status)
        size = (parameters or {}).get(_BINARY_SIZE)
        try:
            if size is None:
                tensors.append(Tensor.from_json(out))
                continue
            if type(size) is not int or size < 0:
                raise _wrong(
                    f"{where}.parameters.binary_data_size", size, "a whole number >= 0", status
                )
            if offset + size > len(blob):
                raise KServeError(
                    f"output {name!r} claims {size} binary bytes past the body's end "
                    f"({len(blob) - offset} left)",
                    status=status,
                )
            # binary_data_size described this response's bytes, not the tensor: sent on as
            # JSON, it would make the server look for binary bytes that are not there.
            kept = {k: v for k, v in (parameters or {}).items() if k != _BINARY_SIZE}
            tensors.append(
                Tensor.from_bytes(
                    name, out["shape"], out["datatype"], blob[offset : offset + size], kept
                )
            )
        except ConfigError as exc:
            binary = "" if size is None else f", binary_data_size={size}"
            raise KServeError(
                f"the server's answer does not follow the KServe v2 protocol: output {name!r} "
                f"({where}{binary}): {exc}",
                status=status,
            ) from None
        offset += size
    if offset != len(blob):
        raise KServeError(
            f"{len(blob) - offset} bytes after the last binary output: the outputs' "
            f"binary_data_size values account for {offset} of the {len(blob)} binary bytes",
            status=status,
        )
    for field in ("model_name", "model_version", "id"):
        value = body.get(field)
        if value is not None and type(value) is not str:
            raise _wrong(field, value, "a string", status)
    parameters = body.get("parameters")
    if parameters is not None and type(parameters) is not dict:
        raise _wrong("parameters", parameters, "an object", status)
    return InferResult(
        model_name=body.get("model_name"),
        model_version=body.get("model_version"),
        id=body.get("id"),
        parameters=parameters or {},
        outputs=tuple(tensors),
        raw=body,
    )


_OPTIONS: Final = frozenset({"headers", "timeouts", "retry"})


class KServeAPI:
    """KServe v2 / Triton REST calls through a :class:`~trio_infer._requester.Requester` (a
    :class:`Client`): ``client.kserve``. Each call also takes ``headers=``, ``timeouts=`` and
    ``retry=`` for the HTTP request; any other keyword is an :class:`InvalidRequest`."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def server_live(self, **options: Any) -> bool:
        return (await self._get("/v2/health/live", options)).status == 200

    async def server_ready(self, **options: Any) -> bool:
        return (await self._get("/v2/health/ready", options)).status == 200

    async def server_metadata(self, **options: Any) -> dict[str, Any]:
        return await self._get_json("/v2", options)

    async def model_ready(self, model: str, version: str | None = None, **options: Any) -> bool:
        return (await self._get(_model_path(model, version) + "/ready", options)).status == 200

    async def model_metadata(
        self, model: str, version: str | None = None, **options: Any
    ) -> dict[str, Any]:
        return await self._get_json(_model_path(model, version), options)

    async def model_config(
        self, model: str, version: str | None = None, **options: Any
    ) -> dict[str, Any]:
        return await self._get_json(_model_path(model, version) + "/config", options)

    async def infer(
        self,
        model: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[str] | None = None,
        *,
        version: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        binary_inputs: bool = False,
        binary_outputs: bool = False,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
    ) -> InferResult:
        path = _model_path(model, version) + "/infer"
        # Header names are case-insensitive: the user's framing headers are found in any case.
        request_headers = dict(headers or {})
        given = {name.lower(): name for name in request_headers if isinstance(name, str)}
        if HEADER_LENGTH in given:
            raise InvalidRequest(
                f"headers: {given[HEADER_LENGTH]!r} is infer()'s own: it is the length of the "
                f"JSON header it encodes (with binary_inputs=True); remove it"
            )
        body, header_length = encode_infer_request(
            inputs,
            outputs,
            binary_inputs=binary_inputs,
            binary_outputs=binary_outputs,
            parameters=parameters,
            request_id=request_id,
        )
        if header_length is not None:
            request_headers["Inference-Header-Content-Length"] = str(header_length)
        if "content-type" not in given:  # the user's own Content-Type is kept, in any case
            binary = header_length is not None
            request_headers["Content-Type"] = (
                "application/octet-stream" if binary else "application/json"
            )
        response = await self._requester.request(
            "POST",
            path,
            content=body,
            headers=request_headers,
            timeouts=timeouts,
            retry=retry,
        )
        if response.status >= 400:
            raise _error(response)
        length = response.headers.get(HEADER_LENGTH)
        if length is None:
            header_size = None
        elif length.isascii() and length.isdigit() and len(length) <= _MAX_DIGITS:
            header_size = int(length)  # (int() of thousands of digits would raise ValueError)
        elif length.isascii() and length.isdigit():
            raise KServeError(
                f"Inference-Header-Content-Length {_shown(length)} has {len(length)} digits, "
                f"more than any body's length",
                status=response.status,
            )
        else:
            raise KServeError(
                f"Inference-Header-Content-Length {_shown(length)} is not a whole number",
                status=response.status,
            )
        return decode_infer_response(response.content, header_size, response.status)

    # --- plumbing ---------------------------------------------------------------------------

    async def _get(self, path: str, options: Mapping[str, Any]) -> Response:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise InvalidRequest(
                f"{unknown[0]}=: not an option of this call; it takes headers=, timeouts= "
                f"and retry="
            )
        return await self._requester.request("GET", path, **options)

    async def _get_json(self, path: str, options: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._get(path, options)
        if response.status >= 400:
            raise _error(response)
        body = _decode_or_none(response.content)
        if not isinstance(body, dict):
            raise KServeError(
                f"{path} did not answer a JSON object: {response.content[:200]!r}",
                status=response.status,
            )
        return body


def _model_path(model: str, version: str | None) -> str:
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"model={_shown(model)}: expected the model's name (a string)")
    path = "/v2/models/" + urllib.parse.quote(model, safe="")
    if version is not None:
        if not isinstance(version, str | int) or isinstance(version, bool):
            raise InvalidRequest(
                f"version={_shown(version)}: expected a version such as '1' (or None)"
            )
        path += "/versions/" + urllib.parse.quote(str(version), safe="")
    return path


def _decode_or_none(content: bytes) -> Any:
    # msgspec raises UnicodeDecodeError for bytes that are not UTF-8 and RecursionError for
    # nesting past its limit, besides DecodeError: each is "not a JSON answer" here.
    try:
        return _decode(content)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _error(response: Response) -> KServeError:
    body = _decode_or_none(response.content)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return KServeError(body["error"], status=response.status)
    text = response.content[:200].decode("utf-8", "replace")
    return KServeError(text or f"{response.status} {response.reason}", status=response.status)
