"""Golden vectors of the ledger's encodings: the bytes every replica, client and tool must reproduce.

Fixed seeds give fixed Ed25519 keys (signatures are deterministic, RFC 8032), so one fixed
transaction body has one canonical encoding, one signed wire form, one hash and one signature.
Likewise a block header built from fixed fields, a receipt and a Merkle root. The literals were
computed once from the implementation and written here.

If one of these changes, every signature, transaction hash, header hash and result root made with
the old encoding stops matching: a consensus break and a break of every client that signs. Such a
change must be deliberate, versioned and announced, never a side effect of a refactoring or a
speed-up.
"""

from __future__ import annotations

import pytest

from autarky.crypto.did import public_key_from_did
from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_decode, canonical_encode
from autarky.ledger.block import BlockHeader, Event, Receipt
from autarky.ledger.errors import TxError
from autarky.ledger.executor import verify_signatures
from autarky.ledger.merkle import merkle_root
from autarky.ledger.tx import TxBody, decode_tx, sign_tx

SENDER = SigningKey.from_seed(bytes([1]) * 32)
RECIPIENT = SigningKey.from_seed(bytes([2]) * 32)
COSIGNER = SigningKey.from_seed(bytes([3]) * 32)

SENDER_PUBLIC_KEY = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
SENDER_DID = "did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX"
RECIPIENT_DID = "did:key:z6Mko9hTggMwjSTEaJaPUfE6tqcy2xvU6BnNq3e3o8qVBiyH"
COSIGNER_DID = "did:key:z6MkvRXNYcE7MMduynWTgeKbDaT1iijDSC8pZqXZc8rHPrf2"

BODY = TxBody(
    chain_id="golden",
    sender=SENDER_DID,
    sequence=7,
    fee=10,
    expiry_height=100,
    messages=({"type": "bank/send", "to": RECIPIENT_DID, "asset": "aut", "amount": 12345},),
    memo="golden vector",
)

# The body map, keys in canonical order (shorter encoded key first, then bytewise):
# fee, seq, memo, msgs, chain, expiry, sender.
BODY_BYTES = (
    "a7636665650a6373657107646d656d6f6d676f6c64656e20766563746f72646d73677381a462746f78386469643a6b"
    "65793a7a364d6b6f39685467674d776a535445614a615055664536747163793278765536426e4e713365336f387156"
    "4269794864747970656962616e6b2f73656e646561737365746361757466616d6f756e7419303965636861696e6667"
    "6f6c64656e6665787069727918646673656e64657278386469643a6b65793a7a364d6b6f6e334e656364364e6b6b79"
    "666f476f48786964327a6e476335394c55334b376d756261526346624c664c58"
)
SIGNATURE = (
    "085344b42335214565074c4fd47ac13fc1a652ca8ca1ea7b1208024d1ab8f957"
    "60b7c805a3b26bdf1a5ab498150ed6573493169764fca969dc960a4748711f05"
)
# [1, body_bytes, [[public_key, signature]]]
WIRE = (
    "830158dc"
    + BODY_BYTES
    + "818258208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c5840"
    + SIGNATURE
)
TX_HASH = "2a8170598f5a7650108dbc730ca07bccce90e65f43ee76aa10e38b0e9d0912dc"

COSIGNATURE = (
    "1212429c3cda955eea98d2c8cc163a29cc312ff69eb3097a5840d855e6517cc5"
    "680f30ce2c74fd0c295285533d2ddb4fa03f07d078020896e471895a8f900604"
)
COSIGNED_WIRE = (
    "830158dc"
    + BODY_BYTES
    + "828258208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c5840"
    + SIGNATURE
    + "825820ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d15840"
    + COSIGNATURE
)
COSIGNED_TX_HASH = "a06c0671f8ce6b5724a1023244adfc6e9c5de034651721234f71bd7a5aeb856c"

