"""End to end: no call can put a second request on the wire or desynchronise a connection.

The server here is a plain h11 server that records every byte it receives and answers each
request it parses with that request's target, so a smuggled request shows up twice: as an extra
request in the record, and as a wrong answer to the next call on the same connection.
"""

from __future__ import annotations

from typing import Any

import attrs
import h11
import pytest
import trio

import trio_infer
from trio_infer import ConfigError, Endpoint, InvalidRequest, Retry

SECRET = "s3cr3t-T0KEN-do-not-log"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


@attrs.define
class RecordingServer:
    port: int = 0
    #: every byte received, on every connection
    raw: bytearray = attrs.Factory(bytearray)
    #: (method, target, headers, body) of every request parsed
    requests: list[tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]] = attrs.Factory(list)
    #: requests h11 could not parse (answered 400, connection closed)
    malformed: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets(self) -> list[bytes]:
        return [target for _, target, _, _ in self.requests]

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        try:
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError:
                    self.malformed += 1
                    await stream.send_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    return
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    self.raw += data
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    request, body = event, b""
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    headers = [(bytes(n), bytes(v)) for n, v in request.headers]
                    self.requests.append((request.method, request.target, headers, body))
                    payload = request.target
                    head = h11.Response(
                        status_code=200, headers=[("content-length", str(len(payload)))]
                    )
                    await stream.send_all(
                        conn.send(head)
                        + conn.send(h11.Data(data=payload))
                        + conn.send(h11.EndOfMessage())
                    )
                    conn.start_next_cycle()
                else:  # the client closed the connection
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def serve(self, *, task_status: trio.TaskStatus[RecordingServer]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self.handle, listeners)
            task_status.started(self)


@pytest.fixture
async def recorder(nursery: trio.Nursery) -> RecordingServer:
    server: RecordingServer = await nursery.start(RecordingServer().serve)
    return server


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path": "/a\r\nX-Injected: 1\r\nfoo: x"}, r"U\+000D"),
        ({"path": "/\tHTTP/1.1\r\n\r\nGET /smuggled"}, r"U\+0009"),
        ({"path": "/a\x00"}, r"U\+0000"),
        ({"path": "/a#top"}, "#"),
        ({"headers": {"x-a": "1\x0b2"}}, r"U\+000B"),
        ({"headers": {"x-a": "1\x01"}}, r"U\+0001"),
        ({"headers": {"x-a": "1\x7f"}}, r"U\+007F"),
        (
            {"method": "POST", "headers": {"content-length": "0"}, "content": SMUGGLED},
            "content-length",
        ),
        (
            {
                "method": "POST",
                "headers": {"Transfer-Encoding": "chunked"},
                "content": b"0\r\n\r\n" + SMUGGLED,
            },
            "transfer-encoding",
        ),
        ({"headers": {"connection": "close"}}, "connection"),
        ({"headers": {"upgrade": "h2c"}}, "upgrade"),
        ({"headers": "x-a: 1"}, "header"),
        ({"headers": 5}, "header"),
        ({"headers": [("x-a", "1", "2")]}, "pair"),
        ({"json": object()}, "JSON"),
        ({"json": float("nan")}, "JSON"),
        ({"params": {"a": object()}}, "params"),
    ],
)
@pytest.mark.parametrize("call", ["request", "stream"])
async def test_bad_requests_send_nothing_and_do_not_desync_the_next_call(
    recorder: RecordingServer, kwargs: dict[str, Any], match: str, call: str
) -> None:
    # Before: each of these reached the wire; with content-length: 0 the body was a second
    # request whose answer the *next* call received.
    arguments: dict[str, Any] = {"method": "GET", "path": "/", **kwargs}
    with trio.fail_after(10):
        async with trio_infer.Client(recorder.url, retry=Retry.disabled()) as client:
            with pytest.raises(InvalidRequest, match=match):
                if call == "request":
                    await client.request(**arguments)
                else:
                    async with client.stream(**arguments):
                        pass
            assert bytes(recorder.raw) == b"", "nothing may be sent for an invalid request"
            for target in ("/next", "/after"):
                response = await client.request("GET", target)
                assert response.content == target.encode()
    assert recorder.targets == [b"/next", b"/after"]
    assert recorder.malformed == 0


