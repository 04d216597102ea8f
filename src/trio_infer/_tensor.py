"""Tensors of the KServe v2 / Triton protocol, and their JSON and binary encodings.

Theory of operation. A :class:`Tensor` is a value: checked when it is made (name, shape,
datatype, and its elements against the datatype), so a tensor that exists can be encoded both
ways, and unchangeable afterwards, so what was checked, cached and hashed stays true. A bad one
is a :class:`ConfigError` naming the tensor and the value. It keeps its elements in the form it
was given, so a large tensor is never turned into millions of Python objects:

Rule 1: one storage, fixed when the tensor is made, that nobody can change.
  * *values*: a flat tuple of Python values, row-major. Lists (nested ones are flattened),
    JSON data, and every ``BYTES`` tensor (``str`` elements become their UTF-8 bytes).
  * *array*: a flat, C-contiguous, little-endian, read-only numpy array of the datatype's
    dtype (:meth:`Tensor.from_numpy`, or a numpy array passed as ``data``). The caller's array
    is copied once into an array the tensor owns (converted on the way when its dtype, byte
    order or layout differ), because a numpy array can be changed by whoever holds it (even a
    read-only one: its owner can set it writeable again). It is kept without a copy only when
    its memory belongs to an immutable ``bytes`` object (``numpy.frombuffer`` over bytes, such
    as the :meth:`Tensor.as_numpy` of a decoded binary output) and is already such an array.
  * *raw*: the binary extension's bytes of a numeric tensor (:meth:`Tensor.from_bytes`). Kept
    as given when they are immutable, ``bytes`` or a contiguous ``memoryview`` into ``bytes``
    (decoding a response keeps a view into the response body); anything else (a
    ``bytearray``, a view of writable or strided memory) is copied into ``bytes`` once.

  The price of Rule 1 is that one copy of a caller's writable array, a memcpy (~0.3 ms for
  8 MB here); tritonclient makes the same copy (``set_data_from_numpy`` calls ``tobytes``).
  Sharing it instead would make the tensor change under the caller's writes: its cached
  :attr:`Tensor.data`, its hash and its equality would disagree with what goes on the wire.

Rule 2: every storage is checked as strictly as the values are. Values element by element
(types, ranges); arrays by dtype, with vectorised range checks (and a fallback to the values'
checks for object, string and complex arrays; date and duration arrays are refused, a
``BYTES`` array must hold bytes or str: object, bytes or str dtype); raw bytes by length (any
bit pattern is a value of a numeric type). ``BOOL`` bytes other than 0 are read as true, as
Triton reads them, and held as 1, from raw bytes and arrays alike. Shapes are whole numbers
from 0 to 2**63 - 1 (KServe and Triton shapes are int64).

Rule 3: the fast paths never build Python values: :meth:`Tensor.to_buffer` is a zero-copy
read-only view of an array or raw storage, and :meth:`Tensor.as_numpy` wraps it with
``numpy.frombuffer`` (read-only for good, no copy). :attr:`Tensor.data`, the flat tuple of
Python values, is computed from an array or raw storage on first use and kept (Rule 1 makes
keeping it sound): the slow path.

Rule 4: equality is name, shape, datatype and the values as the datatype holds them, which is
their binary encoding byte for byte; so the storages compare equal when they hold the same
values, ``0.1`` in an ``FP32`` list equals ``float32(0.1)``, a NaN equals a NaN with the same
bits, and ``0.0`` differs from ``-0.0``. ``parameters`` are not compared (the dict is the
tensor's own copy). The hash follows equality and, by Rule 1, never changes.

Rule 5: ``attrs.evolve(tensor, name=...)`` (or any other field) makes a new tensor: the
storage is the attrs field behind the ``data`` argument, so evolve passes it on; it is reused
as it is when the datatype is unchanged (a new shape must hold as many elements), and its
values are checked again for a new datatype.

numpy is optional and imported only by the numpy methods: importing trio_infer, making,
encoding and decoding tensors from lists and bytes never imports it.
"""

