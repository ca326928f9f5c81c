"""The fast encoding paths equal the reference encoder (cbor2, canonical) on every input."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from autarky.encoding import canonical_encode, decode_trusted, encode_int

INT64_RANGE = st.integers(min_value=-(2**64), max_value=2**64 - 1)
BOUNDARIES = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, -1, -24, -25, -256, -257, -(2**64)]


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
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@given(values)
def test_decode_trusted_equals_cbor2(value: object) -> None:
    encoded = canonical_encode(value)
    assert decode_trusted(encoded) == cbor2.loads(encoded)
