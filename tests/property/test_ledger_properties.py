"""The ledger core under random valid and invalid transactions, through the real application.

Hypothesis draws a sequence of blocks. A block is either a batch of transactions that pass
authorisation (transfers, and messages that fail in step 9 and so keep their fee), or a single
transaction refused in steps 1-8 of the executor's precedence: malformed bytes (random, truncated,
a byte flipped), another chain id, expired, a bad signature, a key that is not the sender's, a
wrong sequence, a scoped key used beyond its scope, an unknown message type, a fee below the
minimum or one the sender cannot pay.

Checked after every block: the invariants of every module hold; a transaction of the batch gets
exactly the code it was built for; a refused transaction leaves the state root of its block equal
to the previous block's. At the end: ``chain.replay()`` from genesis gives the same headers (so the
same state roots, transaction roots and result roots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, encode_signed, sign_tx
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain

CHAIN_ID = "ledger-properties"


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/ledger-properties/" + name.encode()))


ALICE, BOB, CAROL = make_key("alice"), make_key("bob"), make_key("carol")
MACHINE, SCOPED = make_key("machine"), make_key("machine-scoped")  # MACHINE is owned by ALICE
BROKE, OUTSIDER = make_key("broke"), make_key("outsider")  # no funds; never registered
FUNDED = (ALICE, BOB, CAROL, MACHINE)

GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": 1_700_000_000_000,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 2},
            "assets": ["kwh"],
            "balances": [{"account": key.did, "asset": "aut", "amount": 1_000_000} for key in FUNDED],
        }
    },
}

# Codes of steps 1-8: the transaction is refused before its messages and changes nothing.
REFUSED_KINDS = {
    "random_bytes": None,  # core.malformed, or anything of steps 1-8 if the bytes happen to decode
    "truncated": "core.malformed",
    "flipped_byte": None,
    "wrong_chain": "core.wrong_chain",
    "expired": "core.expired",
    "bad_signature": "core.bad_signature",
    "unknown_signer": "core.unknown_signer",
    "bad_sequence": "core.bad_sequence",
    "key_scope": "core.key_scope",
    "unknown_message": "core.unknown_message",
    "fee_too_low": "bank.fee_too_low",
    "insufficient_fee": "bank.insufficient_fee",
}
STEPS_1_TO_8 = frozenset(
    {
        "core.malformed",
        "core.wrong_chain",
        "core.expired",
        "core.bad_signature",
        "core.unknown_signer",
        "core.account_revoked",
        "core.bad_sequence",
        "core.key_scope",
        "core.unknown_message",
        "bank.account_frozen",
        "bank.fee_too_low",
        "bank.insufficient_fee",
    }
)
# Messages that pass authorisation; the expected code of a transaction holding one of them.
BATCH_KINDS = {
    "transfer": "ok",
    "two_transfers": "ok",
    "too_much": "bank.insufficient_funds",
    "unknown_asset": "bank.unknown_asset",
    "zero_amount": "bank.invalid_amount",
    "not_owner": "bank.not_owner",
    "invalid_message": "core.invalid_message",
}


@dataclass(frozen=True)
class Spec:
    kind: str
    sender: int
    amount: int
    fee_extra: int
    noise: bytes


specs_common = {
    "sender": st.integers(0, len(FUNDED) - 1),
    "amount": st.integers(1, 500),
    "fee_extra": st.integers(0, 3),
    "noise": st.binary(min_size=1, max_size=80),
}
batch = st.lists(st.builds(Spec, kind=st.sampled_from(sorted(BATCH_KINDS)), **specs_common), max_size=5)
refused = st.builds(Spec, kind=st.sampled_from(sorted(REFUSED_KINDS)), **specs_common)
blocks = st.lists(
    st.one_of(batch.map(lambda specs: ("batch", specs)), refused.map(lambda s: ("refused", [s]))),
    min_size=1,
    max_size=14,
)


class Builder:
    """Signs the transactions a spec describes, tracking each sender's next sequence in the block."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.next_seq: dict[str, int] = {}

    def body(self, sender: SigningKey, msgs: list[dict[str, Any]], fee: int, **changes: Any) -> TxBody:
        seq = self.next_seq.get(sender.did, self.chain.sequence(sender.did))
        fields: dict[str, Any] = {
            "chain_id": CHAIN_ID,
            "sender": sender.did,
            "sequence": seq,
            "fee": fee,
            "expiry_height": 0,
            "messages": tuple(msgs),
        }
        fields.update(changes)
        return TxBody(**fields)

    def batch_tx(self, spec: Spec) -> bytes:
        sender = FUNDED[spec.sender]
        to = FUNDED[(spec.sender + 1) % len(FUNDED)]
        msgs = {
            "transfer": [bank.send(to.did, "aut", spec.amount)],
            "two_transfers": [
                bank.send(to.did, "aut", spec.amount),
                bank.send(ALICE.did if sender != ALICE else BOB.did, "aut", 1),
            ],
            "too_much": [bank.send(to.did, "aut", spec.amount), bank.send(to.did, "aut", 10**7)],
            "unknown_asset": [bank.send(to.did, "gold", spec.amount)],
            "zero_amount": [bank.send(to.did, "aut", 0)],
            "not_owner": [bank.freeze(MACHINE.did) if sender != ALICE else bank.freeze(BOB.did)],
            "invalid_message": [
                {"type": "bank/send", "to": to.did, "asset": "aut", "amount": str(spec.amount)}
            ],
        }[spec.kind]
        tx = sign_tx(self.body(sender, msgs, 2 + spec.fee_extra), sender)
        self.next_seq[sender.did] = tx.body.sequence + 1
        return tx.raw

    def refused_tx(self, spec: Spec) -> bytes:
        sender = FUNDED[spec.sender]
        send = [bank.send(BOB.did if sender != BOB else ALICE.did, "aut", spec.amount)]
        fee = 2 + spec.fee_extra
        kind = spec.kind
        if kind == "random_bytes":
            return spec.noise
        valid = sign_tx(self.body(sender, send, fee), sender)
        if kind == "truncated":
            return valid.raw[: len(spec.noise) % len(valid.raw)]
        if kind == "flipped_byte":
            position = int.from_bytes(spec.noise[:2], "big") % len(valid.raw)
            return valid.raw[:position] + bytes([valid.raw[position] ^ 0x01]) + valid.raw[position + 1 :]
        if kind == "wrong_chain":
            return sign_tx(self.body(sender, send, fee, chain_id="other-chain"), sender).raw
        if kind == "expired":
            return sign_tx(self.body(sender, send, fee, expiry_height=self.chain.height), sender).raw
        if kind == "bad_signature":
            public_key, signature = valid.signatures[0]
            forged = signature[:-1] + bytes([signature[-1] ^ 0x80])
            return encode_signed(valid.body_bytes, [(public_key, forged)])
        if kind == "unknown_signer":
            return sign_tx(self.body(sender, send, fee), OUTSIDER).raw
        if kind == "bad_sequence":
            current = self.chain.sequence(sender.did)
            wrong = current + 1 + spec.fee_extra if current == 0 or spec.amount % 2 else current - 1
            return sign_tx(self.body(sender, send, fee, sequence=wrong), sender).raw
        if kind == "key_scope":  # SCOPED may only send bank/send for MACHINE
            return sign_tx(self.body(MACHINE, [bank.freeze(MACHINE.did)], fee), SCOPED).raw
        if kind == "unknown_message":
            return sign_tx(self.body(sender, [{"type": "nope/do", "x": 1}], fee), sender).raw
        if kind == "fee_too_low":
            return sign_tx(self.body(sender, send, 1), sender).raw
        assert kind == "insufficient_fee"
        return sign_tx(self.body(BROKE, send, fee), BROKE).raw


