"""Canonical CBOR.

Every byte that Autarky hashes or signs is produced by :func:`canonical_encode`, and every byte
it accepts from outside for hashing is checked by :func:`canonical_decode`.

The data model is deliberately small, so that two encoders can never disagree:

* integers (any size), byte strings, text strings, ``True``/``False``/``None``,
  lists, and maps whose keys are text strings or integers;
* no floats, no tags, no ``undefined``, no indefinite lengths, no duplicate keys.

Map keys are ordered the way cbor2's ``canonical=True`` orders them (RFC 7049 section 3.9:
shorter encoded key first, then bytewise). Golden vectors in ``tests/golden`` pin this order.

The decoder refuses non-canonical input by re-encoding what it decoded and comparing the
bytes: any second encoding of the same value (longer integer heads, unsorted keys,
indefinite lengths, duplicate keys that collapse) fails that comparison.
"""

from __future__ import annotations

from typing import Any

import cbor2

from autarky.encoding.encoder_cache import dumps_canonical, dumps_plain

MAX_DEPTH = 32
"""Deepest nesting of lists and maps accepted; deeper input is refused before recursion hurts."""


class DecodeError(ValueError):
    """Input bytes are not one canonical CBOR item of the allowed data model."""


def _check_model(value: Any, depth: int) -> None:
    """Raise DecodeError unless ``value`` is inside the allowed data model."""
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind is int or kind is bytes or kind is str or kind is bool or value is None:
        return
    if kind is list:
        for item in value:
            _check_model(item, depth + 1)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str and type(key) is not int:
                raise DecodeError(f"map key of type {type(key).__name__} is not allowed")
            _check_model(item, depth + 1)
        return
    raise DecodeError(f"value of type {kind.__name__} is not allowed in canonical CBOR")


def canonical_encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises ``TypeError`` for values outside the data model.

    Tuples are encoded as lists, so callers may pass either.
    """
    if type(value) is int and -_UINT64_LIMIT <= value < _UINT64_LIMIT:
        # Most state values are integers; cbor2's per-call set-up costs ten times the encoding.
        return encode_int(value)
    try:
        prepared = _in_key_order(value, 0)
    except _LargeMap:
        _check_encodable(value, 0)
        return dumps_canonical(value)
    return dumps_plain(prepared)


_UINT64_LIMIT = 1 << 64


def encode_int(value: int) -> bytes:
    """Canonical CBOR of an integer in [-2**64, 2**64): the shortest head of major type 0 or 1.

    Equal to ``cbor2.dumps(value, canonical=True)``; ``tests/property/test_encoding_fast.py`` proves it.
    """
    major = 0
    if value < 0:
        major, value = 0x20, -1 - value
    assert value < _UINT64_LIMIT
    if value < 24:
        return bytes((major | value,))
    if value < 0x100:
        return bytes((major | 24, value))
    if value < 0x10000:
        return bytes((major | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((major | 26,)) + value.to_bytes(4, "big")
    return bytes((major | 27,)) + value.to_bytes(8, "big")


_SCALARS = frozenset({int, bytes, str, bool, type(None)})
_KEY_TYPES = frozenset({str, int})


def _check_keys(mapping: dict[Any, Any]) -> None:
    """Raise TypeError unless every key of ``mapping`` is a text string or an integer."""
    if not _KEY_TYPES.issuperset(map(type, mapping)):
        bad = next(key for key in mapping if type(key) is not str and type(key) is not int)
        raise TypeError(f"map key of type {type(bad).__name__} is not allowed")


def _check_encodable(value: Any, depth: int) -> None:
    """Raise TypeError unless ``value`` is inside the data model (tuples count as lists).

    Nothing is copied: cbor2 encodes a tuple exactly as the list of its items. A list or map whose
    items are all scalars is checked in one pass in C (``frozenset.issuperset`` over the item types)
    instead of a Python loop (a module record is a map of a dozen scalars, encoded on every state
    write). Accepts and refuses exactly what the plain recursive definition does:
    ``tests/property/test_encoding_fast.py`` proves it.
    """
    if depth > MAX_DEPTH:
        raise TypeError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is list or kind is tuple:
        if depth < MAX_DEPTH and _SCALARS.issuperset(map(type, value)):
            return
        for item in value:
            _check_encodable(item, depth + 1)
        return
    if kind is dict:
        _check_keys(value)
        if depth < MAX_DEPTH and _SCALARS.issuperset(map(type, value.values())):
            return
        for item in value.values():
            _check_encodable(item, depth + 1)
        return
    raise TypeError(f"value of type {kind.__name__} cannot be encoded canonically")


class _LargeMap(Exception):
    """A map too large for :func:`_in_key_order`: cbor2's canonical mode sorts it instead."""


