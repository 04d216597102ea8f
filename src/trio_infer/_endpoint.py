"""Endpoint strings and their normal form.

Accepted spellings: ``http://h:p/base``, ``https://h`` (port 443), ``h:p`` (http), ``h`` (http,
port 80), and IPv6 literals in brackets, ``[::1]:8000``. Anything else is a
:class:`ConfigError` naming the string.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

import attrs

from ._errors import ConfigError

__all__ = ["Endpoint", "parse_endpoint"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen
class Endpoint:
    """One server to send requests to, in normal form.

    Attributes:
        scheme: ``"http"`` or ``"https"``.
        host: a DNS name or an IP literal (IPv6 without brackets).
        port: the TCP port.
        base_path: prefix joined to every request path, without a trailing slash
            (``""`` for none).
    """

    scheme: str
    host: str
    port: int
    base_path: str = ""

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


def parse_endpoint(text: str | Endpoint) -> Endpoint:
    """Normalise an endpoint string (see the module docstring for the accepted forms)."""
    if isinstance(text, Endpoint):
        return text
    if not isinstance(text, str):
        raise ConfigError(f"endpoint {text!r} is not a string; pass a URL like 'http://host:8000'")
    raw = text.strip()
    if not raw:
        raise ConfigError(f"endpoint {text!r} is empty; pass a URL like 'http://host:8000'")
    candidate = raw if "://" in raw else f"http://{raw}"
    try:
        parts = urllib.parse.urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"endpoint {text!r} is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(
            f"endpoint {text!r} has scheme {parts.scheme!r}; only 'http' and 'https' are supported"
        )
    host = parts.hostname
    if not host:
        raise ConfigError(f"endpoint {text!r} has no host; pass a URL like 'http://host:8000'")
    if parts.query or parts.fragment:
        raise ConfigError(
            f"endpoint {text!r} has a query or fragment; an endpoint is a base URL, put those on "
            f"the request path instead"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"endpoint {text!r} carries credentials in the URL; pass them as headers instead"
        )
    if ":" in host:
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError as exc:
            raise ConfigError(f"endpoint {text!r} has an invalid IPv6 literal: {exc}") from exc
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if port == 0:
        raise ConfigError(f"endpoint {text!r} has port 0; pass the port the server listens on")
    return Endpoint(scheme, host, port, parts.path.rstrip("/"))
