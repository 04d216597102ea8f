"""Tensors of the KServe v2 / Triton protocol, and their JSON and binary encodings.

Theory of operation. A :class:`Tensor` is checked when it is made (name, shape, datatype, and
its elements against the datatype), so a tensor that exists can be encoded both ways; a bad
one is a :class:`ConfigError` naming the tensor and the value. It keeps its elements in the
form it was given, so a large tensor is never turned into millions of Python objects:

Rule 1: one storage, fixed when the tensor is made.
  * *values*: a flat tuple of Python values, row-major. Lists (nested ones are flattened),
    JSON data, and every ``BYTES`` tensor (``str`` elements become their UTF-8 bytes).
  * *array*: a flat, C-contiguous, little-endian numpy array of the datatype's dtype
    (:meth:`Tensor.from_numpy`, or a numpy array passed as ``data``). The caller's array is
    kept, not copied, when it already is one; otherwise it is converted once.
  * *raw*: the binary extension's bytes of a numeric tensor (:meth:`Tensor.from_bytes`), kept
    as given: decoding a response keeps a ``memoryview`` into the response body.

Rule 2: every storage is checked as strictly as the values are. Values element by element
(types, ranges); arrays by dtype, with vectorised range checks (and a fallback to the values'
checks for object, string and complex arrays); raw bytes by length (any bit pattern is a
value of a numeric type; ``BOOL`` bytes other than 0 are read as true, as Triton reads them).

Rule 3: the fast paths never build Python values: :meth:`Tensor.to_buffer` is a zero-copy
read-only view of an array or raw storage, and :meth:`Tensor.as_numpy` wraps it with
``numpy.frombuffer`` (read-only, no copy). :attr:`Tensor.data`, the flat tuple of Python
values, is computed from an array or raw storage on first use and kept: the slow path.

Rule 4: equality is name, shape, datatype and the values as the datatype holds them, which is
their binary encoding byte for byte; so the storages compare equal when they hold the same
values, ``0.1`` in an ``FP32`` list equals ``float32(0.1)``, a NaN equals a NaN with the same
bits, and ``0.0`` differs from ``-0.0``. ``parameters`` are not compared.

numpy is optional and imported only by the numpy methods: importing trio_infer, making,
encoding and decoding tensors from lists and bytes never imports it.
"""

from __future__ import annotations

import math
import numbers
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from ._errors import ConfigError, InvalidRequest

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
#: datatype -> the numpy dtype of its binary encoding (always little-endian)
_DTYPES: Final = {
    "BOOL": "|b1",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
#: (numpy dtype kind, itemsize) -> datatype, for from_numpy without a datatype
_BY_KIND: Final = {
    ("b", 1): "BOOL",
    ("i", 1): "INT8",
    ("i", 2): "INT16",
    ("i", 4): "INT32",
    ("i", 8): "INT64",
    ("u", 1): "UINT8",
    ("u", 2): "UINT16",
    ("u", 4): "UINT32",
    ("u", 8): "UINT64",
    ("f", 2): "FP16",
    ("f", 4): "FP32",
    ("f", 8): "FP64",
}

_INTEGERS: Final = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
_FLOATS: Final = frozenset({"FP16", "FP32", "FP64"})
#: BOOL bytes -> 0 or 1 (Triton reads any byte but 0 as true)
_BOOL_BYTES: Final = bytes([0] + [1] * 255)
#: a repr shows every element up to this many
_REPR_ELEMENTS: Final = 16
_UTF8_FIX: Final = (
    "JSON carries BYTES as text; send it with the binary tensor extension "
    "(binary_inputs=True), which carries any bytes"
)


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list | tuple):
        out: list[Any] = []
        stack = [iter(data)]
        while stack:  # iterative: a deeply nested list must not exhaust the stack
            for item in stack[-1]:
                if isinstance(item, list | tuple):
                    stack.append(iter(item))
                    break
                out.append(item)
            else:
                stack.pop()
        return out
    return [data]


def _as_shape(value: Any) -> Any:
    # Anything else is kept as given, for the checks to refuse with the tensor's name.
    return tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else value


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text[:200]}... ({len(text)} characters)" if len(text) > 200 else text


def _is_shape(shape: Any) -> bool:
    return type(shape) is tuple and all(type(d) is int and d >= 0 for d in shape)