_SMALL_MAP = 32
_KEY_ORDER: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
"""The keys of a map as it was built -> None if that is canonical order, else the canonical order.
Module records are built with the same keys in the same order every time, so this stays small; it
stops growing at ``_KEY_ORDER_LIMIT`` entries (maps keyed by data are then sorted each time)."""
_KEY_ORDER_LIMIT = 4096


def _canonical_order(keys: tuple[Any, ...]) -> tuple[Any, ...] | None:
    order = _KEY_ORDER.get(keys, keys)
    if order is not keys:
        return order
    ranked = sorted((len(encoded), encoded, key) for key in keys for encoded in (dumps_canonical(key),))
    ordered = tuple(key for _, _, key in ranked)
    result = None if ordered == keys else ordered
    if len(_KEY_ORDER) < _KEY_ORDER_LIMIT:
        _KEY_ORDER[keys] = result
    return result


def canonical_key_order(keys: tuple[Any, ...]) -> tuple[Any, ...]:
    """``keys`` (distinct text strings or integers) in the order canonical CBOR sorts map keys; a
    map built in this order encodes plainly to its canonical bytes (:func:`encode_ordered`)."""
    order = _canonical_order(keys)
    return keys if order is None else order


def encode_ordered(value: Any) -> bytes:
    """Canonical CBOR of a value this process built with every map already in canonical key order
    (:func:`canonical_key_order`) and only data-model values: encoded as it is, without looking
    for tuples, floats or key order (receipts and events: ``autarky.ledger.block``). Equal to
    :func:`canonical_encode` for such values (``tests/property/test_encoding_fast.py``)."""
    return dumps_plain(value)


def _in_key_order(value: Any, depth: int) -> Any:
    """``value`` checked like :func:`_check_encodable`, with every map's keys in canonical order
    (RFC 7049 3.9: shorter encoded key first, then bytewise), so that cbor2's plain encoding of it
    is the canonical encoding of ``value``; about twice as fast as cbor2's canonical mode, which
    encodes and sorts the keys of every map on every call. Copies only the containers it reorders
    (and their parents). Raises :class:`_LargeMap` for a map of more than ``_SMALL_MAP`` keys.
    ``tests/property/test_encoding_fast.py`` proves the bytes equal cbor2's canonical encoding."""
    if depth > MAX_DEPTH:
        raise TypeError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        if depth < MAX_DEPTH and _SCALARS.issuperset(map(type, value)):
            return value
        items = [_in_key_order(item, depth + 1) for item in value]
        for new, old in zip(items, value, strict=True):
            if new is not old:
                return items
        return value
    if kind is dict:
        _check_keys(value)
        if len(value) > _SMALL_MAP:
            raise _LargeMap
        keys = tuple(value)
        order = _canonical_order(keys)
        if depth < MAX_DEPTH and _SCALARS.issuperset(map(type, value.values())):
            return value if order is None else {key: value[key] for key in order}
        if order is not None:
            return {key: _in_key_order(value[key], depth + 1) for key in order}
        changed: dict[Any, Any] | None = None  # keys already in order: copy only if a value changes
        for key, item in value.items():
            if type(item) in _SCALARS:
                continue
            new = _in_key_order(item, depth + 1)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    raise TypeError(f"value of type {kind.__name__} cannot be encoded canonically")


def canonical_decode(data: bytes, max_bytes: int | None = None) -> Any:
    """Decode one canonical CBOR item, refusing anything another encoder could also have produced."""
    if type(data) is not bytes:
        raise DecodeError("input must be bytes")
    if max_bytes is not None and len(data) > max_bytes:
        raise DecodeError(f"input of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data:
        raise DecodeError("empty input")
    try:
        value = cbor2.loads(data)
    except RecursionError as exc:
        raise DecodeError("nesting too deep") from exc
    except (cbor2.CBORDecodeError, ValueError, TypeError, ArithmeticError, MemoryError) as exc:
        # ArithmeticError: cbor2 evaluates semantic tags such as bigfloats (tag 5) while decoding, and
        # a huge exponent raises decimal.Overflow before the model check could refuse the tag.
        raise DecodeError(f"not valid CBOR: {exc!r}"[:300]) from exc
    _check_model(value, 0)
    if dumps_canonical(value) != data:
        raise DecodeError("not canonical CBOR (or trailing bytes)")
    return value
