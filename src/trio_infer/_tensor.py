"""Tensors of the KServe v2 / Triton protocol, and their JSON and binary encodings.

A :class:`Tensor` holds its data as a flat list in row-major order, the form the protocol's
JSON uses. It is checked when it is made (name, shape, datatype, and every element against
the datatype: its type, and its range for the fixed-size types), so a tensor that exists can
be encoded both ways; a bad one is a :class:`ConfigError` naming the tensor and the value.
:meth:`Tensor.from_json` and :meth:`Tensor.from_bytes` decode what a server sent with the same
checks (``_kserve.py`` reports their errors as ``KServeError``).

The binary tensor extension sends the same values as raw little-endian bytes (``BYTES``
elements as a 4-byte little-endian length and the bytes). numpy is optional:
:meth:`Tensor.from_numpy` and :meth:`Tensor.as_numpy` import it when called.
"""

from __future__ import annotations

import math
import numbers
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


_INTEGERS: Final = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
_FLOATS: Final = frozenset({"FP16", "FP32", "FP64"})


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


def _as_shape(value: Any) -> Any:
    # Anything else is kept as given, for __attrs_post_init__ to refuse with the tensor's name.
    return tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else value


def _as_data(value: Any) -> tuple[Any, ...]:
    return tuple(_flatten(value))


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text[:200]}... ({len(text)} characters)" if len(text) > 200 else text


def _is_shape(shape: Any) -> bool:
    return type(shape) is tuple and all(type(d) is int and d >= 0 for d in shape)


#: element types that need no per-element look (numpy scalars and other numbers do)
_PLAIN_TYPES: Final = {
    "BYTES": frozenset({bytes, str}),
    "BOOL": frozenset({bool}),
    **dict.fromkeys(_INTEGERS, frozenset({int})),
    **dict.fromkeys(_FLOATS, frozenset({int, float})),
}