def _is_ndarray(value: Any) -> bool:
    # Without importing numpy: an array can only exist if numpy was imported already.
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


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


def _bad_element(datatype: str, data: Sequence[Any]) -> tuple[int, Any] | None:
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


def _element_error(name: str, datatype: str, index: int, value: Any) -> ConfigError:
    expected = _EXPECTED.get(datatype, f"a whole number that fits {datatype}")
    return ConfigError(
        f"tensor {name!r}: data[{index}] is {_shown(value)}, but each {datatype} element must "
        f"be {expected}"
    )


def _as_bytes_elements(name: str, values: Sequence[Any]) -> tuple[bytes, ...]:
    """``BYTES`` elements as bytes: ``str`` as its UTF-8 (a lone surrogate has none)."""
    if all(type(v) is bytes for v in values):
        return tuple(values)
    out = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            out.append(bytes(value))
            continue
        try:
            out.append(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"tensor {name!r}: data[{i}] is {_shown(value)}, a str that has no UTF-8 "
                f"encoding ({exc.reason} at character {exc.start}); pass the bytes you mean "
                f"instead"
            ) from None
    return tuple(out)


def _check_header(name: Any, shape: Any, datatype: Any) -> None:
    if not isinstance(name, str):
        raise ConfigError(f"tensor name {_shown(name)}: expected a string")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ConfigError(
            f"tensor {name!r}: datatype {_shown(datatype)} is not one of "
            f"{', '.join(sorted(DATATYPES))}"
        )
    if not _is_shape(shape):
        raise ConfigError(
            f"tensor {name!r}: shape {_shown(shape)} must be a list of whole numbers >= 0"
        )


def _check_size(name: str, shape: tuple[int, ...], count: int) -> None:
    size = math.prod(shape)
    if count != size:
        raise ConfigError(
            f"tensor {name!r}: shape {list(shape)} holds {size} elements but data has {count}"
        )


def _from_array(name: str, datatype: str, array: Any) -> Any:
    """A numpy array as a tensor's storage: the flat little-endian array of the datatype's
    dtype (the given one when it is that already), or a tuple of values (``BYTES``, and
    arrays whose elements only the values' checks can judge). :class:`ConfigError` names the
    first element that does not fit, as the values' checks would."""
    import numpy as np

    flat = array.reshape(-1)
    if datatype == "BYTES":
        # tritonclient's rule: bytes as they are, anything else as its str (then UTF-8).
        values = [v if isinstance(v, bytes) else str(v) for v in flat.tolist()]
        return _as_bytes_elements(name, values)
    target = np.dtype(_DTYPES[datatype])
    source = flat.dtype
    if source.kind not in "biuf":
        # object, str, complex, ...: Python values, checked one by one as a list is.
        values = flat.tolist()
        bad = _bad_element(datatype, values)
        if bad is not None:
            raise _element_error(name, datatype, *bad)
        return np.array(values, dtype=target)
    if source == target:
        return np.ascontiguousarray(flat)
    bad_index = _first_misfit(np, datatype, flat, target)
    if bad_index is not None:
        raise _element_error(name, datatype, bad_index, flat[bad_index].item())
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(flat.astype(target))


def _first_misfit(np: Any, datatype: str, flat: Any, target: Any) -> int | None:
    """The index of the first element of ``flat`` (a bool, int or float array) that
    ``datatype`` cannot hold, by the values' rules, vectorised; None if all fit."""
    if flat.size == 0:
        return None
    source = flat.dtype
    if source.kind == "b":
        # Only BOOL holds True/False (and then the dtypes differ only in byte order).
        return None if datatype == "BOOL" else 0
    if datatype == "BOOL":
        return 0
    if datatype in _INTEGERS:
        if source.kind == "f":
            return 0  # a float is never a whole number here, as for lists
        have, want = np.iinfo(source), np.iinfo(target)
        misfit = np.zeros(flat.shape, dtype=bool)
        # Each bound is compared in the source's own dtype, and only when it is tighter than
        # the source's range (then it is representable there).
        if want.min > have.min:
            misfit |= flat < source.type(want.min)
        if want.max < have.max:
            misfit |= flat > source.type(want.max)
    else:
        # Numbers too large for the float type (inf and nan themselves fit).
        with np.errstate(over="ignore", invalid="ignore"):
            converted = flat.astype(target)
        misfit = np.isinf(converted) & ~np.isinf(flat)
    found = np.flatnonzero(misfit)
    return int(found[0]) if found.size else None


