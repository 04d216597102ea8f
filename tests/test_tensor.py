"""Tensors keep what they were given (issue #11, defects 4 and 6).

Storage: a numpy array stays a numpy array, a binary output stays a view of the response body,
and only lists are held as Python values; the three storages encode to the same wire bytes and
compare equal when they hold the same values. BYTES that are not UTF-8 never pass through
JSON: every path that would have to turn them into text refuses, naming the tensor, the
element and the fix.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import TENSOR_VALUES, is_utf8
from trio_infer import ConfigError, InvalidRequest, KServeError, Tensor
from trio_infer._kserve import decode_infer_response, encode_infer_request

np = pytest.importorskip("numpy")

#: datatype -> little-endian numpy dtype
DTYPES = {
    "BOOL": "?",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
FORMATS = {
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


def reference_bytes(datatype: str, values: list[Any]) -> bytes:
    """The binary extension's encoding, written out independently of trio_infer."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in values)
    return struct.pack(f"<{len(values)}{FORMATS[datatype]}", *values)


def as_array(datatype: str, values: list[Any]) -> Any:
    if datatype == "BYTES":
        return np.array(values, dtype=object)
    return np.array(values, dtype=DTYPES[datatype])


@st.composite
def datatype_and_values(draw: st.DrawFn) -> tuple[str, list[Any]]:
    datatype = draw(st.sampled_from(sorted(TENSOR_VALUES)))
    return datatype, draw(st.lists(TENSOR_VALUES[datatype], max_size=16))


def storages(datatype: str, values: list[Any]) -> dict[str, Tensor]:
    """The same values held each way a tensor can hold them."""
    raw = reference_bytes(datatype, values)
    padded = b"head" + raw + b"tail"
    return {
        "list": Tensor("t", [len(values)], datatype, values),
        "numpy": Tensor.from_numpy("t", as_array(datatype, values), datatype),
        "bytes": Tensor.from_bytes("t", [len(values)], datatype, raw),
        "memoryview": Tensor.from_bytes(
            "t", [len(values)], datatype, memoryview(padded)[4 : 4 + len(raw)]
        ),
    }


# --- the storages agree -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(datatype_and_values())
def test_every_storage_encodes_to_the_same_wire_bytes(case: tuple[str, list[Any]]) -> None:
    # Differential: numpy- and buffer-backed tensors against the list-backed one and against
    # struct, written independently. Breaks if a storage loses its byte order, its dtype or an
    # element.
    datatype, values = case
    expected = reference_bytes(datatype, values)
    for storage, tensor in storages(datatype, values).items():
        assert tensor.to_bytes() == expected, storage
        assert bytes(tensor.to_buffer()) == expected, storage


@settings(max_examples=200, deadline=None)
@given(datatype_and_values())
def test_every_storage_holds_the_same_values(case: tuple[str, list[Any]]) -> None:
    datatype, values = case
    tensors = storages(datatype, values)
    listed = tensors["list"]
    for storage, tensor in tensors.items():
        assert tensor == listed, storage
        assert hash(tensor) == hash(listed), storage
        assert type(tensor.data) is tuple, storage
        assert tensor.data == tuple(values), storage
        # The Python values are Python's, never numpy scalars: users read them as numbers.
        assert all(type(v) is type(w) for v, w in zip(tensor.data, values, strict=True)), storage
        array = tensor.as_numpy()
        assert array.shape == (len(values),), storage
        assert array.tolist() == listed.as_numpy().tolist(), storage


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(DTYPES)).flatmap(
        lambda dt: st.tuples(
            st.just(dt),
            st.integers(0, 6).flatmap(
                lambda n: st.binary(
                    min_size=n * struct.calcsize(FORMATS[dt]),
                    max_size=n * struct.calcsize(FORMATS[dt]),
                )
            ),
        )
    )
)
def test_raw_bytes_round_trip_bit_for_bit(case: tuple[str, bytes]) -> None:
    # Any bit pattern (NaN payloads, -0.0, subnormals) survives decode and re-encode, through a
    # memoryview and through numpy.
    datatype, raw = case
    if datatype == "BOOL":
        raw = bytes(b & 1 for b in raw)  # BOOL carries 0 or 1 (other bytes are tested below)
    count = len(raw) // struct.calcsize(FORMATS[datatype])
    tensor = Tensor.from_bytes("t", [count], datatype, memoryview(raw))
    assert bytes(tensor.to_buffer()) == raw
    assert tensor.as_numpy().tobytes() == raw
    assert Tensor.from_numpy("t", tensor.as_numpy()).to_bytes() == raw


