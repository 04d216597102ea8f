"""The test servers survive bad requests (issue #10, defect 13).

Other people's test suites run on ``trio_infer.testing``: a bad request must get a 4xx naming
what was wrong, and the server must keep serving everyone else. A bug in a handler must not
take the server down either: the server answers 500 (or drops that one connection if the
response had started), logs it, counts it, and raises it when the server stops (unless told
not to).

These tests talk to the servers with a small h11 client on plain trio streams, not with
``trio_infer.Client``, so they hold whatever the client does. Each bad request is followed by
a good one, on the same connection when the answer kept it alive and on a new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_infer.testing import (
    FakeKServe,
    FakeOpenAI,
    Handler,
    Responder,
    ServerRequest,
    TestServer,
    default_app,
    open_server,
    open_worker_server,
    reply,
    serve,
)

#: Seconds any test's I/O may take: a bound against hangs, never an assertion.
LIMIT = 20

# --- a raw HTTP/1.1 client ----------------------------------------------------------------


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def message(self) -> str:
        """The error message, in either error shape the apps use (OpenAI's or Triton's)."""
        error = self.json()["error"]
        message = error["message"] if isinstance(error, dict) else error
        assert isinstance(message, str)
        return message


class RawClient:
    """One client connection: h11 over any trio stream (a socket or a memory stream)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._conn = h11.Connection(h11.CLIENT)

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await trio.aclose_forcefully(self._stream)

    @property
    def kept_alive(self) -> bool:
        """Whether the last answer left the connection usable for another request."""
        return self._conn.our_state is h11.IDLE

    async def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        conn = self._conn
        items = [("host", "test"), ("content-length", str(len(body))), *headers]
        data = conn.send(h11.Request(method=method, target=target, headers=items)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self._stream.send_all(data)
        status, found, parts = 0, {}, []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await self._stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                status = event.status_code
                found = {n.decode(): v.decode("latin-1") for n, v in event.headers}
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("the server closed the connection without an answer")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        return Answer(status, found, b"".join(parts))


@asynccontextmanager
async def connect(server: TestServer) -> AsyncIterator[RawClient]:
    async with connect_to(server.host, server.port) as client:
        yield client


@asynccontextmanager
async def connect_to(host: str, port: int) -> AsyncIterator[RawClient]:
    stream = await trio.open_tcp_stream(host, port)
    async with RawClient(stream) as client:
        yield client


async def raw_exchange(server: TestServer, data: bytes) -> bytes:
    """Send ``data`` as is and return everything the server writes until it closes."""
    received = []
    async with await trio.open_tcp_stream(server.host, server.port) as stream:
        await stream.send_all(data)
        while chunk := await stream.receive_some(65536):
            received.append(chunk)
    return b"".join(received)


# The good request each app must still answer after a bad one, and how to check it.
GOOD_JSON = ("GET", "/json", b"")
GOOD_COMPLETION = ("POST", "/v1/completions", b'{"model": "m", "prompt": "a b", "max_tokens": 2}')
GOOD_INFER = (
    "POST",
    "/v2/models/add/infer",
    json.dumps(
        {
            "inputs": [
                {"name": "INPUT0", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                {"name": "INPUT1", "shape": [2], "datatype": "FP32", "data": [3, 4]},
            ]
        }
    ).encode(),
)


def check_good(request: tuple[str, str, bytes], answer: Answer) -> None:
    assert answer.status == 200, answer
    if request is GOOD_COMPLETION:
        assert answer.json()["choices"][0]["text"] == "tok0 tok1 "
    elif request is GOOD_INFER:
        assert answer.json()["outputs"][0]["data"] == [4.0, 6.0]
    else:
        assert answer.json()["ok"] is True


async def bad_then_good(
    server: TestServer,
    method: str,
    target: str,
    body: bytes,
    good: tuple[str, str, bytes],
    headers: Sequence[tuple[str, str]] = (),
) -> Answer:
    """Send the bad request, then the good one on the same connection (if the server kept it
    open) and on a fresh connection; return the bad request's answer."""
    with trio.fail_after(LIMIT):
        async with connect(server) as client:
            bad = await client.request(method, target, body=body, headers=headers)
            if client.kept_alive:
                check_good(good, await client.request(good[0], good[1], body=good[2]))
        async with connect(server) as client:
            check_good(good, await client.request(good[0], good[1], body=good[2]))
    assert server.handler_errors == 0
    return bad


# --- default_app --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "needles"),
    [
        ("/status/abc", ["'abc'", "200 to 999"]),
        ("/status/", ["''", "200 to 999"]),
        ("/status/99", ["'99'", "200 to 999"]),
        ("/status/1000", ["'1000'", "200 to 999"]),
        ("/status/-200", ["'-200'"]),
        ("/delay?s=-1", ["s='-1'", "0 to 3600"]),
        ("/delay?s=abc", ["s='abc'"]),
        ("/delay?s=nan", ["s='nan'"]),
        ("/delay?s=inf", ["s='inf'"]),
        ("/delay?s=1e9", ["s='1e9'", "0 to 3600"]),
        ("/sse?n=abc", ["n='abc'", "0 to 1000000"]),
        ("/sse?n=-1", ["n='-1'"]),
        ("/sse?n=1000000000", ["n='1000000000'", "0 to 1000000"]),
        ("/sse?n=1.5", ["n='1.5'"]),
        ("/sse?n=%D9%A3", ["n='\u0663'"]),  # an Arabic-Indic digit: int() takes it, HTTP does not
        ("/sse?n=2&gap=-1", ["gap='-1'", "0 to 3600"]),
        ("/sse?n=2&gap=nan", ["gap='nan'"]),
        ("/sse?n=2&gap=1e300", ["gap='1e300'"]),
    ],
)
async def test_default_app_answers_bad_parameters_with_400(
    nursery: trio.Nursery, target: str, needles: list[str]
) -> None:
    server: TestServer = await nursery.start(serve, default_app)
    answer = await bad_then_good(server, "GET", target, b"", GOOD_JSON)
    assert answer.status == 400, answer
    message = answer.message()
    for needle in needles:
        assert needle in message, message


async def test_default_app_valid_parameters_still_work(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, default_app)
    with trio.fail_after(LIMIT):
        async with connect(server) as client:
            assert (await client.request("GET", "/status/418")).status == 418
            assert (await client.request("GET", "/status/204")).body == b""
            assert (await client.request("GET", "/delay?s=0")).json()["ok"] is True
            sse = await client.request("GET", "/sse?n=2&gap=0")
            assert sse.body.count(b"data: ") == 3  # two events and [DONE]
            assert (await client.request("GET", "/sse?n=0")).body == b"data: [DONE]\n\n"


# --- FakeOpenAI ---------------------------------------------------------------------------

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


@pytest.mark.parametrize(
    ("path", "body", "needles"),
    [
        (COMPLETIONS, b"[1, 2]", ["JSON object", "list"]),
        (COMPLETIONS, b'"hi"', ["JSON object", "str"]),
        (COMPLETIONS, b"{not json", ["not JSON"]),
        (COMPLETIONS, b"", ["not JSON"]),
        (COMPLETIONS, b'{"prompt": "a", "max_tokens": NaN}', ["NaN"]),
        (COMPLETIONS, b'{"prompt": "a", "max_tokens": "abc"}', ["max_tokens", "'abc'"]),
        (COMPLETIONS, b'{"prompt": "a", "max_tokens": -1}', ["max_tokens", "-1"]),
        (COMPLETIONS, b'{"prompt": "a", "max_tokens": 0}', ["max_tokens", ">= 1"]),
        (COMPLETIONS, b'{"prompt": "a", "max_tokens": true}', ["max_tokens", "True"]),
        (COMPLETIONS, b'{"prompt": "a", "max_tokens": 1.5}', ["max_tokens", "1.5"]),
        (COMPLETIONS, b'{"prompt": 5}', ["prompt", "5"]),
        (COMPLETIONS, b'{"prompt": {"a": [1]}}', ["prompt"]),
        (COMPLETIONS, b'{"prompt": "a", "stream": "yes"}', ["stream", "'yes'"]),
        (COMPLETIONS, b'{"prompt": "a", "stream": true, "stream_options": 5}', ["stream_options"]),
        (
            COMPLETIONS,
            b'{"prompt": "a", "stream": true, "stream_options": {"include_usage": "x"}}',
            ["include_usage", "'x'"],
        ),
        (CHAT, b'{"messages": 5}', ["messages", "5"]),
        (CHAT, b'{"messages": [1]}', ["messages[0]"]),
        (CHAT, b'{"messages": [{"role": "user", "content": {"a": 1}}]}', ["messages[0].content"]),
        (CHAT, b'{"messages": [{"role": "user", "content": [7]}]}', ["messages[0].content[0]"]),
        (CHAT, b'{"messages": [], "max_completion_tokens": "x"}', ["max_completion_tokens"]),
        (EMBEDDINGS, b'{"input": 5}', ["input", "5"]),
        (EMBEDDINGS, b'{"input": [{"a": 1}]}', ["input[0]"]),
        (EMBEDDINGS, b"[]", ["JSON object"]),
    ],
)
async def test_fake_openai_answers_bad_bodies_with_400(
    nursery: trio.Nursery, path: str, body: bytes, needles: list[str]
) -> None:
    server: TestServer = await nursery.start(serve, FakeOpenAI())
    answer = await bad_then_good(server, "POST", path, body, GOOD_COMPLETION)
    assert answer.status == 400, answer
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    for needle in needles:
        assert needle in error["message"], error


async def test_fake_openai_wrong_method_is_405(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, FakeOpenAI())
    answer = await bad_then_good(server, "GET", COMPLETIONS, b"", GOOD_COMPLETION)
    assert (answer.status, answer.headers["allow"]) == (405, "POST")
    assert "GET" in answer.message()
    answer = await bad_then_good(server, "POST", "/v1/models", b"{}", GOOD_COMPLETION)
    assert (answer.status, answer.headers["allow"]) == (405, "GET")
    answer = await bad_then_good(server, "POST", "/v1/nothing", b"{}", GOOD_COMPLETION)
    assert answer.status == 404


async def test_fake_openai_valid_edge_values_still_work(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, FakeOpenAI(output_tokens=3))
    with trio.fail_after(LIMIT):
        async with connect(server) as client:
            # null fields are absent fields; a huge max_tokens is capped by output_tokens
            body = b'{"prompt": ["a b", "c"], "max_tokens": null, "stream": null}'
            done = (await client.request("POST", COMPLETIONS, body=body)).json()
            assert (done["choices"][0]["finish_reason"], done["usage"]["prompt_tokens"]) == (
                "stop",
                3,
            )
            body = b'{"prompt": "a", "max_tokens": 99999999999999999999}'
            done = (await client.request("POST", COMPLETIONS, body=body)).json()
            assert done["usage"]["completion_tokens"] == 3
            body = b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "x y"}]}]}'
            done = (await client.request("POST", CHAT, body=body)).json()
            assert done["usage"]["prompt_tokens"] == 2
            body = b'{"input": [[1, 2, 3], "a b"]}'
            done = (await client.request("POST", EMBEDDINGS, body=body)).json()
            assert len(done["data"]) == 2


