"""Configuration from TRIO_INFER_* variables, and docs/configuration.md kept in step with it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pytest

import trio_infer
from trio_infer import ConfigError, KeepAlive, Retry, Timeouts
from trio_infer._config import VARIABLES, read_environment

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_the_document_lists_exactly_the_variables_with_their_defaults() -> None:
    rows = re.findall(r"^\| `(TRIO_INFER_\w+)` \| `([\w.]+)` \| (.*?) \|", DOC.read_text(), re.M)
    assert rows == [(v.name, v.keyword, v.default) for v in VARIABLES]


def test_every_client_argument_has_a_variable() -> None:
    arguments = set(inspect.signature(trio_infer.Client).parameters)
    covered = {v.keyword.split(".")[0] for v in VARIABLES}
    assert arguments == covered


def test_documented_defaults_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("TRIO_INFER_")]:
        monkeypatch.delenv(name)
    client = trio_infer.Client("127.0.0.1:1")
    defaults = {v.keyword: v.default for v in VARIABLES}
    assert str(client.limiter.total_tokens) == defaults["limiter"]
    assert client.timeouts == Timeouts()
    assert (client.timeouts.connect, client.timeouts.read) == (10, 300)
    assert client.retry == Retry()
    assert client.keepalive == KeepAlive.on()
    assert client.max_header_bytes == int(defaults["max_header_bytes"])
    composite = {"timeouts": Timeouts(), "retry": Retry(), "keepalive": KeepAlive.on()}
    for keyword, default in defaults.items():
        head, _, part = keyword.partition(".")
        if part:
            value = getattr(composite[head], part)
            shown = (
                "none"
                if value is None
                else ",".join(map(str, sorted(value)))
                if isinstance(value, frozenset)
                else f"{value:g}"
                if isinstance(value, float)
                else str(value)
            )
            assert shown == default, keyword
    assert (client.max_body_bytes, client.stats_interval) == (None, None)


def test_the_environment_fills_in_what_is_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "TRIO_INFER_ENDPOINTS": "127.0.0.1:8001, http://127.0.0.1:8002/v1",
        "TRIO_INFER_LIMITER": "17",
        "TRIO_INFER_READ_TIMEOUT": "42",
        "TRIO_INFER_TOTAL_TIMEOUT": "none",
        "TRIO_INFER_KEEPALIVE": "recycle:8:30",
        "TRIO_INFER_IDLE_TIMEOUT": "2",
        "TRIO_INFER_RETRY_ATTEMPTS": "5",
        "TRIO_INFER_RETRY_STATUSES": "503",
        "TRIO_INFER_TCP_QUICKACK": "off",
        "TRIO_INFER_HEADERS": '{"authorization": "Bearer x"}',
        "TRIO_INFER_SOURCE_ADDRESSES": "127.0.0.2,127.0.0.3",
        "TRIO_INFER_ENDPOINT_KEEPALIVE": '{"127.0.0.1:8001": "off"}',
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = trio_infer.Client()
    assert [e.url for e in client.endpoints] == [
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002/v1",
    ]
    assert client.limiter.total_tokens == 17
    assert (client.timeouts.read, client.timeouts.total, client.timeouts.connect) == (42, None, 10)
    assert client.keepalive == KeepAlive.recycle(8, 30, idle_timeout=2)
    assert client.retry == Retry(attempts=5, statuses={503})
    assert client.source_addresses == ("127.0.0.2", "127.0.0.3")
    assert client._pools[0].keepalive == KeepAlive.off()
    assert client._pools[0].quickack is False
    # an environment value that does not fit the arguments is named
    with pytest.raises(
        ConfigError, match="set by environment variable TRIO_INFER_ENDPOINT_KEEPALIVE"
    ):
        trio_infer.Client("127.0.0.1:9")
    monkeypatch.delenv("TRIO_INFER_ENDPOINT_KEEPALIVE")
    # an argument wins over the environment, a composite one over all of its parts
    client = trio_infer.Client("127.0.0.1:9", limiter=3, timeouts=Timeouts(read=1))
    assert (client.limiter.total_tokens, client.timeouts.read) == (3, 1)
    assert (client.timeouts.total, client.timeouts.connect) == (None, 10)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("TRIO_INFER_LIMITER", "many", "TRIO_INFER_LIMITER='many' is invalid"),
        ("TRIO_INFER_LIMITER", "0", "TRIO_INFER_LIMITER='0' is invalid: must be >= 1"),
        ("TRIO_INFER_TCP_QUICKACK", "maybe", "TRIO_INFER_TCP_QUICKACK='maybe'"),
        ("TRIO_INFER_KEEPALIVE", "sometimes", "TRIO_INFER_KEEPALIVE='sometimes'"),
        (
            "TRIO_INFER_HEADERS",
            "[1]",
            "TRIO_INFER_HEADERS is invalid: must be a JSON object",
        ),
        (
            "TRIO_INFER_PARSER",
            "fast",
            "parser='fast'.*set by environment variable TRIO_INFER_PARSER",
        ),
        ("TRIO_INFER_CA_FILE", "/nonexistent.pem", "TRIO_INFER_CA_FILE='/nonexistent.pem'"),
        ("TRIO_INFER_RETRY_JITTER", "some", "jitter='some'.*TRIO_INFER_RETRY_JITTER"),
        ("TRIO_INFER_MAX_CONECTIONS", "5", "TRIO_INFER_MAX_CONECTIONS is not a trio-infer setting"),
    ],
)
def test_bad_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, match: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=match):
        trio_infer.Client("127.0.0.1:1")


def test_a_connect_timeout_above_the_total_names_both_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIO_INFER_CONNECT_TIMEOUT", "20")
    monkeypatch.setenv("TRIO_INFER_TOTAL_TIMEOUT", "5")
    with pytest.raises(
        ConfigError, match=r"connect=20.*TRIO_INFER_CONNECT_TIMEOUT.*TRIO_INFER_TOTAL_TIMEOUT"
    ):
        trio_infer.Client("127.0.0.1:1")


def test_no_endpoints_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIO_INFER_ENDPOINTS", raising=False)
    with pytest.raises(ConfigError, match="TRIO_INFER_ENDPOINTS"):
        trio_infer.Client()


def test_read_environment_ignores_other_variables() -> None:
    assert read_environment({"PATH": "/bin", "TRIO_INFERX": "1"}) == {}


def test_the_resolved_configuration_is_a_frozen_value_without_secrets() -> None:
    client = trio_infer.Client(
        "http://127.0.0.1:9", headers={"authorization": "Bearer s3cret"}, limiter=3
    )
    settings = client.settings
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.retry = trio_infer.Retry.disabled()  # type: ignore[misc]
    assert settings.limiter is client.limiter and client.limiter.total_tokens == 3
    assert settings.headers == ((b"authorization", b"Bearer s3cret"),)
    assert "s3cret" not in repr(settings)