@settings(max_examples=100, deadline=None)
@given(datatype_and_values(), st.booleans())
def test_a_decoded_response_equals_the_tensor_sent(
    case: tuple[str, list[Any]], binary: bool
) -> None:
    # A request encoded from numpy is decoded as a response: the memoryview-backed (binary)
    # or list-backed (JSON) outputs equal the list-backed tensor.
    datatype, values = case
    listed = Tensor("t", [len(values)], datatype, values)
    sent = Tensor.from_numpy("t", as_array(datatype, values), datatype)
    json_ok = datatype not in ("BYTES", "FP16") or binary
    if datatype == "BYTES" and not binary:
        json_ok = all(is_utf8(v) for v in values)
    if datatype.startswith("FP") and not binary:
        json_ok = all(math.isfinite(v) for v in values)
    if not json_ok:
        with pytest.raises(InvalidRequest, match="binary_inputs=True"):
            encode_infer_request([sent], binary_inputs=binary)
        return
    body, length = encode_infer_request([sent], binary_inputs=binary)
    header = json.loads(bytes(body[:length]) if length is not None else body)
    encoded = json.dumps({"outputs": header["inputs"]}).encode()
    blob = bytes(body[length:]) if length is not None else b""
    result = decode_infer_response(encoded + blob, len(encoded) if binary else None)
    assert result.outputs[0] == listed
    assert result.outputs[0].data == listed.data


# --- zero copy --------------------------------------------------------------------------------


def test_from_numpy_holds_its_own_read_only_copy() -> None:
    # Rule 1: a writable array is copied once into an array the tensor owns, read-only for good;
    # the binary encoding is that copy's own memory (no second copy).
    array = np.arange(1000, dtype=np.float32)
    tensor = Tensor.from_numpy("x", array)
    held = tensor.as_numpy()
    assert not np.shares_memory(held, array)
    view = tensor.to_buffer()
    assert isinstance(view, memoryview) and view.readonly and view.nbytes == array.nbytes
    assert np.shares_memory(np.frombuffer(view, dtype=np.uint8), held)
    assert np.shares_memory(tensor.as_numpy(), held)  # one copy, made once
    with pytest.raises(ValueError, match="WRITEABLE"):
        held.flags.writeable = True
    array[:] = 7  # the caller's array is the caller's
    assert tensor.data[:3] == (0.0, 1.0, 2.0) and tensor.as_numpy()[0] == 0.0


def test_a_numpy_array_passed_as_data_is_copied_too() -> None:
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    tensor = Tensor("x", [2, 3], "INT64", array)
    assert not np.shares_memory(tensor.as_numpy(), array)
    assert tensor.data == (0, 1, 2, 3, 4, 5)
    with pytest.raises(ConfigError, match="holds 4 elements but data has 6"):
        Tensor("x", [2, 2], "INT64", array)


def test_an_array_in_immutable_bytes_is_kept_without_a_copy() -> None:
    body = np.arange(1000, dtype=np.float32).tobytes()
    frozen = np.frombuffer(body, dtype=np.float32)
    assert np.shares_memory(Tensor.from_numpy("x", frozen).as_numpy(), frozen)
    # A decoded output's array (a view of a memoryview of the body) goes on without a copy.
    decoded = Tensor.from_bytes("y", [10, 100], "FP32", memoryview(b"head" + body)[4:])
    chained = Tensor.from_numpy("z", decoded.as_numpy())
    assert np.shares_memory(chained.as_numpy(), decoded.as_numpy())
    # Memory that can change is copied: an array that owns its memory (read-only or not: its
    # owner can set it writeable again), an array over a bytearray, and one that must be
    # converted anyway.
    owned = np.arange(4, dtype=np.float32)
    owned.flags.writeable = False
    mutable = np.frombuffer(bytearray(16), dtype=np.float32)
    for array in (owned, mutable):
        assert not np.shares_memory(Tensor.from_numpy("x", array).as_numpy(), array)
    strided = frozen[::2]
    assert not np.shares_memory(Tensor.from_numpy("x", strided).as_numpy(), frozen)


