"""The bank module through the real application (``build_app``) and the in-memory chain.

Layout: a small world (an owner, two machines it registers, a stranger, a peer) and one section
per behaviour: fee and ante, ``bank/send``, guardrails, freeze, sweep. Every expected rejection is
asserted by its code; a test that names a precedence puts two faults in one message and checks
the one documented first wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Event, Receipt
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import FEE_COLLECTOR, keeper
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain

CHAIN_ID = "bank-test"
FEE = 1


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/bank-test/" + name.encode()))


OWNER = make_key("owner")
MACHINE = make_key("machine")
SECOND = make_key("second-machine")  # also owned by OWNER
STRANGER = make_key("stranger")
PEER = make_key("peer")
SCOPED = make_key("machine-scoped-key")


def register(machine: SigningKey) -> dict[str, Any]:
    return {
        "type": "identity/register",
        "did": machine.did,
        "kind": "robot",
        "maker": "acme",
        "model": "r1",
        "capabilities": [],
        "metadata": {},
    }


def limit(
    per_tx: int | None = None, per_window: int | None = None, cosign_above: int | None = None
) -> dict[str, Any]:
    return {"per_tx": per_tx, "per_window": per_window, "cosign_above": cosign_above}


def guardrails(
    window_blocks: int = 10, allowlist: list[str] | None = None, **limits: dict[str, Any]
) -> dict[str, Any]:
    return {"window_blocks": window_blocks, "limits": dict(limits), "allowlist": allowlist}


class World:
    """A chain where OWNER has registered MACHINE and SECOND (block 1); everyone holds funds."""

    def __init__(self, min_fee: int = FEE) -> None:
        genesis = {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": 1_700_000_000_000,
            "app_state": {
                "bank": {
                    "params": {"fee_asset": "aut", "min_fee": min_fee},
                    "assets": ["gold"],
                    "balances": [
                        {"account": OWNER.did, "asset": "aut", "amount": 10_000},
                        {"account": MACHINE.did, "asset": "aut", "amount": 1_000},
                        {"account": MACHINE.did, "asset": "kwh", "amount": 500},
                        {"account": SECOND.did, "asset": "aut", "amount": 1_000},
                        {"account": STRANGER.did, "asset": "aut", "amount": 1_000},
                    ],
                }
            },
        }
        self.chain = Chain.from_genesis(genesis)
        self.fee = max(min_fee, FEE)
        self.ok(OWNER, register(MACHINE), cosigners=[MACHINE])
        self.ok(OWNER, register(SECOND), cosigners=[SECOND])

    # Building and running transactions ------------------------------------------------------------

    def tx(
        self,
        signer: SigningKey,
        *msgs: dict[str, Any],
        fee: int | None = None,
        cosigners: Sequence[SigningKey] = (),
        sender: SigningKey | None = None,
        sequence: int | None = None,
    ) -> bytes:
        account = (sender or signer).did
        seq = self.chain.sequence(account) if sequence is None else sequence
        body = TxBody(CHAIN_ID, account, seq, self.fee if fee is None else fee, 0, tuple(msgs))
        return sign_tx(body, signer, cosigners=cosigners).raw

    def run(self, signer: SigningKey, *msgs: dict[str, Any], **options: Any) -> Receipt:
        """One block holding one transaction; its receipt."""
        (receipt,) = self.chain.execute([self.tx(signer, *msgs, **options)])
        assert self.chain.invariants() == []
        return receipt

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], **options: Any) -> Receipt:
        receipt = self.run(signer, *msgs, **options)
        assert receipt.code == "ok", receipt.detail
        return receipt

    def empty_blocks(self, count: int) -> None:
        for _ in range(count):
            self.chain.execute([])

    def guard(self, machine: SigningKey, value: dict[str, Any] | None) -> None:
        self.ok(OWNER, bank.set_guardrails(machine.did, value))

    # Reading state ----------------------------------------------------------------------------------

    def balance(self, who: SigningKey | str, asset: str = "aut") -> int:
        return keeper.balance(self.chain.state, who if isinstance(who, str) else who.did, asset)

    def seq(self, who: SigningKey) -> int:
        return self.chain.sequence(who.did)


def events(receipt: Receipt, kind: str) -> list[dict[str, Any]]:
    return [dict(event.attributes) for event in receipt.events if event.type == kind]


def transfer_event(source: SigningKey, to: SigningKey | str, asset: str, amount: int) -> Event:
    to_did = to if isinstance(to, str) else to.did
    return Event(
        "bank.transfer", (("amount", amount), ("asset", asset), ("from", source.did), ("to", to_did))
    )


@pytest.fixture
def world() -> World:
    return World()


# ---------------------------------------------------------------------------------------------------
# Queries


def test_queries_read_balances_supply_and_params(world: World) -> None:
    state = world.chain.state
    assert keeper.balances(state, MACHINE.did) == {"aut": 1_000, "kwh": 500}
    assert list(keeper.balances(state, MACHINE.did)) == ["aut", "kwh"]
    assert keeper.balances(state, PEER.did) == {}
    assert keeper.supply(state, "kwh") == 500
    assert keeper.supply(state, "gold") == 0
    assert keeper.supply(state, "nope") == 0
    assert keeper.supply(state, "aut") == 13_000
    assert keeper.params(state) == {"fee_asset": "aut", "min_fee": FEE}
    assert keeper.guardrails(state, MACHINE.did) is None
    assert keeper.is_frozen(state, MACHINE.did) is False
    assert keeper.window_spent(state, MACHINE.did, "aut", world.chain.height) == 0


# ---------------------------------------------------------------------------------------------------
# Fee and ante


def test_fee_goes_to_the_fee_collector_and_supply_is_unchanged(world: World) -> None:
    collected = world.balance(FEE_COLLECTOR)
    receipt = world.ok(MACHINE, bank.send(PEER.did, "aut", 10), fee=3)
    assert events(receipt, "bank.fee") == [{"payer": MACHINE.did, "amount": 3, "asset": "aut"}]
    assert world.balance(FEE_COLLECTOR) == collected + 3
    assert world.balance(MACHINE) == 1_000 - 13
    assert keeper.supply(world.chain.state, "aut") == 13_000


def test_fee_below_minimum_changes_nothing() -> None:
    world = World(min_fee=5)
    root, seq = world.chain.root, world.seq(MACHINE)
    receipt = world.run(MACHINE, bank.send(PEER.did, "aut", 1), fee=4)
    assert receipt.code == "bank.fee_too_low"
    assert receipt.events == ()
    assert world.chain.root == root and world.seq(MACHINE) == seq


def test_unpayable_fee_changes_nothing(world: World) -> None:
    root = world.chain.root
    receipt = world.run(PEER, bank.send(MACHINE.did, "aut", 1), fee=1)  # PEER holds nothing
    assert receipt.code == "bank.insufficient_fee"
    assert world.chain.root == root and world.seq(PEER) == 0


def test_fee_precedence_frozen_before_fee_too_low() -> None:
    world = World(min_fee=2)
    world.ok(OWNER, bank.freeze(MACHINE.did), fee=2)
    assert world.run(MACHINE, bank.send(PEER.did, "aut", 1), fee=1).code == "bank.account_frozen"


def test_fee_precedence_too_low_before_insufficient() -> None:
    world = World(min_fee=2)
    assert world.run(PEER, bank.send(MACHINE.did, "aut", 1), fee=1).code == "bank.fee_too_low"


def test_zero_fee_allowed_when_minimum_is_zero() -> None:
    world = World(min_fee=0)
    receipt = world.run(STRANGER, bank.send(PEER.did, "aut", 5), fee=0)
    assert receipt.code == "ok" and events(receipt, "bank.fee") == []
    assert world.balance(PEER) == 5 and world.balance(STRANGER) == 995


def test_failed_message_keeps_fee_and_sequence_but_undoes_every_message(world: World) -> None:
    seq = world.seq(MACHINE)
    receipt = world.run(MACHINE, bank.send(PEER.did, "aut", 10), bank.send(PEER.did, "aut", 10_000))
    assert receipt.code == "bank.insufficient_funds"
    assert [event.type for event in receipt.events] == ["bank.fee"]
    assert world.balance(MACHINE) == 1_000 - FEE  # the first send is undone, the fee stays
    assert world.balance(PEER) == 0
    assert world.seq(MACHINE) == seq + 1


# ---------------------------------------------------------------------------------------------------
# bank/send


def test_send_moves_funds_and_emits_a_transfer(world: World) -> None:
    receipt = world.ok(MACHINE, bank.send(PEER.did, "kwh", 120))
    assert receipt.events[-1] == transfer_event(MACHINE, PEER, "kwh", 120)
    assert world.balance(MACHINE, "kwh") == 380 and world.balance(PEER, "kwh") == 120


def test_send_of_a_whole_balance_deletes_the_balance_key(world: World) -> None:
    world.ok(MACHINE, bank.send(PEER.did, "kwh", 500))
    assert f"bank/bal/{MACHINE.did}/kwh" not in world.chain.data
    assert keeper.balances(world.chain.state, MACHINE.did) == {"aut": 1_000 - FEE}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "bank/send", "to": PEER.did, "asset": "aut"},
        {"type": "bank/send", "to": PEER.did, "asset": "aut", "amount": 1, "memo": "x"},
        {"type": "bank/send", "to": PEER.did, "asset": "aut", "amount": True},
        {"type": "bank/send", "to": PEER.did, "asset": "aut", "amount": "1"},
        {"type": "bank/send", "to": b"peer", "asset": "aut", "amount": 1},
        {"type": "bank/send", "to": PEER.did, "asset": 7, "amount": 1},
        {"type": "bank/send", 1: PEER.did, "asset": "aut", "amount": 1},
    ],
)
def test_send_with_a_malformed_field_is_invalid_message(world: World, message: dict[Any, Any]) -> None:
    assert world.run(MACHINE, message).code == "core.invalid_message"


@pytest.mark.parametrize("amount", [0, -5, 2**64])
def test_send_amount_out_of_range(world: World, amount: int) -> None:
    assert world.run(MACHINE, bank.send(PEER.did, "aut", amount)).code == "bank.invalid_amount"


@pytest.mark.parametrize("to", ["peer", FEE_COLLECTOR, "did:key:z6Mk", ""])
def test_send_to_a_non_did(world: World, to: str) -> None:
    assert world.run(MACHINE, bank.send(to, "aut", 1)).code == "bank.invalid_recipient"


def test_send_to_self(world: World) -> None:
    assert world.run(MACHINE, bank.send(MACHINE.did, "aut", 1)).code == "bank.self_transfer"


@pytest.mark.parametrize("asset", ["nope", "AUT", "a/b", "", "x" * 17])
def test_send_of_an_unknown_asset(world: World, asset: str) -> None:
    assert world.run(MACHINE, bank.send(PEER.did, asset, 1)).code == "bank.unknown_asset"


def test_send_of_an_asset_with_zero_supply_is_insufficient_funds(world: World) -> None:
    assert world.run(MACHINE, bank.send(PEER.did, "gold", 1)).code == "bank.insufficient_funds"


def test_send_more_than_the_balance(world: World) -> None:
    assert world.run(MACHINE, bank.send(PEER.did, "kwh", 501)).code == "bank.insufficient_funds"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (bank.send("peer", "nope", 0), "bank.invalid_amount"),
        (bank.send("peer", "nope", 1), "bank.invalid_recipient"),
        (bank.send(MACHINE.did, "nope", 1), "bank.self_transfer"),
        (bank.send(PEER.did, "nope", 10**9), "bank.unknown_asset"),
    ],
)
def test_send_precedence(world: World, message: dict[str, Any], code: str) -> None:
    assert world.run(MACHINE, message).code == code


# ---------------------------------------------------------------------------------------------------
# bank/set_guardrails


def test_owner_sets_and_clears_guardrails(world: World) -> None:
    value = guardrails(5, allowlist=[PEER.did, OWNER.did], aut=limit(per_tx=10))
    receipt = world.ok(OWNER, bank.set_guardrails(MACHINE.did, value))
    assert events(receipt, "bank.guardrails_set") == [
        {"machine": MACHINE.did, "owner": OWNER.did, "cleared": False}
    ]
    stored = keeper.guardrails(world.chain.state, MACHINE.did)
    assert stored == {**value, "allowlist": sorted([PEER.did, OWNER.did])}
    world.ok(MACHINE, bank.send(PEER.did, "aut", 5))
    assert keeper.spent_entries(world.chain.state, MACHINE.did) != []
    receipt = world.ok(OWNER, bank.set_guardrails(MACHINE.did, None))
    assert events(receipt, "bank.guardrails_set")[0]["cleared"] is True
    assert keeper.guardrails(world.chain.state, MACHINE.did) is None
    assert keeper.spent_entries(world.chain.state, MACHINE.did) == []


@pytest.mark.parametrize("sender", [STRANGER, MACHINE, SECOND])
def test_only_the_owner_sets_guardrails(world: World, sender: SigningKey) -> None:
    message = bank.set_guardrails(MACHINE.did, guardrails(aut=limit(per_tx=1)))
    assert world.run(sender, message).code == "bank.not_owner"


def test_guardrails_on_an_unregistered_account_are_not_owned(world: World) -> None:
    assert world.run(OWNER, bank.set_guardrails(PEER.did, guardrails())).code == "bank.not_owner"


def test_guardrails_machine_must_be_a_did(world: World) -> None:
    assert world.run(OWNER, bank.set_guardrails("robot-7", guardrails())).code == "core.invalid_message"


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        7,
        {"window_blocks": 1, "limits": {}},
        {"window_blocks": 1, "limits": {}, "allowlist": None, "extra": 1},
        guardrails(0),
        guardrails(1_000_001),
        {"window_blocks": True, "limits": {}, "allowlist": None},
        {"window_blocks": 1, "limits": [], "allowlist": None},
        {"window_blocks": 1, "limits": {"AUT": limit()}, "allowlist": None},
        {"window_blocks": 1, "limits": {1: limit()}, "allowlist": None},
        guardrails(aut={"per_tx": 1, "per_window": 2}),
        guardrails(aut={**limit(), 5: None}),
        guardrails(aut=limit(per_tx=-1)),
        guardrails(aut=limit(per_window=2**64)),
        guardrails(aut=limit(cosign_above=False)),
        guardrails(aut={"per_tx": "1", "per_window": None, "cosign_above": None}),
        guardrails(allowlist=["peer"]),
        guardrails(allowlist=[PEER.did, PEER.did]),
        {"window_blocks": 1, "limits": {}, "allowlist": PEER.did},
        {"window_blocks": 1, "limits": {f"a{index}": limit() for index in range(33)}, "allowlist": None},
    ],
)
def test_malformed_guardrails_are_refused(world: World, value: Any) -> None:
    receipt = world.run(OWNER, {"type": "bank/set_guardrails", "machine": MACHINE.did, "guardrails": value})
    assert receipt.code == "bank.invalid_guardrails"
    assert keeper.guardrails(world.chain.state, MACHINE.did) is None


def test_guardrails_precedence_not_owner_before_invalid(world: World) -> None:
    assert world.run(STRANGER, bank.set_guardrails(MACHINE.did, {"bad": 1})).code == "bank.not_owner"


# ---------------------------------------------------------------------------------------------------
# Guarded debits


def test_allowlist_limits_counterparties_but_never_the_fee(world: World) -> None:
    world.guard(MACHINE, guardrails(allowlist=[OWNER.did]))
    receipt = world.run(MACHINE, bank.send(PEER.did, "aut", 1))
    assert receipt.code == "bank.counterparty_not_allowed"
    assert events(receipt, "bank.fee") != []  # the fee collector is always allowed
    world.ok(MACHINE, bank.send(OWNER.did, "aut", 1))


def test_empty_allowlist_allows_only_fees(world: World) -> None:
    world.guard(MACHINE, guardrails(allowlist=[]))
    assert world.run(MACHINE, bank.send(OWNER.did, "aut", 1)).code == "bank.counterparty_not_allowed"
    assert world.balance(MACHINE) == 1_000 - FEE


def test_per_tx_cap_includes_the_fee(world: World) -> None:
    world.guard(MACHINE, guardrails(aut=limit(per_tx=10)))
    assert world.run(MACHINE, bank.send(PEER.did, "aut", 10)).code == "bank.per_tx_cap"
    world.ok(MACHINE, bank.send(PEER.did, "aut", 9))


def test_per_tx_cap_sums_the_messages_of_a_transaction(world: World) -> None:
    world.guard(MACHINE, guardrails(kwh=limit(per_tx=100)))
    receipt = world.run(MACHINE, bank.send(PEER.did, "kwh", 60), bank.send(OWNER.did, "kwh", 41))
    assert receipt.code == "bank.per_tx_cap"
    assert world.balance(MACHINE, "kwh") == 500
    world.ok(MACHINE, bank.send(PEER.did, "kwh", 60), bank.send(OWNER.did, "kwh", 40))
    world.ok(MACHINE, bank.send(PEER.did, "aut", 500))  # aut is not limited


def test_per_tx_cap_of_zero_in_the_fee_asset_blocks_every_transaction(world: World) -> None:
    world.guard(MACHINE, guardrails(aut=limit(per_tx=0)))
    root = world.chain.root
    receipt = world.run(MACHINE, bank.send(PEER.did, "kwh", 1))
    assert receipt.code == "bank.per_tx_cap" and receipt.events == ()  # refused in ante
    assert world.chain.root == root


def test_window_limit_rolls_over_any_window_of_blocks(world: World) -> None:
    world.guard(MACHINE, guardrails(3, kwh=limit(per_window=100)))
    world.ok(MACHINE, bank.send(PEER.did, "kwh", 60))
    spent_at = world.chain.height
    assert keeper.window_spent(world.chain.state, MACHINE.did, "kwh", spent_at) == 60
    world.ok(MACHINE, bank.send(PEER.did, "kwh", 40))  # block spent_at + 1: window 100
    assert world.run(MACHINE, bank.send(PEER.did, "kwh", 1)).code == "bank.window_limit"  # + 2
    assert world.chain.height == spent_at + 2
    # At spent_at + 3 the window is blocks spent_at + 1 .. spent_at + 3: the 60 has aged out.
    world.ok(MACHINE, bank.send(PEER.did, "kwh", 60))
    assert keeper.window_spent(world.chain.state, MACHINE.did, "kwh", world.chain.height) == 100
    # At spent_at + 4 the 40 has aged out too: only the 60 of spent_at + 3 counts.
    assert world.run(MACHINE, bank.send(PEER.did, "kwh", 41)).code == "bank.window_limit"
    assert world.chain.height == spent_at + 4
    world.ok(MACHINE, bank.send(PEER.did, "kwh", 40))


def test_window_counts_the_fee_and_prunes_old_entries(world: World) -> None:
    world.guard(MACHINE, guardrails(2, aut=limit(per_window=5)))
    world.ok(MACHINE, bank.send(PEER.did, "aut", 3))  # 1 fee + 3
    height = world.chain.height
    assert keeper.spent_entries(world.chain.state, MACHINE.did) == [[height, "aut", 4]]
    assert world.run(MACHINE, bank.send(PEER.did, "aut", 1)).code == "bank.window_limit"  # 4 + 1 + 1
    world.empty_blocks(1)
    world.ok(MACHINE, bank.send(PEER.did, "aut", 3))
    assert keeper.spent_entries(world.chain.state, MACHINE.did) == [[height + 3, "aut", 4]]


def test_cosign_above_threshold_needs_the_owner(world: World) -> None:
    world.guard(MACHINE, guardrails(aut=limit(cosign_above=50)))
    world.ok(MACHINE, bank.send(PEER.did, "aut", 49))  # 50 with the fee
    assert world.run(MACHINE, bank.send(PEER.did, "aut", 50)).code == "bank.cosign_required"
    assert (
        world.run(MACHINE, bank.send(PEER.did, "aut", 50), cosigners=[STRANGER]).code
        == "bank.cosign_required"
    )
    world.ok(MACHINE, bank.send(PEER.did, "aut", 50), cosigners=[OWNER])


def test_a_scoped_owner_key_does_not_count_as_the_owner(world: World) -> None:
    owner_scoped = make_key("owner-scoped")
    world.ok(
        OWNER,
        {
            "type": "identity/register",
            "did": OWNER.did,
            "kind": "person",
            "maker": "",
            "model": "",
            "capabilities": [],
            "metadata": {},
        },
    )
    world.ok(
        OWNER,
        {
            "type": "identity/add_key",
            "did": OWNER.did,
            "key": owner_scoped.public_key.raw,
            "actions": ["bank/send"],
        },
        cosigners=[owner_scoped],
    )
    world.guard(MACHINE, guardrails(aut=limit(cosign_above=10)))
    assert (
        world.run(MACHINE, bank.send(PEER.did, "aut", 20), cosigners=[owner_scoped]).code
        == "bank.cosign_required"
    )
    world.ok(MACHINE, bank.send(PEER.did, "aut", 20), cosigners=[OWNER])


def add_scoped_key(world: World, allowance: dict[str, int]) -> None:
    message = {
        "type": "identity/add_key",
        "did": MACHINE.did,
        "key": SCOPED.public_key.raw,
        "actions": ["bank/send"],
        "allowance": allowance,
    }
    world.ok(OWNER, message, cosigners=[SCOPED])


def test_scoped_key_allowance_is_charged_for_fees_and_sends(world: World) -> None:
    add_scoped_key(world, {"aut": 10})
    world.ok(SCOPED, bank.send(PEER.did, "aut", 4), sender=MACHINE)  # 5 of 10
    receipt = world.run(SCOPED, bank.send(PEER.did, "aut", 5), sender=MACHINE)  # 6 + 5 > 10
    assert receipt.code == "identity.allowance_exceeded"
    world.ok(MACHINE, bank.send(PEER.did, "aut", 100))  # the machine's full key has no allowance


def test_guarded_debit_precedence(world: World) -> None:
    """frozen > allowlist > per_tx > window > cosign > allowance > funds, one pair at a time."""
    add_scoped_key(world, {"aut": 1_000, "kwh": 3})

    def code(value: dict[str, Any], *msgs: dict[str, Any], signer: SigningKey = MACHINE) -> str:
        world.guard(MACHINE, None)  # also forgets the spend record
        world.guard(MACHINE, value)
        return world.run(signer, *msgs, sender=MACHINE).code

    everything = guardrails(allowlist=[OWNER.did], kwh=limit(per_tx=5, per_window=5, cosign_above=1))
    assert code(everything, bank.send(PEER.did, "kwh", 600)) == "bank.counterparty_not_allowed"
    assert code(everything, bank.send(OWNER.did, "kwh", 600)) == "bank.per_tx_cap"
    window = guardrails(kwh=limit(per_tx=5, per_window=4, cosign_above=1))
    assert code(window, bank.send(PEER.did, "kwh", 5)) == "bank.window_limit"
    cosign = guardrails(kwh=limit(per_tx=5, per_window=5, cosign_above=1))
    assert code(cosign, bank.send(PEER.did, "kwh", 5), signer=SCOPED) == "bank.cosign_required"
    assert code(guardrails(), bank.send(PEER.did, "kwh", 600), signer=SCOPED) == "identity.allowance_exceeded"
    assert code(guardrails(), bank.send(PEER.did, "kwh", 600)) == "bank.insufficient_funds"
    world.ok(OWNER, bank.freeze(MACHINE.did))
    world.ok(OWNER, bank.set_guardrails(MACHINE.did, everything))
    assert world.run(MACHINE, bank.send(PEER.did, "kwh", 600)).code == "bank.account_frozen"


def test_guardrails_readme_worked_example(world: World) -> None:
    """The table in bank/README.md, block by block (heights relative to the first block)."""
    world.guard(MACHINE, guardrails(10, aut=limit(per_tx=100, per_window=250, cosign_above=60)))
    start = world.chain.height

    def at(block: int) -> None:
        world.empty_blocks(start + block - 1 - world.chain.height)

    def window(block: int | None = None) -> int:
        height = world.chain.height if block is None else start + block
        return keeper.window_spent(world.chain.state, MACHINE.did, "aut", height)

    at(1)
    world.ok(MACHINE, bank.send(PEER.did, "aut", 50))
    assert window() == 51
    at(2)
    first, second = world.chain.execute(
        [
            world.tx(MACHINE, bank.send(PEER.did, "aut", 70)),
            world.tx(
                MACHINE, bank.send(PEER.did, "aut", 70), cosigners=[OWNER], sequence=world.seq(MACHINE) + 1
            ),
        ]
    )
    assert (first.code, second.code) == ("bank.cosign_required", "ok")
    assert window() == 123
    at(3)
    receipt = world.run(
        MACHINE, bank.send(PEER.did, "aut", 60), bank.send(PEER.did, "aut", 40), cosigners=[OWNER]
    )
    assert receipt.code == "bank.per_tx_cap"
    assert window() == 124
    at(5)
    world.ok(MACHINE, bank.send(PEER.did, "aut", 99), cosigners=[OWNER])
    assert window() == 224
    at(6)
    assert world.run(MACHINE, bank.send(PEER.did, "aut", 30)).code == "bank.window_limit"
    assert window() == 225
    at(11)
    assert window(11) == 174  # block 1's 51 has aged out: the window is blocks 2..11
    world.ok(MACHINE, bank.send(PEER.did, "aut", 30))
    assert world.chain.height == start + 11


def test_guardrails_bind_only_the_guarded_machine(world: World) -> None:
    world.guard(MACHINE, guardrails(aut=limit(per_tx=0)))
    world.ok(SECOND, bank.send(PEER.did, "aut", 100))
    world.ok(OWNER, bank.send(MACHINE.did, "aut", 100))  # credits are never limited


# ---------------------------------------------------------------------------------------------------
# bank/freeze and bank/unfreeze


def test_freeze_stops_every_transaction_of_the_machine_and_unfreeze_restores(world: World) -> None:
    receipt = world.ok(OWNER, bank.freeze(MACHINE.did))
    assert events(receipt, "bank.frozen") == [{"machine": MACHINE.did, "owner": OWNER.did}]
    assert keeper.is_frozen(world.chain.state, MACHINE.did)
    root, seq = world.chain.root, world.seq(MACHINE)
    receipt = world.run(MACHINE, bank.send(PEER.did, "aut", 1))
    assert receipt.code == "bank.account_frozen" and receipt.events == ()
    assert world.chain.root == root and world.seq(MACHINE) == seq
    world.ok(STRANGER, bank.send(MACHINE.did, "aut", 7))  # a frozen wallet still receives
    world.ok(OWNER, bank.freeze(MACHINE.did))  # pressing the switch twice is fine
    receipt = world.ok(OWNER, bank.unfreeze(MACHINE.did))
    assert events(receipt, "bank.unfrozen") == [{"machine": MACHINE.did, "owner": OWNER.did}]
    assert not keeper.is_frozen(world.chain.state, MACHINE.did)
    world.ok(MACHINE, bank.send(PEER.did, "aut", 1))
    world.ok(OWNER, bank.unfreeze(MACHINE.did))


@pytest.mark.parametrize("build", [bank.freeze, bank.unfreeze])
@pytest.mark.parametrize("sender", [STRANGER, MACHINE, SECOND])
def test_only_the_owner_freezes_and_unfreezes(world: World, build: Any, sender: SigningKey) -> None:
    assert world.run(sender, build(MACHINE.did)).code == "bank.not_owner"


@pytest.mark.parametrize("build", [bank.freeze, bank.unfreeze])
def test_freeze_of_a_non_did_is_invalid_message(world: World, build: Any) -> None:
    assert world.run(OWNER, build("machine-1")).code == "core.invalid_message"


# ---------------------------------------------------------------------------------------------------
# bank/sweep


def test_sweep_moves_every_balance_to_the_owner_and_bypasses_freeze_and_guardrails(world: World) -> None:
    world.guard(MACHINE, guardrails(1, allowlist=[PEER.did], aut=limit(0, 0, 0), kwh=limit(0, 0, 0)))
    world.ok(OWNER, bank.freeze(MACHINE.did))
    owner_before = world.balance(OWNER)
    receipt = world.ok(OWNER, bank.sweep(MACHINE.did))
    assert [event for event in receipt.events if event.type == "bank.transfer"] == [
        transfer_event(MACHINE, OWNER, "aut", 1_000),
        transfer_event(MACHINE, OWNER, "kwh", 500),
    ]
    assert events(receipt, "bank.swept") == [{"machine": MACHINE.did, "to": OWNER.did, "assets": 2}]
    assert keeper.balances(world.chain.state, MACHINE.did) == {}
    assert world.balance(OWNER) == owner_before - FEE + 1_000
    assert keeper.spent_entries(world.chain.state, MACHINE.did) == []


def test_sweep_to_another_account_and_of_an_empty_wallet(world: World) -> None:
    world.ok(OWNER, bank.sweep(MACHINE.did, PEER.did))
    assert keeper.balances(world.chain.state, PEER.did) == {"aut": 1_000, "kwh": 500}
    receipt = world.ok(OWNER, bank.sweep(MACHINE.did, PEER.did))
    assert events(receipt, "bank.swept") == [{"machine": MACHINE.did, "to": PEER.did, "assets": 0}]


@pytest.mark.parametrize("sender", [STRANGER, MACHINE, SECOND])
def test_only_the_owner_sweeps(world: World, sender: SigningKey) -> None:
    assert world.run(sender, bank.sweep(MACHINE.did, sender.did)).code == "bank.not_owner"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (bank.sweep(MACHINE.did, FEE_COLLECTOR), "bank.invalid_recipient"),
        (bank.sweep(MACHINE.did, MACHINE.did), "bank.self_transfer"),
        ({"type": "bank/sweep", "machine": MACHINE.did}, "core.invalid_message"),
        ({"type": "bank/sweep", "machine": MACHINE.did, "to": 5}, "core.invalid_message"),
    ],
)
def test_sweep_refusals(world: World, message: dict[str, Any], code: str) -> None:
    assert world.run(OWNER, message).code == code
    assert world.balance(MACHINE) == 1_000


def test_sweep_precedence_not_owner_before_recipient(world: World) -> None:
    assert world.run(STRANGER, bank.sweep(MACHINE.did, "nobody")).code == "bank.not_owner"
