"""R5 at the transaction level: only a transaction signature, for this chain, authorises a transaction.

``tests/unit/test_domains.py`` checks the tags themselves (a signature verifies only under the tag
it was made with). Here the same property is checked where it matters: blocks executed by the real
executor (through the in-memory :class:`~autarky.modules.harness.Chain`) with transactions whose
signatures were made for another chain or another purpose. Each is refused with its typed code,
in the documented precedence (``core.wrong_chain`` before ``core.bad_signature``), and the block
that holds it leaves the state root exactly where it was.
"""

from __future__ import annotations

from typing import Any

import nacl.signing
import pytest

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, decode_tx, encode_signed, sign_tx
from autarky.modules.bank import messages as bank_messages
from autarky.modules.harness import Chain
from autarky.node.genesis import dev_genesis

CHAIN_PAIRS = [("a", "b"), ("a", "ab"), ("ab", "a"), ("main", "mainnet"), ("test", "test-2")]
TIME_MS = 1_767_225_600_000


def key_named(name: str) -> SigningKey:
    return SigningKey.from_seed(name.encode().ljust(32, b"\x00"))


SENDER = key_named("sender")
COSIGNER = key_named("cosigner")
RECIPIENT = key_named("recipient")


def genesis_for(chain_id: str) -> dict[str, Any]:
    return dev_genesis(
        chain_id,
        time_ms=TIME_MS,
        allocations=[(SENDER.did, "aut", 1_000_000), (COSIGNER.did, "aut", 1_000), (RECIPIENT.did, "aut", 1)],
    )


def body_for(chain_id: str, sequence: int = 0) -> TxBody:
    return TxBody(chain_id, SENDER.did, sequence, 1, 0, (bank_messages.send(RECIPIENT.did, "aut", 10),))


def wire(body_bytes: bytes, *signatures: tuple[SigningKey, bytes]) -> bytes:
    raw = encode_signed(body_bytes, [(key.public_key.raw, signature) for key, signature in signatures])
    decode_tx(raw)  # structurally a transaction: only the signature's meaning is wrong
    return raw


def refused(chain: Chain, raw: bytes) -> str:
    """Execute ``raw`` alone in a block on ``chain``; assert nothing changed; return the receipt code."""
    root, sequence = chain.root, chain.sequence(SENDER.did)
    (receipt,) = chain.execute([raw])
    assert not receipt.ok
    assert chain.root == root, f"a refused transaction ({receipt.code}) changed the state root"
    assert chain.sequence(SENDER.did) == sequence
    return receipt.code


def assert_still_works(chain: Chain) -> None:
    """The control: a correctly signed transaction on this chain is applied."""
    tx = sign_tx(body_for(chain.chain_id, chain.sequence(SENDER.did)), SENDER)
    (receipt,) = chain.execute([tx.raw])
    assert receipt.ok, receipt


@pytest.mark.parametrize(("signed_on", "run_on"), CHAIN_PAIRS)
def test_a_transaction_for_another_chain_is_refused_wrong_chain(signed_on: str, run_on: str) -> None:
    chain = Chain.from_genesis(genesis_for(run_on))
    tx = sign_tx(body_for(signed_on), SENDER)
    assert refused(chain, tx.raw) == "core.wrong_chain"
    assert_still_works(chain)


@pytest.mark.parametrize(("signed_on", "run_on"), CHAIN_PAIRS)
def test_a_body_for_this_chain_signed_under_another_chains_tag_is_refused(
    signed_on: str, run_on: str
) -> None:
    chain = Chain.from_genesis(genesis_for(run_on))
    body_bytes = body_for(run_on).encode()
    signature = SENDER.sign(Domain.TRANSACTION, body_bytes, signed_on)
    assert refused(chain, wire(body_bytes, (SENDER, signature))) == "core.bad_signature"
    assert_still_works(chain)


def _signatures_in_other_domains(body_bytes: bytes, chain_id: str, other_chain: str) -> dict[str, bytes]:
    return {
        "message": SENDER.sign(Domain.MESSAGE, body_bytes),
        "keystore proof": SENDER.sign(Domain.KEYSTORE_PROOF, body_bytes),
        "block header, this chain": SENDER.sign(Domain.BLOCK_HEADER, body_bytes, chain_id),
        "block header, other chain": SENDER.sign(Domain.BLOCK_HEADER, body_bytes, other_chain),
        "vote, this chain": SENDER.sign(Domain.VOTE, body_bytes, chain_id),
        "vote, other chain": SENDER.sign(Domain.VOTE, body_bytes, other_chain),
        "transaction, other chain": SENDER.sign(Domain.TRANSACTION, body_bytes, other_chain),
        "no tag at all": nacl.signing.SigningKey(SENDER.seed).sign(body_bytes).signature,
    }


