"""Attacks on the issue-11 tensor layer: ``_tensor.py`` (storages, equality, the cached
``data``, zero-copy views), ``_kserve.py`` (request encoding, response decoding) and the
Triton-like ``FakeKServe``.

Each test under a "Was:" comment was a strict-xfail attack on a defect (the comment keeps its
reason) and is now a regression test for its fix. The few plain tests are guards of what the
attacks could not break: a decoded output is a view of its own response body only, and stays as
it was after the connection carries other responses.
"""

from __future__ import annotations

import functools
import json
import warnings
from typing import Any

import attrs
import pytest
import trio

import trio_infer
from trio_infer import InvalidRequest, KServeError, Tensor
from trio_infer._errors import ConfigError
from trio_infer._kserve import decode_infer_response, encode_infer_request
from trio_infer.testing import FakeKServe, Responder, ServerRequest, TestServer, serve

np = pytest.importorskip("numpy")


async def fake_server(nursery: trio.Nursery, handler: Any = None) -> TestServer:
    server: TestServer = await nursery.start(serve, handler or FakeKServe())
    return server


def binary_body(outputs: list[tuple[str, str, list[int], bytes]]) -> tuple[bytes, int]:
    """A binary-extension answer: the JSON header and the outputs' bytes after it."""
    header = json.dumps(
        {
            "model_name": "m",
            "outputs": [
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": shape,
                    "parameters": {"binary_data_size": len(raw)},
                }
                for name, datatype, shape, raw in outputs
            ],
        }
    ).encode()
    return header + b"".join(raw for *_, raw in outputs), len(header)


# --- defects: wrong values with no error ----------------------------------------------------


# Was: Tensor.data is cached on first use, but a kept numpy array is shared (documented: 'change
# it and the tensor changes'): after the array changes, .data still holds the old values while
# to_bytes()/as_numpy()/the wire carry the new ones. Should: .data agrees with the storage (do not
# cache for array storage, or copy the array).
# The fix copies the array (_tensor.py, Rule 1), so the test now says the tensor is a value:
# changing the caller's array changes nothing the tensor shows, caches, hashes or sends. It fails
# if the array is shared again.
def test_a_tensor_does_not_follow_the_callers_array() -> None:
    array = np.array([1.0, 2.0], dtype=np.float32)
    tensor = Tensor.from_numpy("x", array)
    before = (tensor.data, tensor.to_bytes(), hash(tensor))
    array[0] = 5.0
    assert tensor.as_numpy().tolist() == [1.0, 2.0]
    assert (tensor.data, tensor.to_bytes(), hash(tensor)) == before
    assert tensor == Tensor("x", [2], "FP32", [1.0, 2.0])
    body, length = encode_infer_request([tensor], binary_inputs=True)
    assert length is not None and bytes(body[length:]) == before[1]


# Was: a numpy array for BYTES turns every element that is not bytes into its str(): a float array
# becomes b'1.5', None becomes b'None', bytearray(b'ab') becomes b"bytearray(b'ab')" (tritonclient
# refuses a float array for BYTES; the list path refuses all of these). Should: ConfigError naming
# the element, as for a list
@pytest.mark.parametrize(
    ("array", "datatype"),
    [
        pytest.param(lambda: np.array([1.5, 2.0]), "BYTES", id="float-array"),
        pytest.param(lambda: np.array([True, False]), "BYTES", id="bool-array"),
        pytest.param(lambda: np.array([None, b"a"], dtype=object), "BYTES", id="None"),
        pytest.param(
            lambda: np.array([bytearray(b"ab"), b"a"], dtype=object), "BYTES", id="bytearray"
        ),
        pytest.param(lambda: None, None, id="from_numpy(None)"),
    ],
)
def test_bytes_from_numpy_never_stringifies(array: Any, datatype: str | None) -> None:
    with pytest.raises(ConfigError):
        Tensor.from_numpy("x", array(), datatype)


