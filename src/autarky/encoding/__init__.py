"""Canonical encodings: the only bytes Autarky hashes or signs come from here."""

from autarky.encoding.cbor import (
    MAX_DEPTH,
    DecodeError,
    canonical_decode,
    canonical_encode,
    canonical_key_order,
    encode_int,
    encode_ordered,
)
from autarky.encoding.cbor_trusted import decode_trusted, encode_trusted

__all__ = [
    "MAX_DEPTH",
    "DecodeError",
    "canonical_decode",
    "canonical_encode",
    "canonical_key_order",
    "decode_trusted",
    "encode_int",
    "encode_ordered",
    "encode_trusted",
]