def test_from_bytes_copies_memory_that_can_change() -> None:
    raw = struct.pack("<2i", 1, 2)
    mutable = bytearray(raw)
    for source in (mutable, memoryview(mutable), memoryview(mutable).toreadonly()):
        tensor = Tensor.from_bytes("x", [2], "INT32", source)
        mutable[0] = 9  # before .data is first read: a shared buffer would show it
        assert (tensor.data, tensor.to_bytes()) == ((1, 2), raw)
        mutable[0] = 1
    body = b"head" + raw
    kept = Tensor.from_bytes("x", [2], "INT32", memoryview(body)[4:])
    assert np.shares_memory(
        np.frombuffer(kept.to_buffer(), dtype=np.uint8), np.frombuffer(body, dtype=np.uint8)
    )


def test_as_numpy_is_read_only() -> None:
    array = np.arange(4, dtype=np.float32)
    for tensor in (
        Tensor.from_numpy("x", array),
        Tensor.from_bytes("x", [4], "FP32", array.tobytes()),
    ):
        out = tensor.as_numpy()
        assert not out.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            out[0] = 5
    assert array.flags.writeable  # the caller's array is left as it was


def test_from_numpy_copies_only_when_it_must() -> None:
    # Big-endian, strided and other-dtype arrays are converted to C-contiguous little-endian
    # of the datatype's dtype; the values are kept.
    big_endian = np.arange(5, dtype=">f4")
    tensor = Tensor.from_numpy("x", big_endian)
    assert tensor.datatype == "FP32"
    assert tensor.to_bytes() == struct.pack("<5f", 0, 1, 2, 3, 4)
    strided = np.arange(10, dtype=np.int32)[::2]
    assert Tensor.from_numpy("x", strided).data == (0, 2, 4, 6, 8)
    column = np.arange(6, dtype=np.int16).reshape(2, 3).T
    tensor = Tensor.from_numpy("x", column)
    assert (tensor.shape, tensor.data) == ((3, 2), (0, 3, 1, 4, 2, 5))
    assert tensor.as_numpy().flags.c_contiguous
    widened = Tensor.from_numpy("x", np.array([1, 2], dtype=np.int8), "INT64")
    assert widened.to_bytes() == struct.pack("<2q", 1, 2)
    rounded = Tensor.from_numpy("x", np.array([0.1]), "FP32")
    assert rounded.to_bytes() == struct.pack("<f", 0.1)


def test_a_decoded_binary_output_is_a_view_of_the_body() -> None:
    values = np.arange(1000, dtype=np.float32)
    header = json.dumps(
        {
            "outputs": [
                {
                    "name": "o",
                    "shape": [10, 100],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": values.nbytes},
                }
            ]
        }
    ).encode()
    body = header + values.tobytes()
    out = decode_infer_response(body, len(header)).output("o")
    array = out.as_numpy()
    assert array.shape == (10, 100)
    assert np.shares_memory(array, np.frombuffer(body, dtype=np.uint8))
    assert np.array_equal(array.reshape(-1), values)
    assert np.shares_memory(
        np.frombuffer(out.to_buffer(), dtype=np.uint8), np.frombuffer(body, dtype=np.uint8)
    )


def test_the_binary_request_body_is_the_header_then_each_buffer() -> None:
    # The body is the JSON header followed by the tensors' bytes, whatever their storage.
    a = np.arange(4, dtype=np.float32)
    tensors = [
        Tensor.from_numpy("a", a),
        Tensor.from_bytes("b", [2], "INT32", memoryview(struct.pack("<2i", 7, 8))),
        Tensor("c", [2], "BYTES", [b"x", "y"]),
    ]
    body, length = encode_infer_request(tensors, binary_inputs=True)
    assert length is not None
    header = json.loads(bytes(body[:length]))
    assert [i["parameters"]["binary_data_size"] for i in header["inputs"]] == [16, 8, 10]
    assert bytes(body[length:]) == a.tobytes() + struct.pack("<2i", 7, 8) + (b"\1\0\0\0x\1\0\0\0y")


