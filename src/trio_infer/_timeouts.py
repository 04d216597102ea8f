"""Per-phase time limits of an exchange."""

from __future__ import annotations

import math
from types import EllipsisType
from typing import Any

import attrs

from ._errors import ConfigError

__all__ = ["Timeouts"]


def _seconds_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"Timeouts.{attribute.name}={value!r} is not a number of seconds; "
            f"pass a positive number, or None for no limit"
        )
    if math.isnan(value) or value <= 0:
        raise ConfigError(
            f"Timeouts.{attribute.name}={value!r} must be > 0 seconds; pass None for no limit"
        )


_DEFAULT_CONNECT = 10.0


@attrs.frozen(init=False)
class Timeouts:
    """Time limits, in seconds, for each phase of an exchange. ``None`` means no limit.

    Attributes:
        connect: establishing the TCP connection (and the TLS handshake). Default: 10 s, or
            ``total`` if that is smaller.
        write: sending the whole request.
        read: the longest gap between two received chunks of the response. A stream that drips
            a byte every few seconds never times out on ``read``; bound it with ``total``.
        pool: waiting for a permit of the client's limiter and for a free connection slot.
        total: the deadline for the whole call, from entering ``request()`` (or ``stream()``) to
            the last byte of the body. For ``stream()`` it keeps running while the caller
            iterates over the body.

    An explicit ``connect`` or ``pool`` larger than ``total`` is a :class:`ConfigError`: it
    could never fire. When ``total`` is the limit that expires, the error is
    :class:`TotalTimeout` whatever phase the call was in.
    """

    connect: float | None = attrs.field(validator=_seconds_or_none)
    write: float | None = attrs.field(default=60.0, validator=_seconds_or_none)
    read: float | None = attrs.field(default=300.0, validator=_seconds_or_none)
    pool: float | None = attrs.field(default=None, validator=_seconds_or_none)
    total: float | None = attrs.field(default=None, validator=_seconds_or_none)

    def __init__(
        self,
        connect: float | EllipsisType | None = ...,
        write: float | None = 60.0,
        read: float | None = 300.0,
        pool: float | None = None,
        total: float | None = None,
    ) -> None:
        if connect is ...:
            # Not given: the default yields to a smaller total rather than contradict it.
            connect = _DEFAULT_CONNECT if total is None else min(_DEFAULT_CONNECT, total)
        self.__attrs_init__(connect, write, read, pool, total)
        if self.total is None:
            return
        for name in ("connect", "pool"):
            value = getattr(self, name)
            if value is not None and value > self.total:
                raise ConfigError(
                    f"Timeouts.{name}={value!r} exceeds Timeouts.total={self.total!r}: the {name} "
                    f"limit could never fire; lower {name} or raise total"
                )
