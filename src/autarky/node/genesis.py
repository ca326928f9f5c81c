"""Genesis documents: build one for a development chain, check it, read and write it as JSON.

A genesis document is the chain's block 0 in data form::

    {"chain_id": "autarky-local",
     "genesis_time_ms": 1767225600000,
     "app_state": {"identity": {"accounts": [...]},                       # modules/identity/README.md
                   "bank": {"params": {...}, "assets": [...], "balances": [...]}}}   # modules/bank/README.md

People read and edit it as JSON (``genesis.json``); the node stores the canonical CBOR of the same
value (``genesis.cbor`` in its data directory) and hashes that. JSON has no byte strings, so bytes
(public keys, serial digests) are written as lower-case hex text, which the modules accept in place
of bytes. :func:`dev_genesis` produces the hex form from the start, so a document survives
``write_genesis`` / ``load_genesis`` unchanged and hashes the same either way.

:func:`check_genesis` runs every module's genesis validation on a scratch state (nothing is
written anywhere) and returns the resulting state root; a bad document raises :class:`GenesisError`
naming what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.crypto.domains import check_chain_id
from autarky.ledger.executor import execute_genesis, genesis_hash
from autarky.ledger.tx import MAX_U64
from autarky.modules import build_app
from autarky.node.errors import ConfigError

__all__ = [
    "DEFAULT_ASSET",
    "GenesisError",
    "check_genesis",
    "dev_genesis",
    "funded_accounts",
    "genesis_from_json",
    "genesis_hash",
    "genesis_to_json",
    "load_genesis",
    "write_genesis",
]

DEFAULT_ASSET = "aut"
"""The fee asset of a development chain."""

_TOP_LEVEL_KEYS = ("app_state", "chain_id", "genesis_time_ms")
_MAX_GENESIS_FILE_BYTES = 64 * 1024 * 1024


class GenesisError(ConfigError):
    """A genesis document that no node would start from; the message names the problem."""


Allocation = tuple[str, str, int]
"""(account did, asset, amount in base units)."""


def dev_genesis(
    chain_id: str,
    *,
    time_ms: int,
    allocations: Iterable[Allocation],
    identities: Iterable[Mapping[str, Any]] = (),
    min_fee: int = 1,
    fee_asset: str = DEFAULT_ASSET,
    assets: Iterable[str] = (),
    validators: Iterable[bytes] = (),
    modules: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A genesis for a development or demo chain, checked before it is returned.

    ``modules`` adds further module sections to ``app_state`` (e.g. ``metering`` and ``market``
    settings; ``identity``, ``bank`` and ``validators`` come from the other arguments).

    ``allocations`` fund accounts at block 0 (several allocations to one account and asset are
    added up); ``identities`` are identity-module accounts registered at block 0 (see
    ``modules/identity/README.md``: ``did``, ``kind``, optional ``owner``, ``maker``, ``model``, ...;
    byte values are converted to hex); ``assets`` are further assets that start with no supply.
    """
    totals: dict[tuple[str, str], int] = {}
    for account, asset, amount in allocations:
        if type(amount) is not int or amount <= 0:
            raise GenesisError(f"allocation to {account}: amount must be a positive integer, not {amount!r}")
        totals[account, asset] = totals.get((account, asset), 0) + amount
    balances = [
        {"account": account, "asset": asset, "amount": amount}
        for (account, asset), amount in sorted(totals.items())
    ]
    extra_assets = sorted(set(assets) - {fee_asset})
    bank: dict[str, Any] = {"params": {"fee_asset": fee_asset, "min_fee": min_fee}, "balances": balances}
    if extra_assets:
        bank["assets"] = extra_assets
    validator_keys = [key.hex() for key in validators]
    genesis: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis_time_ms": time_ms,
        "app_state": {
            "identity": {"accounts": [_hex_bytes(dict(identity)) for identity in identities]},
            "bank": bank,
        },
    }
    if validator_keys:
        genesis["app_state"]["validators"] = {"validators": validator_keys}
    for name, section in (modules or {}).items():
        if name in genesis["app_state"]:
            raise GenesisError(f"module section {name!r} is built from dev_genesis's own arguments")
        genesis["app_state"][name] = section
    check_genesis(genesis)
    return genesis