def test_data_is_computed_once_from_a_buffer() -> None:
    tensor = Tensor.from_bytes("x", [3], "INT32", struct.pack("<3i", 1, 2, 3))
    assert tensor.data == (1, 2, 3)
    assert tensor.data is tensor.data


def test_bool_bytes_other_than_0_and_1_are_true() -> None:
    # Triton reads any byte but 0 as true (http_server.cc WriteDataToJson); the tensor holds
    # 0 and 1, so its encodings and its numpy array agree with a list of bools.
    tensor = Tensor.from_bytes("b", [3], "BOOL", memoryview(b"\x00\x02\x01"))
    assert tensor.data == (False, True, True)
    assert tensor.to_bytes() == b"\0\1\1"
    assert tensor.as_numpy().tolist() == [False, True, True]
    assert tensor == Tensor("b", [3], "BOOL", [False, True, True])


def test_a_tensor_over_a_memoryview_pickles() -> None:
    import pickle

    body = b"junk" + struct.pack("<2f", 1.5, 2.5)
    tensor = Tensor.from_bytes("x", [2], "FP32", memoryview(body)[4:], {"p": 1})
    back = pickle.loads(pickle.dumps(tensor))
    assert back == tensor and back.parameters == {"p": 1}
    array = Tensor.from_numpy("y", np.arange(3, dtype=np.int16))
    assert pickle.loads(pickle.dumps(array)) == array


# --- equality means the same values -------------------------------------------------------


def test_equality_across_storages() -> None:
    listed = Tensor("x", [2], "FP32", [0.1, 2.0])
    from_array = Tensor.from_numpy("x", np.array([0.1, 2.0], dtype=np.float32))
    from_bytes = Tensor.from_bytes("x", [2], "FP32", struct.pack("<2f", 0.1, 2.0))
    # An FP32 tensor holds FP32 values: 0.1 in a list is the float32 nearest to it, as the
    # server will read it, whichever encoding carries it.
    assert listed == from_array == from_bytes
    assert hash(listed) == hash(from_array) == hash(from_bytes)
    assert Tensor("w", [2], "BYTES", ["hé", b"x"]) == Tensor(
        "w", [2], "BYTES", ["hé".encode(), b"x"]
    )
    # ... and anything else differs.
    assert listed != Tensor.from_numpy("x", np.array([0.1, 3.0], dtype=np.float32))
    assert listed != Tensor("y", [2], "FP32", [0.1, 2.0])
    assert listed != Tensor("x", [2, 1], "FP32", [0.1, 2.0])
    assert listed != Tensor("x", [2], "FP64", [0.1, 2.0])
    same_bits = struct.pack("<2i", -1, 0)
    assert Tensor.from_bytes("x", [2], "INT32", same_bits) != Tensor.from_bytes(
        "x", [2], "UINT32", same_bits
    )
    assert listed != (0.1, 2.0)


def test_repr_stays_short_for_big_tensors() -> None:
    small = Tensor("x", [2], "INT32", [1, 2])
    assert repr(small) == "Tensor(name='x', shape=(2,), datatype='INT32', data=(1, 2))"
    big = Tensor.from_numpy("x", np.zeros(2_000_000, dtype=np.float32))
    assert len(repr(big)) < 300 and "2000000" in repr(big)


# --- the checks keep their meaning for numpy arrays ------------------------------------------


