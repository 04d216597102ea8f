"""Client configuration from ``TRIO_INFER_*`` environment variables.

Precedence: an argument passed to :class:`Client` wins, then the environment, then the default.
A value that cannot be read raises :class:`ConfigError` naming the variable. Composite
arguments (``timeouts``, ``retry``, ``keepalive``) are built from their variables only when the
argument itself is not passed. ``docs/configuration.md`` lists every variable;
``tests/test_configuration.py`` checks that the document and :data:`VARIABLES` agree.
"""

from __future__ import annotations

import enum
import json
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ._errors import ConfigError
from ._keepalive import KeepAlive
from ._retry import Retry
from ._timeouts import Timeouts

__all__ = ["UNSET", "VARIABLES", "Unset", "Variable", "read_environment", "resolve_arguments"]


class Unset(enum.Enum):
    """The default of a :class:`Client` argument that the environment may set."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


def _int(text: str, minimum: int) -> int:
    value = int(text)
    if value < minimum:
        raise ValueError(f"must be >= {minimum}")
    return value


def _positive_int(text: str) -> int:
    return _int(text, 1)


def _int_or_none(text: str) -> int | None:
    return None if text.lower() in ("", "none") else _int(text, 1)


def _float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def _float_or_none(text: str) -> float | None:
    return None if text.lower() in ("", "none") else _float(text)


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be one of 1/true/yes/on or 0/false/no/off")


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _statuses(text: str) -> frozenset[int]:
    return frozenset(int(item) for item in _list(text))


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def _text(text: str) -> str:
    return text


def _keepalive(text: str) -> Any:
    mode, _, rest = text.strip().partition(":")
    if mode == "on" and not rest:
        return KeepAlive.on()
    if mode == "off" and not rest:
        return KeepAlive.off()
    if mode == "recycle":
        requests, _, age = rest.partition(":")
        return KeepAlive.recycle(
            max_requests=int(requests) if requests else None,
            max_age=float(age) if age else None,
        )
    raise ValueError("must be on, off, recycle:N, recycle:N:SECONDS or recycle::SECONDS")


def _endpoint_keepalive(text: str) -> dict[str, Any]:
    return {url: _keepalive(str(policy)) for url, policy in _json_object(text).items()}


@attrs.frozen
class Variable:
    """One environment variable: what it sets, how it is read, its default."""

    name: str
    #: the Client keyword it sets; ``timeouts.read`` for a part of a composite argument
    keyword: str
    parse: Callable[[str], Any] = attrs.field(repr=False)
    #: the default, as docs/configuration.md shows it
    default: str
    help: str


VARIABLES: Final[tuple[Variable, ...]] = (
    Variable("TRIO_INFER_ENDPOINTS", "endpoints", _list, "(required)", "comma-separated base URLs"),
    Variable("TRIO_INFER_LIMITER", "limiter", _positive_int, "256", "permits (in-flight calls)"),
    Variable("TRIO_INFER_MAX_CONNECTIONS", "max_connections", _int_or_none, "none", "cap on open connections; none: the connection budget"),
    Variable("TRIO_INFER_MAX_CONNECTIONS_PER_ENDPOINT", "max_connections_per_endpoint", _int_or_none, "none", "cap per endpoint"),
    Variable("TRIO_INFER_SOURCE_ADDRESSES", "source_addresses", _list, "(empty)", "comma-separated local IPs to bind, round-robin"),
    Variable("TRIO_INFER_CONNECT_TIMEOUT", "timeouts.connect", _float_or_none, "10", "seconds; none: no limit"),
    Variable("TRIO_INFER_WRITE_TIMEOUT", "timeouts.write", _float_or_none, "60", "seconds without send progress"),
    Variable("TRIO_INFER_READ_TIMEOUT", "timeouts.read", _float_or_none, "300", "seconds between received bytes"),
    Variable("TRIO_INFER_POOL_TIMEOUT", "timeouts.pool", _float_or_none, "none", "seconds to wait for a permit or connection"),
    Variable("TRIO_INFER_TOTAL_TIMEOUT", "timeouts.total", _float_or_none, "none", "seconds for the whole call, retries included"),
    Variable("TRIO_INFER_HEADERS", "headers", _json_object, "{}", "JSON object of headers sent with every request"),
    Variable("TRIO_INFER_PARSER", "parser", _text, "httptools", "httptools or h11"),
    Variable("TRIO_INFER_CA_FILE", "ssl_context", _text, "(system store)", "PEM file of CA certificates to verify https servers with"),
    Variable("TRIO_INFER_KEEPALIVE", "keepalive", _keepalive, "on", "on, off, recycle:N, recycle:N:SECONDS"),
    Variable("TRIO_INFER_IDLE_TIMEOUT", "keepalive.idle_timeout", _float_or_none, "4", "seconds an idle connection is kept (on, recycle)"),
    Variable("TRIO_INFER_MAX_IDLE", "keepalive.max_idle", _int_or_none, "none", "idle connections kept per endpoint (on, recycle)"),
    Variable("TRIO_INFER_ENDPOINT_KEEPALIVE", "endpoint_keepalive", _endpoint_keepalive, "{}", 'JSON object, e.g. {"http://h:8000": "off"}'),
    Variable("TRIO_INFER_WORKER_HEADER", "worker_header", _text, "(none)", "response header naming the server worker"),
    Variable("TRIO_INFER_WORKER_INTERVAL", "worker_interval", _float, "1", "seconds for workers_active"),
    Variable("TRIO_INFER_TCP_QUICKACK", "tcp_quickack", _bool, "true", "acknowledge partial responses at once"),
    Variable("TRIO_INFER_RETRY_ATTEMPTS", "retry.attempts", _positive_int, "3", "attempts in all; 1: no retries"),
    Variable("TRIO_INFER_RETRY_BACKOFF", "retry.backoff", _non_negative_float, "0.1", "first backoff ceiling, seconds"),
    Variable("TRIO_INFER_RETRY_MAX_BACKOFF", "retry.max_backoff", _non_negative_float, "10", "largest backoff ceiling, seconds"),
    Variable("TRIO_INFER_RETRY_JITTER", "retry.jitter", _text, "full", "full or none"),
    Variable("TRIO_INFER_RETRY_STATUSES", "retry.statuses", _statuses, "429,502,503,504", "comma-separated statuses retried"),
    Variable("TRIO_INFER_RETRY_MAX_RETRY_AFTER", "retry.max_retry_after", _non_negative_float, "60", "longest Retry-After honoured, seconds"),
    Variable("TRIO_INFER_RETRY_NON_IDEMPOTENT", "retry_non_idempotent", _bool, "false", "retry POST/PATCH that may have reached the server"),
    Variable("TRIO_INFER_MAX_HEADER_BYTES", "max_header_bytes", _positive_int, "65536", "largest response head"),
    Variable("TRIO_INFER_MAX_BODY_BYTES", "max_body_bytes", _int_or_none, "none", "largest body request() reads"),
    Variable("TRIO_INFER_STATS_INTERVAL", "stats_interval", _float_or_none, "none", "seconds between logged statistics lines"),
)  # fmt: skip


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """Every ``TRIO_INFER_*`` variable that is set, read: ``{keyword: (value, variable)}``.
    An unknown ``TRIO_INFER_*`` name is an error too (a typo must not pass silently).

    A bad value is a :class:`ConfigError` naming the variable. The value itself is shown,
    except for variables that may carry secrets (header values, URLs with credentials): for
    those the error says what is wrong and where, never what the value is, and the parser's
    exception is not chained (its arguments could hold the value)."""
    secret = ("TRIO_INFER_HEADERS", "TRIO_INFER_ENDPOINTS", "TRIO_INFER_ENDPOINT_KEEPALIVE")
    env = os.environ if environ is None else environ
    known = {v.name: v for v in VARIABLES}
    out: dict[str, tuple[Any, str]] = {}
    for name, raw in env.items():
        if not name.startswith("TRIO_INFER_"):
            continue
        variable = known.get(name)
        if variable is None:
            raise ConfigError(
                f"environment variable {name} is not a trio-infer setting; see "
                f"docs/configuration.md for the list (a typo?)"
            )
        problem: str | None = None
        try:
            value = variable.parse(raw.strip())
        except RecursionError:
            problem = "it is nested too deeply"
        except (ValueError, TypeError, ConfigError) as exc:
            problem = str(exc)
        if problem is None:
            out[variable.keyword] = (value, name)
        elif name in secret:  # raised outside the except: nothing is chained
            raise ConfigError(
                f"environment variable {name} is invalid: {problem} ({variable.help}); its "
                f"value is not shown because it may hold secrets"
            )
        else:
            raise ConfigError(
                f"environment variable {name}={raw!r} is invalid: {problem} ({variable.help})"
            )
    return out


def resolve_arguments(
    given: dict[str, Any], env: dict[str, tuple[Any, str]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Client keyword arguments: each passed one as is, else its environment variable(s),
    else left out (the default). Also which keyword came from which variable."""
    kwargs: dict[str, Any] = {}
    origins: dict[str, str] = {}
    composite: dict[str, dict[str, tuple[Any, str]]] = {}
    for key, value_and_var in env.items():
        head, dot, part = key.partition(".")
        if dot:
            composite.setdefault(head, {})[part] = value_and_var
    for keyword, value in given.items():
        if value is not UNSET:
            kwargs[keyword] = value
        elif keyword in env:
            kwargs[keyword], origins[keyword] = env[keyword]
    for keyword, parts in composite.items():
        if keyword in given and given[keyword] is not UNSET:
            continue  # an explicit argument wins over every part from the environment
        values = {part: value for part, (value, _var) in parts.items()}
        variables = ", ".join(var for _value, var in parts.values())
        try:
            if keyword == "timeouts":
                kwargs[keyword] = Timeouts(**values)
            elif keyword == "retry":
                kwargs[keyword] = Retry(**values)
            elif keyword == "keepalive":
                base = kwargs.get("keepalive") or KeepAlive.on()
                kwargs[keyword] = attrs.evolve(base, **values)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (set by environment variable {variables})") from None
        origins[keyword] = variables
    if "ssl_context" in origins:
        path = kwargs["ssl_context"]
        try:
            kwargs["ssl_context"] = ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"environment variable {origins['ssl_context']}={path!r}: cannot load CA "
                f"certificates from it ({exc})"
            ) from None
    if "endpoints" not in kwargs:
        raise ConfigError(
            "no endpoints: pass them (Client('http://host:8000')) or set TRIO_INFER_ENDPOINTS"
        )
    return kwargs, origins