# --- FakeKServe ---------------------------------------------------------------------------


def infer_body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def fp32(name: Any = "INPUT0", data: Any = (1.0,), **fields: Any) -> dict[str, Any]:
    data = list(data) if isinstance(data, list | tuple) else data
    shape = [len(data)] if isinstance(data, list) else [1]
    entry = {"name": name, "shape": shape, "datatype": "FP32", "data": data}
    entry.update(fields)
    return entry


ADD = "/v2/models/add/infer"
IDENTITY = "/v2/models/identity/infer"


@pytest.mark.parametrize(
    ("path", "body", "headers", "needles"),
    [
        (IDENTITY, b'{"inputs": [1]}', (), ["inputs[0]", "object"]),
        (IDENTITY, b'{"inputs": 5}', (), ["inputs", "list"]),
        (IDENTITY, b"[1]", (), ["JSON object"]),
        (IDENTITY, b'"x"', (), ["JSON object"]),
        (IDENTITY, b"{", (), ["JSON"]),
        (IDENTITY, infer_body(fp32(name=5)), (), ["inputs[0].name"]),
        (IDENTITY, infer_body(fp32(shape="x")), (), ["inputs[0].shape"]),
        (IDENTITY, infer_body(fp32(shape=[-1])), (), ["inputs[0].shape"]),
        (IDENTITY, infer_body(fp32(shape=[1.0])), (), ["inputs[0].shape"]),
        (IDENTITY, infer_body(fp32(shape=[10**6, 10**6])), (), ["inputs[0]", "elements"]),
        (IDENTITY, infer_body(fp32(datatype="FP99")), (), ["inputs[0].datatype", "FP99"]),
        (IDENTITY, infer_body(fp32(datatype=5)), (), ["inputs[0].datatype"]),
        (IDENTITY, infer_body(fp32(data=[1, 2], shape=[1])), (), ["inputs[0]", "elements", 500]),
        (IDENTITY, infer_body(fp32(data=["a"])), (), ["inputs[0].data[0]", "FP32", 500]),
        (IDENTITY, infer_body(fp32(data=[1e39])), (), ["inputs[0].data[0]", "FP32"]),
        (IDENTITY, infer_body(fp32(data=[True])), (), ["inputs[0].data[0]", 500]),
        (IDENTITY, infer_body(fp32(data=5)), (), ["inputs[0].data", 500]),
        (IDENTITY, infer_body(fp32(datatype="INT8", data=[300])), (), ["INT8", "300"]),
        (IDENTITY, infer_body(fp32(datatype="UINT8", data=[-1])), (), ["UINT8", "-1", 500]),
        (IDENTITY, infer_body(fp32(datatype="BOOL", data=[1])), (), ["BOOL", 500]),
        (IDENTITY, infer_body(fp32(datatype="BYTES", data=[1])), (), ["BYTES", 500]),
        (IDENTITY, infer_body(fp32(parameters=5)), (), ["inputs[0].parameters"]),
        (
            IDENTITY,
            infer_body(fp32(parameters={"binary_data_size": "x"})),
            (),
            ["binary_data_size"],
        ),
        (
            IDENTITY,
            infer_body(fp32(parameters={"binary_data_size": -1})),
            (),
            ["binary_data_size"],
        ),
        (
            IDENTITY,
            infer_body(fp32(parameters={"binary_data_size": 100})),
            (),
            ["binary_data_size", "100"],
        ),
        (IDENTITY, infer_body(fp32()), [("inference-header-content-length", "abc")], ["'abc'"]),
        (IDENTITY, infer_body(fp32()), [("inference-header-content-length", "9999")], ["9999"]),
        (IDENTITY, infer_body(fp32(), outputs=5), (), ["outputs"]),
        (IDENTITY, infer_body(fp32(), outputs=[1]), (), ["outputs[0]"]),
        (IDENTITY, infer_body(fp32(), outputs=[{"name": 1}]), (), ["outputs[0].name"]),
        (
            IDENTITY,
            infer_body(fp32(), outputs=[{"name": "OUTPUT0", "parameters": {"binary_data": "y"}}]),
            (),
            ["binary_data"],
        ),
        (IDENTITY, infer_body(fp32(), parameters=5), (), ["parameters"]),
        (
            IDENTITY,
            infer_body(fp32(), parameters={"binary_data_output": "yes"}),
            (),
            ["binary_data_output"],
        ),
        (IDENTITY, infer_body(fp32(), id=5), (), ["id"]),
        (
            ADD,
            infer_body(
                fp32(datatype="INT8", data=[100]), fp32("INPUT1", datatype="INT8", data=[100])
            ),
            (),
            ["data-type is 'INT8'", "expects 'FP32'"],
        ),
        (
            ADD,
            infer_body(fp32(data=[3e38]), fp32("INPUT1", data=[3e38])),
            (),
            ["overflows", "FP32"],
        ),
    ],
)
async def test_fake_kserve_answers_bad_bodies_as_triton_does(
    nursery: trio.Nursery,
    path: str,
    body: bytes,
    headers: Sequence[tuple[str, str]],
    needles: list[Any],
) -> None:
    # 400, or 500 (a trailing 500 in needles) where Triton answers 500: JSON data it cannot
    # read is a TRITONSERVER_ERROR_INTERNAL there (see trio_infer/testing/_fake_kserve.py).
    status = needles[-1] if isinstance(needles[-1], int) else 400
    needles = [n for n in needles if isinstance(n, str)]
    server: TestServer = await nursery.start(serve, FakeKServe())
    answer = await bad_then_good(server, "POST", path, body, GOOD_INFER, headers)
    assert answer.status == status, answer
    message = answer.message()
    for needle in needles:
        assert needle in message, message


