"""The bank fast path (modules/bank/fast.py) is an optimisation only: it must never change a result.

Two chains start from one genesis: one runs the reference path only, the other tries the fast path
first. Hypothesis drives both with the same random blocks of transfers — valid and invalid: wrong
sequences, fees below the minimum or unpayable, unknown assets, self-transfers, bad recipients,
scoped keys, guarded and frozen machines, extra fields, two messages, co-signers — and every block
must give identical receipts (codes, events, details), identical write sets and identical headers.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.executor import execute_block
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain
from autarky.modules.identity import messages as identity

CHAIN_ID = "fast-path"


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/fast-path/" + name.encode()))


ALICE, BOB, CAROL, BROKE = (make_key(n) for n in ("alice", "bob", "carol", "broke"))
MACHINE, SCOPED, GUARDED, FROZEN = (make_key(n) for n in ("machine", "scoped", "guarded", "frozen"))
ALLOWANCE_KEY, ROTATE_ONLY_KEY, KWH_ONLY = (make_key(n) for n in ("allowance", "rotate-only", "kwh-only"))
GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": 1_700_000_000_000,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 2},
            "assets": ["kwh"],
            "balances": [
                *({"account": k.did, "asset": "aut", "amount": 1_000_000} for k in (ALICE, BOB, CAROL)),
                {"account": ALICE.did, "asset": "kwh", "amount": 5_000},
                {"account": KWH_ONLY.did, "asset": "kwh", "amount": 500},
            ],
        }
    },
}
# (account, signing key): the machine also signs with its scoped key.
SENDERS = [(ALICE, ALICE), (BOB, BOB), (CAROL, CAROL), (BROKE, BROKE), (MACHINE, MACHINE),
           (MACHINE, SCOPED), (GUARDED, GUARDED), (FROZEN, FROZEN), (MACHINE, ALLOWANCE_KEY),
           (MACHINE, ROTATE_ONLY_KEY), (KWH_ONLY, KWH_ONLY)]  # fmt: skip
RECIPIENTS = [k.did for k in (ALICE, BOB, CAROL, BROKE, MACHINE, GUARDED)] + [
    "did:key:zNotAKey",
    "module:fees",
]


def _tx(chain: Chain, account: SigningKey, key: SigningKey, seq: int, msgs: list[dict[str, Any]], fee: int,
        cosigners: tuple[SigningKey, ...] = ()) -> bytes:  # fmt: skip
    body = TxBody(CHAIN_ID, account.did, seq, fee, 0, tuple(msgs))
    return sign_tx(body, key, cosigners).raw


def _setup(chain: Chain) -> list[bytes]:
    """Register three machines owned by Alice, give one a scoped key, guard one, fund and freeze one."""
    seq = 0
    txs = []
    for machine in (MACHINE, GUARDED, FROZEN):
        txs.append(_tx(chain, ALICE, ALICE, seq, [identity.register(machine.did, "meter")], 2, (machine,)))
        seq += 1
    scoped = identity.add_key(MACHINE.did, SCOPED.public_key.raw, ["bank/send"])
    txs.append(_tx(chain, ALICE, ALICE, seq, [scoped], 2, (SCOPED,)))
    seq += 1
    scoped_keys = [
        identity.add_key(MACHINE.did, ALLOWANCE_KEY.public_key.raw, ["bank/send"], {"aut": 15}),
        identity.add_key(MACHINE.did, ROTATE_ONLY_KEY.public_key.raw, ["identity/rotate"]),
    ]
    txs.append(_tx(chain, ALICE, ALICE, seq, scoped_keys, 2, (ALLOWANCE_KEY, ROTATE_ONLY_KEY)))
    seq += 1
    guard = {"window_blocks": 3, "limits": {"aut": {"per_tx": 500, "per_window": 900, "cosign_above": None}},
             "allowlist": None}  # fmt: skip
    sends = [bank.send(m.did, "aut", 50_000) for m in (MACHINE, GUARDED, FROZEN)]
    txs.append(_tx(chain, ALICE, ALICE, seq, [*sends, bank.send(MACHINE.did, "kwh", 100)], 2))
    txs.append(
        _tx(
            chain,
            ALICE,
            ALICE,
            seq + 1,
            [bank.set_guardrails(GUARDED.did, guard), bank.freeze(FROZEN.did)],
            2,
        )
    )
    return txs


@st.composite
def blocks(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    plans = []
    for _ in range(draw(st.integers(1, 6))):
        block = []
        for _ in range(draw(st.integers(1, 12))):
            block.append(
                {
                    "sender": draw(st.integers(0, len(SENDERS) - 1)),
                    "to": draw(st.sampled_from([*RECIPIENTS, "self"])),
                    "asset": draw(st.sampled_from(["aut", "aut", "kwh", "zzz"])),
                    "amount": draw(st.sampled_from([0, 1, 7, 400, 600, 49_000, 2_000_000])),
                    "fee": draw(st.sampled_from([0, 1, 2, 2, 3, 1_000_000])),
                    "seq_offset": draw(st.sampled_from([0, 0, 0, 0, 1, -1])),
                    "shape": draw(st.sampled_from(["plain"] * 6 + ["extra_field", "two_sends", "cosigned"])),
                }
            )
        plans.append(block)
    return plans


def _build(chain: Chain, plan: dict[str, Any], pending: dict[str, int]) -> bytes:
    account, key = SENDERS[plan["sender"]]
    seq = chain.sequence(account.did) + pending.get(account.did, 0) + plan["seq_offset"]
    pending[account.did] = pending.get(account.did, 0) + 1
    to = account.did if plan["to"] == "self" else plan["to"]
    message = bank.send(to, plan["asset"], plan["amount"])
    shape = plan["shape"]
    msgs = [message]
    cosigners: tuple[SigningKey, ...] = ()
    if shape == "extra_field":
        msgs = [{**message, "memo": "x"}]
    elif shape == "two_sends":
        msgs = [message, bank.send(BOB.did, "aut", 1)]
    elif shape == "cosigned":
        cosigners = (ALICE,) if key is not ALICE else (BOB,)
    return _tx(chain, account, key, max(seq, 0), msgs, plan["fee"], cosigners)


@settings(max_examples=60)
@given(blocks())
def test_fast_path_gives_the_reference_results(plans: list[list[dict[str, Any]]]) -> None:
    reference = Chain.from_genesis(GENESIS, app=build_app(fast_path=False))
    fast = Chain.from_genesis(GENESIS, app=build_app(fast_path=True))
    batches = [_setup(reference), *([_build(reference, p, pending) for p in block]
                                    for block in plans for pending in [{}])]  # fmt: skip
    for txs in batches:
        results = []
        for chain in (reference, fast):
            result = execute_block(chain.state, chain.tree, chain.next_env(), txs, chain.app)
            chain.commit(result, tuple(txs))
            results.append(result)
        ref, got = results
        assert [r.to_cbor() for r in got.receipts] == [r.to_cbor() for r in ref.receipts]
        assert got.changes == ref.changes
        assert got.header == ref.header
    assert reference.invariants() == [] and fast.invariants() == []


def test_the_fast_path_is_taken_for_a_plain_send() -> None:
    app = build_app(fast_path=True)
    calls: list[bool] = []
    original = app.fast_path
    assert original is not None

    def spy(*args: Any) -> Any:
        receipt = original(*args)
        calls.append(receipt is not None)
        return receipt

    app.fast_path = spy
    chain = Chain.from_genesis(GENESIS, app=app)
    receipts = chain.execute([_tx(chain, BOB, BOB, 0, [bank.send(CAROL.did, "aut", 10)], 2)])
    assert receipts[0].ok and calls == [True]
    receipts = chain.execute([_tx(chain, BOB, BOB, 5, [bank.send(CAROL.did, "aut", 10)], 2)])
    assert receipts[0].code == "core.bad_sequence" and calls == [True, False]


def _send(to: SigningKey | str, asset: str = "aut", amount: int = 10) -> dict[str, Any]:
    return bank.send(to if isinstance(to, str) else to.did, asset, amount)


# One transaction per case, each checked against the reference on a chain after _setup: every
# reason the fast path must step aside, and the plain cases it must handle exactly like the reference.
SCENARIOS: dict[str, tuple[SigningKey, SigningKey, list[dict[str, Any]], int, int]] = {
    # name: (account, signing key, messages, fee, sequence offset)
    "plain": (BOB, BOB, [_send(CAROL)], 2, 0),
    "plain_kwh_from_machine": (MACHINE, MACHINE, [_send(BOB, "kwh", 100)], 2, 0),
    "spend_all_of_an_asset": (MACHINE, MACHINE, [_send(BOB, "kwh", 100)], 2, 0),
    "spend_everything": (BOB, BOB, [_send(CAROL, "aut", 1_000_000 - 2)], 2, 0),
    "one_too_many": (BOB, BOB, [_send(CAROL, "aut", 1_000_000 - 1)], 2, 0),
    "frozen": (FROZEN, FROZEN, [_send(BOB)], 2, 0),
    "guarded_within": (GUARDED, GUARDED, [_send(BOB, "aut", 100)], 2, 0),
    "guarded_beyond": (GUARDED, GUARDED, [_send(BOB, "aut", 600)], 2, 0),
    "scoped_key": (MACHINE, SCOPED, [_send(BOB)], 2, 0),
    "scoped_key_with_allowance": (MACHINE, ALLOWANCE_KEY, [_send(BOB, "aut", 5)], 2, 0),
    "scoped_key_beyond_allowance": (MACHINE, ALLOWANCE_KEY, [_send(BOB, "aut", 20)], 2, 0),
    "scoped_key_without_the_action": (MACHINE, ROTATE_ONLY_KEY, [_send(BOB)], 2, 0),
    "holds_the_asset_but_not_the_fee": (KWH_ONLY, KWH_ONLY, [_send(BOB, "kwh", 5)], 2, 0),
    "fee_below_minimum": (BOB, BOB, [_send(CAROL)], 1, 0),
    "fee_unpayable": (BROKE, BROKE, [_send(CAROL)], 2, 0),
    "unknown_asset": (BOB, BOB, [_send(CAROL, "zzz")], 2, 0),
    "asset_not_held": (BOB, BOB, [_send(CAROL, "kwh")], 2, 0),
    "self_transfer": (BOB, BOB, [_send(BOB)], 2, 0),
    "bad_recipient": (BOB, BOB, [_send("did:key:zNotAKey")], 2, 0),
    "module_recipient": (BOB, BOB, [_send("module:fees")], 2, 0),
    "zero_amount": (BOB, BOB, [_send(CAROL, "aut", 0)], 2, 0),
    "sequence_ahead": (BOB, BOB, [_send(CAROL)], 2, 1),
    "extra_field": (BOB, BOB, [{**_send(CAROL), "memo": "x"}], 2, 0),
    "two_sends": (BOB, BOB, [_send(CAROL), _send(ALICE)], 2, 0),
    "unregistered_sender_new_recipient": (CAROL, CAROL, [_send(make_key("new"))], 3, 0),
}


def test_each_scenario_matches_the_reference() -> None:
    reference = Chain.from_genesis(GENESIS, app=build_app(fast_path=False))
    fast = Chain.from_genesis(GENESIS, app=build_app(fast_path=True))
    for chain in (reference, fast):
        assert all(r.ok for r in chain.execute(_setup(chain)))
    assert reference.root == fast.root
    for name, (account, key, msgs, fee, offset) in SCENARIOS.items():
        seq = reference.sequence(account.did) + offset
        raw = _tx(reference, account, key, seq, msgs, fee)
        results = []
        for chain in (reference, fast):
            result = execute_block(chain.state, chain.tree, chain.next_env(), [raw], chain.app)
            chain.commit(result, (raw,))
            results.append(result)
        ref, got = results
        assert [r.to_cbor() for r in got.receipts] == [r.to_cbor() for r in ref.receipts], name
        assert got.changes == ref.changes, name
        assert got.header == ref.header, name