# Was: a JSON answer number too large for any float (1e400) fails msgspec, and the json.loads
# fallback (meant for NaN/Infinity) reads it as inf: the output silently holds inf, while a
# smaller out-of-range number (1e39 for FP32) is refused. Should: KServeError naming the output
# (parse_float that refuses a finite literal which overflows)
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_json_answer_overflowing_number_is_not_inf(datatype: str) -> None:
    body = json.dumps(
        {"outputs": [{"name": "o", "shape": [1], "datatype": datatype, "data": [0.0]}]}
    ).replace("0.0", "1e400")
    with pytest.raises(KServeError, match="'o'"):
        decode_infer_response(body.encode(), None)


# Was: msgspec encodes float nan/inf as null, so parameters={'p': nan} (request or tensor
# parameters) are sent as 'p': null with no error, while nan in tensor data is refused. Should:
# InvalidRequest naming the parameter (JSON cannot carry it)
@pytest.mark.parametrize("where", ["request", "tensor"])
def test_non_finite_parameters_are_refused(where: str) -> None:
    nan = {"p": float("nan")}
    tensor = Tensor("x", [1], "FP32", [1.0], nan if where == "tensor" else None)
    with pytest.raises(InvalidRequest, match="p"):
        encode_infer_request([tensor], parameters=nan if where == "request" else None)


# Was: a numpy BOOL array whose bytes are not 0/1 (a uint8 array viewed as bool) is kept as it is:
# it compares unequal to (and hashes differently from) the same values as a list or as decoded
# bytes, and its raw 0x02 goes on the wire. Should: normalise to 0/1 as from_bytes does
def test_bool_array_with_other_bytes_equals_its_values() -> None:
    array = np.array([2, 0, 255], dtype=np.uint8).view(np.bool_)
    tensor = Tensor.from_numpy("x", array)
    assert tensor.data == (True, False, True)
    assert tensor == Tensor("x", [3], "BOOL", [True, False, True])
    assert tensor.to_bytes() == b"\x01\x00\x01"


# Was: a np.matrix passed as data stays 2-D after reshape(-1), so Tensor.data is ([1.0, 2.0],):
# one list instead of two floats, and json_data() nests it. Should: np.asarray first (as
# from_numpy does), data == (1.0, 2.0)
def test_matrix_data_is_flat() -> None:
    with warnings.catch_warnings():  # numpy discourages np.matrix; users still have them
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        matrix = np.matrix([[1.0, 2.0]], dtype=np.float32)
    tensor = Tensor("x", [2], "FP32", matrix)
    assert tensor.data == (1.0, 2.0)
    assert tensor.json_data() == [1.0, 2.0]


# --- defects: untyped errors, from input the server or the user controls --------------------


# Was: infer() does int() on Inference-Header-Content-Length after isdigit(): a server sending >
# 4300 digits (the head limit is 64 KiB) raises a bare ValueError (Python's int-string limit).
# Should: KServeError (check the length of the digits, or strip zeros)
async def test_huge_inference_header_length_is_a_kserve_error(nursery: trio.Nursery) -> None:
    body = b'{"outputs":[]}'

    async def handler(request: ServerRequest, respond: Responder) -> None:
        length = "0" * 4990 + str(len(body))
        headers = [
            ("content-type", "application/json"),
            ("inference-header-content-length", length),
        ]
        await respond.start(200, headers, length=len(body))
        await respond.send(body)
        await respond.end()

    server = await fake_server(nursery, handler)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(KServeError, match="Inference-Header-Content-Length"):
            await client.kserve.infer("m", [Tensor("INPUT0", [1], "FP32", [1.0])])


# Was: FakeKServe's _header_length does int() on a 5000-digit inference-header-content-length:
# ValueError in the handler (a 500, and serve() raises it at exit) instead of the 400 naming the
# header that it gives other bad values
async def test_fake_kserve_huge_header_length_is_a_400() -> None:
    fake = FakeKServe()
    async with trio.open_nursery() as nursery:
        server: TestServer = await nursery.start(
            functools.partial(serve, fake, raise_handler_errors=False)
        )
        async with trio_infer.Client(server.url) as client:
            response = await client.request(
                "POST",
                "/v2/models/identity/infer",
                content=b"{}",
                headers={"inference-header-content-length": "9" * 5000},
            )
        nursery.cancel_scope.cancel()
    assert (response.status, server.handler_errors) == (400, 0)
    assert "inference-header-content-length" in response.json()["error"]


