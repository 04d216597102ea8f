"""Endpoint strings and their normal form.

Accepted spellings: ``http://h:p/base``, ``https://h`` (port 443), ``h:p`` (http), ``h`` (http,
port 80), and IPv6 literals in brackets, ``[::1]:8000``. Anything else is a
:class:`ConfigError` naming the string.

An :class:`Endpoint` checks its own fields, so one built directly is held to the same rules as
one parsed from a string; its base path goes on the wire in every request target. What
``parse_endpoint`` does beyond parsing, and why:

* the base path is percent-encoded like a request path (``_prepare.percent_encode``: ``/ba se``
  becomes ``/ba%20se``, non-ASCII is encoded as UTF-8, valid ``%XX`` escapes are kept);
* control characters anywhere in the string are refused: ``urllib.parse`` silently drops TAB,
  CR and LF, so a URL would otherwise not mean what it says;
* a non-ASCII host name is refused with its IDNA form in the message, rather than encoded:
  IDNA 2003 (Python's codec) and IDNA 2008 disagree on some names, and which one the caller
  meant is theirs to say;
* credentials in the URL (``http://user:pw@host``) are refused (pass them as headers), and no
  message ever shows them: the URL appears as ``http://***@host``.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Any, Final

import attrs

from ._errors import ConfigError
from ._prepare import percent_encode, target_problem

__all__ = ["Endpoint", "parse_endpoint", "redact_userinfo"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_CONTROL: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
#: characters a host may hold here: a DNS name or IPv4 address, or IPv6 without brackets
_NOT_HOST: Final = re.compile(r"[^A-Za-z0-9\-._~:%]")
#: characters a base path cannot hold as they are (see Endpoint.base_path)
_NOT_BASE_PATH: Final = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]|%(?![0-9A-Fa-f]{2})")


def _char(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


def _check_scheme(_endpoint: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or value not in _DEFAULT_PORTS:
        raise ConfigError(f"Endpoint scheme={value!r} must be 'http' or 'https' (lowercase)")


def _check_host(_endpoint: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"Endpoint host={value!r} must be a str")
    if not value:
        raise ConfigError("Endpoint host is empty; pass a host name or an IP address")
    if not value.isascii():
        try:
            hint = f"; pass its IDNA form {value.encode('idna').decode('ascii')!r}"
        except UnicodeError:
            hint = ""
        raise ConfigError(
            f"Endpoint host={value!r} is not ASCII{hint} (trio-infer does not choose between "
            f"IDNA 2003 and IDNA 2008 for you)"
        )
    bad = _NOT_HOST.search(value)
    if bad is not None:
        raise ConfigError(
            f"Endpoint host={value!r} has {_char(bad.group())} at index {bad.start()}, which a "
            f"host cannot contain (an IPv6 address is written without brackets here)"
        )
    if ":" in value:
        if "%" in value:
            raise ConfigError(
                f"Endpoint host={value!r} is an IPv6 address with a zone (%...); link-local "
                f"addresses with a zone are not supported"
            )
        try:
            ipaddress.IPv6Address(value)
        except ValueError as exc:
            problem = str(exc)
        else:
            return
        raise ConfigError(f"Endpoint host={value!r} is not a valid IPv6 address: {problem}")
    if "%" in value:
        raise ConfigError(f"Endpoint host={value!r} has '%', which a host name cannot contain")


def _check_port(_endpoint: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"Endpoint port={value!r} must be a whole number from 1 to 65535")


def _check_base_path(_endpoint: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"Endpoint base_path={value!r} must be a str ('' for none)")
    if not value:
        return
    if not value.startswith("/"):
        raise ConfigError(f"Endpoint base_path={value!r} must be empty or start with '/'")
    if value.endswith("/"):
        raise ConfigError(
            f"Endpoint base_path={value!r} must not end with '/' (every request path starts "
            f"with one); pass {value.rstrip('/')!r}"
        )
    bad = _NOT_BASE_PATH.search(value)
    if bad is None:
        return
    char, index = bad.group(), bad.start()
    if char == "%":
        raise ConfigError(
            f"Endpoint base_path={value!r} has a '%' at index {index} that does not start a "
            f"percent-escape (%XX); write '%25' for a literal '%'"
        )
    if char in "?#":
        raise ConfigError(
            f"Endpoint base_path={value!r} has {_char(char)} at index {index}; a base path "
            f"cannot carry a query or a fragment: put those on the request path"
        )
    problem = target_problem(value)
    if problem is not None:
        raise ConfigError(f"Endpoint base_path={value!r} {problem}")
    raise ConfigError(
        f"Endpoint base_path={value!r} has {_char(char)} at index {index}, which a request "
        f"target cannot carry; pass it percent-encoded: {percent_encode(value)!r} "
        f"(parse_endpoint does this)"
    )


@attrs.frozen
class Endpoint:
    """One server to send requests to, in normal form.

    Every field is checked when the endpoint is built (a :class:`ConfigError` names it), so an
    endpoint passed to the client directly is as safe as one from :func:`parse_endpoint`.

    Attributes:
        scheme: ``"http"`` or ``"https"``.
        host: a DNS name or an IP literal (IPv6 without brackets), ASCII only (pass an IDNA
            name in its ``xn--`` form).
        port: the TCP port, 1 to 65535.
        base_path: prefix joined to every request path: ``""`` for none, else ``/`` followed
            by RFC 3986 path characters and ``%XX`` escapes only, without a trailing slash
            (``parse_endpoint`` percent-encodes the rest).
    """

    scheme: str = attrs.field(validator=_check_scheme)
    host: str = attrs.field(validator=_check_host)
    port: int = attrs.field(validator=_check_port)
    base_path: str = attrs.field(default="", validator=_check_base_path)

    @property
    def origin(self) -> str:
        """``scheme://host:port``, without the base path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint as a URL, ``scheme://host:port/base``."""
        return self.origin + self.base_path

    @property
    def authority(self) -> str:
        """The ``Host`` header value; the port is omitted when it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if _DEFAULT_PORTS[self.scheme] == self.port:
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def _userinfo(text: str) -> str | None:
    """The ``user:password`` part of a URL (with or without a scheme), if any."""
    start = text.find("://")
    start = 0 if start == -1 or any(c in text[:start] for c in "/?#@") else start + 3
    end = len(text)
    for separator in "/?#":
        found = text.find(separator, start)
        if found != -1:
            end = min(end, found)
    at = text.rfind("@", start, end)
    return text[start:at] if at != -1 else None


def redact_userinfo(text: str) -> str:
    """``text`` (a URL) with its userinfo replaced by ``***``: ``http://***@host``."""
    userinfo = _userinfo(text)
    return text if userinfo is None else text.replace(userinfo + "@", "***@", 1)