from __future__ import annotations

import math
import numbers
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Final, final

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
#: KServe and Triton shapes are int64: a dimension is below this
_DIM_LIMIT: Final = 1 << 63
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
    return type(shape) is tuple and all(type(d) is int and 0 <= d < _DIM_LIMIT for d in shape)


def _is_ndarray(value: Any) -> bool:
    # Without importing numpy: an array can only exist if numpy was imported already.
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def _in_bytes(memory: Any) -> bool:
    """Whether ``memory`` (a numpy array or a memoryview) lies in an immutable ``bytes``
    object, so that nobody can change it (Rule 1). A numpy array's ``base`` is the array that
    owns its memory or the object that exports it (numpy shortens view-of-view chains), and a
    memoryview's ``obj`` the exporter, so the walk is short."""
    while True:
        if isinstance(memory, bytes):
            return True
        if isinstance(memory, memoryview):
            memory = memory.obj
        elif _is_ndarray(memory):
            memory = memory.base  # None for an array that owns its memory: mutable
        else:
            return False


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
            f"tensor {name!r}: shape {_shown(shape)} must be a list of whole numbers from 0 to "
            f"2**63 - 1 (KServe shapes are int64)"
        )


def _check_size(name: str, shape: tuple[int, ...], count: int) -> None:
    size = math.prod(shape)
    if count != size:
        raise ConfigError(
            f"tensor {name!r}: shape {list(shape)} holds {size} elements but data has {count}"
        )


def _plain_array(np: Any, name: str, array: Any) -> Any:
    """``array`` as a plain ndarray (np.matrix stays 2-D through reshape; a masked array's
    mask would be dropped silently, so masked elements are refused)."""
    masked = sys.modules.get("numpy.ma")  # imported by whoever made a masked array
    if (
        masked is not None
        and isinstance(array, masked.MaskedArray)
        and masked.getmaskarray(array).any()
    ):
        raise ConfigError(
            f"tensor {name!r}: a masked array with masked elements; KServe has no masked "
            f"values: fill them (array.filled(value)) or drop them first"
        )
    return np.asarray(array)


def _from_array(name: str, datatype: str, array: Any) -> Any:
    """A numpy array as a tensor's storage (Rule 1): a flat, C-contiguous, little-endian,
    read-only array of the datatype's dtype that nobody else can change, or a tuple of values
    (``BYTES``, and arrays whose elements only the values' checks can judge).
    :class:`ConfigError` names the first element that does not fit, as the values' checks
    would, or the dtype when no element of it could."""
    import numpy as np

    flat = _plain_array(np, name, array).reshape(-1)
    source = flat.dtype
    if source.kind in "mM":
        # tolist() would turn them into plain ints (or datetimes): say what they are.
        raise ConfigError(
            f"tensor {name!r}: numpy dtype {source} holds dates or durations, not {datatype} "
            f"values; convert them to the numbers you mean first (e.g. array.view('int64'))"
        )
    if datatype == "BYTES":
        if source.kind not in "OSU":
            raise ConfigError(
                f"tensor {name!r}: a numpy array of dtype {source} cannot be BYTES: BYTES "
                f"elements are bytes or str (an object, bytes or str array); convert the "
                f"values to the bytes you mean first"
            )
        values = flat.tolist()
        bad = _bad_element(datatype, values)
        if bad is not None:
            raise _element_error(name, datatype, *bad)
        return _as_bytes_elements(name, values)
    target = np.dtype(_DTYPES[datatype])
    if source.kind not in "biuf":
        # object, str, complex, ...: Python values, checked one by one as a list is.
        values = flat.tolist()
        bad = _bad_element(datatype, values)
        if bad is not None:
            raise _element_error(name, datatype, *bad)
        owned = np.array(values, dtype=target)
    elif source == target:
        if datatype == "BOOL":
            octets = flat.view(np.uint8)
            if octets.size and octets.max() > 1:
                # Any byte but 0 is true, held as 1 (as from_bytes does).
                owned = octets.astype(np.bool_)
                owned.flags.writeable = False
                return owned
        if flat.flags.c_contiguous and _in_bytes(flat):
            return flat  # read-only already: bytes are
        owned = flat.copy()
    else:
        bad_index = _first_misfit(np, datatype, flat, target)
        if bad_index is not None:
            raise _element_error(name, datatype, bad_index, flat[bad_index].item())
        with np.errstate(over="ignore"):
            owned = flat.astype(target)  # a C-contiguous copy
    owned.flags.writeable = False  # nobody else holds it: now nobody can write it
    return owned


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


