"""Retry policy: which failures are transient, and how long to wait before the next attempt.

Retries run inside the caller's permit (``_client.py``): a retrying call holds one permit
throughout and never re-queues, so retries cannot widen concurrency, and the backoff sleep is
part of the call's total deadline.

What is retried (when attempts remain):

* a connection that could not be established (refused, reset, unreachable, connect
  timeout): nothing reached the server, so even a POST is safe;
* a connection that failed before any byte of the response arrived, and a status in
  ``Retry.statuses`` (429, 502, 503, 504): the request may have reached the server, so only
  for idempotent methods unless the caller opts in (``retry_non_idempotent=True``; inference
  POSTs usually may be repeated);

never: other statuses, a total deadline, read timeouts, running out of ports or descriptors,
protocol errors, or anything after a streaming response was handed to the caller.

A stale pooled connection (closed by the server while idle) is replaced without counting as
an attempt, whatever the policy.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Iterable
from typing import Any, Literal

import attrs
import trio

from ._errors import (
    ConfigError,
    ConnectError,
    ConnectTimeout,
    FileDescriptorsExhaustedError,
    PortsExhaustedError,
    ReadError,
    RemoteProtocolError,
    StreamClosed,
    TimeoutError,
    WriteError,
)

__all__ = ["IDEMPOTENT_METHODS", "Attempt", "Retry", "is_transient", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def _statuses(value: Iterable[int]) -> frozenset[int]:
    try:
        statuses = frozenset(value)
    except TypeError:
        raise ConfigError(
            f"Retry statuses={value!r} must be a collection of status codes"
        ) from None
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ConfigError(f"Retry statuses contains {status!r}, which is not an HTTP status")
    return statuses


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"Retry {attribute.name}={value!r} must be a number >= 0")


@attrs.frozen
class Retry:
    """How a call retries transient failures.

    Attributes:
        attempts: attempts in all, the first included (1: never retry).
        backoff: the first retry's backoff ceiling in seconds; it doubles per retry.
        max_backoff: the largest backoff ceiling.
        jitter: ``"full"`` (default) sleeps a uniformly random time between 0 and the
            ceiling, so clients that failed together do not retry together; ``"none"``
            sleeps the ceiling.
        statuses: response statuses that are retried (default 429, 502, 503, 504).
        max_retry_after: the longest ``Retry-After`` honoured, in seconds; a server asking
            for longer is waited for this long.
    """

    attempts: int = attrs.field(default=3)
    backoff: float = attrs.field(default=0.1, validator=_non_negative)
    max_backoff: float = attrs.field(default=10.0, validator=_non_negative)
    jitter: Literal["full", "none"] = "full"
    statuses: frozenset[int] = attrs.field(default=RETRY_STATUSES, converter=_statuses)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)

    @attempts.validator
    def _check_attempts(self, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"Retry attempts={value!r} must be a whole number >= 1 (1 means no retries)"
            )

    def __attrs_post_init__(self) -> None:
        if self.jitter not in ("full", "none"):
            raise ConfigError(f"Retry jitter={self.jitter!r} must be 'full' or 'none'")

    @classmethod
    def disabled(cls) -> Retry:
        """One attempt: failures are raised as they happen."""
        return cls(attempts=1)

    def delay(
        self, retry: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = float(min(self.max_backoff, self.backoff * 2.0 ** (retry - 1)))
        if self.jitter == "none":
            return ceiling
        return float((rng or random).uniform(0, ceiling))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or
    unreadable (an unreadable header falls back to the backoff, it is not an error)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts '²' and friends
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # an HTTP date is GMT by definition
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError, IndexError, OverflowError):  # a hostile date: ignored
        return None


@attrs.frozen
class Attempt:
    """One attempt of a call, as ``Response.attempts`` and ``Error.attempts`` report it.

    Attributes:
        number: 1 for the first attempt.
        outcome: ``"status 503"`` or the error, e.g. ``"ConnectError: connection refused"``.
        started: when the attempt began (``trio.current_time()``).
        retry_after: seconds waited before the next attempt (None for the last).
    """

    number: int
    outcome: str
    started: float
    retry_after: float | None = None


def is_transient(exc: Exception, received: int, method: bytes, retry_non_idempotent: bool) -> bool:
    """Whether a failed attempt may be retried (the rules are in the module docstring).
    ``received``: bytes of the response that had arrived when it failed."""
    if isinstance(exc, PortsExhaustedError | FileDescriptorsExhaustedError):
        return False  # waiting for a port would be charged to latency: raise at once
    if isinstance(exc, ConnectTimeout):
        return True
    if isinstance(exc, ConnectError):
        # refused, reset, unreachable: nothing was sent. Not a TLS verification failure.
        cause = exc.__cause__
        if isinstance(cause, trio.BrokenResourceError):  # TLS: the socket error is inside
            cause = cause.__cause__
        return isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError)
    if isinstance(exc, TimeoutError | StreamClosed | RemoteProtocolError):
        return False
    if isinstance(exc, ReadError | WriteError):
        # Closed before any byte of the response: the request may have reached the server.
        return received == 0 and (retry_non_idempotent or method in IDEMPOTENT_METHODS)
    return False
