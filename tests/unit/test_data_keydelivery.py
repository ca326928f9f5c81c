"""Key delivery (``autarky.messaging.keydelivery``): the seller's signed envelope carrying the data key
sealed to the buyer's key; the buyer's checks, each refusal code in its precedence; and that nobody
but the buyer can read the key.

The grant is a real one: a purchase on the in-memory chain creates it, and the buyer's directory
holds the ledger's record of it (as a device would after proving it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.ledger.tx import TxBody, sign_tx
from autarky.messaging import errors
from autarky.messaging import keydelivery as kd
from autarky.messaging.directory import StaticDirectory, StaticGrant
from autarky.messaging.envelope import peek, seal
from autarky.messaging.errors import MessageError
from autarky.messaging.replay import ReplayGuard
from autarky.modules.data import DataModule, PurchaseRecord
from autarky.modules.data import keeper as data_keeper
from autarky.modules.data import messages as data
from autarky.modules.harness import Chain
from autarky.modules.policy import GrantRecord, PolicyModule

CHAIN_ID = "keydelivery-test"
T0 = 1_700_000_000_000
HOUR_MS = 3_600_000


def key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/keydelivery-test/" + name.encode()))


STATION, TRACTOR, EVE, OTHER_BUYER = (key(n) for n in ("station", "tractor", "eve", "other-buyer"))


class Sale:
    """An offer, a purchase of two hours by the tractor, and the tractor's directory."""

    def __init__(self) -> None:
        genesis: dict[str, Any] = {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": T0,
            "app_state": {
                "bank": {
                    "params": {"fee_asset": "aut", "min_fee": 0},
                    "balances": [
                        {"account": TRACTOR.did, "asset": "aut", "amount": 1_000},
                        {"account": OTHER_BUYER.did, "asset": "aut", "amount": 1_000},
                    ],
                }
            },
        }
        self.chain = Chain.from_genesis(genesis)
        module = self.chain.app.module("data")
        policy = self.chain.app.module("policy")
        assert isinstance(module, DataModule) and isinstance(policy, PolicyModule)
        self.policy = policy
        offer_tx = self.run(
            STATION,
            data.offer(
                kind="stream",
                name="weather",
                price=5,
                asset="aut",
                per="period",
                period_ms=HOUR_MS,
                licence="x",
            ),
        )
        self.offer = data_keeper.new_offer_id(offer_tx, 0)
        purchase = module.purchase(
            self.chain.state,
            data_keeper.new_purchase_id(self.run(TRACTOR, data.buy(self.offer, periods=2)), 0),
        )
        other = module.purchase(
            self.chain.state,
            data_keeper.new_purchase_id(self.run(OTHER_BUYER, data.buy(self.offer, periods=1)), 0),
        )
        assert purchase is not None and other is not None
        self.purchase: PurchaseRecord = purchase
        self.other_purchase: PurchaseRecord = other
        self.now = self.chain.headers[-1].time_ms
        self.data_key = kd.new_data_key()
        self.directory = StaticDirectory(grants=[self.grant(purchase.grant), self.grant(other.grant)])
        for party in (STATION, TRACTOR, EVE):
            self.directory.add_key(party.did, party.public_key.raw)

    def run(self, signer: SigningKey, message: dict[str, Any]) -> bytes:
        tx = sign_tx(TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,)), signer)
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == "ok", receipt.detail
        return tx.hash

    def grant(self, grant_id: bytes) -> GrantRecord:
        record = self.policy.grant(self.chain.state, grant_id)
        assert record is not None
        return record

    def seal(self, signer: SigningKey = STATION, **changes: Any) -> bytes:
        fields: dict[str, Any] = {
            "seller": signer.did,
            "buyer": TRACTOR.did,
            "offer": self.offer,
            "purchase": self.purchase.id,
            "grant": self.purchase.grant,
            "data_key": self.data_key,
            "now_ms": self.now,
        }
        fields.update(changes)
        return kd.seal_key(signer, **fields)

    def open(self, envelope: bytes, buyer_key: SigningKey = TRACTOR, **changes: Any) -> kd.DeliveredKey:
        fields: dict[str, Any] = {
            "buyer": TRACTOR.did,
            "offer": self.offer,
            "seller": STATION.did,
            "now_ms": self.now + 1_000,
        }
        fields.update(changes)
        directory = fields.pop("directory", self.directory)
        return kd.open_key(envelope, buyer_key, directory, **fields)

    def code(self, envelope: bytes, **changes: Any) -> str:
        try:
            self.open(envelope, **changes)
        except MessageError as refused:
            return refused.code
        return "ok"


def raw_envelope(
    sale: Sale, body: Any, msg_type: str = kd.KEY_DELIVERY_TYPE, signer: SigningKey = STATION
) -> bytes:
    return seal(signer, signer.did, TRACTOR.did, msg_type, body, now_ms=sale.now, ttl_ms=60_000)