def _shown(value: object) -> str:
    if isinstance(value, int | float) or value is None:
        return repr(value)
    return f"of type {type(value).__name__}"


def parse_endpoint(text: str | Endpoint) -> Endpoint:
    """Normalise an endpoint string (see the module docstring for the accepted forms)."""
    if isinstance(text, Endpoint):
        return text
    if not isinstance(text, str):
        raise ConfigError(
            f"endpoint {_shown(text)} is not a string; pass a URL like 'http://host:8000'"
        )
    raw = text.strip()
    userinfo = _userinfo(raw)
    shown = redact_userinfo(raw)
    if not raw:
        raise ConfigError(f"endpoint {text!r} is empty; pass a URL like 'http://host:8000'")
    control = _CONTROL.search(raw)
    if control is not None:
        code = ord(control.group())
        what = "a lone surrogate" if code > 0x7F else "the control character"
        raise ConfigError(
            f"endpoint {shown!r} has {what} U+{code:04X} at index {control.start()} of the "
            f"URL; a URL cannot carry control characters (urllib.parse would drop some "
            f"silently) or lone surrogates"
        )
    candidate = raw if "://" in raw else f"http://{raw}"
    problem: str | None = None
    try:
        parts = urllib.parse.urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        problem = str(exc)
        # urllib's messages may quote the netloc, credentials included
        if userinfo and any(
            len(part) > 2 and part in problem for part in (userinfo, *userinfo.split(":"))
        ):
            problem = "details not shown: they include the URL's credentials"
    if problem is not None:  # raised outside the except: the original is not chained
        raise ConfigError(f"endpoint {shown!r} is not a valid URL: {problem}")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(
            f"endpoint {shown!r} has scheme {parts.scheme!r}; only 'http' and 'https' are supported"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"endpoint {shown!r} carries credentials in the URL; pass them as headers "
            f"instead (headers={{'authorization': ...}})"
        )
    host = parts.hostname
    if not host:
        raise ConfigError(f"endpoint {shown!r} has no host; pass a URL like 'http://host:8000'")
    if parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ConfigError(
            f"endpoint {shown!r} has a query or fragment; an endpoint is a base URL, put those "
            f"on the request path instead"
        )
    if ":" in host and "%" not in host:
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError as exc:
            problem = str(exc)
        if problem is not None:
            raise ConfigError(f"endpoint {shown!r} has an invalid IPv6 literal: {problem}")
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if port == 0:
        raise ConfigError(f"endpoint {shown!r} has port 0; pass the port the server listens on")
    try:
        return Endpoint(scheme, host, port, percent_encode(parts.path.rstrip("/")))
    except ConfigError as exc:
        problem = str(exc)
    raise ConfigError(f"endpoint {shown!r}: {problem}")
