"""Ledger state: a map from text keys to canonical-CBOR bytes, seen through overlays.

The committed state is any :class:`StateReader` (the node keeps it in memory, mirrored to SQLite).
Execution never writes to it directly: a block writes into an :class:`Overlay`, each transaction
into an overlay of the block's, and each transaction's messages into an overlay of the
transaction's. Discarding an overlay is the rollback; :meth:`Overlay.commit` pushes its writes one
level up. At the end of a block, :meth:`Overlay.changes` is the block's write set, in key order,
which updates the state commitment and is stored by the node in one database transaction.

Key layout: ``<owner>/<table>/<id>...``, e.g. ``bank/bal/<did>/<asset>``. Each module reads and
writes only keys under its own name; other modules go through its keeper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from sortedcontainers import SortedList

from autarky.encoding import canonical_encode, decode_trusted

T = TypeVar("T")


class StateReader(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def iter_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, in ascending key order."""
        ...


class MappingState:
    """A read-only :class:`StateReader` over a plain mapping (the node's committed state)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, bytes]) -> None:
        self._data = data

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def iter_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        data = self._data
        for key in sorted(k for k in data if k.startswith(prefix)):
            yield key, data[key]


class SortedState(MappingState):
    """The committed state of a node or an in-memory chain: a dict plus its keys kept sorted.

    ``iter_prefix`` walks only the keys under the prefix (``O(log n + k)``) instead of sorting
    every key of the state, so modules can list their records (and scan them in ``end_block``)
    on a state of a million keys. Change it only through :meth:`apply` (or :meth:`load`), which
    keep the dict and the sorted keys equal.
    """

    __slots__ = ("_keys", "data")

    def __init__(self, data: dict[str, bytes] | None = None) -> None:
        self.data: dict[str, bytes] = {} if data is None else data
        super().__init__(self.data)
        self._keys: SortedList = SortedList(self.data)

    def load(self, items: Mapping[str, bytes]) -> None:
        """Add many keys at once (opening a node)."""
        self.data.update(items)
        self._keys = SortedList(self.data)

    def apply(self, changes: Iterable[tuple[str, bytes | None]]) -> None:
        """Apply a block's write set (``None`` deletes)."""
        data, keys = self.data, self._keys
        for key, value in changes:
            if value is None:
                if data.pop(key, None) is not None:
                    keys.remove(key)
            else:
                if key not in data:
                    keys.add(key)
                data[key] = value

    def iter_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        data = self.data
        for key in self._keys.irange(minimum=prefix):
            if not key.startswith(prefix):
                return
            yield key, data[key]

    def __len__(self) -> int:
        return len(self.data)


class Overlay:
    """Buffered writes over a parent reader. ``None`` as a written value means deleted."""

    __slots__ = ("_index", "_parent", "_writes")

    INDEX_MIN_WRITES = 64
    """A prefix scan of an overlay holding at least this many writes builds :attr:`_index`."""

    def __init__(self, parent: StateReader) -> None:
        self._parent = parent
        self._writes: dict[str, bytes | None] = {}
        self._index: SortedList | None = None
        """The written keys in ascending order, or None until a prefix scan of a large overlay
        needs it; from then on every write of a new key is added to it. A block's overlay
        holds thousands of writes and its modules scan prefixes in end_block, once per seller
        or book: filtering and sorting every write per scan made that quadratic, and so did
        inserting into a plain sorted list (a memmove of the whole list per new key: with
        10,000 machines a block writes about a million keys), hence a ``SortedList``."""

    def get(self, key: str) -> bytes | None:
        # Walk the overlay chain in a loop: one call per lookup instead of one per level.
        layer: StateReader = self
        while type(layer) is Overlay:
            writes = layer._writes
            if key in writes:
                return writes[key]
            layer = layer._parent
        return layer.get(key)

    def set(self, key: str, value: bytes) -> None:
        assert type(value) is bytes, "state values are bytes"
        if self._index is not None and key not in self._writes:
            self._index.add(key)
        self._writes[key] = value

    def delete(self, key: str) -> None:
        if self._index is not None and key not in self._writes:
            self._index.add(key)
        self._writes[key] = None

    def _written_under(self, prefix: str) -> list[tuple[str, bytes | None]]:
        """This overlay's writes under ``prefix``, in key order."""
        writes = self._writes
        if self._index is None:
            if len(writes) < self.INDEX_MIN_WRITES:
                return sorted((key, value) for key, value in writes.items() if key.startswith(prefix))
            self._index = SortedList(writes)
        found: list[tuple[str, bytes | None]] = []
        for key in self._index.irange(minimum=prefix):
            if not key.startswith(prefix):
                break
            found.append((key, writes[key]))
        return found

    def iter_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        # A lazy merge of the parent's (sorted) keys with this overlay's sorted writes under the
        # prefix: a caller that stops early (a due index read up to "now") reads only what it uses.
        local = self._written_under(prefix)
        i, n = 0, len(local)
        for key, value in self._parent.iter_prefix(prefix):
            while i < n and local[i][0] < key:
                written_key, written = local[i]
                if written is not None:
                    yield written_key, written
                i += 1
            if i < n and local[i][0] == key:
                written = local[i][1]
                if written is not None:
                    yield key, written
                i += 1
            else:
                yield key, value
        for written_key, written in local[i:]:
            if written is not None:
                yield written_key, written

    # Typed helpers: values are canonical CBOR.
    def get_obj(self, key: str) -> Any:
        raw = self.get(key)
        return None if raw is None else decode_trusted(raw)

    def set_obj(self, key: str, value: Any) -> None:
        self.set(key, canonical_encode(value))

    def child(self) -> Overlay:
        return Overlay(self)

    def commit(self) -> None:
        """Push this overlay's writes into its parent, which must be an :class:`Overlay`."""
        parent = self._parent
        assert isinstance(parent, Overlay), "only an overlay of an overlay can be committed"
        if parent._index is not None:
            parent_writes = parent._writes
            for key in self._writes:
                if key not in parent_writes:
                    parent._index.add(key)
        parent._writes.update(self._writes)
        self._writes = {}
        self._index = None

    def changes(self) -> list[tuple[str, bytes | None]]:
        """This overlay's writes in ascending key order (the block write set)."""
        return sorted(self._writes.items())

    def __len__(self) -> int:
        return len(self._writes)


def get_obj(state: StateReader, key: str) -> Any:
    raw = state.get(key)
    return None if raw is None else decode_trusted(raw)


_RECORDS: dict[tuple[Callable[[Any], Any], bytes], Any] = {}
"""(build, stored bytes) -> the immutable record ``build`` made of them (:func:`get_record`)."""
_RECORDS_LIMIT = 1024


def get_record(state: StateReader, key: str, build: Callable[[Any], T]) -> T | None:
    """``build(decoded value)`` of ``key``, or None: for small records read on every transaction
    (a module's parameters, a market zone) that ``build`` turns into an immutable object.

    The object is remembered by the stored bytes, so the same bytes are decoded and built once;
    a record changed by governance has other bytes and is built anew. ``build`` must be a pure
    function of the value, returning an object nobody mutates (a frozen dataclass). The first
    :data:`_RECORDS_LIMIT` distinct (build, bytes) pairs are kept; later ones are built each time.
    """
    raw = state.get(key)
    if raw is None:
        return None
    cached = _RECORDS.get((build, raw), _MISSING)
    if cached is not _MISSING:
        return cached  # type: ignore[no-any-return]
    record = build(decode_trusted(raw))
    if len(_RECORDS) < _RECORDS_LIMIT:
        _RECORDS[(build, raw)] = record
    return record


_MISSING = object()
