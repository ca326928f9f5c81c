"""``ValidatorsModule``: the set of validator keys, held in ledger state, changed only by governance.

State: one key, ``validators/set``, holding the canonical CBOR list of the validators' 32-byte
Ed25519 public keys in ascending byte order (absent when the chain has no validators: an embedded
chain, where a committed block is final).

A block on the ``nats`` engine is final when ``quorum(n)`` distinct validators of the set that was
in force before the block signed the same (height, block hash, state root); see
``engines/ordering.py``. Quorum is ``floor(2n/3) + 1`` (n = 3: all 3; n = 4: 3; n = 5: 4).

One message changes the set, ``validators/update`` with fields ``add`` and ``remove`` (lists of
32-byte keys or their hex). It is governed: besides the sender's own signature, the transaction
must carry signatures of at least ``quorum(n)`` keys of the current set. Until the governance
module arrives this quorum of the validators is the governing body. Codes, in order of precedence:

1. ``core.invalid_message``: a field missing or of the wrong type.
2. ``validators.invalid_key``: an entry is not an acceptable Ed25519 public key.
3. ``validators.no_change``: both lists empty, a key in both, a key added twice or removed twice.
4. ``validators.not_governed``: fewer than ``quorum(n)`` current validators signed.
5. ``validators.already_member`` / ``validators.not_member``.
6. ``validators.invalid_size``: the new set would be empty or larger than ``MAX_VALIDATORS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.crypto.keys import InvalidKey, check_public_key
from autarky.encoding import canonical_decode, canonical_encode
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.validators.errors import (
    ALREADY_MEMBER,
    INVALID_KEY,
    INVALID_SIZE,
    NO_CHANGE,
    NOT_GOVERNED,
    NOT_MEMBER,
)

SET_KEY = "validators/set"
UPDATE = "validators/update"
MAX_VALIDATORS = 64


def quorum(n: int) -> int:
    """Signatures needed for finality among ``n`` validators: more than two thirds."""
    assert n > 0, "quorum of an empty validator set"
    return (2 * n) // 3 + 1


def read_validators(state: StateReader) -> tuple[bytes, ...]:
    """The current validator keys in ascending order; empty when the chain has none."""
    raw = state.get(SET_KEY)
    if raw is None:
        return ()
    keys = canonical_decode(raw)
    assert isinstance(keys, list), "validator set is stored as a list"
    return tuple(keys)


def _write(state: Overlay, keys: list[bytes]) -> None:
    state.set(SET_KEY, canonical_encode(sorted(keys)))


def _parse_key(value: Any) -> bytes:
    if type(value) is str:
        try:
            value = bytes.fromhex(value)
        except ValueError as exc:
            raise INVALID_KEY(f"{value!r} is not hex") from exc
    if type(value) is not bytes:
        raise INVALID_MESSAGE("validator keys are 32-byte strings or their hex")
    try:
        return check_public_key(value)
    except InvalidKey as exc:
        raise INVALID_KEY(str(exc)) from exc


def _parse_list(message: Mapping[str, Any], name: str) -> list[bytes]:
    value = message.get(name, [])
    if type(value) is not list:
        raise INVALID_MESSAGE(f"field {name!r} must be a list")
    return [_parse_key(item) for item in value]


class ValidatorsModule(Module):
    name: ClassVar[str] = "validators"
    message_types: ClassVar[tuple[str, ...]] = (UPDATE,)

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        for key in config:
            if key != "validators":
                raise ValueError(f"validators genesis has an unknown field {key!r}")
        entries = config.get("validators", [])
        if type(entries) is not list:
            raise ValueError("validators genesis: 'validators' must be a list of public keys (hex)")
        if not entries:
            return
        try:
            keys = [_parse_key(entry) for entry in entries]
        except Exception as exc:
            raise ValueError(f"validators genesis: {exc}") from exc
        if len(keys) > MAX_VALIDATORS or len(set(keys)) != len(keys):
            raise ValueError(f"validators genesis: 1 to {MAX_VALIDATORS} distinct keys")
        _write(state, keys)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        assert message["type"] == UPDATE, f"the router sent {message['type']!r} to validators"
        for field in message:
            if field not in ("type", "add", "remove"):
                raise INVALID_MESSAGE(f"validators/update has an unknown field {field!r}")
        add = _parse_list(message, "add")
        remove = _parse_list(message, "remove")
        changed = add + remove
        if not changed or len(set(changed)) != len(changed):
            raise NO_CHANGE()
        current = list(read_validators(ctx.state))
        signed = sum(1 for key in current if ctx.signed_by_key(key))
        if not current or signed < quorum(len(current)):
            raise NOT_GOVERNED(f"{signed} of {len(current)} validators signed")
        for key in add:
            if key in current:
                raise ALREADY_MEMBER(key.hex())
        for key in remove:
            if key not in current:
                raise NOT_MEMBER(key.hex())
        new = [key for key in current if key not in remove] + add
        if not new or len(new) > MAX_VALIDATORS:
            raise INVALID_SIZE(f"{len(new)} validators")
        _write(ctx.state, new)
        ctx.emit("validators.updated", count=len(new))

    def invariants(self, state: StateReader) -> list[str]:
        keys = read_validators(state)
        if list(keys) != sorted(keys) or len(set(keys)) != len(keys):
            return ["validator set is not sorted and distinct"]
        if len(keys) > MAX_VALIDATORS:
            return ["validator set too large"]
        return []
