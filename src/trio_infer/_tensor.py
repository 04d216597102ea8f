"""Tensors of the KServe v2 / Triton protocol, and their JSON and binary encodings.

A :class:`Tensor` holds its data as a flat list in row-major order, the form the protocol's
JSON uses. The binary tensor extension sends the same values as raw little-endian bytes
(``BYTES`` elements as a 4-byte little-endian length and the bytes). numpy is optional:
:meth:`Tensor.from_numpy` and :meth:`Tensor.as_numpy` import it when called.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from ._errors import ConfigError

__all__ = ["DATATYPES", "Tensor"]

#: datatype -> struct format character (little-endian), for the binary encoding
_FORMATS: Final = {
    "BOOL": "?",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
DATATYPES: Final = frozenset({*_FORMATS, "BYTES"})
_NUMPY: Final = {
    "BOOL": "bool",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list | tuple):
        out: list[Any] = []
        for item in data:
            if isinstance(item, list | tuple):
                out.extend(_flatten(item))
            else:
                out.append(item)
        return out
    return [data]


def _as_shape(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _as_data(value: Any) -> tuple[Any, ...]:
    return tuple(_flatten(value))


@attrs.frozen
class Tensor:
    """A named tensor: ``shape``, ``datatype`` (``BOOL``, ``INT8``-``INT64``,
    ``UINT8``-``UINT64``, ``FP16``, ``FP32``, ``FP64``, ``BYTES``) and ``data``, flat, row-major
    (nested lists are flattened). ``BYTES`` elements are ``bytes`` (``str`` is encoded UTF-8)."""

    name: str
    shape: tuple[int, ...] = attrs.field(converter=_as_shape)
    datatype: str
    data: tuple[Any, ...] = attrs.field(converter=_as_data)
    parameters: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise ConfigError(
                f"tensor {self.name!r}: datatype {self.datatype!r} is not one of "
                f"{', '.join(sorted(DATATYPES))}"
            )
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in self.shape):
            raise ConfigError(
                f"tensor {self.name!r}: shape {self.shape!r} must be whole numbers >= 0"
            )
        size = math.prod(self.shape)
        if len(self.data) != size:
            raise ConfigError(
                f"tensor {self.name!r}: shape {list(self.shape)} holds {size} elements but "
                f"data has {len(self.data)}"
            )

    # --- numpy ------------------------------------------------------------------------------

    @classmethod
    def from_numpy(cls, name: str, array: Any, datatype: str | None = None) -> Tensor:
        import numpy as np

        array = np.asarray(array)
        if datatype is None:
            kind = array.dtype
            datatype = next(
                (
                    dt
                    for dt, np_name in _NUMPY.items()
                    if np_name != "object" and np.dtype(np_name) == kind
                ),
                "BYTES" if kind.kind in "OSU" else None,
            )
            if datatype is None:
                raise ConfigError(f"tensor {name!r}: numpy dtype {kind} has no KServe datatype")
        data = array.reshape(-1).tolist()
        if datatype == "BYTES":
            data = [d if isinstance(d, bytes) else str(d).encode() for d in data]
        return cls(name, array.shape, datatype, data)

    def as_numpy(self) -> Any:
        """The data as a numpy array of ``shape`` (numpy must be installed)."""
        import numpy as np

        return np.array(self.data, dtype=_NUMPY[self.datatype]).reshape(self.shape)

    # --- encodings --------------------------------------------------------------------------

    def json_data(self) -> list[Any]:
        """The data as the JSON encoding carries it (``BYTES`` as UTF-8 text)."""
        if self.datatype == "BYTES":
            return [
                d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in self.data
            ]
        return list(self.data)

    def to_bytes(self) -> bytes:
        """The binary extension's encoding of the data."""
        if self.datatype == "BYTES":
            parts = []
            for item in self.data:
                raw = item if isinstance(item, bytes) else str(item).encode()
                parts.append(struct.pack("<I", len(raw)) + raw)
            return b"".join(parts)
        return struct.pack(f"<{len(self.data)}{_FORMATS[self.datatype]}", *self.data)

    @classmethod
    def from_bytes(
        cls,
        name: str,
        shape: Sequence[int],
        datatype: str,
        raw: bytes,
        parameters: dict[str, Any] | None = None,
    ) -> Tensor:
        """Decode the binary extension's encoding."""
        count = math.prod(shape)
        if datatype == "BYTES":
            items: list[Any] = []
            offset = 0
            for _ in range(count):
                (length,) = struct.unpack_from("<I", raw, offset)
                offset += 4
                items.append(raw[offset : offset + length])
                offset += length
            return cls(name, tuple(shape), datatype, items, dict(parameters or {}))
        if datatype not in _FORMATS:
            raise ValueError(f"datatype {datatype!r} is not a KServe datatype")
        values = struct.unpack(f"<{count}{_FORMATS[datatype]}", raw)
        return cls(name, tuple(shape), datatype, values, dict(parameters or {}))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Tensor:
        datatype = obj["datatype"]
        data = _flatten(obj.get("data", []))
        if datatype == "BYTES":
            data = [d.encode() if isinstance(d, str) else d for d in data]
        return cls(
            obj["name"], tuple(obj["shape"]), datatype, data, dict(obj.get("parameters") or {})
        )
