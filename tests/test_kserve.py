"""KServe v2 / Triton REST: tensors, the binary extension both ways, the fake server, and the
fake judged by the official tritonclient."""

from __future__ import annotations

import json
import math
import sys

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import trio_infer
from trio_infer import ConfigError, KServeError, Tensor
from trio_infer._kserve import decode_infer_response, encode_infer_request
from trio_infer.testing import FakeKServe, TestServer, serve

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


_VALUES = {
    "BOOL": st.booleans(),
    "INT8": st.integers(-(2**7), 2**7 - 1),
    "INT16": st.integers(-(2**15), 2**15 - 1),
    "INT32": st.integers(-(2**31), 2**31 - 1),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "UINT8": st.integers(0, 2**8 - 1),
    "UINT16": st.integers(0, 2**16 - 1),
    "UINT32": st.integers(0, 2**32 - 1),
    "UINT64": st.integers(0, 2**64 - 1),
    "FP16": st.sampled_from([0.0, 1.0, -2.5, 65504.0, 2.0**-14]),
    "FP32": st.floats(width=32, allow_nan=False),
    "FP64": st.floats(allow_nan=False),
    "BYTES": st.binary(max_size=20),
}


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    datatype = draw(st.sampled_from(sorted(_VALUES)))
    data = draw(st.lists(_VALUES[datatype], max_size=12))
    return Tensor("t", [len(data)], datatype, data)


@given(tensors())
def test_binary_encoding_round_trips(tensor: Tensor) -> None:
    back = Tensor.from_bytes("t", tensor.shape, tensor.datatype, tensor.to_bytes())
    assert back == tensor


@given(st.lists(tensors(), min_size=1, max_size=3), st.booleans())
def test_requests_decode_as_the_server_would(inputs: list[Tensor], binary: bool) -> None:
    # A request is decoded the way a response is (the same layout), so the fake's parser and
    # the client's decoder check each other.
    inputs = [Tensor(f"in{i}", t.shape, t.datatype, t.data) for i, t in enumerate(inputs)]
    finite = all(math.isfinite(x) for t in inputs if t.datatype.startswith("FP") for x in t.data)
    if not binary and not finite:
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
        if binary or sent.datatype != "BYTES":  # JSON carries BYTES as text, so only UTF-8 survives
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
    assert ("binary_data_size" in out.parameters) == binary_outputs
    sent = server.requests[0]
    assert (sent.header("inference-header-content-length") is not None) == binary_inputs


@pytest.mark.parametrize("datatype", [*NUMERIC, "BOOL", "BYTES"])
async def test_identity_every_datatype(nursery: trio.Nursery, datatype: str) -> None:
    server = await fake_server(nursery)
    data = {"BOOL": [True, False], "BYTES": [b"ab", b""], "FP16": [0.5, -2.0]}.get(datatype, [1, 2])
    tensor = Tensor("INPUT0", [2], datatype, data)
    async with trio_infer.Client(server.url) as client:
        for binary in (False, True):
            result = await client.kserve.infer(
                "identity", [tensor], ["OUTPUT0"], binary_inputs=binary, binary_outputs=binary
            )
            assert result.output("OUTPUT0").data == tensor.data


async def test_server_errors_are_typed(nursery: trio.Nursery) -> None:
    server = await fake_server(nursery)
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(KServeError, match="expected inputs INPUT0 and INPUT1") as info:
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
