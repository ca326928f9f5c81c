"""The metering module's genesis: its parameters, validated strictly.

Format (``app_state["metering"]``; every key optional)::

    {"params": {"interval_ms": 900000,
                "default_tariff": {"asset": "aut", "price_per_unit": 2} | None}}

``interval_ms`` (1 to 2**32) is the length of a consumption interval: interval ``k`` is the time
``[k * interval_ms, (k + 1) * interval_ms)``. ``default_tariff`` bills at every infrastructure that
has not set a tariff of its own (None: such an infrastructure does not bill). Both are changed only
by governance (not yet built).

An empty section writes no key (a chain that never configures metering keeps its state root);
otherwise ``metering/params`` holds the parameters with the defaults filled in. A bad genesis raises
:class:`ValueError` saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autarky.ledger.state import Overlay
from autarky.ledger.tx import MAX_U64
from autarky.modules.metering import keeper
from autarky.modules.metering.messages import is_name

MAX_INTERVAL_MS = 2**32
_GENESIS_KEYS = ("params",)
_PARAMS_KEYS = ("interval_ms", "default_tariff")
_TARIFF_KEYS = ("asset", "price_per_unit")


def _check_keys(value: Any, allowed: tuple[str, ...], where: str, required: bool) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"metering genesis: {where} must be a map")
    for key in value:
        if key not in allowed:
            raise ValueError(
                f"metering genesis: {where} has an unknown key {key!r} (allowed: {list(allowed)})"
            )
    if required:
        for key in allowed:
            if key not in value:
                raise ValueError(f"metering genesis: {where} lacks the key {key!r}")


def parse_params(config: Mapping[str, Any]) -> keeper.Params:
    """The parameters of a genesis section (defaults for what it leaves out); ValueError if bad."""
    _check_keys(config, _GENESIS_KEYS, "the metering section", required=False)
    params = config.get("params", {})
    _check_keys(params, _PARAMS_KEYS, "params", required=False)
    interval_ms = params.get("interval_ms", keeper.DEFAULT_INTERVAL_MS)
    if type(interval_ms) is not int or not 1 <= interval_ms <= MAX_INTERVAL_MS:
        raise ValueError(f"metering genesis: params.interval_ms must be from 1 to 2**32, not {interval_ms!r}")
    tariff = params.get("default_tariff")
    if tariff is None:
        return keeper.Params(interval_ms, None)
    _check_keys(tariff, _TARIFF_KEYS, "params.default_tariff", required=True)
    asset, price = tariff["asset"], tariff["price_per_unit"]
    if not is_name(asset):
        raise ValueError(f"metering genesis: default_tariff.asset {asset!r} is not an asset name")
    if type(price) is not int or not 0 <= price <= MAX_U64:
        raise ValueError(f"metering genesis: default_tariff.price_per_unit must be 0..2**64-1, not {price!r}")
    return keeper.Params(interval_ms, keeper.Tariff(asset, price))


def init_genesis(state: Overlay, config: Mapping[str, Any]) -> None:
    params = parse_params(config)
    if config:
        keeper.write_params(state, params)
