"""Request preparation: a call's arguments turned into one request's method, target, headers
and body, without I/O. Whatever the arguments, the result serialises (``_codec.serialize_request``)
to exactly one request, or nothing is produced and :class:`InvalidRequest` says why.

Rule 1, the target. The request target carries RFC 3986 path and query characters only
(unreserved, sub-delims, ``:@/?`` and ``%XX`` escapes). Anything else that is printable is
percent-encoded as UTF-8: non-ASCII, space, ``"<>\\^`{|}[]``, and a ``%`` that does not start a
valid escape (a valid ``%XX`` is the caller's own encoding and is kept). Control characters
(U+0000-U+001F, U+007F, TAB included) are refused rather than encoded, as h11, urllib3 and Go
refuse them: they are far more often an injection than a wish, and a caller who means the byte
can write ``%0D``. ``#`` is refused too: a fragment is never sent, and silently dropping it or
reading it as a literal would both be guesses. ``params`` are encoded with
``urllib.parse.urlencode`` (``+`` for space) from str, int, float, bool (``true``/``false``)
and None (an empty value), or lists and tuples of those (one pair each); nothing else.

Rule 2, headers. Names are RFC 9110 tokens, sent lowercased; values are str of latin-1
characters without control characters other than TAB (CR, LF and NUL would split the request,
the others are refused by servers or read differently by each); optional whitespace around a
value (space, TAB) is stripped, as a server would.

Rule 3, framing. ``content-length``, ``transfer-encoding``, ``connection``, ``keep-alive``,
``proxy-connection``, ``upgrade``, ``te`` and ``trailer`` decide where a request ends or what
the connection does next; they are the client's, and passing one is an error that says what to
use instead. ``host`` is the one a caller may set (virtual hosting through an address): its
value must be an authority, ``host`` or ``host:port`` with a bracketed IPv6 literal allowed,
given once.

Rule 4, errors. Every error names the argument and the offending character (as ``U+XXXX``) and
its index. None shows a header's value, not even part of it, since values carry credentials:
a header name is shown only up to its first invalid character, so a whole header line passed
as a name does not leak either.

Rule 5, speed. ``prepare_request`` runs once per call (tens of thousands per second): the
common case (a known method, a path seen before, no params, json or bytes) is dictionary
lookups and one JSON encode, and the caches are bounded.
"""

from __future__ import annotations

import json as _json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._errors import InvalidRequest

if TYPE_CHECKING:
    from ._endpoint import Endpoint

__all__ = [
    "FRAMING_HEADERS",
    "USER_AGENT",
    "base_headers",
    "encode_headers",
    "encode_method",
    "encode_path",
    "merge_headers",
    "percent_encode",
    "prepare_request",
    "target_problem",
]

HeaderList = list[tuple[bytes, bytes]]

USER_AGENT: Final = b"trio-infer/0.1"

#: The headers that frame a request or steer its connection, and what to do instead.
FRAMING_HEADERS: Final[Mapping[bytes, str]] = {
    b"content-length": "the client computes it from the body; pass content= or json= and leave it out",
    b"transfer-encoding": "the client sends every body whole, with a content-length; pass the body as content=",
    b"connection": "the keep-alive policy sets it; pass keepalive=trio_infer.KeepAlive.off() (or KeepAlive.recycle(...)) to close connections",
    b"keep-alive": "the keep-alive policy decides how long connections live; use keepalive=trio_infer.KeepAlive(...)",
    b"proxy-connection": "the keep-alive policy steers connections; use keepalive=trio_infer.KeepAlive(...)",
    b"upgrade": "the client speaks HTTP/1.1 only and cannot switch protocols",
    b"te": "the client accepts no transfer coding but chunked, and no trailers",
    b"trailer": "the client sends no trailers",
}  # fmt: skip

