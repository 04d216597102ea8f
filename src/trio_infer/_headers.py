"""A read-only, case-insensitive view of response headers, built lazily from the raw pairs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

__all__ = ["SECRET_HEADERS", "Headers", "RawHead"]


class RawHead:
    """A response head's bytes, split into header pairs only if someone asks.

    The httptools codec keeps the received head instead of taking a Python callback per header
    (eight callbacks for a typical nginx response, measured as the largest parsing cost).
    llhttp has already validated these bytes, so splitting them is simple.
    """

    __slots__ = ("_data", "_pairs", "size")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pairs: list[tuple[bytes, bytes]] | None = None
        #: the head's size in bytes (status line and headers, without the blank line)
        self.size = len(data)

    def pairs(self) -> list[tuple[bytes, bytes]]:
        if self._pairs is not None:
            return self._pairs
        pairs: list[tuple[bytes, bytes]] = []
        for line in self._data.split(b"\n")[1:]:  # [0] is the status line
            line = line.rstrip(b"\r")  # the codecs refuse bare LF and obs-fold: CRLF only
            name, _, value = line.partition(b":")
            pairs.append((name, value.strip(b" \t")))
        self._pairs = pairs
        return pairs


class Headers(Mapping[str, str]):
    """Response headers as a case-insensitive mapping of ``str`` to ``str``.

    A header that occurs several times maps to its values joined by ``", "`` (RFC 9110 5.3);
    :meth:`get_list` returns them separately, and :attr:`raw` keeps the bytes exactly as
    received, in order. Names and values are decoded as latin-1, which maps every byte.
    Nothing is parsed until first used, so unread headers cost nothing.
    """

    __slots__ = ("_index", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]] | RawHead) -> None:
        self._raw = raw
        self._index: dict[str, list[str]] | None = None

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """``(name, value)`` byte pairs exactly as received, in order."""
        raw = self._raw
        return raw.pairs() if isinstance(raw, RawHead) else raw

    def _build(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name, value in self.raw:
            index.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        index = self._index if self._index is not None else self._build()
        return ", ".join(index[name.lower()])

    def __contains__(self, name: object) -> bool:
        index = self._index if self._index is not None else self._build()
        return isinstance(name, str) and name.lower() in index

    def __iter__(self) -> Iterator[str]:
        index = self._index if self._index is not None else self._build()
        return iter(index)

    def __len__(self) -> int:
        index = self._index if self._index is not None else self._build()
        return len(index)

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in the order received (``[]`` when absent)."""
        index = self._index if self._index is not None else self._build()
        return list(index.get(name.lower(), ()))

    def __repr__(self) -> str:
        shown = [(n, "[secret]" if n in _SECRET else v) for n, v in self.items()]
        return f"Headers({shown!r})"


#: Header names whose values never appear in reprs, errors or logs.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
_SECRET = SECRET_HEADERS