@final
class _Storage:
    """A tensor's elements, in one of Rule 1's storages: ``values`` (a tuple) or ``buffer`` (a
    read-only numpy array, ``bytes``, or a memoryview into bytes), never both. Nothing in it
    changes once made, so the tensors :func:`attrs.evolve` makes from one another share it, and
    with it ``cache`` (a buffer's Python values, made on first use) and ``digest`` (the hash of
    the binary encoding, made on first use)."""

    __slots__ = ("buffer", "cache", "count", "datatype", "digest", "values")

    def __init__(
        self, datatype: str, count: int, values: tuple[Any, ...] | None, buffer: Any
    ) -> None:
        self.datatype = datatype
        self.count = count
        self.values = values
        self.buffer = buffer
        self.cache: tuple[Any, ...] | None = None
        self.digest: int | None = None

    def elements(self) -> tuple[Any, ...]:
        if self.values is not None:
            return self.values
        if self.cache is None:
            buffer = self.buffer
            if _is_ndarray(buffer):
                self.cache = tuple(buffer.tolist())
            else:
                self.cache = struct.unpack(f"<{self.count}{_FORMATS[self.datatype]}", buffer)
        return self.cache

    def __repr__(self) -> str:
        return f"<the storage of {self.count} {self.datatype} elements>"


def _store(name: str, shape: tuple[int, ...], datatype: str, data: Any) -> _Storage:
    """Check ``data`` (a list, a numpy array, or another tensor's storage) against the
    tensor's header, and hold it as Rule 1 says."""
    if isinstance(data, _Storage):  # from attrs.evolve (Rule 5)
        if data.datatype == datatype:
            _check_size(name, shape, data.count)
            return data
        # Another datatype: the values are checked again, from the storage's own form.
        data = data.buffer if _is_ndarray(data.buffer) else data.elements()
    if _is_ndarray(data):
        _check_size(name, shape, data.size)
        stored = _from_array(name, datatype, data)
        if isinstance(stored, tuple):
            return _Storage(datatype, len(stored), stored, None)
        return _Storage(datatype, stored.size, None, stored)
    values = _flatten(data)
    _check_size(name, shape, len(values))
    bad = _bad_element(datatype, values)
    if bad is not None:
        raise _element_error(name, datatype, *bad)
    stored_values = _as_bytes_elements(name, values) if datatype == "BYTES" else tuple(values)
    return _Storage(datatype, len(stored_values), stored_values, None)


