"""The fast encoding paths equal the reference encoder (cbor2, canonical) on every input."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from autarky.encoding import canonical_encode, decode_trusted, encode_int

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
