"""A client's configuration, resolved and validated once, as a frozen value.

Each :class:`~trio_infer.Client` argument is resolved as *passed > ``TRIO_INFER_*`` variable >
default* (``_config.py``) and validated here, so a bad value fails where the client is
created, with the value (never a header's) and the fix in the message, and with the variable
named when it came from the environment. The :class:`Settings` that results is what the client
is built from; nothing in it changes afterwards.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import trio

from ._codec import MAX_HEADER_BYTES, ParserName, resolve_parser
from ._config import read_environment, resolve_arguments
from ._endpoint import Endpoint, parse_endpoint
from ._errors import ConfigError, InvalidRequest
from ._keepalive import KeepAlive
from ._prepare import encode_headers
from ._retry import Retry
from ._sources import parse_source_addresses
from ._timeouts import Timeouts

__all__ = ["Settings", "resolve_settings"]

_T = TypeVar("_T")


@attrs.frozen
class Settings:
    """Every argument of a :class:`~trio_infer.Client`, resolved and checked (see the
    client's docstring for each). ``headers`` are encoded, ``endpoint_keepalive`` is keyed
    by normalised :class:`Endpoint`, and ``limiter`` is the limiter itself (a number given
    became the client's own)."""

    endpoints: tuple[Endpoint, ...]
    limiter: trio.CapacityLimiter = attrs.field(eq=False)
    max_connections: int | None
    max_connections_per_endpoint: int | None
    source_addresses: tuple[str, ...]
    timeouts: Timeouts
    keepalive: KeepAlive
    endpoint_keepalive: tuple[tuple[Endpoint, KeepAlive], ...]
    retry: Retry
    retry_non_idempotent: bool
    max_header_bytes: int
    max_body_bytes: int | None
    stats_interval: float | None
    worker_header: str | None
    worker_interval: float
    parser: ParserName
    #: encoded; never shown (values may be credentials)
    headers: tuple[tuple[bytes, bytes], ...] = attrs.field(repr=False)
    ssl_context: ssl.SSLContext | None = attrs.field(eq=False, repr=False)
    tcp_quickack: bool

    def keepalive_for(self, endpoint: Endpoint) -> KeepAlive:
        """The policy of one endpoint: its override, or the client's."""
        return dict(self.endpoint_keepalive).get(endpoint, self.keepalive)


def resolve_settings(given: dict[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the arguments a client was given (``UNSET`` for those not passed)
    and the environment."""
    kwargs, origins = resolve_arguments(given, read_environment(environ))
    try:
        return _build(**kwargs)
    except ConfigError as exc:
        message = str(exc)
        for keyword, variable in origins.items():
            if message.startswith(keyword) or f" {keyword}=" in message:
                raise ConfigError(f"{message} (set by environment variable {variable})") from None
        raise


def _whole(name: str, value: Any, *, unit: str = "") -> Any:
    """``value`` if it is None or a whole number >= 1 (not a bool), else a ConfigError."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        what = f"a whole number of {unit}" if unit else "a whole number"
        raise ConfigError(f"{name}={value!r} must be {what} >= 1 or None")
    return value


def _positive(name: str, value: Any, *, none_ok: bool = False) -> Any:
    """``value`` if it is a number > 0 (or None, when allowed), else a ConfigError."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        also = " or None" if none_ok else ""
        raise ConfigError(f"{name}={value!r} must be a positive number{also}")
    return value


def _instance(name: str, value: object, cls: type[_T], default: Callable[[], _T]) -> _T:
    """``value``, or ``default()`` when None; anything but a ``cls`` is a ConfigError."""
    if value is None:
        return default()
    if not isinstance(value, cls):
        raise ConfigError(f"{name}={value!r} must be a trio_infer.{cls.__name__}")
    return value


def _build(
    endpoints: str | Endpoint | Sequence[str | Endpoint],
    *,
    limiter: int | trio.CapacityLimiter = 256,
    max_connections: int | None = None,
    timeouts: Timeouts | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    parser: str = "httptools",
    ssl_context: ssl.SSLContext | None = None,
    keepalive: KeepAlive | None = None,
    max_connections_per_endpoint: int | None = None,
    source_addresses: str | Sequence[str] = (),
    endpoint_keepalive: Mapping[str | Endpoint, KeepAlive] | None = None,
    worker_header: str | None = None,
    worker_interval: float = 1.0,
    tcp_quickack: bool = True,
    retry: Retry | None = None,
    retry_non_idempotent: bool = False,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_body_bytes: int | None = None,
    stats_interval: float | None = None,
) -> Settings:
    if isinstance(endpoints, str | Endpoint) or not isinstance(endpoints, Sequence):
        endpoints = [endpoints]  # a lone bad value is named by parse_endpoint
    parsed: list[Endpoint] = []
    for item in endpoints:
        endpoint = parse_endpoint(item)
        if endpoint not in parsed:
            parsed.append(endpoint)
    if not parsed:
        raise ConfigError("endpoints is empty; pass at least one base URL")

    if isinstance(limiter, int) and not isinstance(limiter, bool) and limiter >= 1:
        limiter = trio.CapacityLimiter(limiter)
    elif not isinstance(limiter, trio.CapacityLimiter):
        raise ConfigError(
            f"limiter={limiter!r} must be a whole number >= 1 or a trio.CapacityLimiter"
        )

    _whole("max_connections", max_connections)
    _whole("max_connections_per_endpoint", max_connections_per_endpoint)
    sources = parse_source_addresses(source_addresses)
    checked_timeouts = _instance("timeouts", timeouts, Timeouts, Timeouts)
    checked_keepalive = _instance("keepalive", keepalive, KeepAlive, KeepAlive.on)
    checked_retry = _instance("retry", retry, Retry, Retry)
    if max_header_bytes is None:
        raise ConfigError("max_header_bytes=None: a response head needs a limit")
    _whole("max_header_bytes", max_header_bytes, unit="bytes")
    _whole("max_body_bytes", max_body_bytes, unit="bytes")
    _positive("stats_interval", stats_interval, none_ok=True)
    endpoint_policies: dict[Endpoint, KeepAlive] = {}
    for key, policy in (endpoint_keepalive or {}).items():
        target = parse_endpoint(key)
        if target not in parsed:
            known = ", ".join(e.url for e in parsed)
            raise ConfigError(
                f"endpoint_keepalive names {key!r}, which is not one of this client's "
                f"endpoints ({known})"
            )
        if not isinstance(policy, KeepAlive):
            raise ConfigError(
                f"endpoint_keepalive[{key!r}]={policy!r} must be a trio_infer.KeepAlive"
            )
        endpoint_policies[target] = policy
    if worker_header is not None and (
        not isinstance(worker_header, str) or not worker_header.strip()
    ):
        raise ConfigError(
            f"worker_header={worker_header!r} must be a header name such as 'x-worker-id'"
        )
    _positive("worker_interval", worker_interval)
    try:
        encoded_headers = encode_headers(headers)
    except InvalidRequest as exc:
        raise ConfigError(str(exc)) from None
    for name, _ in encoded_headers:
        if name == b"inference-header-content-length":
            # It frames one body (the length of its JSON part): a client-wide value would go
            # out with every request, JSON ones too, and the server would split them there.
            raise ConfigError(
                "headers: 'inference-header-content-length' frames one body; "
                "client.kserve.infer(binary_inputs=True) sets it for each request"
            )

    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise ConfigError(f"ssl_context={ssl_context!r} must be an ssl.SSLContext")
    if ssl_context is None and any(e.scheme == "https" for e in parsed):
        ssl_context = ssl.create_default_context()
        ssl_context.set_alpn_protocols(["http/1.1"])
    # A caller's context is used as given (its ALPN list included): the connection
    # refuses a server that picks anything but HTTP/1.1 (``Connection.connect``).
    return Settings(
        endpoints=tuple(parsed),
        limiter=limiter,
        max_connections=max_connections,
        max_connections_per_endpoint=max_connections_per_endpoint,
        source_addresses=sources,
        timeouts=checked_timeouts,
        keepalive=checked_keepalive,
        endpoint_keepalive=tuple(endpoint_policies.items()),
        retry=checked_retry,
        retry_non_idempotent=bool(retry_non_idempotent),
        max_header_bytes=max_header_bytes,
        max_body_bytes=max_body_bytes,
        stats_interval=stats_interval,
        worker_header=worker_header.strip().lower() if worker_header else None,
        worker_interval=float(worker_interval),
        parser=resolve_parser(parser),
        headers=tuple(encoded_headers),
        ssl_context=ssl_context,
        tcp_quickack=bool(tcp_quickack),
    )
