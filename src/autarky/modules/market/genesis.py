"""The market's genesis: zones and parameters, validated strictly.

Format (``app_state["market"]``; every key optional, defaults below)::

    {"zones": [{"name": "zone-a",            # [a-z0-9][a-z0-9._-]{0,31}
                "asset": "aut",              # what buyers pay in (default "aut")
                "unit": "wh",                # the energy unit of quantities (default "wh")
                "price_cap_feed": None,      # an oracle feed whose fresh value caps the price
                "penalty_per_unit": 0}],     # per undelivered unit, from the seller's collateral
     "max_orders_per_interval": 1000,        # per zone and interval
     "max_intervals_ahead": 672,             # how far ahead orders may be placed (a week of 15 min)
     "settlement_delay_ms": 3600000}         # settle at the latest this long after the interval ends

Without a ``zones`` key there is one zone, ``main`` (asset ``aut``, unit ``wh``, no cap, no penalty).
An empty (or missing) market section stores nothing: the keeper then answers with the defaults,
and the state root is that of a chain without the market.
Zones and parameters are changed only by governance (not yet built). A bad genesis raises
:class:`ValueError` saying what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autarky.ledger.state import Overlay
from autarky.ledger.tx import MAX_U64
from autarky.modules.market import keeper
from autarky.modules.market.keeper import Params, Zone

DEFAULT_MAX_ORDERS_PER_INTERVAL = keeper.DEFAULT_PARAMS.max_orders_per_interval
DEFAULT_MAX_INTERVALS_AHEAD = keeper.DEFAULT_PARAMS.max_intervals_ahead
DEFAULT_SETTLEMENT_DELAY_MS = keeper.DEFAULT_PARAMS.settlement_delay_ms
MAX_ZONES = 64
MAX_ORDERS_PER_INTERVAL = 100_000
MAX_DELAY_MS = 30 * 24 * 3_600_000

_GENESIS_KEYS = ("zones", "max_orders_per_interval", "max_intervals_ahead", "settlement_delay_ms")
_ZONE_KEYS = ("name", "asset", "unit", "price_cap_feed", "penalty_per_unit")
_ASSET_OR_UNIT = re.compile(r"[a-z][a-z0-9]{0,15}")
_MAX_FEED_CHARS = 128


def parse_genesis(config: Mapping[str, Any], *, has_oracle: bool) -> tuple[Params, list[Zone]]:
    """The parameters and zones of ``config`` (ValueError when it is not valid)."""
    if not isinstance(config, Mapping):
        raise ValueError("market genesis: the market section must be a map")
    for key in config:
        if key not in _GENESIS_KEYS:
            raise ValueError(f"market genesis: unknown key {key!r} (allowed: {list(_GENESIS_KEYS)})")
    params = Params(
        max_orders_per_interval=_int(
            config, "max_orders_per_interval", DEFAULT_MAX_ORDERS_PER_INTERVAL, 1, MAX_ORDERS_PER_INTERVAL
        ),
        max_intervals_ahead=_int(config, "max_intervals_ahead", DEFAULT_MAX_INTERVALS_AHEAD, 1, 10**6),
        settlement_delay_ms=_int(config, "settlement_delay_ms", DEFAULT_SETTLEMENT_DELAY_MS, 0, MAX_DELAY_MS),
    )
    entries = config.get("zones", [{"name": keeper.DEFAULT_ZONE.name}])
    if type(entries) is not list or not 1 <= len(entries) <= MAX_ZONES:
        raise ValueError(f"market genesis: zones must be a list of 1 to {MAX_ZONES} zones")
    zones: dict[str, Zone] = {}
    for index, entry in enumerate(entries):
        zone = _zone(entry, f"zones[{index}]", has_oracle)
        if zone.name in zones:
            raise ValueError(f"market genesis: zones[{index}] repeats the zone name {zone.name!r}")
        zones[zone.name] = zone
    return params, [zones[name] for name in sorted(zones)]


def init_genesis(state: Overlay, config: Mapping[str, Any], *, has_oracle: bool) -> None:
    """Validate ``config`` and store it; an empty one stores nothing (the defaults apply)."""
    params, zones = parse_genesis(config, has_oracle=has_oracle)
    if not config:
        return
    keeper.set_params(state, params)
    for zone in zones:
        keeper.set_zone(state, zone)


def _int(config: Mapping[str, Any], name: str, default: int, lowest: int, highest: int) -> int:
    value = config.get(name, default)
    if type(value) is not int or not lowest <= value <= highest:
        raise ValueError(
            f"market genesis: {name} must be an integer from {lowest} to {highest}, not {value!r}"
        )
    return value


def _zone(entry: Any, where: str, has_oracle: bool) -> Zone:
    if not isinstance(entry, Mapping):
        raise ValueError(f"market genesis: {where} must be a map")
    for key in entry:
        if key not in _ZONE_KEYS:
            raise ValueError(
                f"market genesis: {where} has an unknown key {key!r} (allowed: {list(_ZONE_KEYS)})"
            )
    name = entry.get("name")
    if type(name) is not str or not keeper.is_zone_name(name):
        raise ValueError(f"market genesis: {where}.name {name!r} is not [a-z0-9][a-z0-9._-]{{0,31}}")
    asset = entry.get("asset", "aut")
    unit = entry.get("unit", "wh")
    for field, value in (("asset", asset), ("unit", unit)):
        if type(value) is not str or _ASSET_OR_UNIT.fullmatch(value) is None:
            raise ValueError(f"market genesis: {where}.{field} {value!r} is not [a-z][a-z0-9]{{0,15}}")
    feed = entry.get("price_cap_feed")
    if feed is not None:
        if type(feed) is not str or not 1 <= len(feed) <= _MAX_FEED_CHARS:
            raise ValueError(f"market genesis: {where}.price_cap_feed must be a feed name or null")
        if not has_oracle:
            raise ValueError(f"market genesis: {where} names a price-cap feed, but the chain runs no oracle")
    penalty = entry.get("penalty_per_unit", 0)
    if type(penalty) is not int or not 0 <= penalty <= MAX_U64:
        raise ValueError(
            f"market genesis: {where}.penalty_per_unit must be from 0 to 2**64-1, not {penalty!r}"
        )
    return Zone(name=name, asset=asset, unit=unit, price_cap_feed=feed, penalty_per_unit=penalty)