async def test_fake_kserve_wrong_method_is_405(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, FakeKServe())
    answer = await bad_then_good(server, "GET", ADD, b"", GOOD_INFER)
    assert (answer.status, answer.headers["allow"]) == (405, "POST")


async def test_fake_kserve_binary_inputs_still_work(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(serve, FakeKServe())
    raw = struct.pack("<2f", 1.5, 2.5)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": False}}],
        }
    ).encode()
    with trio.fail_after(LIMIT):
        async with connect(server) as client:
            answer = await client.request(
                "POST",
                IDENTITY,
                body=header + raw,
                headers=[("inference-header-content-length", str(len(header)))],
            )
    assert answer.json()["outputs"][0]["data"] == [1.5, 2.5]


# --- the server itself: handler bugs, malformed requests, limits --------------------------


def failing(*, after_start: bool = False, gate: trio.Event | None = None) -> Handler:
    """A handler with a bug on ``/boom`` (before or after it starts the response); other
    paths wait for ``gate`` (if given) and answer 200."""

    async def handler(request: ServerRequest, respond: Responder) -> None:
        if request.path == "/boom":
            if after_start:
                await respond.start(200, length=10)
                await respond.send(b"12345")
            raise ValueError("boom: a bug in the handler")
        if gate is not None:
            await gate.wait()
        await reply({"ok": True})(request, respond)

    return handler


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    return [
        r.exc_info[1]
        for r in caplog.records
        if r.name == "trio_infer.testing" and r.exc_info and r.exc_info[1] is not None
    ]


