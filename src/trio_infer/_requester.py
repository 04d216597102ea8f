"""What the protocol layers need from a client: :class:`Requester`.

``_openai.py`` and ``_kserve.py`` build bodies and decode answers; sending is someone else's
job. They depend on this small protocol, not on ``Client``, so that the client does not have
to be imported back (the layers sit above it), and so that anything with these two methods
(a client, a test double, a wrapper that adds tracing) can carry them. ``trio_infer.Client``
satisfies it; its docstrings hold the semantics (permits, retries, timeouts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._response import Response
    from ._retry import Retry
    from ._timeouts import Timeouts

__all__ = ["Requester"]


class Requester(Protocol):
    """Sends one HTTP request: the whole answer (:meth:`request`) or its head, with the body
    still to read (:meth:`stream`). The signatures are ``Client.request`` / ``Client.stream``."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | None = None,
        json: Any = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        retry_non_idempotent: bool | None = None,
    ) -> Response: ...

    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | None = None,
        json: Any = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        retry_non_idempotent: bool | None = None,
    ) -> AbstractAsyncContextManager[Response]: ...
