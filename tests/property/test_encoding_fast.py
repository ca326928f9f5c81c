"""The fast encoding paths equal the reference encoder (cbor2, canonical) on every input."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from autarky.encoding import canonical_encode, decode_trusted, encode_int
from autarky.encoding.cbor import MAX_DEPTH, _check_encodable

INT64_RANGE = st.integers(min_value=-(2**64), max_value=2**64 - 1)
BOUNDARIES = [
    0,
    23,
    24,
    255,
    256,
    65535,
    65536,
    2**32 - 1,
    2**32,
    2**64 - 1,
    -1,
    -24,
    -25,
    -256,
    -257,
    -(2**64),
]


@given(INT64_RANGE)
def test_encode_int_equals_cbor2(value: int) -> None:
    assert encode_int(value) == cbor2.dumps(value, canonical=True)
    assert canonical_encode(value) == cbor2.dumps(value, canonical=True)


def test_encode_int_boundaries() -> None:
    for value in BOUNDARIES:
        assert encode_int(value) == cbor2.dumps(value, canonical=True), value


@given(INT64_RANGE)
def test_decode_trusted_round_trips_ints(value: int) -> None:
    assert decode_trusted(canonical_encode(value)) == value


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@given(values)
def test_decode_trusted_equals_cbor2(value: object) -> None:
    encoded = canonical_encode(value)
    assert decode_trusted(encoded) == cbor2.loads(encoded)


@given(values)
def test_reused_encoder_equals_cbor2(value: object) -> None:
    from autarky.encoding.encoder_cache import dumps_canonical

    assert dumps_canonical(value) == cbor2.dumps(value, canonical=True)


def test_reused_encoder_recovers_after_a_failure() -> None:
    import pytest

    from autarky.encoding.encoder_cache import dumps_canonical

    with pytest.raises(Exception):  # noqa: B017 - cbor2 raises its own encoder error type
        dumps_canonical([1, object()])
    assert dumps_canonical([1, 2]) == cbor2.dumps([1, 2], canonical=True)


def test_reused_encoder_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from autarky.encoding.encoder_cache import dumps_canonical

    items = [{"n": i, "b": bytes([i % 256]) * (i % 50), "l": list(range(i % 7))} for i in range(4000)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(dumps_canonical, items))
    assert results == [cbor2.dumps(item, canonical=True) for item in items]


def _normalise_reference(value: object, depth: int) -> object:
    """The plain recursive definition ``canonical_encode`` checks and converts by."""
    if depth > MAX_DEPTH:
        raise TypeError("too deep")
    if type(value) in (int, bytes, str, bool) or value is None:
        return value
    if type(value) in (list, tuple):
        return [_normalise_reference(item, depth + 1) for item in value]  # type: ignore[attr-defined]
    if type(value) is dict:
        result = {}
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError("bad key")
            result[key] = _normalise_reference(item, depth + 1)
        return result
    raise TypeError("not in the model")


SCALARS = st.one_of(
    st.integers(-(2**70), 2**70), st.binary(max_size=4), st.text(max_size=4), st.booleans(), st.none()
)
OUTSIDE = st.one_of(st.floats(allow_nan=False), st.sets(st.integers(), max_size=2), st.frozensets(st.just(1)))
VALUES = st.recursive(
    st.one_of(SCALARS, OUTSIDE),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(
            st.one_of(st.text(max_size=3), st.integers(-3, 3), st.binary(max_size=2)), children, max_size=4
        ),
    ),
    max_leaves=20,
)


def _nested(depth: int, leaf: object) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _outcome(value: object) -> object:
    """What ``canonical_encode`` does with ``value``: its bytes, or a refusal."""
    try:
        _check_encodable(value, 0)
    except TypeError:
        return ("refused",)
    return ("ok", canonical_encode(value))


def _reference_outcome(value: object) -> object:
    try:
        normalised = _normalise_reference(value, 0)
    except TypeError:
        return ("refused",)
    return ("ok", cbor2.dumps(normalised, canonical=True))


@given(VALUES)
def test_check_equals_the_recursive_definition(value: object) -> None:
    # Same values accepted, and the accepted ones (tuples left as they are) encode to the bytes of
    # the normalised copy (tuples turned into lists).
    assert _outcome(value) == _reference_outcome(value)


@given(st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2), SCALARS)
def test_check_depth_limit_equals_the_recursive_definition(depth: int, leaf: object) -> None:
    value = _nested(depth, leaf)
    assert _outcome(value) == _reference_outcome(value)
    for wrap in (list, tuple):
        assert _outcome(wrap([value])) == _reference_outcome(wrap([value]))


@given(
    st.dictionaries(st.one_of(st.text(max_size=6), st.integers(-300, 300)), SCALARS, max_size=40),
    st.randoms(use_true_random=False),
)
def test_map_key_order_does_not_change_the_bytes(mapping: dict, random: object) -> None:
    # Whatever order a map was built in (and above the 32 keys the fast path sorts itself), the
    # encoding is cbor2's canonical one, nested or not.
    keys = list(mapping)
    random.shuffle(keys)  # type: ignore[attr-defined]
    shuffled = {key: mapping[key] for key in keys}
    expected = cbor2.dumps(mapping, canonical=True)
    assert canonical_encode(shuffled) == expected
    assert canonical_encode(mapping) == expected
    assert canonical_encode([shuffled, {"m": shuffled}]) == cbor2.dumps(
        [mapping, {"m": mapping}], canonical=True
    )
    assert canonical_encode((1, (shuffled,))) == cbor2.dumps([1, [mapping]], canonical=True)


EVENT_VALUES = st.one_of(
    st.integers(-(2**70), 2**70), st.binary(max_size=8), st.text(max_size=8), st.booleans(), st.none()
)


@given(st.text(max_size=12), st.dictionaries(st.text(min_size=1, max_size=10), EVENT_VALUES, max_size=12))
def test_event_and_receipt_consensus_encoding_is_canonical(event_type: str, attributes: dict) -> None:
    # Events are built with their attributes sorted by name (TxContext.emit); their consensus
    # encoding puts them in canonical key order and encodes plainly: the same bytes as before.
    from autarky.encoding import encode_ordered
    from autarky.ledger.block import Event, Receipt

    event = Event(event_type, tuple(sorted(attributes.items())))
    assert encode_ordered(event.consensus_cbor()) == cbor2.dumps(event.to_cbor(), canonical=True)
    receipt = Receipt(bytes(32), 0, "ok", (event, event))
    expected = cbor2.dumps([bytes(32), "ok", [event.to_cbor(), event.to_cbor()]], canonical=True)
    assert receipt.consensus_bytes() == expected


def test_market_records_encode_in_canonical_key_order() -> None:
    from autarky.encoding import canonical_key_order
    from autarky.modules.market.keeper import ClearingRecord, OrderRecord

    for record_type in (OrderRecord, ClearingRecord):
        slots = record_type.__slots__
        assert canonical_key_order(slots) == tuple(
            sorted(slots, key=lambda name: (len(cbor2.dumps(name)), cbor2.dumps(name)))
        )