def body_of(sale: Sale, **changes: Any) -> dict[str, Any]:
    """The body of a correct delivery, changed."""
    body = dict(peek(sale.seal()).body)
    body.update(changes)
    return body


def sealed_inner(inner: dict[str, Any], to: SigningKey = TRACTOR) -> bytes:
    import nacl.bindings
    import nacl.public

    curve = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(to.public_key.raw)
    return bytes(nacl.public.SealedBox(nacl.public.PublicKey(curve)).encrypt(canonical_encode(inner)))


# -- the happy path ----------------------------------------------------------------------------------


def test_the_buyer_opens_the_key_and_decrypts_the_data() -> None:
    sale = Sale()
    envelope = sale.seal()
    delivered = sale.open(envelope)
    assert delivered.key == sale.data_key
    assert (delivered.offer, delivered.purchase, delivered.grant) == (
        sale.offer,
        sale.purchase.id,
        sale.purchase.grant,
    )
    assert delivered.seller == STATION.did and delivered.root_grantor == STATION.did
    assert delivered.message.type == "m2m/data_key" and delivered.message.recipient == TRACTOR.did
    assert delivered.key_hash == kd.key_hash(sale.data_key) != kd.key_hash(kd.new_data_key())
    reading = kd.encrypt_content(sale.data_key, b"14.2 C")
    assert kd.decrypt_content(delivered.key, reading) == b"14.2 C"
    # Opening the same delivery twice is harmless without a replay guard; with one it is refused.
    assert sale.open(envelope).key == sale.data_key
    guard = ReplayGuard(max_ttl_ms=kd.DEFAULT_KEY_TTL_MS)
    sale.open(envelope, replay=guard)
    assert sale.code(envelope, replay=guard) == "msg.replay"


def test_the_key_is_not_in_the_envelope_in_clear_and_nobody_else_opens_it() -> None:
    sale = Sale()
    envelope = sale.seal()
    assert sale.data_key not in envelope
    # Eve has the envelope and the directory, but not the tractor's secret key.
    assert sale.code(envelope, buyer_key=EVE) == "msg.undecryptable"


def test_the_signature_covers_the_sealed_key() -> None:
    sale = Sale()
    envelope = bytearray(sale.seal())
    sealed = peek(bytes(envelope)).body["sealed"]
    at = bytes(envelope).index(sealed)
    envelope[at + len(sealed) - 1] ^= 1  # the same length, so the bytes still decode
    assert sale.code(bytes(envelope)) == "msg.bad_signature"


def test_a_delivery_sealed_to_another_key_of_the_buyer() -> None:
    """After a rotation the seller encrypts to the key the buyer's DID document lists now."""
    sale = Sale()
    new_key = key("tractor-new-key")
    envelope = sale.seal(buyer_public_key=new_key.public_key.raw)
    assert sale.code(envelope) == "msg.undecryptable"
    assert sale.open(envelope, buyer_key=new_key).key == sale.data_key


# -- refusals, each in its precedence ------------------------------------------------------------------


def test_envelope_codes_come_first() -> None:
    sale = Sale()
    to_other = kd.seal_key(
        STATION,
        seller=STATION.did,
        buyer=OTHER_BUYER.did,
        offer=sale.offer,
        purchase=sale.other_purchase.id,
        grant=sale.other_purchase.grant,
        data_key=sale.data_key,
        now_ms=sale.now,
    )
    assert sale.code(to_other) == "msg.wrong_recipient"
    short = sale.seal(ttl_ms=500)
    assert sale.code(short) == "msg.expired"
    unknown_signer = sale.seal(signer=key("unknown"))
    assert sale.code(unknown_signer) == "msg.unknown_key"
    assert sale.code(b"not an envelope") == "msg.malformed"


def test_bad_key_delivery_for_another_type_or_a_malformed_body() -> None:
    sale = Sale()
    good = body_of(sale)
    assert sale.code(raw_envelope(sale, good, msg_type="m2m/reading")) == "msg.bad_key_delivery"
    assert sale.code(raw_envelope(sale, {**good, "extra": 1})) == "msg.bad_key_delivery"
    assert sale.code(raw_envelope(sale, {**good, "grant": b"short"})) == "msg.bad_key_delivery"
    assert sale.code(raw_envelope(sale, {**good, "sealed": "text"})) == "msg.bad_key_delivery"
    assert sale.code(raw_envelope(sale, [good])) == "msg.bad_key_delivery"
    # bad_key_delivery precedes wrong_offer and not_seller
    assert (
        sale.code(raw_envelope(sale, {**good, "offer": bytes(32), "x": 1}, signer=EVE))
        == "msg.bad_key_delivery"
    )


