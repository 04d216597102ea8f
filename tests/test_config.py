"""Configuration values are validated where they are written, with the value in the message."""

from __future__ import annotations

import pytest
import trio

import trio_infer
from trio_infer import ConfigError, Endpoint, KeepAlive, Timeouts, parse_endpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://h:8000/base/", Endpoint("http", "h", 8000, "/base")),
        ("https://h", Endpoint("https", "h", 443, "")),
        ("h:9000", Endpoint("http", "h", 9000, "")),
        ("h", Endpoint("http", "h", 80, "")),
        ("[::1]:8000", Endpoint("http", "::1", 8000, "")),
        ("HTTP://H.example:81", Endpoint("http", "h.example", 81, "")),
        ("  127.0.0.1:1  ", Endpoint("http", "127.0.0.1", 1, "")),
    ],
)
def test_endpoint_forms(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


def test_endpoint_urls() -> None:
    assert parse_endpoint("[::1]:8000").url == "http://[::1]:8000"
    assert parse_endpoint("https://h").authority == "h"
    assert parse_endpoint("h:81").authority == "h:81"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("ftp://h", "scheme"),
        ("http://h:99999", "not a valid URL"),
        ("http://h:0", "port 0"),
        ("http://:80", "no host"),
        ("http://h/?q=1", "query"),
        ("http://u:p@h", "credentials"),
        ("http://[::zz]:1", "invalid IPv6|not a valid URL"),
    ],
)
def test_bad_endpoints(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_endpoint(text)
    if "@" in text:  # credentials are never echoed (issue 10): the URL is shown redacted
        assert "***@" in str(info.value) and "u:p" not in str(info.value)
    else:
        assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"read": 0}, "read=0 must be > 0"),
        ({"connect": -1}, "connect=-1"),
        ({"write": "5"}, "not a number"),
        ({"pool": float("nan")}, "pool=nan"),
        ({"connect": 20, "total": 5}, "connect=20 exceeds Timeouts.total=5"),
        ({"pool": 20, "total": 5}, "pool=20 exceeds"),
    ],
)
def test_bad_timeouts(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Timeouts(**kwargs)  # type: ignore[arg-type]


def test_default_connect_yields_to_a_smaller_total() -> None:
    assert Timeouts().connect == 10
    assert Timeouts(total=3).connect == 3
    assert Timeouts(connect=None, total=3).connect is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limiter": 0}, "limiter=0"),
        ({"limiter": True}, "limiter=True"),
        ({"max_connections": 0}, "max_connections=0"),
        ({"max_connections_per_endpoint": -1}, "max_connections_per_endpoint=-1"),
        ({"source_addresses": ["example.com"]}, "'example.com' is not an IP address"),
        ({"parser": "fast"}, "parser='fast'"),
        ({"timeouts": 5}, "timeouts=5"),
        ({"keepalive": "on"}, "keepalive='on'"),
        ({"headers": {"bad header": "x"}}, "token"),
        ({"ssl_context": object()}, "ssl_context"),
    ],
)
def test_bad_client_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        trio_infer.Client("127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_no_endpoints() -> None:
    with pytest.raises(ConfigError, match="empty"):
        trio_infer.Client([])


def test_duplicate_endpoints_collapse() -> None:
    client = trio_infer.Client(["127.0.0.1:1", "http://127.0.0.1:1/", "127.0.0.1:2"])
    assert [e.port for e in client.endpoints] == [1, 2]


def test_shared_limiter_is_used_as_is() -> None:
    limiter = trio.CapacityLimiter(3)
    assert trio_infer.Client("127.0.0.1:1", limiter=limiter).limiter is limiter


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: KeepAlive.on(idle_timeout=0), "idle_timeout=0"),
        (lambda: KeepAlive.on(max_idle=-1), "max_idle=-1"),
        (lambda: KeepAlive("sometimes"), "mode='sometimes'"),  # type: ignore[arg-type]
    ],
)
def test_bad_keepalive(factory: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        factory()  # type: ignore[operator]
