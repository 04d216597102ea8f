"""The exception hierarchy, and the one table that maps low-level errors onto it.

Every error the client raises is a :class:`trio_infer.Error`. Errors raised on the way to or
from a server carry the endpoint they concern (``endpoint``, a URL string) and the phase of the
exchange (``phase``: ``"pool"``, ``"connect"``, ``"write"``, ``"read"`` or ``"total"``), and
both appear in the message, so a log line alone tells an operator where a call failed.

Low-level errors (``OSError``, ``trio.BrokenResourceError``, ``ssl.SSLError``, parser errors)
are translated in exactly one place, :func:`map_transport_error`, and the original is kept as
``__cause__``.
"""

from __future__ import annotations

import builtins
import errno
import ssl
from typing import TYPE_CHECKING, Any, Final

import trio

from ._state import Phase

if TYPE_CHECKING:
    from ._response import Response

__all__ = [
    "ClientClosed",
    "ConfigError",
    "ConnectError",
    "FileDescriptorsExhaustedError",
    "PortsExhaustedError",
    "ConnectTimeout",
    "Error",
    "HTTPStatusError",
    "InvalidRequest",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "ResponseTooLarge",
    "RemoteProtocolError",
    "RequestMayHaveBeenProcessed",
    "StreamClosed",
    "TimeoutError",
    "TotalTimeout",
    "TransportError",
    "UsageError",
    "WriteError",
    "WriteTimeout",
]


class Error(Exception):
    """Base class of every exception raised by trio-infer.

    Attributes:
        attempts: for a call that was retried, every attempt and its outcome
            (``trio_infer.Attempt``); empty when the call made one attempt.
    """

    attempts: tuple[Any, ...] = ()


class ConfigError(Error, ValueError):
    """A configuration value is invalid. The message names the value and the fix."""


class UsageError(Error, RuntimeError):
    """The client or a response was used in a way its life does not allow: a call before the
    client's ``async with`` block, entering a client twice, reading a body twice, a stream's
    summary before its end. (A call after the block is :class:`ClientClosed`.)"""


class InvalidRequest(Error, ValueError):
    """A request argument is invalid (a path, a method, a header). Nothing was sent."""


class TransportError(Error):
    """A failure while talking to a server.

    Attributes:
        detail: what went wrong (the message without the phase and endpoint).
        endpoint: the endpoint's base URL (``"http://127.0.0.1:8000"``).
        phase: which part of the exchange failed: ``"pool"``, ``"connect"``, ``"write"``,
            ``"read"`` or ``"total"``.
    """

    def __init__(self, message: str, *, endpoint: str, phase: Phase) -> None:
        super().__init__(f"{message} ({phase} phase, endpoint {endpoint})")
        #: what went wrong, without the phase and endpoint the full message adds
        self.detail = message
        self.endpoint = endpoint
        self.phase = phase


class ConnectError(TransportError):
    """The TCP (or TLS) connection could not be established."""


class PortsExhaustedError(ConnectError):
    """The kernel had no free ephemeral port for this (source address, destination) pair
    (``EADDRNOTAVAIL`` at connect). Raised at once, never waited out: add source addresses or
    endpoints, or open fewer connections (see ``trio_infer.connection_budget``)."""


class FileDescriptorsExhaustedError(ConnectError):
    """The process (``EMFILE``) or the system (``ENFILE``) is out of file descriptors. Raised
    at once: raise ``ulimit -n`` or open fewer connections."""


class WriteError(TransportError):
    """Sending the request failed: the connection broke while writing."""


class ReadError(TransportError):
    """Receiving the response failed: the connection broke or closed early."""


class RemoteProtocolError(TransportError):
    """The server sent bytes that are not valid HTTP/1.1 (or not what was asked for)."""


class ResponseTooLarge(TransportError):
    """The response head (``max_header_bytes``) or, for a non-streaming call, the body
    (``max_body_bytes``) exceeded the client's limit. The connection is closed."""


class StreamClosed(TransportError):
    """The response stream was closed (possibly by another task) while it was being read."""


class ClientClosed(StreamClosed):
    """The client's ``async with`` block ended, or :meth:`Client.close` was called.

    Every call still waiting (for a permit, a connection, or a retry's backoff) fails with
    this at once, every call made afterwards fails with it before anything is sent, and an
    exchange in progress is cut short with it. A closed client opens no connection.
    """