def _finite_misfit(values: Sequence[float]) -> int | None:
    if all(map(math.isfinite, values)):
        return None
    return next(i for i, v in enumerate(values) if not math.isfinite(v))


def _rebuild(
    name: str, shape: tuple[int, ...], datatype: str, raw: bytes, parameters: dict[str, Any]
) -> Tensor:
    return Tensor.from_bytes(name, shape, datatype, raw, parameters)


@attrs.frozen(init=False, eq=False, repr=False)
class Tensor:
    """A named tensor: ``shape``, ``datatype`` (``BOOL``, ``INT8``-``INT64``,
    ``UINT8``-``UINT64``, ``FP16``, ``FP32``, ``FP64``, ``BYTES``) and its elements, flat,
    row-major.

    ``Tensor(name, shape, datatype, data, parameters=None)`` takes ``data`` as a list (nested
    lists are flattened) or a numpy array (kept, see :meth:`from_numpy`). Every element must
    fit the datatype: ``True``/``False`` for ``BOOL``, whole numbers in range for the integer
    types (not ``bool``), numbers the float type can hold (``inf`` and ``nan`` included) for
    ``FP*``, bytes or str for ``BYTES`` (a str is held as its UTF-8 bytes); otherwise
    :class:`ConfigError`. The module docstring says how the elements are stored and compared.
    """

    name: str
    shape: tuple[int, ...]
    datatype: str
    parameters: dict[str, Any]
    _values: tuple[Any, ...] | None
    _buffer: Any  # a numpy array, bytes or a memoryview: see the module docstring
    _cache: tuple[Any, ...] | None

    def __init__(
        self,
        name: str,
        shape: Iterable[int],
        datatype: str,
        data: Any,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        checked: tuple[int, ...] = _as_shape(shape)
        _check_header(name, checked, datatype)
        shape = checked
        if parameters is None:
            parameters = {}
        elif not isinstance(parameters, dict):
            raise ConfigError(f"tensor {name!r}: parameters {_shown(parameters)} must be a dict")
        if _is_ndarray(data):
            _check_size(name, shape, data.size)
            stored = _from_array(name, datatype, data)
            if isinstance(stored, tuple):
                self.__attrs_init__(name, shape, datatype, parameters, stored, None, None)
            else:
                self.__attrs_init__(name, shape, datatype, parameters, None, stored, None)
            return
        values = _flatten(data)
        _check_size(name, shape, len(values))
        bad = _bad_element(datatype, values)
        if bad is not None:
            raise _element_error(name, datatype, *bad)
        stored_values = _as_bytes_elements(name, values) if datatype == "BYTES" else tuple(values)
        self.__attrs_init__(name, shape, datatype, parameters, stored_values, None, None)

    @classmethod
    def _raw(
        cls,
        name: str,
        shape: tuple[int, ...],
        datatype: str,
        parameters: dict[str, Any],
        values: tuple[Any, ...] | None,
        buffer: Any,
    ) -> Tensor:
        """A tensor from storage that is already checked."""
        tensor = cls.__new__(cls)
        tensor.__attrs_init__(name, shape, datatype, parameters, values, buffer, None)
        return tensor

    # --- the elements -----------------------------------------------------------------------

    @property
    def data(self) -> tuple[Any, ...]:
        """The elements as a flat tuple of Python values (``bool``, ``int``, ``float``,
        ``bytes``), row-major. For a tensor made from a numpy array or bytes this is the slow
        path: the tuple is built on first use (and kept); :meth:`as_numpy` is the fast one."""
        if self._values is not None:
            return self._values
        if self._cache is None:
            buffer = self._buffer
            if _is_ndarray(buffer):
                values = tuple(buffer.tolist())
            else:
                count = math.prod(self.shape)
                values = struct.unpack(f"<{count}{_FORMATS[self.datatype]}", buffer)
            object.__setattr__(self, "_cache", values)
            return values
        return self._cache

    # --- numpy ------------------------------------------------------------------------------

    @classmethod
    def from_numpy(cls, name: str, array: Any, datatype: str | None = None) -> Tensor:
        """A tensor of ``array``'s shape. ``datatype`` defaults to the one of the array's dtype
        (bool, int8-64, uint8-64, float16-64; object, bytes and str arrays are ``BYTES``).

        The array is kept, not copied, when it is C-contiguous, little-endian and of the
        datatype's dtype; otherwise it is converted once (a float64 array for ``FP32`` is
        rounded to float32, as the server would read it). A kept array is shared: change it
        and the tensor changes. Elements are checked as a list's are (:class:`ConfigError`).
        """
        import numpy as np

        array = np.asarray(array)
        if datatype is None:
            kind = array.dtype
            datatype = _BY_KIND.get((kind.kind, kind.itemsize))
            if datatype is None:
                if kind.kind not in "OSU":
                    raise ConfigError(f"tensor {name!r}: numpy dtype {kind} has no KServe datatype")
                datatype = "BYTES"
        return cls(name, array.shape, datatype, array)

    def as_numpy(self) -> Any:
        """The elements as a numpy array of ``shape`` (numpy must be installed).

        Read-only, and without a copy when the tensor holds a numpy array or raw bytes (a
        decoded binary output is a view of the response body, which it keeps alive); use
        ``.copy()`` for an array you can change. ``BYTES`` give an object array of bytes.
        """
        import numpy as np

        if self.datatype == "BYTES":
            array = np.empty(len(self.data), dtype=object)
            array[:] = self.data
        elif self._values is not None:
            array = np.array(self._values, dtype=_DTYPES[self.datatype])
        elif isinstance(self._buffer, np.ndarray):
            array = self._buffer.view()
        else:
            array = np.frombuffer(self._buffer, dtype=_DTYPES[self.datatype])
        array = array.reshape(self.shape)
        array.flags.writeable = False
        return array

    # --- encodings --------------------------------------------------------------------------

    def to_buffer(self) -> memoryview:
        """The binary extension's encoding of the elements, as a read-only ``memoryview``
        of unsigned bytes: the tensor's own memory when it holds a numpy array or raw bytes
        (no copy), else the encoding made now."""
        buffer = self._buffer
        if buffer is None:
            if self.datatype == "BYTES":
                pack = struct.Struct("<I").pack
                raw = b"".join(
                    [part for item in self._values or () for part in (pack(len(item)), item)]
                )
            else:
                values = self._values or ()
                raw = struct.pack(f"<{len(values)}{_FORMATS[self.datatype]}", *values)
            return memoryview(raw)
        view = memoryview(buffer)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        return view.toreadonly()

    def to_bytes(self) -> bytes:
        """The binary extension's encoding of the elements, as bytes (a copy, unless the
        tensor was made from those very bytes): :meth:`to_buffer` is the zero-copy one."""
        if type(self._buffer) is bytes:
            return self._buffer
        return bytes(self.to_buffer())

    def json_data(self) -> list[Any]:
        """The elements as the JSON encoding carries them: numbers and booleans as they are
        (``inf`` and ``nan`` too: JSON has no literal for them, and :func:`encode_infer_request`
        refuses them), ``BYTES`` as text.

        ``BYTES`` must be UTF-8: JSON cannot carry other bytes as text, so they are an
        :class:`InvalidRequest` naming the tensor and the element (send them with the binary
        extension). This is tritonclient's rule (``InferInput.set_data_from_numpy`` with
        ``binary_data=False`` decodes each element strictly as UTF-8 and refuses the rest),
        never a silent replacement.
        """
        if self.datatype == "BYTES":
            texts = []
            for i, item in enumerate(self.data):
                try:
                    texts.append(item.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise InvalidRequest(
                        f"tensor {self.name!r}: data[{i}] is {_shown(item)}, which is not "
                        f"UTF-8 ({exc.reason} at byte {exc.start}); {_UTF8_FIX}"
                    ) from None
            return texts
        if self._values is not None:
            return list(self._values)
        if _is_ndarray(self._buffer):
            return list(self._buffer.tolist())
        return list(self.data)

    def _first_non_finite(self) -> int | None:
        """The index of the first ``inf`` or ``nan`` of a float tensor, or None."""
        if self.datatype not in _FLOATS:
            return None
        if _is_ndarray(self._buffer):
            import numpy as np

            bad = np.flatnonzero(~np.isfinite(self._buffer))
            return int(bad[0]) if bad.size else None
        return _finite_misfit(self.data)

    @classmethod
    def from_bytes(
        cls,
        name: str,
        shape: Sequence[int],
        datatype: str,
        raw: bytes | bytearray | memoryview,
        parameters: dict[str, Any] | None = None,
    ) -> Tensor:
        """Decode the binary extension's encoding; ``raw`` must be exactly the tensor's bytes
        (:class:`ConfigError` if it is shorter, longer, or the shape or datatype is bad).

        A numeric tensor keeps ``raw`` as it is, without a copy (a ``memoryview`` into a
        response body stays one): do not change a ``bytearray`` or the memory a view looks
        at while the tensor is in use. ``BYTES`` elements are copied out as bytes.
        """
        checked: tuple[int, ...] = _as_shape(shape)
        _check_header(name, checked, datatype)
        shape = checked
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise ConfigError(
                f"tensor {name!r}: raw {_shown(raw)} must be bytes, bytearray or memoryview"
            )
        parameters = dict(parameters or {})
        count = math.prod(shape)
        if datatype == "BYTES":
            return cls._raw(name, shape, datatype, parameters, _split_bytes(name, count, raw), None)
        view = memoryview(raw)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        size = count * struct.calcsize(_FORMATS[datatype])
        if size != view.nbytes:
            raise ConfigError(
                f"tensor {name!r}: shape {list(shape)} of {datatype} takes {size} bytes, "
                f"not {view.nbytes}"
            )
        buffer: Any = raw if type(raw) is bytes else view
        if datatype == "BOOL":
            normal = view.tobytes().translate(_BOOL_BYTES)
            if normal != view:
                buffer = normal
        return cls._raw(name, shape, datatype, parameters, None, buffer)

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
        parameters = obj.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ConfigError(f"tensor {name!r}: parameters {_shown(parameters)} must be an object")
        return cls(name, shape, datatype, data, dict(parameters or {}))

    # --- value semantics --------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        if (self.name, self.shape, self.datatype) != (other.name, other.shape, other.datatype):
            return False
        if self._values is not None and other._values is not None and self.datatype == "BYTES":
            return self._values == other._values
        # bytes compare with memcmp; memoryviews compare element by element (10x slower).
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash((self.name, self.shape, self.datatype, self.to_bytes()))

    def __repr__(self) -> str:
        count = math.prod(self.shape)
        if count <= _REPR_ELEMENTS:
            data = repr(self.data)
        else:
            held = (
                "a list"
                if self._values is not None
                else ("a numpy array" if _is_ndarray(self._buffer) else "bytes")
            )
            data = f"<{count} {self.datatype} elements, held as {held}>"
        return (
            f"Tensor(name={self.name!r}, shape={self.shape!r}, datatype={self.datatype!r}, "
            f"data={data})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # A memoryview cannot be pickled: a tensor travels as its binary encoding.
        return (_rebuild, (self.name, self.shape, self.datatype, self.to_bytes(), self.parameters))


def _split_bytes(name: str, count: int, raw: bytes | bytearray | memoryview) -> tuple[bytes, ...]:
    """``count`` length-prefixed ``BYTES`` elements that fill ``raw`` exactly."""
    raw = memoryview(raw).cast("B") if isinstance(raw, memoryview) else raw
    total = len(raw)
    # Checked before the loop, so a huge shape cannot make it spin.
    if 4 * count > total:
        raise ConfigError(
            f"tensor {name!r}: {total} bytes cannot hold {count} BYTES elements "
            f"(each takes a 4-byte length at least)"
        )
    items: list[bytes] = []
    unpack = struct.Struct("<I").unpack_from
    offset = 0
    for i in range(count):
        if offset + 4 > total:
            raise ConfigError(
                f"tensor {name!r}: BYTES element {i} of {count} starts past the end of its "
                f"{total} bytes"
            )
        (length,) = unpack(raw, offset)
        offset += 4
        if offset + length > total:
            raise ConfigError(
                f"tensor {name!r}: BYTES element {i} claims {length} bytes, past the end of "
                f"its {total} bytes"
            )
        items.append(bytes(raw[offset : offset + length]))
        offset += length
    if offset != total:
        raise ConfigError(
            f"tensor {name!r}: {total - offset} bytes are left after its {count} BYTES elements"
        )
    return tuple(items)
