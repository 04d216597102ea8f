"""Checks of what a request carries, for the canned apps of :mod:`trio_infer.testing`.

Rule: an app reads a value only through one of these checks, so a bad value (a wrong JSON
type, a non-numeric or out-of-range query value, a count that would make the server allocate
or sleep without bound) becomes :class:`Rejected`, which the app answers as a 4xx in its own
error shape, naming the value and what was expected. Nothing here is an error of the server:
the server keeps serving, and the client learns what it did wrong.

Numbers in query strings are ASCII digits only: Python's ``int`` and ``float`` also take
Arabic-Indic and other Unicode digits, ``" 1 "``, ``"1_0"``, ``"nan"`` and ``"inf"``, which no
HTTP server should.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Final, NoReturn

__all__ = [
    "Rejected",
    "describe",
    "json_object",
    "optional_bool",
    "optional_object",
    "query_seconds",
    "query_whole_number",
]

_WHOLE: Final = re.compile(r"[0-9]+")
_DECIMAL: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class Rejected(Exception):
    """The request is refused: answer ``status`` with ``message`` (``param`` names the
    offending field, for error shapes that carry it; ``headers`` go on the answer)."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        param: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.headers = tuple(headers)


def describe(value: Any) -> str:
    """``repr(value)``, cut short: messages name the value without echoing a whole body."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse_constant(name: str) -> NoReturn:
    # json.loads takes NaN and Infinity, which are not JSON and which an app could not
    # send back as JSON either.
    raise Rejected(f"the body is not JSON: {name} is not a JSON number")


def json_object(body: bytes, what: str = "the body") -> dict[str, Any]:
    """``body`` parsed as a JSON object, or :class:`Rejected` saying why not."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise Rejected(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise Rejected(f"{what} is not usable JSON: it is nested too deeply") from None
    if not isinstance(value, dict):
        raise Rejected(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def optional_object(obj: dict[str, Any], key: str, path: str = "") -> dict[str, Any]:
    """``obj[key]`` if it is an object, ``{}`` if absent or null, else :class:`Rejected`."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        name = path + key
        raise Rejected(f"{name}: must be an object or null, got {describe(value)}", param=name)
    return value


def optional_bool(obj: dict[str, Any], key: str, path: str = "") -> bool | None:
    """``obj[key]`` if it is true or false, ``None`` if absent or null, else :class:`Rejected`."""
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    name = path + key
    raise Rejected(f"{name}: must be true, false or null, got {describe(value)}", param=name)


def query_whole_number(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    """A query parameter that counts something: ASCII digits, from 0 to ``maximum``."""
    raw = query.get(name)
    if raw is None:
        return default
    if _WHOLE.fullmatch(raw) and int(raw) <= maximum:
        return int(raw)
    raise Rejected(
        f"query parameter {name}={raw!r} must be a whole number from 0 to {maximum}", param=name
    )


def query_seconds(query: dict[str, str], name: str, default: float, maximum: float) -> float:
    """A query parameter in seconds: a decimal number from 0 to ``maximum`` (never NaN)."""
    raw = query.get(name)
    if raw is None:
        return default
    if _DECIMAL.fullmatch(raw):
        value = float(raw)
        if math.isfinite(value) and value <= maximum:
            return value
    raise Rejected(
        f"query parameter {name}={raw!r} must be a number of seconds from 0 to {maximum:g}",
        param=name,
    )