def test_signatures_over_the_body_in_every_other_domain_are_refused_bad_signature() -> None:
    chain = Chain.from_genesis(genesis_for("b"))
    body_bytes = body_for("b").encode()
    for name, signature in _signatures_in_other_domains(body_bytes, "b", "a").items():
        assert refused(chain, wire(body_bytes, (SENDER, signature))) == "core.bad_signature", name
    assert_still_works(chain)


def test_a_cosignature_from_another_domain_is_refused_bad_signature() -> None:
    """Every signature counts: a good sender signature does not carry a co-signature made for another use."""
    chain = Chain.from_genesis(genesis_for("b"))
    body_bytes = body_for("b").encode()
    good = SENDER.sign(Domain.TRANSACTION, body_bytes, "b")
    for domain, chain_id in [
        (Domain.MESSAGE, None),
        (Domain.BLOCK_HEADER, "b"),
        (Domain.VOTE, "b"),
        (Domain.KEYSTORE_PROOF, None),
        (Domain.TRANSACTION, "a"),
    ]:
        cosignature = COSIGNER.sign(domain, body_bytes, chain_id)
        raw = wire(body_bytes, (SENDER, good), (COSIGNER, cosignature))
        assert refused(chain, raw) == "core.bad_signature", domain
    proper = COSIGNER.sign(Domain.TRANSACTION, body_bytes, "b")
    (receipt,) = chain.execute([wire(body_bytes, (SENDER, good), (COSIGNER, proper))])
    assert receipt.ok, receipt


def test_a_block_header_signature_is_never_a_transaction_signature() -> None:
    """A node key that is also a funded account: its block signatures cannot be replayed as transactions."""
    chain = Chain.from_genesis(genesis_for("b"))
    assert_still_works(chain)
    header = chain.headers[-1]
    header_bytes = header.encode()
    header_signature = SENDER.sign(Domain.BLOCK_HEADER, header_bytes, "b")
    assert SENDER.public_key.verify(Domain.BLOCK_HEADER, header_bytes, header_signature, "b")

    # The header and its signature, wrapped as a transaction: the bytes are not a transaction body.
    root = chain.root
    as_is = encode_signed(header_bytes, [(SENDER.public_key.raw, header_signature)])
    (receipt,) = chain.execute([as_is])
    assert receipt.code == "core.malformed"
    assert chain.root == root

    # A real transaction body, "signed" the way a node signs headers: refused.
    body_bytes = body_for("b", chain.sequence(SENDER.did)).encode()
    block_style = SENDER.sign(Domain.BLOCK_HEADER, body_bytes, "b")
    assert refused(chain, wire(body_bytes, (SENDER, block_style))) == "core.bad_signature"

    # And the converse: a transaction signature never verifies as a header signature.
    tx = sign_tx(body_for("b", chain.sequence(SENDER.did)), SENDER)
    assert not SENDER.public_key.verify(Domain.BLOCK_HEADER, tx.body_bytes, tx.signatures[0][1], "b")
    assert not SENDER.public_key.verify(Domain.BLOCK_HEADER, header_bytes, tx.signatures[0][1], "b")


def test_wrong_chain_takes_precedence_over_a_bad_signature() -> None:
    """Precedence is part of consensus: the chain id is checked (step 2) before signatures (step 4)."""
    chain = Chain.from_genesis(genesis_for("b"))
    body_bytes = body_for("a").encode()
    for signature in _signatures_in_other_domains(body_bytes, "a", "b").values():
        assert refused(chain, wire(body_bytes, (SENDER, signature))) == "core.wrong_chain"


def test_a_refused_transaction_among_good_ones_changes_only_what_the_good_ones_change() -> None:
    genesis = genesis_for("b")
    mixed, clean = Chain.from_genesis(genesis), Chain.from_genesis(genesis)
    good = [sign_tx(body_for("b", sequence), SENDER).raw for sequence in range(3)]
    body_bytes = body_for("b", 3).encode()
    bad = [
        sign_tx(body_for("a", 3), SENDER).raw,
        wire(body_bytes, (SENDER, SENDER.sign(Domain.MESSAGE, body_bytes))),
        wire(body_bytes, (SENDER, SENDER.sign(Domain.TRANSACTION, body_bytes, "a"))),
    ]
    receipts = mixed.execute([good[0], bad[0], good[1], bad[1], good[2], bad[2]])
    assert [receipt.code for receipt in receipts] == [
        "ok",
        "core.wrong_chain",
        "ok",
        "core.bad_signature",
        "ok",
        "core.bad_signature",
    ]
    clean.execute(good)
    assert mixed.root == clean.root