def _check_parameters(name: str, parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise ConfigError(f"tensor {name!r}: parameters {_shown(parameters)} must be a dict")
    return dict(parameters)  # the tensor's own: the caller's dict may change later


@attrs.frozen(init=False, eq=False, repr=False)
class Tensor:
    """A named tensor: ``shape``, ``datatype`` (``BOOL``, ``INT8``-``INT64``,
    ``UINT8``-``UINT64``, ``FP16``, ``FP32``, ``FP64``, ``BYTES``) and its elements, flat,
    row-major. A frozen value: nothing it holds changes after it is made.

    ``Tensor(name, shape, datatype, data, parameters=None)`` takes ``data`` as a list (nested
    lists are flattened) or a numpy array (see :meth:`from_numpy`). Every element must fit
    the datatype: ``True``/``False`` for ``BOOL``, whole numbers in range for the integer
    types (not ``bool``), numbers the float type can hold (``inf`` and ``nan`` included) for
    ``FP*``, bytes or str for ``BYTES`` (a str is held as its UTF-8 bytes); otherwise
    :class:`ConfigError`. ``parameters`` is copied. ``attrs.evolve(tensor, name="INPUT0")``
    renames a tensor without copying its elements. The module docstring says how the
    elements are stored and compared.
    """

    name: str
    shape: tuple[int, ...]
    datatype: str
    parameters: dict[str, Any]
    # Behind the data argument, so attrs.evolve hands the storage on (Rule 5).
    _storage: _Storage = attrs.field(alias="data")

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
        own_parameters = _check_parameters(name, parameters)
        storage = _store(name, checked, datatype, data)
        self.__attrs_init__(name, checked, datatype, own_parameters, storage)

    @classmethod
    def _raw(
        cls,
        name: str,
        shape: tuple[int, ...],
        datatype: str,
        parameters: dict[str, Any],
        storage: _Storage,
    ) -> Tensor:
        """A tensor from storage that is already checked."""
        tensor = cls.__new__(cls)
        tensor.__attrs_init__(name, shape, datatype, parameters, storage)
        return tensor

    # --- the elements -----------------------------------------------------------------------

    @property
    def data(self) -> tuple[Any, ...]:
        """The elements as a flat tuple of Python values (``bool``, ``int``, ``float``,
        ``bytes``), row-major. For a tensor made from a numpy array or bytes this is the slow
        path: the tuple is built on first use (and kept); :meth:`as_numpy` is the fast one."""
        return self._storage.elements()

    # --- numpy ------------------------------------------------------------------------------

    @classmethod
    def from_numpy(cls, name: str, array: Any, datatype: str | None = None) -> Tensor:
        """A tensor of ``array``'s shape. ``datatype`` defaults to the one of the array's dtype
        (bool, int8-64, uint8-64, float16-64; object, bytes and str arrays are ``BYTES``).

        The tensor holds its own read-only copy of the array (converted once when the dtype,
        byte order or layout differ: a float64 array for ``FP32`` is rounded to float32, as the
        server would read it), so changing the array later does not change the tensor. An
        array whose memory is an immutable ``bytes`` object (``numpy.frombuffer`` over bytes,
        a decoded output's :meth:`as_numpy`) is kept without a copy. Elements are checked as a
        list's are (:class:`ConfigError`); ``BYTES`` takes object, bytes and str arrays only,
        with bytes or str elements.
        """
        import numpy as np

        array = _plain_array(np, name, array)
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
        decoded binary output is a view of the response body, which it keeps alive); its
        ``writeable`` flag cannot be set back. Use ``.copy()`` for an array you can change.
        ``BYTES`` give an object array of bytes.
        """
        import numpy as np

        storage = self._storage
        if self.datatype == "BYTES":
            array = np.empty(storage.count, dtype=object)
            array[:] = storage.elements()
        elif storage.values is not None:
            array = np.array(storage.values, dtype=_DTYPES[self.datatype])
        elif isinstance(storage.buffer, np.ndarray):
            array = storage.buffer.view()
        else:
            array = np.frombuffer(storage.buffer, dtype=_DTYPES[self.datatype])
        array = array.reshape(self.shape)
        array.flags.writeable = False
        return array

    # --- encodings --------------------------------------------------------------------------

    def to_buffer(self) -> memoryview:
        """The binary extension's encoding of the elements, as a read-only ``memoryview``
        of unsigned bytes: the tensor's own memory when it holds a numpy array or raw bytes
        (no copy), else the encoding made now."""
        storage = self._storage
        buffer = storage.buffer
        if buffer is None:
            values = storage.values or ()
            if self.datatype == "BYTES":
                pack = struct.Struct("<I").pack
                raw = b"".join([part for item in values for part in (pack(len(item)), item)])
            else:
                raw = struct.pack(f"<{len(values)}{_FORMATS[self.datatype]}", *values)
            return memoryview(raw)
        view = memoryview(buffer)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        return view.toreadonly()

    def to_bytes(self) -> bytes:
        """The binary extension's encoding of the elements, as bytes (a copy, unless the
        tensor was made from those very bytes): :meth:`to_buffer` is the zero-copy one."""
        buffer = self._storage.buffer
        if type(buffer) is bytes:
            return buffer
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
        storage = self._storage
        if self.datatype == "BYTES":
            texts = []
            for i, item in enumerate(storage.elements()):
                try:
                    texts.append(item.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise InvalidRequest(
                        f"tensor {self.name!r}: data[{i}] is {_shown(item)}, which is not "
                        f"UTF-8 ({exc.reason} at byte {exc.start}); {_UTF8_FIX}"
                    ) from None
            return texts
        if storage.values is None and _is_ndarray(storage.buffer):
            return list(storage.buffer.tolist())
        return list(storage.elements())

    def _first_non_finite(self) -> int | None:
        """The index of the first ``inf`` or ``nan`` of a float tensor, or None."""
        if self.datatype not in _FLOATS:
            return None
        buffer = self._storage.buffer
        if _is_ndarray(buffer):
            import numpy as np

            bad = np.flatnonzero(~np.isfinite(buffer))
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

        A numeric tensor keeps ``bytes``, and a contiguous ``memoryview`` into bytes (a
        response body), as they are, without a copy; other memory (a ``bytearray``, a view of
        writable or strided memory) is copied once, so that the tensor never changes.
        ``BYTES`` elements are copied out as bytes.
        """
        checked: tuple[int, ...] = _as_shape(shape)
        _check_header(name, checked, datatype)
        shape = checked
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise ConfigError(
                f"tensor {name!r}: raw {_shown(raw)} must be bytes, bytearray or memoryview"
            )
        own_parameters = _check_parameters(name, parameters)
        count = math.prod(shape)
        if datatype == "BYTES":
            values = _split_bytes(name, count, raw)
            return cls._raw(
                name, shape, datatype, own_parameters, _Storage(datatype, count, values, None)
            )
        buffer: Any
        if isinstance(raw, bytes):
            buffer, nbytes = raw, len(raw)
        else:
            view = memoryview(raw)
            if view.c_contiguous and _in_bytes(view):
                buffer = view if view.format == "B" and view.ndim == 1 else view.cast("B")
            else:
                buffer = view.tobytes()  # mutable or strided memory: the tensor's own copy
            nbytes = view.nbytes
        size = count * struct.calcsize(_FORMATS[datatype])
        if size != nbytes:
            raise ConfigError(
                f"tensor {name!r}: shape {list(shape)} of {datatype} takes {size} bytes, "
                f"not {nbytes}"
            )
        if datatype == "BOOL":
            normal = bytes(buffer).translate(_BOOL_BYTES)
            if normal != buffer:
                buffer = normal
        return cls._raw(
            name, shape, datatype, own_parameters, _Storage(datatype, count, None, buffer)
        )

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
        return cls(name, shape, datatype, data, parameters)

    # --- value semantics --------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        if (self.name, self.shape, self.datatype) != (other.name, other.shape, other.datatype):
            return False
        mine, theirs = self._storage, other._storage
        if mine is theirs:
            return True
        if mine.values is not None and theirs.values is not None and self.datatype == "BYTES":
            return mine.values == theirs.values
        # bytes compare with memcmp; memoryviews compare element by element (10x slower).
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        storage = self._storage
        if storage.digest is None:
            storage.digest = hash(self.to_bytes())  # sound: the storage never changes
        return hash((self.name, self.shape, self.datatype, storage.digest))

    def __repr__(self) -> str:
        count = math.prod(self.shape)
        if count <= _REPR_ELEMENTS:
            data = repr(self.data)
        else:
            storage = self._storage
            held = (
                "a list"
                if storage.values is not None
                else ("a numpy array" if _is_ndarray(storage.buffer) else "bytes")
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
    if isinstance(raw, memoryview):
        # cast() needs contiguous memory; a strided view is read through a copy.
        raw = raw.cast("B") if raw.c_contiguous else raw.tobytes()
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
