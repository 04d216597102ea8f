"""A read-only, case-insensitive view of response headers, built lazily from the raw pairs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

__all__ = ["Headers"]


class Headers(Mapping[str, str]):
    """Response headers as a case-insensitive mapping of ``str`` to ``str``.

    A header that occurs several times maps to its values joined by ``", "`` (RFC 9110 5.3);
    :meth:`get_list` returns them separately, and :attr:`raw` keeps the bytes exactly as
    received, in order. Names and values are decoded as latin-1, which maps every byte.
    Nothing is parsed until first used, so unread headers cost nothing.
    """

    __slots__ = ("_index", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self._index: dict[str, list[str]] | None = None

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


_SECRET = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