async def test_handler_error_answers_500_and_is_raised_when_the_server_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="trio_infer.testing")
    with pytest.raises(ExceptionGroup) as info:
        async with open_server(failing()) as server:
            with trio.fail_after(LIMIT):
                async with connect(server) as client:
                    answer = await client.request("GET", "/boom")
                    assert not client.kept_alive  # after a bug, the connection is not reused
                assert answer.status == 500
                assert "ValueError" in answer.message() and "boom" in answer.message()
                async with connect(server) as client:
                    check_good(GOOD_JSON, await client.request("GET", "/ok"))
            assert (server.handler_errors, len(server.handler_exceptions)) == (1, 1)
            assert [type(e) for e in logged_errors(caplog)] == [ValueError]
    assert info.group_contains(ValueError, match="boom")


async def test_handler_error_after_start_drops_only_that_connection() -> None:
    gate = trio.Event()
    async with open_server(failing(after_start=True, gate=gate), raise_handler_errors=False) as (
        server
    ):
        with trio.fail_after(LIMIT):
            async with connect(server) as waiting, trio.open_nursery() as nursery:
                answers: list[Answer] = []

                async def wait_for_answer() -> None:
                    answers.append(await waiting.request("GET", "/ok"))

                nursery.start_soon(wait_for_answer)
                await server.wait_until(lambda s: s.in_flight == 1)
                async with connect(server) as client:
                    # the response had started: the server can only cut it short
                    with pytest.raises(h11.RemoteProtocolError):
                        await client.request("GET", "/boom")
                gate.set()
            check_good(GOOD_JSON, answers[0])
            assert server.handler_errors == 1
    # raise_handler_errors=False: counted and logged, not raised at the end