def setup_chain() -> Chain:
    """Block 1: ALICE registers MACHINE; block 2: ALICE gives MACHINE a key scoped to bank/send."""
    chain = Chain.from_genesis(GENESIS)
    register = {
        "type": "identity/register",
        "did": MACHINE.did,
        "kind": "meter",
        "maker": "acme",
        "model": "m",
        "capabilities": [],
        "metadata": {},
    }
    add_key = {
        "type": "identity/add_key",
        "did": MACHINE.did,
        "key": SCOPED.public_key.raw,
        "actions": ["bank/send"],
    }
    for msgs, cosigner in (([register], MACHINE), ([add_key], SCOPED)):
        body = TxBody(CHAIN_ID, ALICE.did, chain.sequence(ALICE.did), 2, 0, tuple(msgs))
        (receipt,) = chain.execute([sign_tx(body, ALICE, cosigners=[cosigner]).raw])
        assert receipt.ok, receipt.detail
    return chain


@settings(max_examples=200)
@given(blocks=blocks)
def test_random_blocks_keep_invariants_refusals_change_nothing_and_replay_agrees(
    blocks: list[tuple[str, list[Spec]]],
) -> None:
    chain = setup_chain()
    for shape, specs in blocks:
        builder = Builder(chain)
        previous_root = chain.root
        if shape == "refused":
            (spec,) = specs
            (receipt,) = chain.execute([builder.refused_tx(spec)])
            event(f"refused {spec.kind}: {receipt.code}")
            expected = REFUSED_KINDS[spec.kind]
            assert receipt.code == expected if expected else receipt.code in STEPS_1_TO_8, (spec, receipt)
            assert receipt.events == ()
            assert chain.root == previous_root, f"{spec.kind} ({receipt.code}) changed the state"
        else:
            receipts = chain.execute([builder.batch_tx(spec) for spec in specs])
            for spec, receipt in zip(specs, receipts, strict=True):
                event(f"batch {spec.kind}: {receipt.code}")
                assert receipt.code == BATCH_KINDS[spec.kind], (spec, receipt)
                assert receipt.events[0].type == "bank.fee"  # the fee is paid, failed or not
        assert chain.invariants() == []
    replayed = chain.replay()
    assert replayed.headers == chain.headers
    assert replayed.root == chain.root and replayed.data == chain.data