_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})
_JSON_TYPE: Final = (b"content-type", b"application/json")
_METHODS: Final = {
    name: name.encode() for name in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
}
# A module-level encoder: json.dumps() with non-default options builds one per call (~1 us).
_encode_json_text: Final = _json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_TOKEN: Final = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
#: a path that is already a valid target: the fast path (no '%': escapes are checked below)
_SAFE_PATH: Final = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*")
#: characters refused in a target (never encoded): controls, '#', lone surrogates
_REFUSED: Final = re.compile("[\x00-\x1f\x7f#\ud800-\udfff]")
#: characters percent-encoded in a target: all but RFC 3986's, and a '%' that is no escape
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})")
#: what a header value may hold: TAB, visible ASCII, space, obs-text (latin-1)
_BAD_VALUE: Final = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
_AUTHORITY: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~]+)(?::([0-9]{1,5}))?")
_NOT_AUTHORITY: Final = re.compile(rb"[^A-Za-z0-9\-._~:\[\]]")

_CACHE_SIZE: Final = 1024
#: path -> encoded path; cleared when full so it tracks what is in use now
_paths: dict[str, bytes] = {}
#: header name as passed -> lowercased bytes, for valid non-framing names
_names: dict[str, bytes] = {}


def _char(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


def target_problem(text: str) -> str | None:
    """Why ``text`` cannot become a request target (see rule 1), or None if it can."""
    match = _REFUSED.search(text)
    if match is None:
        return None
    char, index = match.group(), match.start()
    if char == "#":
        return (
            f"has '#' at index {index}: a fragment is never sent to a server; remove it, "
            f"or write '%23' for a literal '#'"
        )
    if "\ud800" <= char <= "\udfff":
        return (
            f"has a lone surrogate (U+{ord(char):04X}) at index {index}, which UTF-8 cannot encode"
        )
    return (
        f"has the control character {_char(char)} at index {index}; control characters are "
        f"refused in a request target (they could split the request): write '%{ord(char):02X}' "
        f"if the server really expects that byte"
    )


def _escape(match: re.Match[str]) -> str:
    return "".join([f"%{byte:02X}" for byte in match.group().encode("utf-8")])


def percent_encode(text: str) -> str:
    """``text`` with every character RFC 3986 does not allow in a path or query
    percent-encoded as UTF-8, and valid ``%XX`` escapes kept. ``text`` must have no
    :func:`target_problem`."""
    return _UNSAFE.sub(_escape, text)


def encode_path(path: object) -> bytes:
    """A call's ``path`` as the target's bytes (rule 1), without the base path."""
    if type(path) is str:
        cached = _paths.get(path)
        if cached is not None:
            return cached
    return _encode_new_path(path)


def _encode_new_path(path: object) -> bytes:
    if not isinstance(path, str):
        raise InvalidRequest(
            f"path {path!r} is of type {type(path).__name__}; pass a str that starts with '/' "
            f"(it is joined to the endpoint's URL)"
        )
    if _SAFE_PATH.fullmatch(path):
        target = path.encode("ascii")
    elif not path.startswith("/"):
        raise InvalidRequest(
            f"path {path!r} must start with '/' (it is joined to the endpoint's URL)"
        )
    else:
        problem = target_problem(path)
        if problem is not None:
            raise InvalidRequest(f"path {path!r} {problem}")
        target = percent_encode(path).encode("ascii")
    if type(path) is str:
        if len(_paths) >= _CACHE_SIZE:
            _paths.clear()
        _paths[path] = target
    return target


def encode_method(method: object) -> bytes:
    """A method name as sent: a token, upper-cased."""
    raw = _METHODS.get(method) if type(method) is str else None
    if raw is not None:
        return raw
    if not isinstance(method, str):
        raise InvalidRequest(
            f"method {method!r} is of type {type(method).__name__}; pass a str such as 'GET'"
        )
    # ASCII first: str.upper() maps some non-ASCII letters to ASCII ones ("\ufb00" -> "FF")
    if not method.isascii() or not _TOKEN.fullmatch(method):
        raise InvalidRequest(f"method {method!r} is not a valid HTTP method token")
    raw = method.upper().encode("ascii")
    if raw == b"CONNECT":
        # A 2xx to CONNECT turns the connection into a tunnel: there is no response body to
        # frame, and reading one would wait for the read timeout.
        raise InvalidRequest("method 'CONNECT' opens a tunnel, which this client does not do")
    return raw


def _query_value(key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    raise InvalidRequest(
        f"params[{key!r}] is of type {type(value).__name__}; query values must be str, int, float, "
        f"bool or None, or a list or tuple of those"
    )


def _encode_params(params: object) -> bytes:
    if not isinstance(params, Mapping):
        raise InvalidRequest(
            f"params must be a mapping of names to values, not {type(params).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if not isinstance(key, str):
            raise InvalidRequest(
                f"params key {key!r} is of type {type(key).__name__}; keys must be str"
            )
        if isinstance(value, list | tuple):
            pairs += [(key, _query_value(key, item)) for item in value]
        else:
            pairs.append((key, _query_value(key, value)))
    try:
        return urllib.parse.urlencode(pairs).encode("ascii")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
    raise InvalidRequest(f"params has a lone surrogate (U+{code:04X}), which UTF-8 cannot encode")


def _shown_name(name: str | bytes | bytearray) -> str:
    """A header name as an error may show it: only up to its first non-token character."""
    if isinstance(name, bytes | bytearray):
        name = bytes(name).decode("latin-1")
    match = _NOT_TOKEN.search(name)
    return repr(name if match is None else name[: match.start()] + "...")


def _encode_name(name: object) -> bytes:
    if not isinstance(name, str):
        shown = f" {_shown_name(name)}" if isinstance(name, bytes | bytearray) else ""
        raise InvalidRequest(
            f"header name{shown} is of type {type(name).__name__}, not a str; header names must be "
            f"str (decode bytes first)"
        )
    if not name:
        raise InvalidRequest("header name '' is empty; pass a name such as 'x-request-id'")
    match = _NOT_TOKEN.search(name)
    if match is not None:
        raise InvalidRequest(
            f"header name {_shown_name(name)} has {_char(match.group())} at index "
            f"{match.start()}, which is not allowed in a header name (RFC 9110 token "
            f"characters only; the rest of the name is not shown)"
        )
    raw = name.lower().encode("ascii")
    hint = FRAMING_HEADERS.get(raw)
    if hint is not None:
        raise InvalidRequest(f"header {raw.decode()!r} is set by the client: {hint}")
    return raw


def _encode_value(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(
            f"header {name!r} has a value of type {type(value).__name__}; header values must "
            f"be str (the value is not shown)"
        )
    match = _BAD_VALUE.search(value)
    if match is not None:
        code, index = ord(match.group()), match.start()
        if code > 0xFF:
            raise InvalidRequest(
                f"header {name!r} has U+{code:04X} at index {index} of its value, which HTTP/1.1 "
                f"cannot carry (latin-1 only); encode the value first (the value is not shown)"
            )
        raise InvalidRequest(
            f"header {name!r} has the control character U+{code:04X} at index {index} of its "
            f"value; CR, LF, NUL and the other control characters except TAB would corrupt "
            f"the request (the value is not shown)"
        )
    return value.encode("latin-1").strip(b" \t")


def _check_host(value: bytes) -> None:
    match = _AUTHORITY.fullmatch(value)
    if match is not None and (match.group(1) is None or int(match.group(1)) <= 65535):
        return
    bad = _NOT_AUTHORITY.search(value)
    where = f" (U+{bad.group()[0]:04X} at index {bad.start()})" if bad is not None else ""
    raise InvalidRequest(
        f"header 'host' must be an authority{where}: a host name, an IPv4 address or a "
        f"bracketed IPv6 address, with an optional ':port' up to 65535, such as "
        f"'example.com:8080'"
    )


def encode_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> HeaderList:
    """Headers as ``(lowercased name, value)`` byte pairs, in order, repeats kept (rules 2-4).

    Raises :class:`InvalidRequest`; the client turns it into a ``ConfigError`` for
    ``Client(headers=...)``.
    """
    if headers is None:
        return []
    items: Iterable[Any]
    if isinstance(headers, Mapping):
        items = headers.items()
    elif isinstance(headers, str | bytes | bytearray | memoryview) or not isinstance(
        headers, Iterable
    ):
        raise InvalidRequest(
            f"headers must be a mapping or an iterable of (name, value) pairs, not "
            f"{type(headers).__name__}"
        )
    else:
        items = headers
    out: HeaderList = []
    host = False
    for index, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            shape = (
                f"a {type(item).__name__} of {len(item)} elements"
                if isinstance(item, tuple | list)
                else f"of type {type(item).__name__}"
            )
            raise InvalidRequest(
                f"headers item {index} is {shape}; each header must be a (name, value) pair "
                f"(the item is not shown)"
            )
        name, value = item
        raw_name = _names.get(name) if type(name) is str else None
        if raw_name is None:
            raw_name = _encode_name(name)
            if type(name) is str:
                if len(_names) >= _CACHE_SIZE:
                    _names.clear()
                _names[name] = raw_name
        raw_value = _encode_value(name, value)
        if raw_name == b"host":
            if host:
                raise InvalidRequest("header 'host' is given twice; a request carries one Host")
            host = True
            _check_host(raw_value)
        out.append((raw_name, raw_value))
    return out


def merge_headers(base: HeaderList, extra: HeaderList) -> HeaderList:
    """``base`` with every header named in ``extra`` replaced by ``extra``'s values (``base``
    itself, unchanged, when ``extra`` is empty)."""
    if not extra:
        return base
    names = {name for name, _ in extra}
    return [pair for pair in base if pair[0] not in names] + extra


def base_headers(endpoint: Endpoint, client_headers: HeaderList, *, close: bool) -> HeaderList:
    """The headers every request to ``endpoint`` starts from: Host, User-Agent, ``connection:
    close`` when the keep-alive policy is off, then the client's own headers (already encoded,
    so they may replace Host or User-Agent but no framing header)."""
    base = [(b"host", endpoint.authority.encode("ascii")), (b"user-agent", USER_AGENT)]
    if close:
        base.append((b"connection", b"close"))
    return merge_headers(base, client_headers)


def _encode_json(value: Any) -> bytes:
    try:
        text = _encode_json_text(value)
    except (TypeError, ValueError, RecursionError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            problem = (
                f"a lone surrogate (U+{ord(exc.object[exc.start]):04X}) that UTF-8 cannot encode"
            )
    raise InvalidRequest(f"json= cannot be encoded as JSON: {problem}")


def prepare_request(
    method: str,
    path: str,
    *,
    base_path: bytes,
    base_headers: HeaderList,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    content: bytes | bytearray | memoryview | None,
    json: Any,
) -> tuple[bytes, bytes, HeaderList, bytes]:
    """``(method, target, headers, body)``: exactly what goes on the wire via
    ``_codec.serialize_request``.

    ``base_path`` is the endpoint's (already a valid target prefix: ``Endpoint`` checks it) and
    ``base_headers`` come from :func:`base_headers`; neither is checked again here. The body is
    ``json`` encoded compactly as UTF-8 (with ``content-type: application/json``), or
    ``content``, or empty; ``content-length`` is added when there is a body and for POST, PUT
    and PATCH. Per-call ``headers`` replace base headers of the same name. Raises
    :class:`InvalidRequest` (nothing is sent).
    """
    raw_method = _METHODS.get(method) if type(method) is str else None
    if raw_method is None:
        raw_method = encode_method(method)
    target = _paths.get(path) if type(path) is str else None
    if target is None:
        target = _encode_new_path(path)
    if base_path:
        target = base_path + target
    if params is not None:
        query = _encode_params(params)
        if query:
            target += (b"&" if b"?" in target else b"?") + query
    request_headers = base_headers
    if json is not None:
        if content is not None:
            raise InvalidRequest("pass either content= or json=, not both")
        body = _encode_json(json)
        request_headers = [*request_headers, _JSON_TYPE]
    elif content is not None:
        if type(content) is bytes:
            body = content
        elif isinstance(content, bytes | bytearray | memoryview):
            body = bytes(content)
        else:
            raise InvalidRequest(
                f"content must be bytes, bytearray or memoryview, not {type(content).__name__}; "
                f"encode text first (content=text.encode()) or pass json="
            )
    else:
        body = b""
    if body or raw_method in _BODY_METHODS:
        request_headers = [*request_headers, (b"content-length", b"%d" % len(body))]
    if headers is not None:
        extra = encode_headers(headers)
        if extra:
            request_headers = merge_headers(request_headers, extra)
    return raw_method, target, request_headers, body
