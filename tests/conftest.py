from __future__ import annotations

import pytest
import trio

from trio_infer.testing import (
    TestServer,
    default_app,
    serve,
)


@pytest.fixture(params=["httptools", "h11"])
def parser(request: pytest.FixtureRequest) -> str:
    """Every protocol test runs against both parser backends."""
    return str(request.param)


@pytest.fixture
async def server(nursery: trio.Nursery) -> TestServer:
    """The test server's default app on a free loopback port (stopped with the nursery)."""
    server: TestServer = await nursery.start(serve, default_app)
    return server
