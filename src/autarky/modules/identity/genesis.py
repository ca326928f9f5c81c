"""The identity module's genesis: accounts registered at height 0, validated strictly.

Config (``app_state["identity"]``; every part optional)::

    {"accounts": [
        {"did": did, "owner": did | None, "kind": str, "maker": str, "model": str,
         "serial_digest": 32 bytes | 64 hex | None, "capabilities": [str], "metadata": {str: str},
         "keys": [{"key": 32 bytes | 64 hex, "actions": [str] | None, "allowance": {asset: int} | None}]}
    ]}

``did`` and ``kind`` are required; ``owner`` and ``serial_digest`` default to None, ``maker`` and
``model`` to "", ``capabilities`` and ``metadata`` to empty, ``keys`` to the did's own key with full
scope. Bytes may be written as hex text so a genesis file can be JSON. The same value rules as the
``identity/register`` and ``identity/add_key`` messages apply, plus: an owner differs from the account,
keys are distinct and used by one account only, and at least one key has full scope. Any violation
raises :class:`ValueError` naming the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autarky.crypto.did import public_key_from_did
from autarky.ledger.errors import TxError
from autarky.ledger.state import Overlay
from autarky.modules.identity.keeper import ACTIVE, AccountRecord, KeyEntry, write_account
from autarky.modules.identity.messages import (
    MAX_KEYS_PER_ACCOUNT,
    check_descriptive,
    check_did,
    check_key,
    check_scope,
)

_ACCOUNT_FIELDS = (
    "did", "owner", "kind", "maker", "model", "serial_digest", "capabilities", "metadata", "keys",
)
_KEY_FIELDS = ("key", "actions", "allowance")


def init_genesis(state: Overlay, config: Mapping[str, Any]) -> None:
    for did, record in parse_genesis(config):
        write_account(state, did, record)


def parse_genesis(config: Mapping[str, Any]) -> list[tuple[str, AccountRecord]]:
    if not isinstance(config, Mapping):
        raise ValueError("identity genesis must be a map")
    for name in config:
        if name != "accounts":
            raise ValueError(f"identity genesis has an unknown field {name!r} (only 'accounts')")
    accounts = config.get("accounts", [])
    if type(accounts) is not list:
        raise ValueError("identity genesis 'accounts' must be a list")
    parsed: list[tuple[str, AccountRecord]] = []
    used_keys: dict[bytes, str] = {}
    for index, item in enumerate(accounts):
        try:
            did, record = _parse_account(item)
        except (TxError, ValueError, TypeError) as exc:
            raise ValueError(f"identity genesis account {index}: {_reason(exc)}") from exc
        if any(did == other for other, _ in parsed):
            raise ValueError(f"identity genesis account {index}: {did} appears twice")
        for entry in record.keys:
            if entry.key in used_keys:
                other = used_keys[entry.key]
                raise ValueError(f"identity genesis account {index}: key {entry.key.hex()} is also {other}'s")
            used_keys[entry.key] = did
        parsed.append((did, record))
    return parsed


def _reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, TxError) else str(exc)


def _parse_account(item: Any) -> tuple[str, AccountRecord]:
    if type(item) is not dict:
        raise ValueError("an account must be a map")
    for name in item:
        if name not in _ACCOUNT_FIELDS:
            raise ValueError(f"unknown field {name!r}")
    did = check_did(_typed(item, "did", str), "did")
    owner = item.get("owner")
    if owner is not None:
        check_did(_typed(item, "owner", str), "owner")
        if owner == did:
            raise ValueError("an account cannot be its own owner (leave owner out for a self-owned account)")
    descriptive = check_descriptive(
        _typed(item, "kind", str),
        _typed(item, "maker", str, ""),
        _typed(item, "model", str, ""),
        _optional_bytes(item, "serial_digest"),
        _text_list(item, "capabilities"),
        _text_map(item, "metadata"),
    )
    keys = _parse_keys(item, did)
    return did, AccountRecord(owner, *descriptive, status=ACTIVE, registered=0, keys=keys)


def _parse_keys(item: dict[str, Any], did: str) -> tuple[KeyEntry, ...]:
    if "keys" not in item:
        return (KeyEntry(public_key_from_did(did), None, None, 0),)
    raw_keys = item["keys"]
    if type(raw_keys) is not list or not 1 <= len(raw_keys) <= MAX_KEYS_PER_ACCOUNT:
        raise ValueError(f"keys must be a list of 1 to {MAX_KEYS_PER_ACCOUNT} keys")
    entries: list[KeyEntry] = []
    for raw in raw_keys:
        if type(raw) is not dict or any(name not in _KEY_FIELDS for name in raw):
            raise ValueError(f"each key is a map with the fields {list(_KEY_FIELDS)}")
        key = check_key(_bytes(raw.get("key"), "key"), "key")
        actions = raw.get("actions")
        allowance = raw.get("allowance")
        if actions is not None and (type(actions) is not list or any(type(a) is not str for a in actions)):
            raise ValueError("actions must be a list of message types or None")
        if allowance is not None and (
            type(allowance) is not dict
            or any(type(k) is not str or type(v) is not int for k, v in allowance.items())
        ):
            raise ValueError("allowance must be a map from asset to integer amount or None")
        scoped_actions, scoped_allowance = check_scope(actions, allowance)
        if any(entry.key == key for entry in entries):
            raise ValueError(f"key {key.hex()} is listed twice")
        entries.append(KeyEntry(key, scoped_actions, scoped_allowance, 0))
    if not any(entry.full for entry in entries):
        raise ValueError("at least one key must have full scope (actions None)")
    return tuple(entries)


def _typed(item: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    if name not in item and default is not None:
        return default
    value = item.get(name)
    if type(value) is not kind:
        raise ValueError(f"{name} must be {kind.__name__}")
    return value


def _bytes(value: Any, name: str) -> bytes:
    if type(value) is bytes:
        return value
    if type(value) is str:
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError(f"{name} must be bytes or hex text") from exc
    raise ValueError(f"{name} must be bytes or hex text")


def _optional_bytes(item: dict[str, Any], name: str) -> bytes | None:
    value = item.get(name)
    return None if value is None else _bytes(value, name)


def _text_list(item: dict[str, Any], name: str) -> list[str]:
    value = item.get(name, [])
    if type(value) is not list or any(type(entry) is not str for entry in value):
        raise ValueError(f"{name} must be a list of text")
    return value


def _text_map(item: dict[str, Any], name: str) -> dict[str, str]:
    value = item.get(name, {})
    if type(value) is not dict or any(type(k) is not str or type(v) is not str for k, v in value.items()):
        raise ValueError(f"{name} must be a map from text to text")
    return value

