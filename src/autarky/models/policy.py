"""The decision-policy protocol every embedded model speaks.

A policy turns a canonical map of inputs (integers, strings, lists: the same values the decision
record hashes into its ``inputs_digest``) into a canonical-CBOR output. ``name`` says which policy and
its output format version ("battery-lp/1"); ``model_hash`` is the sha256 of the model file whose
parameters it runs (None for a policy without a model file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

CborValue = Any
"""A value of the canonical CBOR data model: int, str, bytes, bool, None, lists and str-keyed maps."""

Inputs = Mapping[str, Any]


@runtime_checkable
class DecisionPolicy(Protocol):
    name: str
    model_hash: bytes | None

    def decide(self, inputs: Inputs) -> CborValue: ...


class InputError(ValueError):
    """The inputs of a ``decide`` call are missing a field or have one of the wrong shape."""


def require_int(inputs: Inputs, key: str) -> int:
    value = inputs.get(key)
    if type(value) is not int:
        raise InputError(f"input {key!r} must be an int, got {type(value).__name__}")
    return value


def require_ints(inputs: Inputs, key: str, min_length: int = 1) -> list[int]:
    value = inputs.get(key)
    if not isinstance(value, list | tuple) or len(value) < min_length:
        raise InputError(f"input {key!r} must be a list of at least {min_length} ints")
    if not all(type(item) is int for item in value):
        raise InputError(f"input {key!r} must hold ints only (quantise floats first)")
    return list(value)


def optional_ints(inputs: Inputs, key: str) -> list[int] | None:
    if key not in inputs or inputs[key] is None:
        return None
    return require_ints(inputs, key, 0)
