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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trio-infer real servers (tests/integration, off by default)")
    group.addoption(
        "--inference-url",
        help="an OpenAI-compatible server's base URL (vLLM, llama.cpp...): runs the "
        "real_server tests against it",
    )
    group.addoption("--inference-model", help="the model to ask for (default: the first listed)")
    group.addoption(
        "--embeddings-url", help="an OpenAI-compatible server that serves /v1/embeddings"
    )
    group.addoption("--kserve-url", help="a KServe v2 / Triton REST server's base URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Real servers are opt-in: without a URL their tests are skipped, never silently passed.
    for item in items:
        marker = item.get_closest_marker("real_server")
        if marker is None:
            continue
        option = marker.args[0] if marker.args else "--inference-url"
        if not config.getoption(option.lstrip("-").replace("-", "_")):
            item.add_marker(pytest.mark.skip(reason=f"a real server test: give {option} URL"))


@pytest.fixture(params=["httptools", "h11"])
def parser(request: pytest.FixtureRequest) -> str:
    """Every protocol test runs against both parser backends."""
    return str(request.param)


@pytest.fixture
async def server(nursery: trio.Nursery) -> TestServer:
    """The test server's default app on a free loopback port (stopped with the nursery)."""
    server: TestServer = await nursery.start(serve, default_app)
    return server