async def test_acknowledged_handler_errors_are_not_raised() -> None:
    async with open_server(failing()) as server:
        with trio.fail_after(LIMIT):
            async with connect(server) as client:
                assert (await client.request("GET", "/boom")).status == 500
        assert isinstance(server.handler_exceptions[0], ValueError)
        server.handler_exceptions.clear()  # the test expected this one


async def test_cancellation_is_not_a_handler_error() -> None:
    started = trio.Event()

    async def stuck(request: ServerRequest, respond: Responder) -> None:
        started.set()
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with (
            open_server(stuck) as server,
            connect(server) as client,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(partial(client.request, "GET", "/"))
            await started.wait()
            nursery.cancel_scope.cancel()
    # leaving open_server cancelled the stuck handler: neither counted nor raised
    assert server.handler_errors == 0


async def test_keyboard_interrupt_is_not_swallowed() -> None:
    # Only Exception is caught: a BaseException from a handler still ends the server.
    async def interrupted(request: ServerRequest, respond: Responder) -> None:
        raise KeyboardInterrupt

    with pytest.raises(BaseExceptionGroup) as info:
        async with open_server(interrupted, raise_handler_errors=False) as server:
            with trio.fail_after(LIMIT):
                async with connect(server) as client:
                    with contextlib.suppress(h11.RemoteProtocolError):  # the server closed it
                        await client.request("GET", "/")
                    await trio.sleep_forever()  # until the server's end cancels the block
    assert info.group_contains(KeyboardInterrupt)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n", 400),
        (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nx-big: " + b"x" * 70_000 + b"\r\n\r\n", 431),
    ],
)
async def test_malformed_request_gets_an_error_status_and_close(
    nursery: trio.Nursery, data: bytes, status: int
) -> None:
    server: TestServer = await nursery.start(serve, default_app)
    with trio.fail_after(LIMIT):
        raw = await raw_exchange(server, data)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), raw
        assert b"connection: close" in head.lower()
        assert json.loads(body)["error"]  # names what h11 refused
        async with connect(server) as client:
            check_good(GOOD_JSON, await client.request("GET", "/json"))
    assert (server.malformed_requests, server.handler_errors) == (1, 0)