@pytest.mark.parametrize(
    ("array", "datatype", "message"),
    [
        (np.array([1, 300], dtype=np.int64), "INT8", r"data\[1\] is 300, but each INT8"),
        (np.array([5, -1], dtype=np.int64), "UINT8", r"data\[1\] is -1, but each UINT8"),
        (np.array([2**63], dtype=np.uint64), "INT64", r"data\[0\] is 9223372036854775808"),
        (np.array([1.5]), "INT32", r"data\[0\] is 1.5, but each INT32"),
        (np.array([True]), "INT32", r"data\[0\] is True, but each INT32"),
        (np.array([1, 2]), "BOOL", r"data\[0\] is 1, but each BOOL element must be True or False"),
        (np.array([True]), "FP32", r"data\[0\] is True, but each FP32"),
        (np.array([1.0, 1e10]), "FP16", r"data\[1\] is 10000000000.0, but each FP16"),
        (np.array([1e39]), "FP32", r"data\[0\] is 1e\+39, but each FP32"),
        (np.array([10**10], dtype=np.int64), "FP16", r"data\[0\] is 10000000000, but each FP16"),
        (np.array(["a"]), "INT32", r"data\[0\] is 'a', but each INT32"),
        (np.array([1 + 2j]), "FP64", r"data\[0\] is \(1\+2j\), but each FP64"),
    ],
)
def test_numpy_elements_are_checked_as_list_elements_are(
    array: Any, datatype: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Tensor.from_numpy("x", array, datatype)
    with pytest.raises(ConfigError, match=message):
        Tensor("x", list(array.shape), datatype, array.tolist())


def test_numpy_dtypes_without_a_datatype_are_refused() -> None:
    with pytest.raises(ConfigError, match="complex128 has no KServe datatype"):
        Tensor.from_numpy("x", np.array([1 + 2j]))
    with pytest.raises(ConfigError, match="datatype 'FP8' is not one of"):
        Tensor.from_numpy("x", np.array([1.0]), "FP8")


def test_inf_and_nan_from_numpy_need_binary_inputs() -> None:
    tensor = Tensor.from_numpy("x", np.array([1.0, np.inf, 2.0], dtype=np.float32))
    with pytest.raises(InvalidRequest, match=r"tensor 'x'.*data\[1\] is inf.*binary_inputs=True"):
        encode_infer_request([tensor])
    body, length = encode_infer_request([tensor], binary_inputs=True)
    assert length is not None and bytes(body[length:]) == struct.pack("<3f", 1, math.inf, 2)


def test_bytes_arrays_take_bytes_and_str_only() -> None:
    # Object, bytes and str arrays, with bytes or str elements: as a list's elements are.
    for array in (
        np.array([b"a", "b"], dtype=object),
        np.array([b"a", b"b"]),
        np.array(["a", "b"]),
    ):
        assert Tensor.from_numpy("w", array, "BYTES").data == (b"a", b"b")
    with pytest.raises(ConfigError, match=r"dtype float64 cannot be BYTES"):
        Tensor.from_numpy("w", np.array([1.5]), "BYTES")
    with pytest.raises(ConfigError, match=r"data\[1\] is 3, but each BYTES element"):
        Tensor.from_numpy("w", np.array([b"a", 3], dtype=object))


def test_dates_and_durations_are_not_numbers() -> None:
    # tolist() of datetime64[ns] gives plain ints: they would pass as INT64 nanoseconds.
    for array in (np.array([1, 2], dtype="datetime64[ns]"), np.array([1], dtype="m8[s]")):
        with pytest.raises(ConfigError, match="dates or durations"):
            Tensor.from_numpy("t", array, "INT64")
        with pytest.raises(ConfigError, match="no KServe datatype"):
            Tensor.from_numpy("t", array)


def test_a_masked_array_with_masked_elements_is_refused() -> None:
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with pytest.raises(ConfigError, match="masked"):
        Tensor.from_numpy("m", masked, "FP64")
    unmasked = np.ma.masked_array([1.0, 2.0], mask=[False, False])
    assert Tensor.from_numpy("m", unmasked, "FP64").data == (1.0, 2.0)


def test_bool_arrays_hold_0_and_1() -> None:
    # From a writable array (copied) and from one in immutable bytes (kept when it is 0/1).
    odd = b"\x02\x00\xff"
    for array in (
        np.frombuffer(bytearray(odd), dtype=np.bool_),
        np.frombuffer(odd, dtype=np.bool_),
    ):
        tensor = Tensor.from_numpy("b", array)
        assert tensor.to_bytes() == b"\1\0\1"
        assert tensor == Tensor.from_bytes("b", [3], "BOOL", odd)
        assert tensor.as_numpy().view(np.uint8).tolist() == [1, 0, 1]
    clean = np.frombuffer(b"\1\0", dtype=np.bool_)
    assert np.shares_memory(Tensor.from_numpy("b", clean).as_numpy(), clean)


def test_shape_dimensions_are_int64() -> None:
    assert Tensor("x", [0, 2**63 - 1], "FP32", []).shape == (0, 2**63 - 1)
    refused = r"shape .* from 0 to 2\*\*63 - 1"
    with pytest.raises(ConfigError, match=refused):
        Tensor("x", [0, 2**63], "FP32", [])
    with pytest.raises(ConfigError, match=refused):
        Tensor.from_bytes("x", [0, 2**63], "FP32", b"")


def test_parameters_are_the_tensors_own() -> None:
    parameters = {"p": 1}
    tensor = Tensor("x", [1], "INT32", [1], parameters)
    parameters["p"] = 2
    assert tensor.parameters == {"p": 1}


# --- attrs.evolve (Rule 5) --------------------------------------------------------------------


def test_evolve_shares_the_storage() -> None:
    tensor = Tensor.from_numpy("OUTPUT0", np.arange(6, dtype=np.float32).reshape(2, 3))
    renamed = attrs.evolve(tensor, name="INPUT0", parameters={"p": 1})
    assert (renamed.name, renamed.shape, renamed.parameters) == ("INPUT0", (2, 3), {"p": 1})
    assert np.shares_memory(renamed.as_numpy(), tensor.as_numpy())  # no copy
    assert renamed.data is tensor.data  # nor a second tuple
    assert attrs.evolve(renamed, name="OUTPUT0") == tensor
    assert attrs.evolve(tensor, shape=[6]).as_numpy().shape == (6,)
    with pytest.raises(ConfigError, match="holds 4 elements but data has 6"):
        attrs.evolve(tensor, shape=[4])
    assert attrs.evolve(tensor, data=[1, 2], shape=[2]).data == (1.0, 2.0)


def test_evolve_to_another_datatype_checks_the_values_again() -> None:
    for tensor in (
        Tensor("x", [2], "FP32", [1.0, 2.5]),
        Tensor.from_numpy("x", np.array([1.0, 2.5], dtype=np.float32)),
        Tensor.from_bytes("x", [2], "FP32", struct.pack("<2f", 1.0, 2.5)),
    ):
        assert attrs.evolve(tensor, datatype="FP64") == Tensor("x", [2], "FP64", [1.0, 2.5])
        with pytest.raises(ConfigError, match=r"data\[0\] is 1.0, but each INT32"):
            attrs.evolve(tensor, datatype="INT32")
        with pytest.raises(ConfigError, match=r"data\[0\]|cannot be BYTES"):
            attrs.evolve(tensor, datatype="BYTES")
    words = Tensor("w", [1], "BYTES", [b"a"])
    with pytest.raises(ConfigError, match=r"data\[0\] is b'a', but each INT8"):
        attrs.evolve(words, datatype="INT8")


# --- BYTES that are not UTF-8 never pass through JSON (defect 4) -----------------------------


def test_json_data_refuses_bytes_that_are_not_utf8() -> None:
    tensor = Tensor("words", [3], "BYTES", [b"ok", "\u00e9", b"\xff\xfe"])
    with pytest.raises(InvalidRequest) as info:
        tensor.json_data()
    message = str(info.value)
    for needle in ("'words'", "data[2]", "b'\\xff\\xfe'", "UTF-8", "binary_inputs=True"):
        assert needle in message, message
    assert Tensor("w", [2], "BYTES", [b"ok", "\u00e9"]).json_data() == ["ok", "\u00e9"]


def test_a_request_names_the_element_that_is_not_utf8() -> None:
    tensor = Tensor("words", [2, 2], "BYTES", [b"a", b"b", b"c\x80", b"d"])
    with pytest.raises(
        InvalidRequest, match=r"tensor 'words': data\[2\] is b'c\\x80'.*binary_inputs=True"
    ):
        encode_infer_request([tensor])
    body, length = encode_infer_request([tensor], binary_inputs=True)
    assert length is not None and bytes(body[length:]).endswith(b"\2\0\0\0c\x80\1\0\0\0d")


def test_a_str_that_is_not_unicode_text_is_refused_when_made() -> None:
    # A lone surrogate has no UTF-8 encoding: refused where it is written, not when sent.
    with pytest.raises(ConfigError, match=r"tensor 'w': data\[1\] is '\\udcff'.*UTF-8"):
        Tensor("w", [2], "BYTES", ["ok", "\udcff"])
    with pytest.raises(ConfigError, match=r"data\[0\]"):
        Tensor.from_numpy("w", np.array(["\udcff"], dtype=object))


def test_str_elements_are_held_as_their_utf8_bytes() -> None:
    tensor = Tensor("w", [2], "BYTES", ["hé", b"\xff"])
    assert tensor.data == ("hé".encode(), b"\xff")
    assert Tensor.from_numpy("w", np.array(["hé", "x"])).data == ("hé".encode(), b"x")


def raw_json_bytes_output(*elements: bytes) -> bytes:
    """A JSON answer with BYTES written raw into its strings, as Triton writes them: its
    rapidjson writer copies the bytes without checking them (no kWriteValidateEncodingFlag)."""
    data = b", ".join(b'"' + e + b'"' for e in elements)
    return (
        b'{"model_name": "identity", "outputs": [{"name": "OUTPUT0", "datatype": "BYTES", '
        b'"shape": [%d], "data": [%s]}]}' % (len(elements), data)
    )


def test_a_json_answer_with_bytes_that_are_not_utf8_is_a_kserve_error() -> None:
    body = raw_json_bytes_output(b"ok", b"\xff\xfe")
    with pytest.raises(KServeError) as info:
        decode_infer_response(body, None, 200)
    message = str(info.value)
    for needle in ("'OUTPUT0'", "data[1]", "b'\\xff\\xfe'", "UTF-8", "binary_outputs=True"):
        assert needle in message, message
    assert info.value.status == 200


def test_a_json_header_with_bytes_that_are_not_utf8_is_a_kserve_error() -> None:
    # The same with the binary extension: one output binary, the other JSON.
    header = (
        b'{"outputs": [{"name": "a", "datatype": "INT32", "shape": [1], '
        b'"parameters": {"binary_data_size": 4}}, '
        b'{"name": "b", "datatype": "BYTES", "shape": [2], "data": ["x", "\xc3("]}]}'
    )
    with pytest.raises(
        KServeError, match=r"output 'b' \(outputs\[1\]\): data\[1\] .*binary_outputs=True"
    ):
        decode_infer_response(header + b"\0\0\0\0", len(header), 200)


def test_a_json_answer_that_is_not_utf8_elsewhere_is_a_kserve_error() -> None:
    with pytest.raises(KServeError, match="not valid"):
        decode_infer_response(b'{"model_name": "\xff", "outputs": []}', None, 200)


def test_a_json_answer_with_infinity_decodes() -> None:
    # Triton writes inf and nan outputs as Infinity and NaN (rapidjson's kWriteNanAndInfFlag);
    # tritonclient reads them with json.loads, and so do we.
    body = b'{"outputs": [{"name": "o", "datatype": "FP32", "shape": [3], "data": [Infinity, -Infinity, 1.5]}]}'
    out = decode_infer_response(body, None).output("o")
    assert out.data == (math.inf, -math.inf, 1.5)


# --- importing trio_infer does not import numpy -------------------------------------------


def test_importing_trio_infer_does_not_import_numpy() -> None:
    code = (
        "import sys, trio_infer\n"
        "t = trio_infer.Tensor('x', [2], 'FP32', [1, 2])\n"
        "t.to_bytes(); t.to_buffer(); t.json_data(); t.data\n"
        "t = trio_infer.Tensor.from_bytes('x', [2], 'FP32', t.to_bytes()); t.data\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
