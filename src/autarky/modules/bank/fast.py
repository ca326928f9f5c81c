"""A fast path for the commonest transaction: one plain ``bank/send``.

This is an optimisation, never a second definition of the rules (STYLE.md principle 5). It applies
a transaction only when it has checked that the reference path (``ledger/executor.py`` with the
``identity`` and ``bank`` modules) would accept it, and then writes exactly what the reference
writes and returns exactly the receipt the reference returns. In every other case it returns None
and the reference runs, so every rejection and every unusual transaction keeps the reference's
code and precedence. ``tests/property/test_fast_path.py`` runs random blocks through both and
requires equal receipts, write sets and headers.

What qualifies: the chain's application is exactly ``identity`` then ``bank``; one signature and
one ``bank/send`` message with exactly ``to``, ``asset`` and ``amount``; chain id, expiry and
signatures check; the signing key has full scope without an allowance; the sequence is the next
one; the sender is neither frozen nor guarded; the fee is at least the minimum; the recipient is
another did:key; the asset exists; the sender can pay fee and amount.

Why it is faster: the reference runs each transaction in two nested overlays with a context,
parses the message into a dataclass, and its guarded debits re-read frozen flags, guardrails,
supplies and balances several times (about twenty state reads per transfer). Here each value is
read once and written once, straight into the block's overlay; nothing can fail after the first
write, so no rollback layer is needed.

If a module gains an ``ante`` hook, or bank or identity change what a plain send does, this file
must change with them: the equality test fails until it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autarky.crypto.did import is_did_key
from autarky.encoding import decode_trusted, encode_int
from autarky.ledger.block import Event, Receipt
from autarky.ledger.errors import OK, TxError
from autarky.ledger.executor import SEQUENCE_PREFIX, sequence_of
from autarky.ledger.state import Overlay
from autarky.modules.bank.keeper import (
    BALANCE_PREFIX,
    FEE_COLLECTOR,
    FROZEN_PREFIX,
    GUARD_PREFIX,
    MAX_AMOUNT,
    PARAMS_KEY,
    SUPPLY_PREFIX,
    is_asset_name,
)

if TYPE_CHECKING:
    from autarky.ledger.router import App, BlockEnv
    from autarky.ledger.tx import SignedTx

_SEND_KEYS = frozenset({"type", "to", "asset", "amount"})


def _balance(state: Overlay, account: str, asset: str) -> int:
    raw = state.get(f"{BALANCE_PREFIX}{account}/{asset}")
    return 0 if raw is None else int(decode_trusted(raw))


def _set_balance(state: Overlay, account: str, asset: str, amount: int) -> None:
    # As keeper._set_balance: a zero balance is deleted, never stored.
    key = f"{BALANCE_PREFIX}{account}/{asset}"
    if amount == 0:
        state.delete(key)
    else:
        state.set(key, encode_int(amount))


def try_send(
    app: App, block_state: Overlay, env: BlockEnv, tx: SignedTx, index: int, verifier: Any
) -> Receipt | None:
    """Apply ``tx`` if it is a plain send the reference would accept; else None (nothing written)."""
    body = tx.body
    if len(body.messages) != 1 or len(tx.signatures) != 1:
        return None
    message = body.messages[0]
    if message.get("type") != "bank/send" or message.keys() != _SEND_KEYS:
        return None
    to, asset, amount = message["to"], message["asset"], message["amount"]
    if type(to) is not str or type(asset) is not str or type(amount) is not int:
        return None
    if not 1 <= amount <= MAX_AMOUNT:
        return None
    if body.chain_id != env.chain_id or (body.expiry_height != 0 and env.height > body.expiry_height):
        return None
    if not verifier.verify(tx):
        return None
    sender = body.sender
    try:
        scope = app.authenticator.authenticate(block_state, sender, tx.signatures[0][0])
    except TxError:
        return None
    if scope.actions is not None or scope.allowance is not None:
        return None
    get = block_state.get
    sequence = sequence_of(block_state, sender)
    if body.sequence != sequence:
        return None
    if get(FROZEN_PREFIX + sender) is not None or get(GUARD_PREFIX + sender) is not None:
        return None
    params = decode_trusted(get(PARAMS_KEY))  # type: ignore[arg-type]
    fee_asset, min_fee, fee = params["fee_asset"], params["min_fee"], body.fee
    if fee < min_fee:
        return None
    if to == sender or not is_did_key(to):
        return None
    if not is_asset_name(asset) or get(SUPPLY_PREFIX + asset) is None:
        return None
    fee_balance = _balance(block_state, sender, fee_asset)
    if fee_balance < fee:
        return None
    available = fee_balance - fee if asset == fee_asset else _balance(block_state, sender, asset)
    if available < amount:
        return None

    # Every check passed: from here on nothing can fail, so write straight into the block.
    block_state.set(SEQUENCE_PREFIX + sender, encode_int(sequence + 1))
    events = []
    if fee > 0:
        _set_balance(block_state, sender, fee_asset, fee_balance - fee)
        _set_balance(
            block_state, FEE_COLLECTOR, fee_asset, _balance(block_state, FEE_COLLECTOR, fee_asset) + fee
        )
        events.append(Event("bank.fee", (("amount", fee), ("asset", fee_asset), ("payer", sender))))
    _set_balance(block_state, sender, asset, available - amount)
    _set_balance(block_state, to, asset, _balance(block_state, to, asset) + amount)
    events.append(
        Event("bank.transfer", (("amount", amount), ("asset", asset), ("from", sender), ("to", to)))
    )
    return Receipt(tx.hash, index, OK, tuple(events), sender)