HEADER = BlockHeader(
    chain_id="golden",
    height=42,
    prev_hash=bytes(range(32)),
    time_ms=1_767_225_600_000,
    tx_count=1,
    tx_root=merkle_root([bytes.fromhex(TX_HASH)]),
    result_root=bytes([0xAA]) * 32,
    state_root=bytes([0xBB]) * 32,
)
HEADER_BYTES = (
    "a864707265765820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f65636861696e66"
    "676f6c64656e66686569676874182a6774696d655f6d731b0000019b76daa8006774785f726f6f745820cd64bd2035"
    "7f25f3fed113952a602f680fa757cba7fdc90cdbdcd317ec1891c56874785f636f756e74016a73746174655f726f6f"
    "745820bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb6b726573756c745f726f6f74"
    "5820aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)
HEADER_HASH = "567d23d6d418245fc52355af580f06602b3178b02d0927e7d592480d1d1100bf"

RECEIPT = Receipt(
    tx_hash=bytes.fromhex(TX_HASH),
    index=0,
    code="ok",
    events=(
        Event(
            "bank.transfer",
            (("amount", 12345), ("asset", "aut"), ("from", SENDER_DID), ("to", RECIPIENT_DID)),
        ),
    ),
    sender=SENDER_DID,
    detail="detail is for people and is not hashed",
)
# [tx_hash, code, [[event type, {attributes}]]]: index, sender and detail are not consensus bytes.
RECEIPT_BYTES = (
    "8358202a8170598f5a7650108dbc730ca07bccce90e65f43ee76aa10e38b0e9d0912dc626f6b81826d62616e6b2e74"
    "72616e73666572a462746f78386469643a6b65793a7a364d6b6f39685467674d776a535445614a6150556645367471"
    "63793278765536426e4e713365336f387156426979486466726f6d78386469643a6b65793a7a364d6b6f6e334e6563"
    "64364e6b6b79666f476f48786964327a6e476335394c55334b376d756261526346624c664c58656173736574636175"
    "7466616d6f756e74193039"
)
FAILED_RECEIPT = Receipt(bytes.fromhex(TX_HASH), 3, "bank.insufficient_funds", (), SENDER_DID)
FAILED_RECEIPT_BYTES = (
    "8358202a8170598f5a7650108dbc730ca07bccce90e65f43ee76aa10e38b0e9d0912dc"
    "7762616e6b2e696e73756666696369656e745f66756e647380"
)


def test_keys_from_fixed_seeds() -> None:
    assert SENDER.public_key.hex() == SENDER_PUBLIC_KEY
    assert SENDER.did == SENDER_DID
    assert RECIPIENT.did == RECIPIENT_DID
    assert COSIGNER.did == COSIGNER_DID
    assert public_key_from_did(SENDER_DID).hex() == SENDER_PUBLIC_KEY


def test_transaction_domain_tag() -> None:
    assert domain_tag(Domain.TRANSACTION, "golden") == b"AUTARKY-TX-V1\x00golden\x00"
    assert domain_tag(Domain.BLOCK_HEADER, "golden") == b"AUTARKY-BLOCK-V1\x00golden\x00"
    assert domain_tag(Domain.MESSAGE) == b"AUTARKY-MSG-V1\x00"


def test_canonical_body_bytes() -> None:
    assert BODY.encode().hex() == BODY_BYTES


def test_signed_transaction_wire_bytes_hash_and_signature() -> None:
    tx = sign_tx(BODY, SENDER)
    assert tx.signatures[0][1].hex() == SIGNATURE
    assert tx.raw.hex() == WIRE
    assert tx.hash.hex() == TX_HASH
    assert tx.signed_payload() == b"AUTARKY-TX-V1\x00golden\x00" + bytes.fromhex(BODY_BYTES)


def test_cosigned_transaction_wire_bytes_and_hash() -> None:
    tx = sign_tx(BODY, SENDER, (COSIGNER,))
    assert tx.signatures[1] == (COSIGNER.public_key.raw, bytes.fromhex(COSIGNATURE))
    assert tx.raw.hex() == COSIGNED_WIRE
    assert tx.hash.hex() == COSIGNED_TX_HASH


def test_the_golden_wire_bytes_decode_to_the_golden_body_and_verify() -> None:
    for wire in (WIRE, COSIGNED_WIRE):
        tx = decode_tx(bytes.fromhex(wire))
        assert tx.body == BODY
        assert tx.body_bytes.hex() == BODY_BYTES
        assert verify_signatures(tx)


def test_a_version_of_true_is_not_version_1() -> None:
    """CBOR ``true`` equals 1 in Python; the wire version must be the integer 1, or a second encoding
    of the same signed body (another hash) would pass (found by tests/property/test_decoder_fuzz.py)."""
    wire = bytes.fromhex(WIRE)
    assert wire[:2] == b"\x83\x01"
    with pytest.raises(TxError) as refused:
        decode_tx(b"\x83\xf5" + wire[2:])
    assert refused.value.code == "core.malformed"


def test_block_header_encoding_and_hash() -> None:
    assert HEADER.tx_root.hex() == "cd64bd20357f25f3fed113952a602f680fa757cba7fdc90cdbdcd317ec1891c5"
    assert HEADER.encode().hex() == HEADER_BYTES
    assert HEADER.hash.hex() == HEADER_HASH
    assert BlockHeader.decode(bytes.fromhex(HEADER_BYTES)) == HEADER


def test_receipt_consensus_bytes() -> None:
    assert RECEIPT.consensus_bytes().hex() == RECEIPT_BYTES
    assert FAILED_RECEIPT.consensus_bytes().hex() == FAILED_RECEIPT_BYTES
    reworded = Receipt(RECEIPT.tx_hash, 9, RECEIPT.code, RECEIPT.events, None, "other words")
    assert reworded.consensus_bytes() == RECEIPT.consensus_bytes()


def test_merkle_roots() -> None:
    assert merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle_root([b"a"]).hex() == "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c"
    assert (
        merkle_root([b"a", b"b", b"c"]).hex()
        == "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1"
    )
    five = [bytes([index]) * 32 for index in range(5)]
    assert merkle_root(five).hex() == "85e20cac1f02fda7bcdb2fc3f908568c57018c77815f1fa361acad13994f08bf"


def test_canonical_map_key_order_and_integer_heads() -> None:
    mixed = {"b": 1, "a": 2, "aa": 3, 1: 0, -1: 0, 100: b"", "": None, "z": [True, False]}
    encoded = "a80100200060f6186440616102616201617a82f5f462616103"
    assert canonical_encode(mixed).hex() == encoded
    assert canonical_decode(bytes.fromhex(encoded)) == mixed
    integers = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
    integers += [-1, -24, -25, -(2**64), 2**64, -(2**64) - 1]
    encoded_integers = (
        "900017181818ff19010019ffff1a000100001affffffff1b00000001000000001bffffffffffffffff2037381"
        "83bffffffffffffffffc249010000000000000000c349010000000000000000"
    )
    assert canonical_encode(integers).hex() == encoded_integers
    assert canonical_decode(bytes.fromhex(encoded_integers)) == integers