async def test_request_body_over_the_limit_is_413(nursery: trio.Nursery) -> None:
    server: TestServer = await nursery.start(partial(serve, default_app, max_request_body=1024))
    with trio.fail_after(LIMIT):
        async with connect(server) as client:
            answer = await client.request("POST", "/echo", body=b"x" * 1025)
        assert answer.status == 413
        assert "1024" in answer.message()
        async with connect(server) as client:
            echoed = await client.request("POST", "/echo", body=b"x" * 1024)
            assert echoed.json()["body"] == "x" * 1024
        # chunked: the server learns the size only as it reads, and stops at the limit
        chunk = b"258\r\n" + b"y" * 600 + b"\r\n"
        head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw = await raw_exchange(server, head + chunk * 2 + b"0\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 413 "), raw
        assert b"(1200 bytes so far)" in raw and b"limit of 1024 bytes" in raw
    assert (server.malformed_requests, server.handler_errors) == (2, 0)


async def test_worker_server_survives_a_bad_request() -> None:
    with trio.fail_after(60):
        async with open_worker_server(1) as workers:
            for _ in range(2):
                async with connect_to("127.0.0.1", workers.port) as client:
                    answer = await client.request("GET", "/status/abc")
                    assert answer.status == 400
                    check_good(GOOD_JSON, await client.request("GET", "/json"))


# --- no input makes a canned app fail (hypothesis, in memory, on a mock clock) ------------

# 500: FakeKServe answers JSON data Triton cannot read as Triton does
ALLOWED = {200, 400, 404, 405, 500}


def run_in_memory(
    app: Handler,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
) -> tuple[Answer, TestServer]:
    """One exchange with ``app`` over a memory stream; any sleep passes at once."""

    async def main() -> tuple[Answer, TestServer]:
        server = TestServer(app, "127.0.0.1", 0)
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_connection, server_stream)
            async with RawClient(client_stream) as client:
                answer = await client.request(method, target, body=body, headers=headers)
        return answer, server

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def check_answer(answer: Answer, server: TestServer) -> None:
    assert server.handler_errors == 0, server.handler_exceptions
    assert answer.status in ALLOWED, answer
    if answer.status >= 400:
        assert answer.message()


