"""FakeKServe behaves as Triton does where it matters to a client (issue #11, defect 4).

It echoes BYTES byte for byte, writes BYTES that are not UTF-8 raw into JSON as Triton does,
and refuses what Triton refuses with Triton's status and ``{"error": ...}`` text (Triton 2.51,
r24.10: server ``src/http_server.cc`` for the JSON data, core ``src/infer_request.cc`` and
``src/model.cc`` for the checks against the model). The client turns the raw bytes into a
typed error that names the output, the element and the fix.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
import trio

import trio_infer
from trio_infer import KServeError, Tensor
from trio_infer.testing import FakeKServe, TestServer, reply, serve

LIMIT = 20

ODD_WORDS = [b"", b"\x00", b"\xff\xfe", bytes(range(256)), "h\u00e9".encode(), b'"\\\n']


async def start(nursery: trio.Nursery) -> TestServer:
    server: TestServer = await nursery.start(serve, FakeKServe())
    return server


async def post(server: TestServer, model: str, body: Any, **headers: str) -> trio_infer.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with trio.fail_after(LIMIT):
        async with trio_infer.Client(server.url) as client:
            return await client.request(
                "POST", f"/v2/models/{model}/infer", content=content, headers=headers
            )


# --- BYTES, faithfully -------------------------------------------------------------------


async def test_bytes_binary_in_binary_out_byte_for_byte(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    words = Tensor("INPUT0", [len(ODD_WORDS)], "BYTES", ODD_WORDS)
    async with trio_infer.Client(server.url) as client:
        result = await client.kserve.infer(
            "identity", [words], binary_inputs=True, binary_outputs=True
        )
    out = result.output("OUTPUT0")
    assert out.data == tuple(ODD_WORDS)
    assert out.to_bytes() == words.to_bytes()


async def test_bytes_that_are_not_utf8_are_written_raw_into_json(nursery: trio.Nursery) -> None:
    # Triton writes a BYTES output into JSON with rapidjson's writer, which copies the bytes
    # without validating them (http_server.cc WriteDataToJson -> AppendStringRef; triton_json.h
    # writes without kWriteValidateEncodingFlag): the answer is not valid UTF-8.
    server = await start(nursery)
    words = Tensor("INPUT0", [2], "BYTES", [b"ok", b"\xff\xfe"])
    body, length = trio_infer._kserve.encode_infer_request([words], binary_inputs=True)
    answer = await post(
        server, "identity", body, **{"Inference-Header-Content-Length": str(length)}
    )
    assert answer.status == 200
    assert b'"data":["ok","\xff\xfe"]' in answer.content.replace(b" ", b"")
    with pytest.raises(UnicodeDecodeError):
        answer.content.decode()


async def test_the_client_refuses_them_naming_the_output_and_the_fix(
    nursery: trio.Nursery,
) -> None:
    server = await start(nursery)
    words = Tensor("INPUT0", [3], "BYTES", [b"ok", "h\u00e9", b"\xff\xfe"])
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(KServeError) as info:
            await client.kserve.infer("identity", [words], binary_inputs=True)
        message = str(info.value)
        for needle in ("'OUTPUT0'", "data[2]", "b'\\xff\\xfe'", "binary_outputs=True"):
            assert needle in message, message
        # UTF-8 text comes back as it went, through JSON both ways.
        text = Tensor("INPUT0", [2], "BYTES", [b"ok", "h\u00e9"])
        result = await client.kserve.infer("identity", [text])
        assert result.output("OUTPUT0").data == (b"ok", "h\u00e9".encode())


# --- what Triton refuses, the fake refuses: status and text ---------------------------------


def fp32(
    name: str, data: list[Any], shape: list[int] | None = None, datatype: str = "FP32"
) -> dict[str, Any]:
    return {
        "name": name,
        "shape": [len(data)] if shape is None else shape,
        "datatype": datatype,
        "data": data,
    }


GOOD_B = fp32("INPUT1", [1.0, 2.0])

# (model, request body, status, Triton's text, the fake's detail)
REFUSED: list[tuple[str, dict[str, Any], int, str, str]] = [
    (
        "identity",
        {"inputs": [fp32("INPUT0", ["a", 5], datatype="BYTES")]},
        500,
        "Unable to parse JSON bytes array: attempt to access JSON non-string as string",
        "inputs[0].data[1]",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", [1.0, 2.0, 3.0], shape=[2]), GOOD_B]},
        500,
        "Unable to parse 'data': Shape does not match true shape of 'data' field",
        "inputs[0]",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", [1.0], shape=[2]), GOOD_B]},
        500,
        "Unable to parse 'data': Shape does not match true shape of 'data' field",
        "inputs[0]",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", ["1.0", 2.0]), GOOD_B]},
        500,
        "Unable to parse 'data': attempt to access JSON non-number as double",
        "inputs[0].data[0]",
    ),
    (
        "identity",
        {"inputs": [fp32("INPUT0", [1, 0], datatype="BOOL")]},
        500,
        "Unable to parse 'data': attempt to access JSON non-boolean as boolean",
        "inputs[0].data[0]",
    ),
    (
        "identity",
        {"inputs": [fp32("INPUT0", [1.5], datatype="INT32")]},
        500,
        "Unable to parse 'data': attempt to access JSON non-signed-integer as signed-integer",
        "inputs[0].data[0]",
    ),
    (
        "identity",
        {"inputs": [fp32("INPUT0", [-1], datatype="UINT8")]},
        500,
        "Unable to parse 'data': attempt to access JSON non-unsigned-integer as unsigned-integer",
        "inputs[0].data[0]",
    ),
    (
        "identity",
        {"inputs": [fp32("INPUT0", [1.0], datatype="FP16")]},
        400,
        "receiving FP16 data via JSON is not supported. Please use the binary data format for "
        "input INPUT0",
        "",
    ),
    (
        "add",
        {
            "inputs": [
                fp32("INPUT0", [1, 2], datatype="INT32"),
                fp32("INPUT1", [1, 2], datatype="INT32"),
            ]
        },
        400,
        "[request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model "
        "'add' expects 'FP32'",
        "",
    ),
    (
        "add",
        {"id": "r7", "inputs": [fp32("INPUT0", [1.0, 2.0]), fp32("INPUT1", [1], datatype="FP64")]},
        400,
        "[request id: r7] inference input 'INPUT1' data-type is 'FP64', but model 'add' "
        "expects 'FP32'",
        "",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", [1.0, 2.0]), fp32("BOGUS", [1.0, 2.0])]},
        400,
        "unexpected inference input 'BOGUS' for model 'add'",
        "",
    ),
    (
        # Triton lists the inputs in its hash map's order (captured: 'BOGUS','INPUT1',
        # 'INPUT0'); the fake in the request's. "missing required input(s) ]" is Triton's.
        "add",
        {"inputs": [fp32("INPUT0", [1.0, 2.0]), GOOD_B, fp32("BOGUS", [1.0, 2.0])]},
        400,
        "[request id: <id_unknown>] expected 2 inputs but got 3 inputs for model 'add'. Got "
        "input(s) ['INPUT0','INPUT1','BOGUS'], but missing required input(s) ]. Please provide "
        "all required input(s).",
        "",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", [1.0, 2.0])]},
        400,
        "[request id: <id_unknown>] expected 2 inputs but got 1 inputs for model 'add'. Got "
        "input(s) ['INPUT0'], but missing required input(s) ['INPUT1']. Please provide all "
        "required input(s).",
        "",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", [1.0, 2.0]), fp32("INPUT0", [1.0, 2.0])]},
        400,
        "input 'INPUT0' already exists in request",
        "",
    ),
    (
        "add",
        {"inputs": [fp32("INPUT0", [1.0, 2.0]), GOOD_B], "outputs": [{"name": "OUT"}]},
        400,
        "unexpected inference output 'OUT' for model 'add'",
        "",
    ),
    (
        "identity",
        {
            "inputs": [fp32("INPUT0", [1.0], datatype="FP64")],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": False}}],
        },
        200,
        "",
        "",
    ),
]


@pytest.mark.parametrize(("model", "body", "status", "triton", "detail"), REFUSED)
async def test_the_fake_refuses_what_triton_refuses(
    nursery: trio.Nursery, model: str, body: dict[str, Any], status: int, triton: str, detail: str
) -> None:
    server = await start(nursery)
    answer = await post(server, model, body)
    assert answer.status == status, answer.content
    if status == 200:
        return
    assert answer.headers.get("content-type") == "application/json"
    message = answer.json()["error"]
    assert message.startswith(triton), message
    assert detail in message, message
    # The typed error the client raises carries the same text and status.
    tensors = [Tensor.from_json(i) for i in body["inputs"]] if status == 400 else []
    if tensors:
        async with trio_infer.Client(server.url) as client:
            with pytest.raises(KServeError) as info:
                await client.kserve.infer(
                    model,
                    tensors,
                    [o["name"] for o in body.get("outputs", [])] or None,
                    request_id=body.get("id"),
                    binary_inputs=any(t.datatype == "FP16" for t in tensors),
                )
            if "FP16" not in triton:
                assert (info.value.status, info.value.message) == (status, message)


@pytest.mark.parametrize(("dim", "status"), [(2**63 - 1, 200), (2**63, 400), (2**70, 400)])
async def test_shape_dimensions_are_int64_as_in_triton(
    nursery: trio.Nursery, dim: int, status: int
) -> None:
    # Triton reads shapes as int64 (measured on 2.51: [0, 2**63] comes back in its error as
    # [0,-9223372036854775808], and a dimension of 2**64 or more is a 500); the fake refuses
    # a dimension of 2**63 or more with a 400 naming the field.
    server = await start(nursery)
    answer = await post(server, "identity", {"inputs": [fp32("INPUT0", [], shape=[0, dim])]})
    assert answer.status == status, answer.content
    if status == 400:
        assert "inputs[0].shape" in answer.json()["error"]


async def test_a_binary_input_of_the_wrong_size_is_refused_as_triton_does(
    nursery: trio.Nursery,
) -> None:
    server = await start(nursery)
    raw = struct.pack("<3f", 1, 2, 3)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 12},
                },
                fp32("INPUT1", [1.0, 2.0]),
            ]
        }
    ).encode()
    answer = await post(
        server, "add", header + raw, **{"Inference-Header-Content-Length": str(len(header))}
    )
    assert answer.status == 400
    assert answer.json()["error"].startswith(
        "[request id: <id_unknown>] input byte size mismatch for input 'INPUT0' for model "
        "'add'. Expected 8, got 12"
    )


async def test_binary_data_past_the_end_is_refused_as_triton_does(
    nursery: trio.Nursery,
) -> None:
    # Captured from Triton 2.51: INPUT0 claims all 16 bytes, so INPUT1's 8 are missing.
    server = await start(nursery)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": size},
                }
                for name, size in (("INPUT0", 16), ("INPUT1", 8))
            ]
        }
    ).encode()
    answer = await post(
        server, "add", header + bytes(16), **{"Inference-Header-Content-Length": str(len(header))}
    )
    assert answer.status == 400
    assert answer.json()["error"].startswith(
        "unexpected size for input 'INPUT1', expecting 8 additional bytes for model 'add'"
    )


async def test_fp16_is_binary_only_as_in_triton(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    half = Tensor("INPUT0", [2], "FP16", [0.5, -2.0])
    async with trio_infer.Client(server.url) as client:
        result = await client.kserve.infer(
            "identity", [half], binary_inputs=True, binary_outputs=True
        )
        out = result.output("OUTPUT0")
        assert (out.shape, out.datatype, out.to_bytes()) == (half.shape, "FP16", half.to_bytes())
        with pytest.raises(
            KServeError, match="sending FP16 data via JSON is not supported"
        ) as info:
            await client.kserve.infer("identity", [half], binary_inputs=True)
        assert info.value.status == 400


# --- the fake is not the bottleneck ----------------------------------------------------------


async def test_add_of_large_binary_tensors(nursery: trio.Nursery) -> None:
    np = pytest.importorskip("numpy")
    server = await start(nursery)
    a = np.arange(300_000, dtype=np.float32)
    b = np.full(300_000, 0.5, dtype=np.float32)
    async with trio_infer.Client(server.url) as client:
        result = await client.kserve.infer(
            "add",
            [Tensor.from_numpy("INPUT0", a), Tensor.from_numpy("INPUT1", b)],
            binary_inputs=True,
            binary_outputs=True,
        )
    assert np.array_equal(result.output("OUTPUT0").as_numpy(), a + b)


# --- whatever the answer's bytes, the error is typed ------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"error": "\xff\xfe"}', 500),  # msgspec raises UnicodeDecodeError on these
        (DEEP, 500),  # ... and RecursionError on these
        (DEEP, 200),
        (b'{"outputs": [], "model_name": "\xff"}', 200),
    ],
)
async def test_answers_msgspec_cannot_read_are_kserve_errors(
    nursery: trio.Nursery, body: bytes, status: int
) -> None:
    server: TestServer = await nursery.start(serve, reply(body, status=status))
    async with trio_infer.Client(server.url) as client:
        with pytest.raises(KServeError) as info:
            await client.kserve.infer("m", [Tensor("i", [1], "INT32", [1])])
        assert info.value.status == status
        with pytest.raises(KServeError):
            await client.kserve.model_metadata("m")