class RequestMayHaveBeenProcessed(ReadError):
    """The connection failed after the whole request was sent and before any byte of the
    response arrived, and the request was not re-sent because re-sending it may not be safe:
    the server may have received and processed it (a POST that charged a card would charge it
    twice). Re-sent automatically only for idempotent methods, a request carrying an
    ``Idempotency-Key`` header, or with ``retry_non_idempotent=True``."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """A phase of the exchange ran past its time limit (see :class:`trio_infer.Timeouts`).

    It is also a :class:`builtins.TimeoutError`, so ``except TimeoutError`` catches it in code
    that does not import trio-infer's name.
    """


class PoolTimeout(TimeoutError):
    """No permit (or no connection slot) became free within ``Timeouts.pool``."""


class ConnectTimeout(TimeoutError):
    """The connection was not established within ``Timeouts.connect``."""


class WriteTimeout(TimeoutError):
    """The request was not sent within ``Timeouts.write``."""


class ReadTimeout(TimeoutError):
    """No byte of the response arrived within ``Timeouts.read`` (the gap between bytes)."""


class TotalTimeout(TimeoutError):
    """The whole call ran past ``Timeouts.total``."""


class HTTPStatusError(Error):
    """Raised by :meth:`Response.raise_for_status` for a 4xx or 5xx status."""

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message)
        self.response = response


TIMEOUT_BY_PHASE: Final[dict[Phase, type[TimeoutError]]] = {
    "pool": PoolTimeout,
    "connect": ConnectTimeout,
    "write": WriteTimeout,
    "read": ReadTimeout,
    "total": TotalTimeout,
}

_FAILURE_BY_PHASE: Final[dict[Phase, type[TransportError]]] = {
    "connect": ConnectError,
    "write": WriteError,
    "read": ReadError,
}

_ERRNO_WORDS: Final[dict[int, str]] = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EPIPE: "broken pipe",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "no free local port or address (EADDRNOTAVAIL)",
    errno.EMFILE: "too many open files (EMFILE)",
    errno.ENFILE: "too many open files in the system (ENFILE)",
}

_EXHAUSTED: Final[dict[int, tuple[type[ConnectError], str]]] = {
    errno.EADDRNOTAVAIL: (
        PortsExhaustedError,
        "no free ephemeral port for this (source address, destination) pair (EADDRNOTAVAIL); "
        "add source_addresses or endpoints, or open fewer connections",
    ),
    errno.EMFILE: (
        FileDescriptorsExhaustedError,
        "the process is out of file descriptors (EMFILE); raise 'ulimit -n' or open fewer "
        "connections",
    ),
    errno.ENFILE: (
        FileDescriptorsExhaustedError,
        "the system is out of file descriptors (ENFILE); raise fs.file-max or open fewer "
        "connections",
    ),
}


def map_transport_error(exc: BaseException, *, phase: Phase, endpoint: str) -> TransportError:
    """Translate a low-level exception raised during ``phase`` into a typed error.

    The single mapping table of the package: the I/O layer catches ``Exception`` around each
    phase and raises ``map_transport_error(exc, ...) from exc``. An exception that is already a
    :class:`TransportError` passes through unchanged.
    """
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, trio.ClosedResourceError) or (
        isinstance(exc, OSError) and exc.errno == errno.EBADF
    ):
        return StreamClosed(
            "the connection was closed by this client", endpoint=endpoint, phase=phase
        )
    cls = _FAILURE_BY_PHASE.get(phase, ReadError)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectError(
            f"TLS certificate verification failed: {exc}", endpoint=endpoint, phase=phase
        )
    if isinstance(exc, trio.BrokenResourceError):
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError):
            return cls(f"TLS error: {cause}", endpoint=endpoint, phase=phase)
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return cls(_ERRNO_WORDS[cause.errno], endpoint=endpoint, phase=phase)
        return cls(f"connection broken: {cause or exc}", endpoint=endpoint, phase=phase)
    if isinstance(exc, OSError):
        if phase == "connect" and exc.errno in _EXHAUSTED:
            exhausted, message = _EXHAUSTED[exc.errno]
            return exhausted(message, endpoint=endpoint, phase=phase)
        words = _ERRNO_WORDS.get(exc.errno or -1) or str(exc)
        return cls(words, endpoint=endpoint, phase=phase)
    return cls(f"{type(exc).__name__}: {exc}", endpoint=endpoint, phase=phase)
