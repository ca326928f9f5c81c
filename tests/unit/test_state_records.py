"""get_record: a small record is decoded and built once per stored bytes, rebuilt when they change."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from autarky.encoding import canonical_encode
from autarky.ledger.state import MappingState, Overlay, get_record
from autarky.modules.market import keeper as market
from autarky.modules.metering import keeper as metering

BUILT: list[Any] = []


def _build(value: Any) -> tuple[int, ...]:
    BUILT.append(value)
    return tuple(value)


def test_the_same_bytes_give_the_same_object_and_new_bytes_a_new_one() -> None:
    BUILT.clear()
    state = Overlay(MappingState({"p": canonical_encode([1, 2])}))
    first = get_record(state, "p", _build)
    assert first == (1, 2) and get_record(state, "p", _build) is first
    assert len(BUILT) == 1
    state.set_obj("p", [1, 3])  # a governance change: other bytes
    assert get_record(state, "p", _build) == (1, 3)
    assert len(BUILT) == 2
    assert get_record(state, "missing", _build) is None
    state.set_obj("p", [1, 2])  # back to the first bytes: equal bytes, the remembered object
    assert get_record(state, "p", _build) is first


def test_module_parameters_read_through_it_are_frozen_and_follow_changes() -> None:
    state = Overlay(MappingState({}))
    assert market.params(state) == market.DEFAULT_PARAMS
    metering.write_params(state, metering.Params(interval_ms=60_000))
    read = metering.read_params(state)
    assert read.interval_ms == 60_000 and metering.read_params(state) is read
    with pytest.raises(FrozenInstanceError):
        read.interval_ms = 1  # type: ignore[misc]
    metering.write_params(state, metering.Params(interval_ms=900_000))
    assert metering.read_params(state).interval_ms == 900_000