def check_genesis(genesis: Any) -> bytes:
    """Validate ``genesis`` completely and return the state root it produces at block 0."""
    if not isinstance(genesis, Mapping):
        raise GenesisError("a genesis document is a map with chain_id, genesis_time_ms and app_state")
    for key in genesis:
        if key not in _TOP_LEVEL_KEYS:
            raise GenesisError(f"genesis has an unknown field {key!r} (allowed: {list(_TOP_LEVEL_KEYS)})")
    for key in _TOP_LEVEL_KEYS:
        if key not in genesis:
            raise GenesisError(f"genesis lacks the field {key!r}")
    chain_id, time_ms, app_state = genesis["chain_id"], genesis["genesis_time_ms"], genesis["app_state"]
    if type(chain_id) is not str:
        raise GenesisError("genesis chain_id must be text")
    try:
        check_chain_id(chain_id)
    except ValueError as exc:
        raise GenesisError(f"genesis chain_id: {exc}") from exc
    if type(time_ms) is not int or not 0 <= time_ms <= MAX_U64:
        raise GenesisError("genesis_time_ms must be a non-negative integer (milliseconds since 1970)")
    if not isinstance(app_state, Mapping):
        raise GenesisError("genesis app_state must be a map from module name to that module's genesis")
    app = build_app()
    known = [module.name for module in app.modules]
    for name in app_state:
        if name not in known:
            raise GenesisError(f"genesis app_state names an unknown module {name!r} (modules: {known})")
    try:
        result = execute_genesis(genesis, app)
    except (ValueError, TypeError, KeyError) as exc:
        raise GenesisError(f"invalid genesis: {exc}") from exc
    return result.header.state_root


def genesis_to_json(genesis: Mapping[str, Any]) -> str:
    """The JSON text of a genesis document, bytes as hex, keys sorted, for people to read."""
    return json.dumps(_hex_bytes(dict(genesis)), indent=2, sort_keys=True) + "\n"


def genesis_from_json(text: str) -> dict[str, Any]:
    """Parse and check a JSON genesis document."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis is not valid JSON: {exc}") from exc
    _reject_floats(document, "genesis")
    check_genesis(document)
    assert isinstance(document, dict)
    return document


def write_genesis(path: Path | str, genesis: Mapping[str, Any]) -> None:
    """Write ``genesis`` as JSON to ``path`` (checked first; an existing file is replaced)."""
    check_genesis(genesis)
    Path(path).write_text(genesis_to_json(genesis), encoding="utf-8")


def load_genesis(path: Path | str) -> dict[str, Any]:
    """Read and check the JSON genesis document at ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_GENESIS_FILE_BYTES:
            raise GenesisError(f"{path} is {size} bytes; a genesis file is at most {_MAX_GENESIS_FILE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise GenesisError(f"genesis file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise GenesisError(f"{path} is not UTF-8 text") from exc
    try:
        return genesis_from_json(text)
    except GenesisError as exc:
        raise GenesisError(f"{path}: {exc}") from exc


def funded_accounts(genesis: Mapping[str, Any]) -> list[str]:
    """The did:key accounts that hold a balance at block 0, in document order."""
    balances = genesis.get("app_state", {}).get("bank", {}).get("balances", [])
    return [entry["account"] for entry in balances if is_did_key(entry.get("account"))]


def _hex_bytes(value: Any) -> Any:
    """``value`` with every bytes object replaced by its lower-case hex (maps and lists walked)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {key: _hex_bytes(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_hex_bytes(item) for item in value]
    return value


def _reject_floats(value: Any, where: str) -> None:
    # Ledger state holds integers only (SPEC C2); a float here is a typo such as 1e9 for 1000000000.
    if isinstance(value, float):
        raise GenesisError(f"{where}: {value!r} is not an integer; amounts and times are whole numbers")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_floats(item, f"{where}[{index}]")