# Was: Tensor.from_bytes keeps a non-contiguous memoryview of format 'B' (view[::2]) as it is:
# .data/repr/as_numpy then raise BufferError and encode_infer_request a TypeError; for BYTES
# from_bytes itself raises TypeError (cast of a strided view). Should: copy it (as it does for
# other non-contiguous views) or ConfigError at once
@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
def test_strided_memoryview_is_copied_or_refused(datatype: str) -> None:
    wire = Tensor("x", [2], datatype, [1.0, 2.0] if datatype == "FP32" else [b"ab", b"c"])
    spread = bytes(b for byte in wire.to_bytes() for b in (byte, 0))
    strided = memoryview(spread)[::2]
    try:
        tensor = Tensor.from_bytes("x", [2], datatype, strided)
    except ConfigError:
        return
    assert tensor == wire and tensor.data == wire.data
    assert tensor.as_numpy().tolist() == list(wire.data)
    body, _ = encode_infer_request([tensor], binary_inputs=True)
    assert body.endswith(wire.to_bytes())


# Was: shapes take any whole number: a dim of 2**70 (with a 0 dim, so no elements) is accepted
# from the user and sent, and accepted in an answer, where as_numpy() then raises a bare
# ValueError. KServe/Triton shapes are int64. Should: ConfigError / KServeError for a dim >= 2**63
# (and FakeKServe a 400, as Triton)
def test_shape_dims_beyond_int64_are_refused() -> None:
    with pytest.raises(ConfigError, match="shape"):
        Tensor("x", [0, 2**70], "FP32", [])
    body = json.dumps(
        {"outputs": [{"name": "o", "shape": [0, 2**70], "datatype": "FP32", "data": []}]}
    ).encode()
    with pytest.raises(KServeError, match="shape"):
        decode_infer_response(body, None)


# --- defects: what a careless user does --------------------------------------------------------


# Was: a binary output keeps the response's transport parameter binary_data_size in
# Tensor.parameters; sent again as a JSON input (chaining models), the request carries
# 'binary_data_size' next to 'data' and the server answers 400 (Triton and FakeKServe look for
# binary bytes that are not there). Should: decode_infer_response leaves binary_data_size out of
# the tensor's parameters (or encode drops it in JSON mode)
def test_a_binary_output_can_be_sent_back_as_json() -> None:
    body, length = binary_body(
        [("OUTPUT0", "FP32", [2], Tensor("o", [2], "FP32", [1.0, 2.0]).to_bytes())]
    )
    out = decode_infer_response(body, length).output("OUTPUT0")
    request, header_length = encode_infer_request([out])
    assert header_length is None
    sent = json.loads(request)["inputs"][0]
    assert sent["data"] == [1.0, 2.0]
    assert "binary_data_size" not in sent.get("parameters", {})


# Was: Tensor is an attrs class whose init takes data, but its attrs fields are
# _values/_buffer/_cache: attrs.evolve(tensor, name=...) (the way to rename a frozen value, e.g.
# an output to the next model's input; it worked before issue 11) raises TypeError: unexpected
# keyword 'values'. Should: evolve works, or Tensor is no longer an attrs class and offers a
# renaming method
def test_evolve_renames_a_tensor() -> None:
    tensor = Tensor("OUTPUT0", [2], "FP32", [1.0, 2.0])
    renamed = attrs.evolve(tensor, name="INPUT0")
    assert (renamed.name, renamed.data) == ("INPUT0", (1.0, 2.0))


