"""Keep-alive policies: whether, and for how long, a connection is reused."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from ._errors import ConfigError

__all__ = ["KeepAlive"]


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"KeepAlive {attribute.name}={value!r} must be a positive number or None")


def _count_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"KeepAlive {attribute.name}={value!r} must be a whole number >= 0 or None"
        )


@attrs.frozen
class KeepAlive:
    """How connections are reused. Build one with :meth:`on`, :meth:`off` or :meth:`recycle`.

    A connection the server closes (or asks to close), or whose exchange failed, is never
    reused, whatever the policy.

    Attributes:
        mode: ``"on"`` pools and reuses connections; ``"off"`` sends ``Connection: close``
            and closes each connection after its response, so every request opens a new one
            (and, against ``uvicorn --workers N``, re-runs the accept race that spreads load);
            ``"recycle"`` reuses a connection for at most ``max_requests`` exchanges or
            ``max_age`` seconds, then closes it after its current response.
        idle_timeout: seconds a pooled connection may sit idle before it is closed. The
            default, 4 s, sits below the 5 s after which uvicorn and hypercorn close idle
            connections, so the client, not the server, normally ends them.
        max_idle: most idle connections kept per endpoint (``None``: no cap of its own;
            ``max_connections`` still bounds the total).
        max_requests: ``recycle`` only: exchanges per connection. The last one carries
            ``Connection: close``, so the server closes its end first.
        max_age: ``recycle`` only: seconds from connect after which a connection is not
            reused (it finishes the exchange it carries, then closes).
    """

    mode: Literal["on", "off", "recycle"] = "on"
    idle_timeout: float | None = attrs.field(default=4.0, validator=_positive_or_none)
    max_idle: int | None = attrs.field(default=None, validator=_count_or_none)
    max_requests: int | None = attrs.field(default=None, validator=_count_or_none)
    max_age: float | None = attrs.field(default=None, validator=_positive_or_none)

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("on", "off", "recycle"):
            raise ConfigError(
                f"KeepAlive mode={self.mode!r} is not a policy; use KeepAlive.on(), "
                f"KeepAlive.off() or KeepAlive.recycle(...)"
            )
        if self.mode == "recycle":
            if self.max_requests is None and self.max_age is None:
                raise ConfigError(
                    "KeepAlive.recycle() needs max_requests or max_age (or both); without "
                    "either it is KeepAlive.on()"
                )
            if self.max_requests == 0:
                raise ConfigError(
                    "KeepAlive.recycle(max_requests=0) would send nothing; use max_requests >= 1 "
                    "(1 is KeepAlive.off())"
                )
        elif self.max_requests is not None or self.max_age is not None:
            raise ConfigError(
                f"max_requests and max_age belong to KeepAlive.recycle(), not mode={self.mode!r}"
            )

    @classmethod
    def on(cls, idle_timeout: float | None = 4.0, max_idle: int | None = None) -> KeepAlive:
        """Pool and reuse connections (the default policy)."""
        return cls("on", idle_timeout, max_idle)

    @classmethod
    def off(cls) -> KeepAlive:
        """One request per connection."""
        return cls("off", None, 0)

    @classmethod
    def recycle(
        cls,
        max_requests: int | None = None,
        max_age: float | None = None,
        *,
        idle_timeout: float | None = 4.0,
        max_idle: int | None = None,
    ) -> KeepAlive:
        """Reuse each connection for at most ``max_requests`` exchanges or ``max_age`` seconds
        (either may be omitted, not both), then close it after its current response: most of
        keep-alive's handshake savings, while new connections keep re-running the servers'
        accept race (``docs/keepalive.md``)."""
        return cls("recycle", idle_timeout, max_idle, max_requests, max_age)
