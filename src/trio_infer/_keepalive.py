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
    """How connections are reused. Build one with :meth:`on` or :meth:`off`.

    Attributes:
        mode: ``"on"`` pools and reuses connections; ``"off"`` sends ``Connection: close``
            and closes each connection after its response, so every request opens a new one
            (and, against ``uvicorn --workers N``, re-runs the accept race that spreads load).
        idle_timeout: seconds a pooled connection may sit idle before it is closed. The
            default, 4 s, sits below the 5 s after which uvicorn and hypercorn close idle
            connections, so the client, not the server, normally ends them.
        max_idle: most idle connections kept per endpoint (``None``: no cap of its own;
            ``max_connections`` still bounds the total).
    """

    mode: Literal["on", "off"] = "on"
    idle_timeout: float | None = attrs.field(default=4.0, validator=_positive_or_none)
    max_idle: int | None = attrs.field(default=None, validator=_count_or_none)

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("on", "off"):
            raise ConfigError(
                f"KeepAlive mode={self.mode!r} is not a policy; use KeepAlive.on() or KeepAlive.off()"
            )

    @classmethod
    def on(cls, idle_timeout: float | None = 4.0, max_idle: int | None = None) -> KeepAlive:
        """Pool and reuse connections (the default policy)."""
        return cls("on", idle_timeout, max_idle)

    @classmethod
    def off(cls) -> KeepAlive:
        """One request per connection."""
        return cls("off", None, 0)
