"""Endpoints cannot be built invalid, and configuration errors never show a secret.

An ``Endpoint`` validates itself, so one passed to the client directly gets the checks that
``parse_endpoint`` applies to a string; ``parse_endpoint`` percent-encodes what a request target
cannot carry and refuses control characters, which ``urllib.parse`` would silently drop.
Credentials in a URL and the values of ``TRIO_INFER_HEADERS`` never appear in an error, its
``repr`` or the exceptions chained to it.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import chain
from trio_infer import ConfigError, Endpoint, parse_endpoint
from trio_infer._config import read_environment

SECRET = "pw-s3cr3t-do-not-log"
USER = "alice-the-user"


def assert_not_shown(exc: BaseException, *secrets: str) -> None:
    for item in chain(exc):
        for secret in secrets:
            assert secret not in str(item), item
            assert secret not in repr(item), item


# --- Endpoint validates itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("http", "::1", 8000, ""),
        ("https", "h.example", 443, "/v%201/a"),
        ("http", "127.0.0.1", 1, "/~a!$&'()*+,;=:@-._"),
        ("http", "a_b-c.d", 65535, "/x"),
        ("http", "H.Example", 80, "/%c3%a9"),
    ],
)
def test_valid_endpoints(args: tuple[Any, ...]) -> None:
    endpoint = Endpoint(*args)
    assert endpoint.url.endswith(args[3])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("base_path", "/ba se", r"U\+0020.*'/ba%20se'"),
        ("base_path", "/b\x00", r"U\+0000"),
        ("base_path", "/a\r\nX-Injected: 1", r"U\+000D"),
        ("base_path", "/a\tb", r"U\+0009"),
        ("base_path", "/\x7f", r"U\+007F"),
        ("base_path", "/é", r"U\+00E9.*'/%C3%A9'"),
        ("base_path", '/a"b', r"U\+0022"),
        ("base_path", "/a?b=1", r"U\+003F"),
        ("base_path", "/a#b", r"U\+0023"),
        ("base_path", "/100%", r"'%'"),
        ("base_path", "b", "start with '/'"),
        ("base_path", "/a/", "end with '/'"),
        ("base_path", 5, "str"),
        ("host", "", "empty"),
        ("host", "a b", r"U\+0020"),
        ("host", "h\r\nx", r"U\+000D"),
        ("host", "h/x", r"U\+002F"),
        ("host", "user@h", r"U\+0040"),
        ("host", "[::1]", r"U\+005B"),
        ("host", "h:80", "IPv6"),
        ("host", "::zz", "IPv6"),
        ("host", "fe80::1%eth0", "zone"),
        ("host", "bücher.example", "xn--bcher-kva.example"),
        ("host", 5, "str"),
        ("port", 0, "port"),
        ("port", 65536, "port"),
        ("port", -1, "port"),
        ("port", "80", "port"),
        ("port", True, "port"),
        ("port", 80.0, "port"),
        ("scheme", "ftp", "scheme"),
        ("scheme", "HTTP", "scheme"),
        ("scheme", 5, "scheme"),
    ],
)
def test_an_endpoint_cannot_be_built_invalid(field: str, value: object, match: str) -> None:
    # Before: Endpoint(...) took anything, and the client put its base path on the wire raw.
    fields: dict[str, Any] = {"scheme": "http", "host": "h", "port": 80, "base_path": ""}
    fields[field] = value
    with pytest.raises(ConfigError, match=match) as info:
        Endpoint(**fields)
    assert field in str(info.value)


# --- parse_endpoint --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "base_path"),
    [
        ("http://h/ba se", "/ba%20se"),
        ("http://h/é/", "/%C3%A9"),
        ("http://h/a%20b/", "/a%20b"),
        ('http://h/a"b{c}', "/a%22b%7Bc%7D"),
        ("http://h/100%", "/100%25"),
        ("http://h/", ""),
    ],
)
def test_base_paths_are_percent_encoded(text: str, base_path: str) -> None:
    endpoint = parse_endpoint(text)
    assert endpoint.base_path == base_path
    assert endpoint == Endpoint("http", "h", 80, base_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("http://h/b\x00", r"U\+0000"),
        ("http://h/a\r\nb", r"U\+000D"),  # urllib.parse would drop these silently
        ("http://h/a\tb", r"U\+0009"),
        ("http://h\x00st", r"U\+0000"),
        ("http://h h", r"U\+0020"),
        ("http://h/\x7f", r"U\+007F"),
        ("http://bücher.example", "xn--bcher-kva.example"),
        ("http://[fe80::1%25eth0]:1", "zone"),
        ("http://h/a#b", "fragment"),
    ],
)
def test_hostile_endpoints_are_refused(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_endpoint(text)


@pytest.mark.parametrize("text", [8000, None, b"http://h", ["http://h"]])
def test_an_endpoint_that_is_not_a_string_is_refused(text: object) -> None:
    with pytest.raises(ConfigError, match="not a string"):
        parse_endpoint(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        f"http://{USER}:{SECRET}@host",
        f"{USER}:{SECRET}@host:80",
        f"https://{USER}:{SECRET}@host/base",
        f"ftp://{USER}:{SECRET}@host",
        f"http://{USER}:{SECRET}@host:abc",
        f"http://{USER}:{SECRET}@host:99999",
        f"http://{USER}:{SECRET}@host/?q=1",
        f"http://{USER}:{SECRET}@[::zz]:1",
        f"http://{USER}:{SECRET}@h\x00",
        f"http://{USER}:{SECRET}@bücher.example",
        f"http://{USER}:{SECRET}@host:0",
        f"http://{SECRET}@host",
        f"http://{USER}:{SECRET}@",
        f"http://{USER}:{SECRET}@host\uff03x",  # NFKC-normalises to '#': urllib's own error
    ],
)
def test_credentials_in_a_url_are_never_shown(text: str) -> None:
    # Before: every message repeated the URL, password included.
    with pytest.raises(ConfigError) as info:
        parse_endpoint(text)
    assert_not_shown(info.value, SECRET, USER)
    assert "***@" in str(info.value)


# --- read_environment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        f'{{"authorization": "Bearer {SECRET}"',  # invalid JSON
        f'["Bearer {SECRET}"]',  # valid JSON, not an object
        f'{{"authorization": "Bearer {SECRET}"}} trailing',
        "[" * 100_000 + f'"{SECRET}"' + "]" * 100_000,  # deeper than the JSON parser goes
    ],
    ids=["invalid", "not-an-object", "trailing", "deep"],
)
def test_the_headers_variable_is_never_echoed(raw: str) -> None:
    # Before: "environment variable TRIO_INFER_HEADERS='{\"authorization\": ...' is invalid".
    with pytest.raises(ConfigError, match="TRIO_INFER_HEADERS") as info:
        read_environment({"TRIO_INFER_HEADERS": raw})
    assert_not_shown(info.value, SECRET)
    assert "not shown" in str(info.value)


def test_urls_in_the_endpoint_keepalive_variable_are_not_echoed() -> None:
    raw = f'{{"http://{USER}:{SECRET}@h:1": "sometimes"}}'
    with pytest.raises(ConfigError, match="TRIO_INFER_ENDPOINT_KEEPALIVE") as info:
        read_environment({"TRIO_INFER_ENDPOINT_KEEPALIVE": raw})
    assert_not_shown(info.value, SECRET, USER)


def test_other_variables_are_still_echoed() -> None:
    with pytest.raises(ConfigError, match="TRIO_INFER_LIMITER='lots'"):
        read_environment({"TRIO_INFER_LIMITER": "lots"})
