"""Identity wired with the bank by ``build_app``: scoped keys and allowances on real transfers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.identity import messages as m

try:
    from autarky.modules.bank import BankModule  # noqa: F401  (build_app wires it)
except ImportError:  # the bank module is developed in parallel; these tests need it
    pytest.skip("autarky.modules.bank.BankModule is not available yet", allow_module_level=True)

CHAIN_ID = "test"


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER, MACHINE, PERSON, K1, K2 = key("owner"), key("machine"), key("person"), key("k1"), key("k2")


def raw(signing_key: SigningKey) -> bytes:
    return signing_key.public_key.raw


def send(to: str, asset: str, amount: int) -> dict[str, Any]:
    return {"type": "bank/send", "to": to, "asset": asset, "amount": amount}


class Fleet:
    def __init__(self) -> None:
        genesis = {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": 0,
            "app_state": {
                "identity": {"accounts": [{"did": MACHINE.did, "owner": OWNER.did, "kind": "charger"}]},
                "bank": {
                    "params": {"fee_asset": "aut", "min_fee": 0},
                    "assets": ["kwh"],
                    "balances": [
                        {"account": MACHINE.did, "asset": "aut", "amount": 1000},
                        {"account": MACHINE.did, "asset": "kwh", "amount": 50},
                    ],
                },
            },
        }
        self.chain = Chain.from_genesis(genesis)
        assert self.chain.invariants() == []

    def submit(
        self,
        signer: SigningKey,
        *msgs: dict[str, Any],
        sender: str | None = None,
        cosigners: Sequence[SigningKey] = (),
    ) -> Receipt:
        sender = sender or signer.did
        body = TxBody(CHAIN_ID, sender, self.chain.sequence(sender), 0, 0, tuple(msgs))
        (receipt,) = self.chain.execute([sign_tx(body, signer, cosigners).raw])
        assert self.chain.invariants() == []
        return receipt

    def by_k(self, signer: SigningKey, *msgs: dict[str, Any]) -> str:
        return self.submit(signer, *msgs, sender=MACHINE.did).code


@pytest.fixture
def fleet() -> Fleet:
    fleet = Fleet()
    msg = m.add_key(MACHINE.did, raw(K1), ["bank/send"], {"aut": 100})
    assert fleet.submit(OWNER, msg, cosigners=[K1]).ok
    return fleet


def test_scoped_key_spends_up_to_its_allowance(fleet: Fleet) -> None:
    assert fleet.by_k(K1, send(PERSON.did, "aut", 60)) == "ok"
    assert fleet.by_k(K1, send(PERSON.did, "aut", 50)) == "identity.allowance_exceeded"
    assert fleet.by_k(K1, send(PERSON.did, "aut", 40)) == "ok"
    assert fleet.by_k(K1, send(PERSON.did, "aut", 1)) == "identity.allowance_exceeded"
    # an asset the allowance does not name is not spendable at all
    assert fleet.by_k(K1, send(PERSON.did, "kwh", 1)) == "identity.allowance_exceeded"
    # the machine's full key is not limited by its scoped key's allowance
    assert fleet.submit(MACHINE, send(PERSON.did, "aut", 500)).ok


def test_allowance_counts_every_message_of_a_transaction(fleet: Fleet) -> None:
    assert (
        fleet.by_k(K1, send(PERSON.did, "aut", 60), send(PERSON.did, "aut", 41))
        == "identity.allowance_exceeded"
    )
    assert fleet.by_k(K1, send(PERSON.did, "aut", 60), send(PERSON.did, "aut", 40)) == "ok"


def test_scoped_key_is_refused_other_actions(fleet: Fleet) -> None:
    assert fleet.by_k(K1, m.add_key(MACHINE.did, raw(K2))) == "core.key_scope"
    assert fleet.by_k(K1, {"type": "bank/freeze", "machine": MACHINE.did}) == "core.key_scope"


def test_rotation_keeps_what_was_spent_and_removal_forgets_it(fleet: Fleet) -> None:
    assert fleet.by_k(K1, send(PERSON.did, "aut", 90)) == "ok"
    assert fleet.submit(OWNER, m.rotate(MACHINE.did, raw(K1), raw(K2)), cosigners=[K2]).ok
    assert fleet.by_k(K1, send(PERSON.did, "aut", 1)) == "core.unknown_signer"
    assert fleet.by_k(K2, send(PERSON.did, "aut", 11)) == "identity.allowance_exceeded"
    assert fleet.by_k(K2, send(PERSON.did, "aut", 10)) == "ok"
    assert fleet.submit(OWNER, m.remove_key(MACHINE.did, raw(K2))).ok
    assert list(fleet.chain.state.iter_prefix("identity/allow/")) == []
    # a key added again starts a fresh allowance
    assert fleet.submit(OWNER, m.add_key(MACHINE.did, raw(K2), ["bank/send"], {"aut": 5}), cosigners=[K2]).ok
    assert fleet.by_k(K2, send(PERSON.did, "aut", 5)) == "ok"


def test_recover_forgets_spent_allowances(fleet: Fleet) -> None:
    assert fleet.by_k(K1, send(PERSON.did, "aut", 90)) == "ok"
    assert fleet.submit(OWNER, m.recover(MACHINE.did, raw(K1)), cosigners=[K1]).ok
    assert list(fleet.chain.state.iter_prefix("identity/allow/")) == []
    assert fleet.by_k(K1, send(PERSON.did, "aut", 500)) == "ok"  # K1 now has full scope


def test_a_revoked_machine_cannot_spend(fleet: Fleet) -> None:
    assert fleet.submit(OWNER, m.revoke(MACHINE.did)).ok
    assert fleet.submit(MACHINE, send(PERSON.did, "aut", 1)).code == "core.account_revoked"
    assert fleet.by_k(K1, send(PERSON.did, "aut", 1)) == "core.account_revoked"
    assert fleet.submit(OWNER, m.recover(MACHINE.did, raw(K2)), cosigners=[K2]).ok
    assert fleet.by_k(K2, send(PERSON.did, "aut", 1)) == "ok"


def test_replay_reaches_the_same_root(fleet: Fleet) -> None:
    assert fleet.by_k(K1, send(PERSON.did, "aut", 60)) == "ok"
    assert fleet.submit(OWNER, m.rotate(MACHINE.did, raw(K1), raw(K2)), cosigners=[K2]).ok
    assert fleet.chain.replay().root == fleet.chain.root


def test_a_key_that_leaves_its_account_cannot_spend_later_in_the_same_transaction(fleet: Fleet) -> None:
    """The signer's scope is read at authentication; a removal or rotation of that key earlier in
    the transaction must still stop a later debit (``charge_signer_allowance`` then reads the account)."""
    assert fleet.submit(OWNER, m.add_key(MACHINE.did, raw(K2)), cosigners=[K2]).ok  # a second full key
    removed_then_paid = fleet.submit(
        MACHINE, m.remove_key(MACHINE.did, raw(MACHINE)), send(PERSON.did, "aut", 5), sender=MACHINE.did
    )
    assert removed_then_paid.code == "core.unknown_signer"
    rotated_then_paid = fleet.submit(
        MACHINE,
        m.rotate(MACHINE.did, raw(MACHINE), raw(OWNER)),
        send(PERSON.did, "aut", 5),
        sender=MACHINE.did,
        cosigners=[OWNER],
    )
    assert rotated_then_paid.code == "core.unknown_signer"
    assert fleet.submit(MACHINE, send(PERSON.did, "aut", 5), sender=MACHINE.did).ok  # nothing was kept
