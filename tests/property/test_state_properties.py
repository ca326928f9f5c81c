"""``SortedState`` and nested ``Overlay`` reads equal a plain dict model (prefix listings included).

``Overlay.iter_prefix`` merges its parent's sorted keys with its own writes lazily, and
``SortedState`` keeps its keys in a sorted list; both are checked here against the obvious
definition (apply the writes of each level to a dict, filter, sort), over random writes, deletes
and commits of a transaction overlay into a block overlay.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autarky.ledger.state import Overlay, SortedState

KEYS = st.sampled_from(["a", "a/", "a/b", "a/b/c", "a/c", "ab", "b", "b/a", "", "a/b0", "a/bb"])
VALUES = st.one_of(st.none(), st.binary(min_size=1, max_size=3))
# (0: write in the block overlay, 1: write in the transaction overlay, 2: commit the transaction,
#  3: list every prefix now, between writes: an overlay's sorted index must follow later writes)
OPS = st.lists(st.tuples(st.integers(0, 3), KEYS, VALUES), max_size=40)
# Overlay.INDEX_MIN_WRITES: 0 and 2 make the overlays keep a sorted index of their writes from the
# first listing on; 64 keeps these small overlays on the filter-and-sort path.
THRESHOLDS = st.sampled_from([0, 2, 64])
PREFIXES = ["", "a", "a/", "a/b", "b", "c", "ab"]


def _view(base: dict[str, bytes], *layers: dict[str, bytes | None]) -> dict[str, bytes]:
    merged: dict[str, bytes | None] = dict(base)
    for layer in layers:
        merged.update(layer)
    return {key: value for key, value in merged.items() if value is not None}


def _listing(model: dict[str, bytes], prefix: str) -> list[tuple[str, bytes]]:
    return sorted((key, value) for key, value in model.items() if key.startswith(prefix))


@given(st.dictionaries(KEYS, st.binary(min_size=1, max_size=3)), OPS, THRESHOLDS)
def test_prefix_listings_through_overlays_equal_the_dict_model(
    base: dict[str, bytes], ops: list[tuple[int, str, bytes | None]], threshold: int
) -> None:
    default = Overlay.INDEX_MIN_WRITES
    Overlay.INDEX_MIN_WRITES = threshold
    try:
        _check_listings(base, ops)
    finally:
        Overlay.INDEX_MIN_WRITES = default


def _check_listings(base: dict[str, bytes], ops: list[tuple[int, str, bytes | None]]) -> None:
    committed = SortedState()
    committed.apply(sorted(base.items()))
    block = Overlay(committed)
    tx = block.child()
    block_writes: dict[str, bytes | None] = {}
    tx_writes: dict[str, bytes | None] = {}
    for level, key, value in ops:
        if level == 2:
            tx.commit()
            block_writes.update(tx_writes)
            tx_writes = {}
            continue
        if level == 3:
            for prefix in PREFIXES:
                assert list(block.iter_prefix(prefix)) == _listing(_view(base, block_writes), prefix)
                assert list(tx.iter_prefix(prefix)) == _listing(_view(base, block_writes, tx_writes), prefix)
            continue
        target, writes = (block, block_writes) if level == 0 else (tx, tx_writes)
        if value is None:
            target.delete(key)
        else:
            target.set(key, value)
        writes[key] = value
    for prefix in PREFIXES:
        assert list(committed.iter_prefix(prefix)) == _listing(base, prefix)
        assert list(block.iter_prefix(prefix)) == _listing(_view(base, block_writes), prefix)
        assert list(tx.iter_prefix(prefix)) == _listing(_view(base, block_writes, tx_writes), prefix)
    # Committing the block's write set keeps the sorted keys and the dict of the state equal.
    tx.commit()
    committed.apply(block.changes())
    final = _view(base, block_writes, tx_writes)
    for prefix in PREFIXES:
        assert list(committed.iter_prefix(prefix)) == _listing(final, prefix)
    assert committed.data == final and len(committed) == len(final)