# Was: infer() adds 'Inference-Header-Content-Length' and setdefault('Content-Type') case-
# sensitively: a user header 'inference-header-content-length' or 'content-type' is sent as well,
# so the request carries two conflicting framing headers (the server splits the body at the user's
# stale value). Should: one of each (the computed one), or InvalidRequest for a user Inference-
# Header-Content-Length
async def test_framing_headers_are_never_duplicated(nursery: trio.Nursery) -> None:
    server = await fake_server(nursery)
    headers = {"inference-header-content-length": "2", "content-type": "application/json"}
    async with trio_infer.Client(server.url) as client:
        try:
            await client.kserve.infer(
                "identity",
                [Tensor("INPUT0", [2], "FP32", [1.0, 2.0])],
                binary_inputs=True,
                headers=headers,
            )
        except InvalidRequest:
            return
        except KServeError:
            pass
    sent = [name for name, _ in server.requests[-1].headers]
    assert sent.count("inference-header-content-length") == 1
    assert sent.count("content-type") == 1


# Was: a tensor made by converting an array (float64 -> FP32) owns a writeable array; as_numpy()
# returns a view with writeable=False, but numpy lets the caller set it back to True and change
# the frozen tensor (its hash and its wire bytes change). Should: the tensor's own converted array
# is made read-only, so the flag cannot be set back
def test_as_numpy_of_an_owned_array_stays_read_only() -> None:
    tensor = Tensor.from_numpy("x", np.array([1.0, 2.0]), "FP32")
    view = tensor.as_numpy()
    with pytest.raises(ValueError, match="WRITEABLE"):
        view.flags.writeable = True


# --- guards: a decoded output is its own response's bytes, for good -----------------------


async def test_binary_outputs_survive_connection_reuse(nursery: trio.Nursery) -> None:
    server = await fake_server(nursery)
    kept = []
    async with trio_infer.Client(server.url) as client:
        for i in range(4):
            values = np.arange(i, i + 1000, dtype=np.float32)
            result = await client.kserve.infer(
                "identity",
                [Tensor.from_numpy("INPUT0", values)],
                binary_inputs=True,
                binary_outputs=True,
            )
            kept.append((values, result.output("OUTPUT0")))
    assert {r.connection_index for r in server.requests} == {0}  # one connection, reused
    for values, out in kept:
        array = out.as_numpy()
        assert array.tobytes() == values.tobytes() == out.to_bytes()
        assert out.to_buffer().readonly
        with pytest.raises(ValueError, match="WRITEABLE"):
            array.flags.writeable = True  # a view of the immutable body


async def test_a_cancelled_binary_answer_never_reaches_the_next_call(
    nursery: trio.Nursery,
) -> None:
    first, second = np.full(1000, 7.0, np.float32), np.full(1000, 9.0, np.float32)
    half_sent, release = trio.Event(), trio.Event()
    calls = 0

    async def handler(request: ServerRequest, respond: Responder) -> None:
        nonlocal calls
        calls += 1
        values = first if calls == 1 else second
        body, length = binary_body([("OUTPUT0", "FP32", [1000], values.tobytes())])
        headers = [
            ("content-type", "application/octet-stream"),
            ("inference-header-content-length", str(length)),
        ]
        await respond.start(200, headers, length=len(body))
        if calls == 1:
            await respond.send(body[: len(body) // 2])
            half_sent.set()
            await release.wait()
            return
        await respond.send(body)
        await respond.end()

    server = await fake_server(nursery, handler)
    tensor = Tensor.from_numpy("INPUT0", first)
    async with trio_infer.Client(server.url) as client:
        with trio.CancelScope() as scope:
            nursery.start_soon(_cancel_when, half_sent, scope)
            await client.kserve.infer("m", [tensor], binary_outputs=True)
        assert scope.cancelled_caught
        result = await client.kserve.infer("m", [tensor], binary_outputs=True)
    release.set()
    assert result.output("OUTPUT0").to_bytes() == second.tobytes()
    assert [r.connection_index for r in server.requests] == [0, 1]


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def test_a_client_wide_inference_header_length_is_refused() -> None:
    # Found after the attack: a Client(headers=...) value went out with JSON requests too,
    # and the server split their bodies at it.
    with pytest.raises(trio_infer.ConfigError, match="frames one body"):
        trio_infer.Client("http://127.0.0.1:1", headers={"Inference-Header-Content-Length": "3"})