PARAM_VALUES = st.one_of(
    st.text(max_size=4),
    st.integers(-5, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "1e9", "1000001", "99999999999999999999", "0x10", " 1", "\u0663"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(["sse", "delay", "status", "json", "echo"]),
    values=st.dictionaries(st.sampled_from(["n", "gap", "s"]), PARAM_VALUES, max_size=3),
    code=PARAM_VALUES,
)
def test_default_app_never_fails(route: str, values: dict[str, str], code: str) -> None:
    from urllib.parse import quote, urlencode

    if route == "status":
        segment = quote(code, safe="")
        answer, _ = run_in_memory(default_app, "GET", "/status/" + segment)
        valid = code.isascii() and code.isdigit() and 200 <= int(code) <= 999
        assert answer.status == (int(code) if valid else 400), answer
        if not valid:
            assert repr(segment) in answer.message()
    else:
        check_answer(*run_in_memory(default_app, "GET", f"/{route}?{urlencode(values)}"))


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


def either(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right shape, sometimes any JSON at all."""
    return strategy | JSON


def objects(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: either(s) for k, s in fields.items()})


def body_of(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


WORDS = st.text(alphabet="ab ", max_size=6)
OPENAI_BODIES = st.binary(max_size=8) | either(
    objects(
        prompt=WORDS | st.lists(WORDS | st.lists(st.integers(0, 9)), max_size=2),
        messages=st.lists(
            objects(
                role=st.sampled_from(["user", "system"]),
                content=WORDS | st.lists(objects(type=st.just("text"), text=WORDS), max_size=2),
            ),
            max_size=2,
        ),
        max_tokens=st.integers(-2, 12),
        max_completion_tokens=st.integers(-2, 12),
        stream=st.booleans(),
        stream_options=objects(include_usage=st.booleans()),
        input=WORDS | st.lists(WORDS | st.lists(st.integers(0, 9), max_size=3), max_size=3),
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET"]),
    path=st.sampled_from([COMPLETIONS, CHAT, EMBEDDINGS, "/v1/models"]),
    body=OPENAI_BODIES,
)
def test_fake_openai_never_fails(method: str, path: str, body: Any) -> None:
    check_answer(*run_in_memory(FakeOpenAI(), method, path, body_of(body)))


ELEMENTS = (
    st.integers(-300, 300) | st.floats(width=32) | st.booleans() | st.text(max_size=2) | SCALARS
)
KSERVE_BODIES = st.binary(max_size=8) | either(
    objects(
        id=st.text(max_size=3),
        inputs=st.lists(
            objects(
                name=st.sampled_from(["INPUT0", "INPUT1"]),
                shape=st.lists(st.integers(-1, 3), max_size=2),
                datatype=st.sampled_from(["FP32", "FP16", "INT8", "UINT64", "BOOL", "BYTES", "X"]),
                data=st.lists(ELEMENTS | st.lists(ELEMENTS, max_size=2), max_size=4),
                parameters=objects(binary_data_size=st.integers(-1, 12)),
            ),
            max_size=2,
        ),
        outputs=st.lists(
            objects(
                name=st.sampled_from(["OUTPUT0", "OUTPUT1"]),
                parameters=objects(binary_data=st.booleans()),
            ),
            max_size=2,
        ),
        parameters=objects(binary_data_output=st.booleans()),
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(["identity", "add"]),
    body=KSERVE_BODIES,
    blob=st.none() | st.binary(max_size=16),
)
def test_fake_kserve_never_fails(model: str, body: Any, blob: bytes | None) -> None:
    data = body_of(body)
    headers = []
    if blob is not None:  # the binary extension: the JSON header, then the tensors' bytes
        headers.append(("inference-header-content-length", str(len(data))))
        data += blob
    answer, server = run_in_memory(FakeKServe(), "POST", f"/v2/models/{model}/infer", data, headers)
    check_answer(answer, server)
