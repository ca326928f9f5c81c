"""The oracle's parameters: set at genesis, changed only by governance (not yet built).

Genesis format (``app_state["oracle"]``; every key optional)::

    {"params": {"max_reporters": 32, "history_rounds": 1000}}

* ``max_reporters`` (1..256, default 32): the most reporters a feed may register; it bounds every
  round's record and the work of finalizing it.
* ``history_rounds`` (1..1_000_000, default 1000): how many closed rounds of each feed state keeps;
  when a round closes, the round ``history_rounds`` before it is deleted (its reports stay in the
  blocks and the audit trail).

An empty oracle section sets nothing and writes no key, so a chain that never uses the module keeps
its state root; the defaults then apply (``keeper.read_params``). A bad genesis raises
:class:`ValueError` saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_REPORTERS_LIMIT = 256
HISTORY_ROUNDS_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Params:
    max_reporters: int = 32
    history_rounds: int = 1000

    def to_cbor(self) -> dict[str, int]:
        return {"max_reporters": self.max_reporters, "history_rounds": self.history_rounds}


DEFAULT_PARAMS = Params()
_LIMITS = {"history_rounds": HISTORY_ROUNDS_LIMIT, "max_reporters": MAX_REPORTERS_LIMIT}


def parse_params(config: Mapping[str, Any]) -> Params | None:
    """The parameters a genesis section sets, or None when it sets none (the defaults apply)."""
    if not isinstance(config, Mapping):
        raise ValueError("oracle genesis: the oracle section must be a map")
    for key in config:
        if key != "params":
            raise ValueError(f"oracle genesis: unknown key {key!r} (allowed: ['params'])")
    if "params" not in config:
        return None
    params = config["params"]
    if not isinstance(params, Mapping):
        raise ValueError("oracle genesis: params must be a map")
    values: dict[str, int] = DEFAULT_PARAMS.to_cbor()
    for key, value in params.items():
        if key not in _LIMITS:
            allowed = sorted(_LIMITS)
            raise ValueError(f"oracle genesis: params has an unknown key {key!r} (allowed: {allowed})")
        if type(value) is not int or not 1 <= value <= _LIMITS[key]:
            raise ValueError(f"oracle genesis: params.{key} must be an integer from 1 to {_LIMITS[key]}")
        values[key] = value
    return Params(**values)


def params_from_cbor(stored: object) -> Params:
    """The stored ``oracle/params`` value (written only from a checked genesis)."""
    assert isinstance(stored, Mapping), stored
    return Params(max_reporters=stored["max_reporters"], history_rounds=stored["history_rounds"])