async def test_unsafe_path_characters_are_percent_encoded(recorder: RecordingServer) -> None:
    with trio.fail_after(10):
        async with trio_infer.Client(recorder.url) as client:
            response = await client.request("GET", '/a b"<é>', params={"q": "x y#"})
    assert response.content == b"/a%20b%22%3C%C3%A9%3E?q=x+y%23"
    assert recorder.targets == [response.content]


async def test_the_base_path_is_percent_encoded(recorder: RecordingServer) -> None:
    # Before: "GET /ba se/x HTTP/1.1" went out, which no server can parse.
    with trio.fail_after(10):
        async with trio_infer.Client(recorder.url + "/ba se") as client:
            response = await client.request("GET", "/x")
    assert response.content == b"/ba%20se/x"
    assert recorder.malformed == 0


@pytest.mark.parametrize("base_path", ["/b\x00", "/a\r\nX-Injected: 1", "/ba se", "/x?y"])
async def test_an_endpoint_passed_directly_gets_the_same_checks(
    recorder: RecordingServer, base_path: str
) -> None:
    # Before: Endpoint(...) skipped parse_endpoint's checks and its base path went out raw.
    with pytest.raises(ConfigError, match="base_path"):
        trio_infer.Client(Endpoint("http", "127.0.0.1", recorder.port, base_path))
    assert bytes(recorder.raw) == b""


@pytest.mark.parametrize("text", ["/b\x00", "/a\r\nX-Injected: 1", "/a\tb"])
async def test_a_hostile_base_path_in_a_url_is_refused(
    recorder: RecordingServer, text: str
) -> None:
    with pytest.raises(ConfigError, match="control character"):
        trio_infer.Client(recorder.url + text)
    assert bytes(recorder.raw) == b""


async def test_host_may_be_overridden_once_for_virtual_hosting(recorder: RecordingServer) -> None:
    with trio.fail_after(10):
        async with trio_infer.Client(recorder.url, headers={"Host": "virtual.example"}) as client:
            await client.request("GET", "/")
            await client.request("GET", "/", headers={"host": "other.example:8080"})
    hosts = [[v for n, v in headers if n == b"host"] for _, _, headers, _ in recorder.requests]
    assert hosts == [[b"virtual.example"], [b"other.example:8080"]]


async def test_exactly_the_computed_framing_is_sent(recorder: RecordingServer) -> None:
    with trio.fail_after(10):
        async with trio_infer.Client(recorder.url) as client:
            await client.request("POST", "/", content=b"abc", headers={"x-a": " 1\t2 "})
    [(method, _, headers, body)] = recorder.requests
    assert (method, body) == (b"POST", b"abc")
    assert [v for n, v in headers if n == b"content-length"] == [b"3"]
    assert (b"x-a", b"1\t2") in headers
    assert not any(n == b"transfer-encoding" for n, _ in headers)


@pytest.mark.parametrize(
    "headers",
    [
        {b"authorization": SECRET},
        [(b"Authorization", SECRET)],
        {"Authorization": SECRET + "\u20ac"},
        {"AUTHORIZATION": SECRET + "\r\n"},
        {"x-custom-token": SECRET + "\x01"},
        {"Authorization": 5},
        "authorization",
        5,
        [("authorization", SECRET, "extra")],
    ],
)
def test_client_headers_are_checked_without_showing_values(headers: object) -> None:
    # Before: TypeError / ValueError, or a ConfigError that repeated a bytes-named secret.
    with pytest.raises(ConfigError) as info:
        trio_infer.Client("http://127.0.0.1:1", headers=headers)  # type: ignore[arg-type]
    for item in (info.value, info.value.__cause__, info.value.__context__):
        assert SECRET not in str(item) and SECRET not in repr(item)


def test_credentials_in_an_endpoint_url_are_not_shown() -> None:
    with pytest.raises(ConfigError, match="credentials") as info:
        trio_infer.Client(f"http://user:{SECRET}@127.0.0.1:1")
    for item in (info.value, info.value.__cause__, info.value.__context__):
        assert SECRET not in str(item) and SECRET not in repr(item)


def test_invalid_headers_in_the_environment_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIO_INFER_HEADERS", f'{{"authorization": "Bearer {SECRET}"')
    with pytest.raises(ConfigError, match="TRIO_INFER_HEADERS") as info:
        trio_infer.Client("http://127.0.0.1:1")
    for item in (info.value, info.value.__cause__, info.value.__context__):
        assert SECRET not in str(item) and SECRET not in repr(item)