def test_wrong_offer_then_not_seller() -> None:
    sale = Sale()
    assert sale.code(sale.seal(offer=bytes(32))) == "msg.wrong_offer"
    assert sale.code(sale.seal(signer=EVE, offer=bytes(32))) == "msg.wrong_offer"
    assert sale.code(sale.seal(signer=EVE)) == "msg.not_seller"
    assert sale.code(sale.seal(), seller=EVE.did) == "msg.not_seller"


def test_the_buyer_must_hold_a_live_grant_from_the_seller() -> None:
    sale = Sale()
    assert sale.code(sale.seal(grant=bytes(32))) == "msg.unknown_grant"
    assert sale.code(sale.seal(grant=sale.other_purchase.grant)) == "msg.no_grant"
    assert sale.code(sale.seal(), now_ms=sale.purchase.access_until_ms) == "msg.grant_expired"
    revoked = replace(sale.grant(sale.purchase.grant), revoked=9)
    directory = StaticDirectory(grants=[revoked])
    directory.add_key(STATION.did, STATION.public_key.raw)
    assert sale.code(sale.seal(), directory=directory) == "msg.grant_revoked"
    # A grant for the same resource from someone else than the seller is not the seller's consent.
    forged = StaticGrant("eve-grant", EVE.did, TRACTOR.did, "read", f"data/{sale.offer.hex()}")
    sale.directory.add_grant(forged)
    forged_id = sha256(b"eve-grant")
    assert sale.code(sale.seal(grant=forged_id)) == "msg.untrusted_grant"
    # grant codes precede undecryptable
    assert sale.code(sale.seal(grant=forged_id), buyer_key=EVE) == "msg.untrusted_grant"


def test_undecryptable_when_the_sealed_content_is_not_a_key_for_this_purchase() -> None:
    sale = Sale()
    good = body_of(sale)
    other_purchase = {"offer": sale.offer, "purchase": sale.other_purchase.id, "key": sale.data_key}
    assert (
        sale.code(raw_envelope(sale, {**good, "sealed": sealed_inner(other_purchase)})) == "msg.undecryptable"
    )
    short_key = {"offer": sale.offer, "purchase": sale.purchase.id, "key": b"short"}
    assert sale.code(raw_envelope(sale, {**good, "sealed": sealed_inner(short_key)})) == "msg.undecryptable"
    extra = {"offer": sale.offer, "purchase": sale.purchase.id, "key": sale.data_key, "x": 1}
    assert sale.code(raw_envelope(sale, {**good, "sealed": sealed_inner(extra)})) == "msg.undecryptable"
    assert sale.code(raw_envelope(sale, {**good, "sealed": b"garbage"})) == "msg.undecryptable"
    right = {"offer": sale.offer, "purchase": sale.purchase.id, "key": sale.data_key}
    assert sale.open(raw_envelope(sale, {**good, "sealed": sealed_inner(right)})).key == sale.data_key


def test_the_codes_are_listed_once_in_their_order() -> None:
    codes = [code.code for code in kd.KEY_DELIVERY_CODES_IN_PRECEDENCE]
    assert codes[: len(errors.ENVELOPE_CODES_IN_PRECEDENCE)] == [
        c.code for c in errors.ENVELOPE_CODES_IN_PRECEDENCE
    ]
    tail = codes[len(errors.ENVELOPE_CODES_IN_PRECEDENCE) :]
    assert tail[:3] == ["msg.bad_key_delivery", "msg.wrong_offer", "msg.not_seller"]
    assert tail[-2:] == ["msg.untrusted_grant", "msg.undecryptable"]


# -- sealing refuses what it cannot send; content encryption -------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"offer": b"short"},
        {"purchase": None},
        {"grant": bytes(31)},
        {"data_key": bytes(16)},
        {"buyer": "did:web:tractor"},
        {"buyer_public_key": bytes(32)},
    ],
)
def test_seal_key_refuses_bad_inputs_with_msg_malformed(change: dict[str, Any]) -> None:
    sale = Sale()
    with pytest.raises(MessageError) as refused:
        sale.seal(**change)
    assert refused.value.code == "msg.malformed"


def test_content_decrypts_only_with_its_key_and_unaltered() -> None:
    content_key = kd.new_data_key()
    box = kd.encrypt_content(content_key, b"dataset bytes")
    assert box != kd.encrypt_content(content_key, b"dataset bytes")  # a fresh nonce each time
    with pytest.raises(ValueError):
        kd.decrypt_content(kd.new_data_key(), box)
    with pytest.raises(ValueError):
        kd.decrypt_content(content_key, box[:-1] + bytes([box[-1] ^ 1]))
    with pytest.raises(MessageError):
        kd.encrypt_content(b"short", b"x")