def _fits(datatype: str, value: Any) -> bool:
    if datatype == "BYTES":
        return isinstance(value, bytes | str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    kind = numbers.Integral if datatype in _INTEGERS else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    try:  # the range: what the binary encoding can carry
        struct.pack("<" + _FORMATS[datatype], value)
    except (struct.error, OverflowError):
        return False
    return True


def _bad_element(datatype: str, data: tuple[Any, ...]) -> tuple[int, Any] | None:
    """The first element that ``datatype`` cannot hold, with its position, or None.

    The usual tensor takes one C-level pass over the element types and, for numbers, one
    ``struct.pack`` for the ranges; only a tensor that fails those is looked at per element.
    """
    if set(map(type, data)) <= _PLAIN_TYPES[datatype]:
        if datatype in ("BYTES", "BOOL"):
            return None
        try:
            struct.pack(f"<{len(data)}{_FORMATS[datatype]}", *data)
        except (struct.error, OverflowError):
            pass
        else:
            return None
    for i, value in enumerate(data):
        if not _fits(datatype, value):
            return i, value
    return None  # numpy scalars and other numbers that fit


_EXPECTED: Final = {
    "BYTES": "bytes or str",
    "BOOL": "True or False",
    "FP16": "a number that fits FP16",
    "FP32": "a number that fits FP32",
    "FP64": "a number",
}


@attrs.frozen
class Tensor:
    """A named tensor: ``shape``, ``datatype`` (``BOOL``, ``INT8``-``INT64``,
    ``UINT8``-``UINT64``, ``FP16``, ``FP32``, ``FP64``, ``BYTES``) and ``data``, flat, row-major
    (nested lists are flattened). ``BYTES`` elements are ``bytes`` (``str`` is encoded UTF-8).

    Every element must fit the datatype: ``True``/``False`` for ``BOOL``, whole numbers in
    range for the integer types (not ``bool``), numbers the float type can hold (``inf`` and
    ``nan`` included) for ``FP*``, bytes or str for ``BYTES``; otherwise :class:`ConfigError`.
    """

    name: str
    shape: tuple[int, ...] = attrs.field(converter=_as_shape)
    datatype: str
    data: tuple[Any, ...] = attrs.field(converter=_as_data)
    parameters: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"tensor name {_shown(self.name)}: expected a string")
        if not isinstance(self.datatype, str) or self.datatype not in DATATYPES:
            raise ConfigError(
                f"tensor {self.name!r}: datatype {_shown(self.datatype)} is not one of "
                f"{', '.join(sorted(DATATYPES))}"
            )
        if not _is_shape(self.shape):
            raise ConfigError(
                f"tensor {self.name!r}: shape {_shown(self.shape)} must be a list of whole "
                f"numbers >= 0"
            )
        size = math.prod(self.shape)
        if len(self.data) != size:
            raise ConfigError(
                f"tensor {self.name!r}: shape {list(self.shape)} holds {size} elements but "
                f"data has {len(self.data)}"
            )
        if not isinstance(self.parameters, dict):
            raise ConfigError(
                f"tensor {self.name!r}: parameters {_shown(self.parameters)} must be a dict"
            )
        bad = _bad_element(self.datatype, self.data)
        if bad is not None:
            i, value = bad
            expected = _EXPECTED.get(self.datatype, f"a whole number that fits {self.datatype}")
            raise ConfigError(
                f"tensor {self.name!r}: data[{i}] is {_shown(value)}, but each {self.datatype} "
                f"element must be {expected}"
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
        """Decode the binary extension's encoding; ``raw`` must be exactly the tensor's bytes
        (:class:`ConfigError` if it is shorter, longer, or the shape or datatype is bad)."""
        shape = _as_shape(shape)
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise ConfigError(
                f"tensor {name!r}: datatype {_shown(datatype)} is not one of "
                f"{', '.join(sorted(DATATYPES))}"
            )
        if not _is_shape(shape):
            raise ConfigError(
                f"tensor {name!r}: shape {_shown(shape)} must be a list of whole numbers >= 0"
            )
        count = math.prod(shape)
        if datatype == "BYTES":
            # Checked before the loop, so a huge shape cannot make it spin.
            if 4 * count > len(raw):
                raise ConfigError(
                    f"tensor {name!r}: {len(raw)} bytes cannot hold {count} BYTES elements "
                    f"(each takes a 4-byte length at least)"
                )
            items: list[Any] = []
            offset = 0
            for i in range(count):
                if offset + 4 > len(raw):
                    raise ConfigError(
                        f"tensor {name!r}: BYTES element {i} of {count} starts past the end of "
                        f"its {len(raw)} bytes"
                    )
                (length,) = struct.unpack_from("<I", raw, offset)
                offset += 4
                if offset + length > len(raw):
                    raise ConfigError(
                        f"tensor {name!r}: BYTES element {i} claims {length} bytes, past the end "
                        f"of its {len(raw)} bytes"
                    )
                items.append(raw[offset : offset + length])
                offset += length
            if offset != len(raw):
                raise ConfigError(
                    f"tensor {name!r}: {len(raw) - offset} bytes are left after its {count} "
                    f"BYTES elements"
                )
            return cls(name, shape, datatype, items, dict(parameters or {}))
        fmt = _FORMATS[datatype]
        size = count * struct.calcsize(fmt)
        if size != len(raw):
            raise ConfigError(
                f"tensor {name!r}: shape {list(shape)} of {datatype} takes {size} bytes, "
                f"not {len(raw)}"
            )
        values = struct.unpack(f"<{count}{fmt}", raw)
        return cls(name, shape, datatype, values, dict(parameters or {}))

    @classmethod
    def from_json(cls, obj: Any) -> Tensor:
        """Decode a tensor of the JSON encoding (``name``, ``shape``, ``datatype``, ``data``,
        optional ``parameters``); :class:`ConfigError` names what is wrong."""
        if not isinstance(obj, dict):
            raise ConfigError(f"a tensor must be a JSON object, not {_shown(obj)}")
        name = obj.get("name")
        if not isinstance(name, str):
            raise ConfigError(f"a tensor's name is {_shown(name)}: expected a string")
        shape = obj.get("shape")
        if not isinstance(shape, list):
            raise ConfigError(
                f"tensor {name!r}: shape {_shown(shape)} must be a list of whole numbers >= 0"
            )
        datatype: Any = obj.get("datatype")
        raw_data = obj.get("data", [])
        if not isinstance(raw_data, list):
            raise ConfigError(f"tensor {name!r}: data {_shown(raw_data)} must be a list")
        data = _flatten(raw_data)
        if datatype == "BYTES":
            # JSON carries BYTES as text: anything else is not a BYTES element here.
            for i, d in enumerate(data):
                if not isinstance(d, str):
                    raise ConfigError(
                        f"tensor {name!r}: data[{i}] is {_shown(d)}, but a BYTES element in "
                        f"JSON must be a string"
                    )
            data = [d.encode() for d in data]
        parameters = obj.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ConfigError(f"tensor {name!r}: parameters {_shown(parameters)} must be an object")
        return cls(name, shape, datatype, data, dict(parameters or {}))
