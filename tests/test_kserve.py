"""KServe v2 / Triton REST: tensors, the binary extension both ways, the fake server, and the
fake judged by the official tritonclient."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_infer
from helpers import TENSOR_VALUES, is_utf8
from trio_infer import ConfigError, KServeError, Tensor
from trio_infer._kserve import decode_infer_response, encode_infer_request
from trio_infer.testing import FakeKServe, TestServer, reply, serve

NUMERIC = [
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "FP16",
    "FP32",
    "FP64",
]


# --- tensors --------------------------------------------------------------------------------


def test_tensor_validation() -> None:
    t = Tensor("x", [2, 2], "INT32", [[1, 2], [3, 4]])
    assert (t.shape, t.data) == ((2, 2), (1, 2, 3, 4))
    with pytest.raises(ConfigError, match="holds 4 elements but data has 3"):
        Tensor("x", [2, 2], "INT32", [1, 2, 3])
    with pytest.raises(ConfigError, match="datatype 'INT3' is not one of"):
        Tensor("x", [1], "INT3", [1])
    with pytest.raises(ConfigError, match="shape"):
        Tensor("x", [-1], "INT32", [])


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    datatype = draw(st.sampled_from(sorted(TENSOR_VALUES)))
    data = draw(st.lists(TENSOR_VALUES[datatype], max_size=12))
    return Tensor("t", [len(data)], datatype, data)


@settings(deadline=None)  # no timed assertions: a loaded machine is not a failure
@given(tensors())
def test_binary_encoding_round_trips(tensor: Tensor) -> None:
    back = Tensor.from_bytes("t", tensor.shape, tensor.datatype, tensor.to_bytes())
    assert back == tensor


@settings(deadline=None)
@given(st.lists(tensors(), min_size=1, max_size=3), st.booleans())
def test_requests_decode_as_the_server_would(inputs: list[Tensor], binary: bool) -> None:
    # A request is decoded the way a response is (the same layout), so the fake's parser and
    # the client's decoder check each other.
    inputs = [Tensor(f"in{i}", t.shape, t.datatype, t.data) for i, t in enumerate(inputs)]
    finite = all(math.isfinite(x) for t in inputs if t.datatype.startswith("FP") for x in t.data)
    text = all(is_utf8(x) for t in inputs if t.datatype == "BYTES" for x in t.data)
    if not binary and not (finite and text):
        # JSON cannot carry inf, nan or non-UTF-8 bytes: refused, not sent mangled.
        with pytest.raises(trio_infer.InvalidRequest, match="binary_inputs=True"):
            encode_infer_request(inputs, binary_inputs=binary)
        return
    body, length = encode_infer_request(inputs, binary_inputs=binary)
    assert (length is not None) == binary
    header = json.loads(body[:length] if length is not None else body)
    as_response = {"outputs": header["inputs"]}
    encoded = json.dumps(as_response).encode()
    result = decode_infer_response(
        encoded + (body[length:] if length else b""), len(encoded) if length else None
    )
    for sent, got in zip(inputs, result.outputs, strict=True):
        assert (got.name, got.shape, got.datatype) == (sent.name, sent.shape, sent.datatype)
        assert got.data == sent.data


def test_numpy_round_trip() -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(6, dtype=np.float16).reshape(2, 3)
    tensor = Tensor.from_numpy("x", array)
    assert (tensor.datatype, tensor.shape) == ("FP16", (2, 3))
    assert (tensor.as_numpy() == array).all()
    words = Tensor.from_numpy("w", np.array([b"a", b"bc"], dtype=object))
    assert (words.datatype, words.data) == ("BYTES", (b"a", b"bc"))


# --- against the fake -----------------------------------------------------------------------


async def fake_server(nursery: trio.Nursery, fake: FakeKServe | None = None) -> TestServer:
    server: TestServer = await nursery.start(serve, fake or FakeKServe())
    return server


async def test_health_and_metadata(nursery: trio.Nursery) -> None:
    fake = FakeKServe()
    server = await fake_server(nursery, fake)
    async with trio_infer.Client(server.url) as client:
        kserve = client.kserve
        assert await kserve.server_live() and await kserve.server_ready()
        assert (await kserve.server_metadata())["extensions"] == ["binary_tensor_data"]
        assert await kserve.model_ready("add")
        assert await kserve.model_ready("add", version="1")
        assert not await kserve.model_ready("nope")
        metadata = await kserve.model_metadata("add")
        assert [i["name"] for i in metadata["inputs"]] == ["INPUT0", "INPUT1"]
        assert (await kserve.model_config("identity"))["name"] == "identity"
        fake.ready = False
        assert not await kserve.server_ready()
        with pytest.raises(KServeError, match="unknown model") as info:
            await kserve.model_metadata("nope")
        assert info.value.status == 404


@pytest.mark.parametrize("binary_inputs", [False, True])
@pytest.mark.parametrize("binary_outputs", [False, True])
async def test_infer_add(nursery: trio.Nursery, binary_inputs: bool, binary_outputs: bool) -> None:
    server = await fake_server(nursery)
    a = Tensor("INPUT0", [2, 2], "FP32", [1.0, 2.0, 3.0, 4.0])
    b = Tensor("INPUT1", [2, 2], "FP32", [10.0, 20.0, 30.0, 40.0])
    async with trio_infer.Client(server.url) as client:
        result = await client.kserve.infer(
            "add",
            [a, b],
            binary_inputs=binary_inputs,
            binary_outputs=binary_outputs,
            request_id="r1",
        )
    out = result.output("OUTPUT0")
    assert (out.shape, out.datatype, out.data) == ((2, 2), "FP32", (11.0, 22.0, 33.0, 44.0))
    assert (result.model_name, result.model_version, result.id) == ("add", "1", "r1")
    # binary_data_size described the response's bytes: never the tensor's parameter.
    assert "binary_data_size" not in out.parameters
    sent = server.requests[0]
    assert (sent.header("inference-header-content-length") is not None) == binary_inputs


@pytest.mark.parametrize("datatype", [*NUMERIC, "BOOL", "BYTES"])
async def test_identity_every_datatype(nursery: trio.Nursery, datatype: str) -> None:
    server = await fake_server(nursery)
    data = {"BOOL": [True, False], "BYTES": [b"ab", b""], "FP16": [0.5, -2.0]}.get(datatype, [1, 2])
    tensor = Tensor("INPUT0", [2], datatype, data)
    async with trio_infer.Client(server.url) as client:
        # Triton, and so the fake, carries FP16 only in the binary extension.
        for binary in (False, True) if datatype != "FP16" else (True,):
            result = await client.kserve.infer(
                "identity", [tensor], ["OUTPUT0"], binary_inputs=binary, binary_outputs=binary
            )
            assert result.output("OUTPUT0").data == tensor.data


async def test_server_errors_are_typed(nursery: trio.Nursery) -> None:
    server = await fake_server(nursery)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(KServeError, match="expected 2 inputs but got 1 inputs") as info:
            await client.kserve.infer("add", [Tensor("INPUT0", [1], "FP32", [1.0])])
        assert info.value.status == 400
        with pytest.raises(KServeError, match="unknown model"):
            await client.kserve.infer("missing", [Tensor("INPUT0", [1], "FP32", [1.0])])


def test_a_truncated_binary_response_is_an_error() -> None:
    header = json.dumps(
        {
            "outputs": [
                {
                    "name": "o",
                    "shape": [4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    ).encode()
    with pytest.raises(KServeError, match="past the body's end"):
        decode_infer_response(header + b"\0" * 8, len(header))
    with pytest.raises(KServeError, match="not valid JSON"):
        decode_infer_response(b"{nope", None)


# --- the official client is the judge of the fake -------------------------------------------

TRITON_SCRIPT = r"""
import sys, json
import numpy as np
import tritonclient.http as httpclient
client = httpclient.InferenceServerClient(url=sys.argv[1])
out = {"live": client.is_server_live(), "ready": client.is_model_ready("add")}
a = np.array([1, 2, 3], dtype=np.float32); b = np.array([10, 20, 30], dtype=np.float32)
for binary in (False, True):
    inputs = [httpclient.InferInput("INPUT0", [3], "FP32"), httpclient.InferInput("INPUT1", [3], "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=binary); inputs[1].set_data_from_numpy(b, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary)]
    result = client.infer("add", inputs, outputs=outputs)
    out[f"add_binary_{binary}"] = result.as_numpy("OUTPUT0").tolist()
words = httpclient.InferInput("INPUT0", [2], "BYTES")
words.set_data_from_numpy(np.array([b"hello", b"trio"], dtype=object), binary_data=True)
result = client.infer("identity", [words], outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=True)])
out["bytes"] = [w.decode() for w in result.as_numpy("OUTPUT0").tolist()]
print(json.dumps(out))
"""


async def test_tritonclient_accepts_the_fake(nursery: trio.Nursery) -> None:
    pytest.importorskip("tritonclient.http")
    server = await fake_server(nursery)
    address = server.url.removeprefix("http://")
    done = await trio.run_process(
        [sys.executable, "-c", TRITON_SCRIPT, address],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == {
        "live": True,
        "ready": True,
        "add_binary_False": [11.0, 22.0, 33.0],
        "add_binary_True": [11.0, 22.0, 33.0],
        "bytes": ["hello", "trio"],
    }


# --- wrong-shaped answers and bad arguments are typed errors (issue #10, defect 12) -----------


def output(**fields: Any) -> dict[str, Any]:
    return {"name": "o", "shape": [2], "datatype": "INT32", "data": [1, 2], **fields}


def binary(size: Any, **fields: Any) -> dict[str, Any]:
    entry = {"name": "o", "shape": [2], "datatype": "INT32", **fields}
    entry.setdefault("parameters", {"binary_data_size": size})
    return entry


# (the JSON header, the binary part, what the error must name)
WRONG_RESPONSES: list[tuple[Any, bytes, str]] = [
    ({"outputs": 5}, b"", "outputs"),
    ({"outputs": {"o": {}}}, b"", "outputs"),
    ({"outputs": [5]}, b"", "outputs[0]"),
    ({"outputs": [{"shape": [1], "datatype": "INT32", "data": [1]}]}, b"", "name"),
    ({"outputs": [output(name=5)]}, b"", "name"),
    ({"outputs": [{"name": "o", "datatype": "INT32", "data": [1]}]}, b"", "shape"),
    ({"outputs": [{"name": "o", "shape": [1], "data": [1]}]}, b"", "datatype"),
    ({"outputs": [output(datatype="INT3")]}, b"", "datatype"),
    ({"outputs": [output(datatype=["INT32"])]}, b"", "datatype"),
    ({"outputs": [output(shape=5)]}, b"", "shape"),
    ({"outputs": [output(shape=[-2])]}, b"", "shape"),
    ({"outputs": [output(shape=["2"])]}, b"", "shape"),
    ({"outputs": [output(shape=[2.0])]}, b"", "shape"),
    ({"outputs": [output(shape=[True, True])]}, b"", "shape"),
    ({"outputs": [output(shape=[0, 2**63], data=[])]}, b"", "shape"),
    ({"outputs": [output(data=[1, 2, 3])]}, b"", "data"),
    ({"outputs": [output(data=5)]}, b"", "data"),
    ({"outputs": [output(data=["a", "b"])]}, b"", "data"),
    ({"outputs": [output(data=[1.5, 2])]}, b"", "data"),
    ({"outputs": [output(data=[True, 2])]}, b"", "data"),
    ({"outputs": [output(data=[2**31, 2])]}, b"", "data"),
    ({"outputs": [output(datatype="FP32", data=["1", 2.0])]}, b"", "data"),
    ({"outputs": [output(datatype="BOOL", data=[1, 0])]}, b"", "data"),
    ({"outputs": [output(datatype="BYTES", data=[1, 2])]}, b"", "data"),
    ({"outputs": [output(parameters=5)]}, b"", "parameters"),
    ({"outputs": [binary(8)]}, b"\0" * 7, "past the body's end"),
    ({"outputs": [binary(4)]}, b"\0" * 4, "binary_data_size"),  # 2 x INT32 is 8 bytes
    ({"outputs": [binary(12)]}, b"\0" * 12, "binary_data_size"),
    ({"outputs": [binary(-8)]}, b"\0" * 8, "binary_data_size"),
    ({"outputs": [binary(8.0)]}, b"\0" * 8, "binary_data_size"),
    ({"outputs": [binary("8")]}, b"\0" * 8, "binary_data_size"),
    ({"outputs": [binary(True)]}, b"\0" * 8, "binary_data_size"),
    ({"outputs": [binary(8, parameters=[1])]}, b"\0" * 8, "parameters"),
    ({"outputs": [binary(8, shape=[2**62, 2**62])]}, b"\0" * 8, "binary_data_size"),
    ({"outputs": [binary(8, datatype="BYTES")]}, b"\5\0\0\0abcd", "BYTES"),  # runs past
    ({"outputs": [binary(5, datatype="BYTES")]}, b"\1\0\0\0a", "BYTES"),  # 1 item of 2
    ({"outputs": [binary(10, datatype="BYTES")]}, b"\1\0\0\0a\0\0\0\0z", "BYTES"),  # a byte left
    ({"outputs": [binary(8)]}, b"\0" * 9, "after the last binary output"),
    ({"outputs": [], "model_name": 5}, b"", "model_name"),
    ({"outputs": [], "model_version": ["1"]}, b"", "model_version"),
    ({"outputs": [], "id": 5}, b"", "id"),
    ({"outputs": [], "parameters": 5}, b"", "parameters"),
]


@pytest.mark.parametrize(("header", "blob", "field"), WRONG_RESPONSES)
def test_a_wrong_shaped_infer_response_is_a_kserve_error(
    header: Any, blob: bytes, field: str
) -> None:
    encoded = json.dumps(header).encode()
    with pytest.raises(KServeError) as info:
        decode_infer_response(encoded + blob, len(encoded) if blob else None, 200)
    assert field in str(info.value)
    assert info.value.status == 200


@pytest.mark.parametrize("length", [-1, 10_000, None])
def test_a_header_length_outside_the_body_is_a_kserve_error(length: int | None) -> None:
    encoded = json.dumps({"outputs": []}).encode()
    if length is None:  # a header length that cuts the JSON short
        length = len(encoded) - 1
    with pytest.raises(KServeError, match="header"):
        decode_infer_response(encoded + b"\0\0", length)


@pytest.mark.parametrize("value", ["abc", "+12", "1_2", "-3", "99999999999999999999"])
async def test_a_bad_header_length_header_is_a_kserve_error(
    nursery: trio.Nursery, value: str
) -> None:
    server: TestServer = await nursery.start(
        serve, reply(b'{"outputs": []}', headers=[("inference-header-content-length", value)])
    )
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(KServeError, match="Inference-Header-Content-Length"):
            await client.kserve.infer("m", [Tensor("i", [1], "INT32", [1])])


def test_a_well_formed_response_still_decodes() -> None:
    # The checks above must not refuse what the protocol allows: nested data, a missing
    # ``data`` for an empty tensor, ints for floats, and binary outputs next to JSON ones.
    header = {
        "model_name": "m",
        "model_version": "1",
        "id": "r",
        "parameters": {"x": 1},
        "outputs": [
            output(shape=[2, 1], data=[[1], [2]]),
            {"name": "e", "shape": [0], "datatype": "FP32"},
            output(name="f", datatype="FP64", data=[1, 2.5]),
            binary(8, name="b"),
            binary(9, name="s", datatype="BYTES"),
        ],
    }
    encoded = json.dumps(header).encode()
    blob = b"\1\0\0\0\2\0\0\0" + b"\1\0\0\0a\0\0\0\0"
    result = decode_infer_response(encoded + blob, len(encoded))
    assert [t.data for t in result.outputs] == [(1, 2), (), (1, 2.5), (1, 2), (b"a", b"")]


BAD_INFER_CALLS: list[tuple[dict[str, Any], str]] = [
    ({"model": 5}, "model"),
    ({"model": None}, "model"),
    ({"model": ""}, "model"),
    ({"inputs": 5}, "inputs"),
    ({"inputs": [5]}, "inputs[0]"),
    ({"inputs": Tensor("i", [1], "INT32", [1])}, "inputs"),
    ({"outputs": "OUTPUT0"}, "outputs"),
    ({"outputs": [5]}, "outputs[0]"),
    ({"version": ["1"]}, "version"),
    ({"parameters": 5}, "parameters"),
    ({"request_id": 5}, "request_id"),
    ({"binary_inputs": "yes"}, "binary_inputs"),
    ({"binary_outputs": 1}, "binary_outputs"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD_INFER_CALLS)
async def test_bad_infer_arguments_are_invalid_requests(
    nursery: trio.Nursery, kwargs: dict[str, Any], argument: str
) -> None:
    server = await fake_server(nursery)
    call = {"model": "identity", "inputs": [Tensor("INPUT0", [1], "INT32", [1])], **kwargs}
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest) as info:
            await client.kserve.infer(**call)
    assert argument in str(info.value)
    assert server.requests == []


async def test_unknown_options_and_bad_model_names_are_invalid_requests(
    nursery: trio.Nursery,
) -> None:
    server = await fake_server(nursery)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match="foo"):
            await client.kserve.server_live(foo=1)
        with pytest.raises(trio_infer.InvalidRequest, match="model"):
            await client.kserve.model_ready(5)  # type: ignore[arg-type]
        with pytest.raises(trio_infer.InvalidRequest, match="version"):
            await client.kserve.model_metadata("add", version=1.5)  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((5, [1], "INT32", [1]), "name"),
        (("x", 5, "INT32", [1]), "shape"),
        (("x", ["1"], "INT32", [1]), "shape"),
        (("x", [1], None, [1]), "datatype"),
        (("x", [1], ["INT32"], [1]), "datatype"),
        (("x", [1], "INT32", ["a"]), "data"),
        (("x", [1], "INT32", [1.5]), "data"),
        (("x", [1], "INT32", [True]), "data"),
        (("x", [1], "INT8", [300]), "data"),
        (("x", [1], "UINT8", [-1]), "data"),
        (("x", [1], "FP32", ["1.0"]), "data"),
        (("x", [1], "FP16", [1e10]), "data"),
        (("x", [1], "BOOL", [1]), "data"),
        (("x", [1], "BYTES", [1]), "data"),
        (("x", [1], "INT32", [None]), "data"),
    ],
)
def test_a_bad_tensor_is_a_config_error(args: tuple[Any, ...], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Tensor(*args)


# --- what a request carries, and what an answer cannot (attack-11 fixes) ----------------------


@pytest.mark.parametrize(
    "name", ["Inference-Header-Content-Length", "INFERENCE-header-content-length"]
)
async def test_a_user_inference_header_length_is_refused(nursery: trio.Nursery, name: str) -> None:
    server = await fake_server(nursery)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(trio_infer.InvalidRequest, match=name):
            await client.kserve.infer(
                "identity",
                [Tensor("INPUT0", [1], "FP32", [1.0])],
                binary_inputs=True,
                headers={name: "2"},
            )
    assert server.requests == []


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("name", ["content-type", "CONTENT-TYPE", "Content-Type"])
async def test_a_user_content_type_is_the_only_one(
    nursery: trio.Nursery, name: str, binary: bool
) -> None:
    server = await fake_server(nursery)
    async with trio_infer.Client(server.url) as client:
        result = await client.kserve.infer(
            "identity",
            [Tensor("INPUT0", [1], "FP32", [1.0])],
            binary_inputs=binary,
            headers={name: "application/vnd.mine"},
        )
        assert result.output("OUTPUT0").data == (1.0,)
        await client.kserve.infer(
            "identity", [Tensor("INPUT0", [1], "FP32", [1.0])], binary_inputs=binary
        )
    mine, default = server.requests
    assert [v for n, v in mine.headers if n == "content-type"] == ["application/vnd.mine"]
    expected = "application/octet-stream" if binary else "application/json"
    assert [v for n, v in default.headers if n == "content-type"] == [expected]


@pytest.mark.parametrize("binary", [False, True])
def test_a_tensor_parameter_binary_data_size_is_refused(binary: bool) -> None:
    tensor = Tensor("x", [1], "FP32", [1.0], {"binary_data_size": 4})
    with pytest.raises(
        trio_infer.InvalidRequest, match="tensor 'x': parameters\\['binary_data_size'\\]"
    ):
        encode_infer_request([tensor], binary_inputs=binary)


@pytest.mark.parametrize(
    ("parameters", "place"),
    [
        ({"p": math.inf}, "['p'] is inf"),
        ({"a": 1.5, "b": [1, {"c": -math.inf}]}, "['b'][1]['c'] is -inf"),
        ({"n": (2.0, math.nan)}, "['n'][1] is nan"),
    ],
)
def test_non_finite_parameters_are_named_by_their_place(
    parameters: dict[str, Any], place: str
) -> None:
    # msgspec would write them as null: the request would say something else than was asked.
    tensor = Tensor("x", [1], "FP32", [1.0], parameters)
    with pytest.raises(trio_infer.InvalidRequest) as info:
        encode_infer_request([tensor], binary_inputs=True)
    assert str(info.value).startswith(f"tensor 'x': parameters{place}")
    with pytest.raises(trio_infer.InvalidRequest) as info:
        encode_infer_request([Tensor("x", [1], "FP32", [1.0])], parameters=parameters)
    assert str(info.value).startswith(f"parameters{place}")
    # Finite numbers pass; a container that holds itself is msgspec's error (a RecursionError,
    # now an InvalidRequest too).
    body, _ = encode_infer_request([Tensor("x", [1], "FP32", [1.0], {"p": 1e308})])
    assert json.loads(body)["inputs"][0]["parameters"] == {"p": 1e308}
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(trio_infer.InvalidRequest, match="cannot be encoded"):
        encode_infer_request([Tensor("x", [1], "FP32", [1.0])], parameters={"l": looped})


async def test_a_binary_output_goes_on_as_the_next_input(nursery: trio.Nursery) -> None:
    # Chaining models: an output, renamed, is the next call's input, in JSON or binary.
    import attrs

    server = await fake_server(nursery)
    first = Tensor("INPUT0", [2], "FP32", [1.5, 2.5], {"kept": "yes"})
    async with trio_infer.Client(server.url) as client:
        result = await client.kserve.infer("identity", [first], binary_outputs=True)
        out = result.output("OUTPUT0")
        assert out.parameters == {}
        for binary in (False, True):
            again = await client.kserve.infer(
                "identity", [attrs.evolve(out, name="INPUT0")], binary_inputs=binary
            )
            assert again.output("OUTPUT0").data == (1.5, 2.5)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            b'{"outputs": [{"name": "o", "shape": [2], "datatype": "FP64", "data": [1.0, 1e400]}]}',
            "output 'o' (outputs[0]) holds the number '1e400'",
        ),
        (
            b'{"outputs": [{"name": "o", "shape": [1], "datatype": "FP64", "data": [NaN]}], '
            b'"parameters": {"x": [-2E+999]}}',
            "the answer holds the number '-2E+999'",
        ),
    ],
)
def test_a_number_beyond_any_float_is_a_kserve_error(body: bytes, where: str) -> None:
    # msgspec refuses these; json.loads (the fallback for NaN and Infinity) would give inf.
    with pytest.raises(KServeError, match="beyond the range of any float") as info:
        decode_infer_response(body, None)
    assert where in str(info.value)
    fine = b'{"outputs": [{"name": "o", "shape": [2], "datatype": "FP64", "data": [NaN, 1.7e308]}]}'
    assert decode_infer_response(fine, None).output("o").data[1] == 1.7e308


def test_a_surrogate_escape_in_a_bytes_answer_asks_for_binary_outputs() -> None:
    # "\\ud800" is JSON text without bytes behind it: as for raw bytes that are not UTF-8.
    body = b'{"outputs": [{"name": "o", "shape": [1], "datatype": "BYTES", "data": ["\\ud800"]}]}'
    with pytest.raises(
        KServeError, match=r"output 'o' \(outputs\[0\]\): data\[0\].*binary_outputs=True"
    ):
        decode_infer_response(body, None)
