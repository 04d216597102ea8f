from __future__ import annotations

import pytest
import trio
from hypothesis import settings

from trio_infer.testing import (
    TestServer,
    default_app,
    serve,
)

# Hypothesis' default 200 ms deadline per example is a timed assertion, and flakes on a loaded
# 2-core machine; speed is measured in benchmarks/, never asserted in tests.
settings.register_profile("trio-infer", deadline=None)
settings.load_profile("trio-infer")


@pytest.fixture(params=["httptools", "h11"])
def parser(request: pytest.FixtureRequest) -> str:
    """Every protocol test runs against both parser backends."""
    return str(request.param)


@pytest.fixture
async def server(nursery: trio.Nursery) -> TestServer:
    """The test server's default app on a free loopback port (stopped with the nursery)."""
    server: TestServer = await nursery.start(serve, default_app)
    return server
