"""The KServe v2 / Triton REST protocol: ``client.kserve``.

Health, metadata and inference, JSON or with the binary tensor extension (which Triton uses
for large tensors) in either direction: ``binary_inputs=True`` sends input data as raw bytes
after the JSON header (``Inference-Header-Content-Length``), ``binary_outputs=True`` asks for
outputs the same way. Servers that only speak JSON work with both off (the default).
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
import msgspec

from ._errors import Error, InvalidRequest
from ._tensor import Tensor

if TYPE_CHECKING:
    from ._client import Client
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
_FLOATS: Final = frozenset({"FP16", "FP32", "FP64"})
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


def encode_infer_request(
    inputs: Sequence[Tensor],
    outputs: Sequence[str] | None = None,
    *,
    binary_inputs: bool = False,
    binary_outputs: bool = False,
    parameters: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, int | None]:
    """The request body, and the JSON header's length when binary data follows it."""
    header: dict[str, Any] = {}
    if request_id is not None:
        header["id"] = request_id
    request_parameters = dict(parameters or {})
    blobs: list[bytes] = []
    entries = []
    for tensor in inputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "shape": list(tensor.shape),
            "datatype": tensor.datatype,
        }
        tensor_parameters = dict(tensor.parameters)
        if binary_inputs:
            raw = tensor.to_bytes()
            tensor_parameters["binary_data_size"] = len(raw)
            blobs.append(raw)
        else:
            if tensor.datatype in _FLOATS and not all(math.isfinite(x) for x in tensor.data):
                raise InvalidRequest(
                    f"tensor {tensor.name!r} holds inf or nan, which JSON cannot carry; send it "
                    f"with binary_inputs=True"
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
    encoded = _encode(header)
    if blobs:
        return encoded + b"".join(blobs), len(encoded)
    return encoded, None


def decode_infer_response(
    content: bytes, header_length: int | None, status: int = 200
) -> InferResult:
    """Decode a response body (``header_length`` from ``Inference-Header-Content-Length``)."""
    try:
        if header_length is None:
            body, blob = _decode(content), b""
        else:
            body, blob = _decode(content[:header_length]), content[header_length:]
    except msgspec.DecodeError as exc:
        raise KServeError(f"the response is not valid JSON: {exc}", status=status) from None
    if not isinstance(body, dict):
        raise KServeError("the response is not a JSON object", status=status)
    tensors = []
    offset = 0
    try:
        for out in body.get("outputs") or []:
            size = (out.get("parameters") or {}).get("binary_data_size")
            if size is None:
                tensors.append(Tensor.from_json(out))
                continue
            if offset + size > len(blob):
                raise KServeError(
                    f"output {out.get('name')!r} claims {size} binary bytes past the body's end",
                    status=status,
                )
            tensors.append(
                Tensor.from_bytes(
                    out["name"],
                    out["shape"],
                    out["datatype"],
                    blob[offset : offset + size],
                    out.get("parameters"),
                )
            )
            offset += size
    except (KeyError, TypeError, ValueError, Error) as exc:
        if isinstance(exc, KServeError):
            raise
        raise KServeError(f"an output tensor is malformed: {exc}", status=status) from None
    return InferResult(
        model_name=body.get("model_name"),
        model_version=body.get("model_version"),
        id=body.get("id"),
        parameters=body.get("parameters") or {},
        outputs=tuple(tensors),
        raw=body,
    )


class KServeAPI:
    """KServe v2 / Triton REST calls through a :class:`Client`: ``client.kserve``. Each call
    also takes ``headers=``, ``timeouts=`` and ``retry=`` for the HTTP request."""

    def __init__(self, client: Client) -> None:
        self._client = client

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
        body, header_length = encode_infer_request(
            inputs,
            outputs,
            binary_inputs=binary_inputs,
            binary_outputs=binary_outputs,
            parameters=parameters,
            request_id=request_id,
        )
        request_headers = dict(headers or {})
        if header_length is not None:
            request_headers["Inference-Header-Content-Length"] = str(header_length)
            request_headers.setdefault("Content-Type", "application/octet-stream")
        else:
            request_headers.setdefault("Content-Type", "application/json")
        response = await self._client.request(
            "POST",
            _model_path(model, version) + "/infer",
            content=body,
            headers=request_headers,
            timeouts=timeouts,
            retry=retry,
        )
        if response.status >= 400:
            raise _error(response)
        length = response.headers.get(HEADER_LENGTH)
        try:
            header_size = int(length) if length is not None else None
        except ValueError:
            raise KServeError(
                f"Inference-Header-Content-Length {length!r} is not a number",
                status=response.status,
            ) from None
        return decode_infer_response(response.content, header_size, response.status)

    # --- plumbing ---------------------------------------------------------------------------

    async def _get(self, path: str, options: Mapping[str, Any]) -> Response:
        return await self._client.request("GET", path, **options)

    async def _get_json(self, path: str, options: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._get(path, options)
        if response.status >= 400:
            raise _error(response)
        try:
            body = _decode(response.content)
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict):
            raise KServeError(
                f"{path} did not answer a JSON object: {response.content[:200]!r}",
                status=response.status,
            )
        return body


def _model_path(model: str, version: str | None) -> str:
    path = "/v2/models/" + urllib.parse.quote(model, safe="")
    if version is not None:
        path += "/versions/" + urllib.parse.quote(str(version), safe="")
    return path


def _error(response: Response) -> KServeError:
    try:
        body = _decode(response.content)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return KServeError(body["error"], status=response.status)
    text = response.content[:200].decode("utf-8", "replace")
    return KServeError(text or f"{response.status} {response.reason}", status=response.status)
