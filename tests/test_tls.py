"""https through trio.SSLStream, verified against a trustme CA."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

import trio_infer
from trio_infer.testing import default_app
from trio_infer.testing._server import TestServer


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(nursery: trio.Nursery, ca: trustme.CA) -> str:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    state = TestServer(default_app, "127.0.0.1", port)

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError:
            return  # a client that rejected our certificate
        await state.serve_connection(stream)

    ssl_listeners = [
        trio.SSLListener(listener, server_context, https_compatible=True) for listener in listeners
    ]
    await nursery.start(trio.serve_listeners, handle, ssl_listeners)
    return f"https://localhost:{port}"


async def test_https_with_a_custom_context(tls_server: str, ca: trustme.CA, parser: str) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with trio_infer.Client(tls_server, ssl_context=context, parser=parser) as client:
        for _ in range(3):
            response = await client.request("POST", "/echo", json={"x": 1})
            assert response.json()["body"] == '{"x":1}'
        async with client.stream("GET", "/sse", params={"n": 3}) as response:
            assert len([e async for e in response.aiter_sse()]) == 4
        stats = client.stats().endpoints[0]
        assert (stats.opened, stats.reused) == (1, 3)


async def test_https_verifies_certificates_by_default(tls_server: str) -> None:
    async with trio_infer.Client(tls_server) as client:
        with pytest.raises(trio_infer.ConnectError, match="certificate verify failed") as info:
            await client.request("GET", "/json")
        assert info.value.phase == "connect"
        assert client.limiter.borrowed_tokens == 0


async def test_https_checks_the_host_name(tls_server: str, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    wrong_name = tls_server.replace("localhost", "127.0.0.1")  # same server, not in the certificate
    async with trio_infer.Client(wrong_name, ssl_context=context) as client:
        with pytest.raises(trio_infer.ConnectError, match=r"certificate verify failed.*mismatch"):
            await client.request("GET", "/json")
