"""What must hold in the escrow state after every block. Each broken rule is one line.

1. Every lock record is well formed: 0 < amount <= locked, a holder, a 16-digit expiry.
2. For every asset, the balance of ``module:escrow`` equals the sum of the open locks' amounts
   (escrow never creates or destroys value; nothing sits in escrow outside a lock).
3. The payer, beneficiary and due indexes name exactly the open locks (no orphan, none missing).
"""

from __future__ import annotations

from autarky.ledger.state import StateReader
from autarky.modules.escrow import keeper
from autarky.modules.escrow.expected import BankKeeper


def check_invariants(state: StateReader, bank: BankKeeper) -> list[str]:
    problems: list[str] = []
    totals: dict[str, int] = {}
    expected_index: list[str] = []
    try:
        locks = keeper.all_locks(state)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"a lock record is malformed: {exc!r}"]
    for lock in locks:
        if not (type(lock.amount) is int and type(lock.locked) is int and 0 < lock.amount <= lock.locked):
            problems.append(f"lock {lock.id.hex()}: amount {lock.amount!r} of {lock.locked!r}")
        if not lock.holder or not 0 <= lock.expires_ms <= keeper.MAX_EXPIRY_MS:
            problems.append(f"lock {lock.id.hex()}: holder {lock.holder!r}, expiry {lock.expires_ms!r}")
        totals[lock.asset] = totals.get(lock.asset, 0) + lock.amount
        expected_index.extend(keeper.index_keys_of(lock))
    for asset in sorted(totals):
        held = bank.balance(state, keeper.ESCROW_ACCOUNT, asset)
        if held != totals[asset]:
            problems.append(f"escrow holds {held} {asset} but its locks sum to {totals[asset]}")
    stored = keeper.index_keys(state)
    if sorted(stored) != sorted(expected_index):
        missing = sorted(set(expected_index) - set(stored))[:3]
        extra = sorted(set(stored) - set(expected_index))[:3]
        problems.append(f"escrow indexes disagree with the locks: missing {missing}, extra {extra}")
    return problems
