"""An ordered, case-insensitive header list.

Headers are kept as ``str`` (decoded latin-1, as HTTP/1.1 field values are octets)
in arrival order, with the lower-cased name beside the original so lookups need no
per-call ``lower()`` of the stored names. Repeated fields are kept as repeated entries.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator


class Headers:
    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        # each entry: [lower_name, name, value], never changed in place: an edit puts a
        # new entry, so a copy of the list may share its entries (``upstream_response``)
        self._items: list[list[str]] = [[n.lower(), n, v] for n, v in items]

    @staticmethod
    def from_lowered(items: list[list[str]]) -> Headers:
        """Adopt ``[lower, name, value]`` entries built by a parser (no copy)."""
        h = Headers()
        h._items = items
        return h

    def get(self, lname: str, default: str | None = None) -> str | None:
        """First value of a field; ``lname`` must already be lower-case."""
        for e in self._items:
            if e[0] == lname:
                return e[2]
        return default

    def get_all(self, lname: str) -> list[str]:
        return [e[2] for e in self._items if e[0] == lname]

    def get_joined(self, lname: str) -> str | None:
        """All values of a field joined with ``, `` (RFC 9110 5.3), or None."""
        vals = self.get_all(lname)
        return ", ".join(vals) if vals else None

    def __contains__(self, lname: object) -> bool:
        return any(e[0] == lname for e in self._items)

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name with one value (appended if absent)."""
        lname = name.lower()
        for i, e in enumerate(self._items):
            if e[0] == lname:
                self._items[i] = [lname, name, value]
                self._items[i + 1 :] = [x for x in self._items[i + 1 :] if x[0] != lname]
                return
        self._items.append([lname, name, value])

    def add(self, name: str, value: str) -> None:
        self._items.append([name.lower(), name, value])

    def remove(self, lname: str) -> None:
        self._items = [e for e in self._items if e[0] != lname]

    def remove_many(self, lnames: Container[str]) -> None:
        self._items = [e for e in self._items if e[0] not in lnames]

    def items(self) -> Iterator[tuple[str, str]]:
        """``(name, value)`` pairs with the original name case."""
        for e in self._items:
            yield e[1], e[2]

    def lower_items(self) -> Iterator[tuple[str, str]]:
        """``(lower_name, value)`` pairs."""
        for e in self._items:
            yield e[0], e[2]

    def raw(self) -> list[list[str]]:
        """The live ``[lower, name, value]`` entries, for serializers on the hot path
        (to be read, or replaced whole: never changed in place)."""
        return self._items

    def copy(self) -> Headers:
        return Headers.from_lowered([e[:] for e in self._items])

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self.items()

    def __repr__(self) -> str:
        return f"Headers({[(e[1], e[2]) for e in self._items]!r})"
