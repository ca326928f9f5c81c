"""Golden vectors of the M2M envelope: the COSE_Sign1 bytes every agent, device and tool must reproduce.

The envelope is standard COSE_Sign1 (RFC 9052) with EdDSA, so it is checked two ways:

* against bytes written out here by hand from the RFC's definitions (protected header map,
  ``Sig_structure = ["Signature1", protected, external_aad, payload]`` with ``external_aad`` =
  ``AUTARKY-MSG-V1\\0``), and a signature that libsodium verifies over exactly those bytes;
* against an independent COSE implementation, ``pycose``, in both directions (it verifies ours; we
  open one it signed), when it is installed (it is in the ``dev`` extras).

Fixed seeds give fixed keys and Ed25519 signatures are deterministic, so one message has one
envelope. If a literal here changes, every deployed device stops verifying the others' messages:
such a change must be deliberate and versioned (a new content type or domain tag).
"""

from __future__ import annotations

import nacl.bindings
import pytest

from autarky.crypto.cose import decode_sign1
from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.keys import SigningKey, cose_sig_structure
from autarky.encoding import canonical_encode
from autarky.messaging import StaticDirectory, open_envelope, seal
from autarky.messaging.envelope import CONTENT_TYPE, MAX_ENVELOPE_BYTES, untagged

SENDER = SigningKey.from_seed(bytes(range(32)))
RECIPIENT = SigningKey.from_seed(bytes(range(32, 64)))
SENDER_DID = "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
RECIPIENT_DID = "did:key:z6MkhFwXNFWosLeugvSf4wcL9t3uuRXueGSFTRgSvHhWj5G2"
KID = SENDER_DID + "#z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
NOW_MS = 1_767_225_600_000
BODY = {"action": "actuate", "resource": "valve-7", "grant": "ab", "args": 1}


def golden_envelope() -> bytes:
    return seal(
        SENDER,
        SENDER_DID,
        RECIPIENT_DID,
        "m2m/command",
        BODY,
        now_ms=NOW_MS,
        ttl_ms=30_000,
        nonce=bytes(range(16)),
    )


# Written by hand from RFC 8949 / RFC 9052: map(3) {1: -8, 3: text(32), 4: bytes(105)}.
PROTECTED = (
    bytes.fromhex("a30127037820")  # map of 3; alg 1: -8 (0x27); content type 3: text of 32
    + b"application/vnd.autarky.m2m+cbor"
    + bytes.fromhex("045869")  # kid 4: byte string of 105
    + KID.encode("ascii")
)
PAYLOAD = (
    # map(7) in canonical order: shorter keys first, then bytewise
    bytes.fromhex("a7")
    + bytes.fromhex("64") + b"body"
    + bytes.fromhex("a4")  # {"args": 1, "grant": "ab", "action": "actuate", "resource": "valve-7"}
    + bytes.fromhex("64") + b"args" + bytes.fromhex("01")
    + bytes.fromhex("65") + b"grant" + bytes.fromhex("62") + b"ab"
    + bytes.fromhex("66") + b"action" + bytes.fromhex("67") + b"actuate"
    + bytes.fromhex("68") + b"resource" + bytes.fromhex("67") + b"valve-7"
    + bytes.fromhex("64") + b"type" + bytes.fromhex("6b") + b"m2m/command"
    + bytes.fromhex("65") + b"nonce" + bytes.fromhex("50") + bytes(range(16))
    + bytes.fromhex("66") + b"sender" + bytes.fromhex("7838") + SENDER_DID.encode()
    + bytes.fromhex("69") + b"issued_ms" + bytes.fromhex("1b") + NOW_MS.to_bytes(8, "big")
    + bytes.fromhex("69") + b"recipient" + bytes.fromhex("7838") + RECIPIENT_DID.encode()
    + bytes.fromhex("6a") + b"expires_ms" + bytes.fromhex("1b") + (NOW_MS + 30_000).to_bytes(8, "big")
)  # fmt: skip
SIG_STRUCTURE = (
    bytes.fromhex("84" "6a") + b"Signature1"  # array of 4; text of 10
    + bytes.fromhex("5892") + PROTECTED  # byte string of 146
    + bytes.fromhex("4f") + b"AUTARKY-MSG-V1\x00"  # external_aad: byte string of 15
    + bytes.fromhex("59010a") + PAYLOAD  # byte string of 266
)  # fmt: skip
SIGNATURE = bytes.fromhex(
    "a7bfd76ebbe114f5581fc7638b57a7d8cec65e78461e60316d0a4421232acc31"
    "ac7b8f26b970c0352a0711f4d2fccec2dda3089ac05cc3e48308f3185dd4800b"
)
ENVELOPE = (
    bytes.fromhex("d2" "84")  # tag 18 (COSE_Sign1), array of 4
    + bytes.fromhex("5892") + PROTECTED
    + bytes.fromhex("a0")  # unprotected: empty map
    + bytes.fromhex("59010a") + PAYLOAD
    + bytes.fromhex("5840") + SIGNATURE
)  # fmt: skip


def test_the_fixed_keys_are_the_documented_dids() -> None:
    assert SENDER.did == SENDER_DID
    assert RECIPIENT.did == RECIPIENT_DID


def test_envelope_bytes_are_the_hand_written_cose_sign1() -> None:
    envelope = golden_envelope()
    assert len(envelope) == 486
    assert envelope == ENVELOPE
    decoded = decode_sign1(envelope, max_bytes=MAX_ENVELOPE_BYTES)
    assert decoded.protected == PROTECTED
    assert decoded.payload == PAYLOAD
    assert decoded.kid == KID.encode()
    assert decoded.content_type == CONTENT_TYPE
    assert decoded.tagged


def test_sig_structure_is_the_rfc_9052_structure_with_the_message_domain_as_external_aad() -> None:
    assert domain_tag(Domain.MESSAGE) == b"AUTARKY-MSG-V1\x00"
    assert cose_sig_structure(Domain.MESSAGE, PROTECTED, PAYLOAD) == SIG_STRUCTURE
    assert canonical_encode(["Signature1", PROTECTED, b"AUTARKY-MSG-V1\x00", PAYLOAD]) == SIG_STRUCTURE
    assert SIG_STRUCTURE[0] == 0x84  # never "AUTARKY-…", the start of every other signed byte string


def test_signature_is_plain_ed25519_over_the_sig_structure() -> None:
    assert SENDER.sign_cose(Domain.MESSAGE, PROTECTED, PAYLOAD) == SIGNATURE
    # libsodium directly, no Autarky code in between:
    assert nacl.bindings.crypto_sign_open(SIGNATURE + SIG_STRUCTURE, SENDER.public_key.raw) == SIG_STRUCTURE
    assert SENDER.public_key.verify_cose(Domain.MESSAGE, PROTECTED, PAYLOAD, SIGNATURE)
    assert not SENDER.public_key.verify_cose(Domain.KEYSTORE_PROOF, PROTECTED, PAYLOAD, SIGNATURE)


def test_untagged_form_differs_only_by_the_tag_and_opens_the_same() -> None:
    assert untagged(ENVELOPE) == ENVELOPE[1:]
    directory = StaticDirectory()
    directory.add_key(SENDER_DID, SENDER.public_key.raw)
    for data in (ENVELOPE, ENVELOPE[1:]):
        message = open_envelope(data, directory, now_ms=NOW_MS, replay=None, recipient=RECIPIENT_DID)
        assert (message.sender, message.kid, message.body) == (SENDER_DID, KID, BODY)


@pytest.mark.parametrize("length", [0, 1, 23, 24, 255, 256, 65_535, 65_536, 70_000])
def test_hand_built_sig_structure_equals_the_canonical_encoder_at_every_length_boundary(length: int) -> None:
    protected, payload = b"p" * (length % 300), b"x" * length
    expected = canonical_encode(["Signature1", protected, domain_tag(Domain.MESSAGE), payload])
    assert cose_sig_structure(Domain.MESSAGE, protected, payload) == expected


# --- an independent implementation -----------------------------------------------------------------


def test_pycose_verifies_our_envelope_with_the_domain_tag_as_external_aad() -> None:
    pycose_messages = pytest.importorskip("pycose.messages", reason="pycose is in the dev extras")
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519

    message = pycose_messages.CoseMessage.decode(ENVELOPE)  # the tag tells it this is a COSE_Sign1
    assert isinstance(message, pycose_messages.Sign1Message)
    message.key = OKPKey(crv=Ed25519, x=SENDER.public_key.raw)
    message.external_aad = b"AUTARKY-MSG-V1\x00"
    assert message.verify_signature()
    assert message.payload == PAYLOAD
    message.external_aad = b""  # without the domain tag the signature means nothing
    assert not message.verify_signature()


def test_an_envelope_signed_by_pycose_opens_with_us() -> None:
    pycose_messages = pytest.importorskip("pycose.messages", reason="pycose is in the dev extras")
    from pycose.algorithms import EdDSA
    from pycose.headers import KID as KID_HEADER
    from pycose.headers import Algorithm, ContentType
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519

    message = pycose_messages.Sign1Message(
        phdr={Algorithm: EdDSA, ContentType: CONTENT_TYPE, KID_HEADER: KID.encode()}, payload=PAYLOAD
    )
    message.external_aad = b"AUTARKY-MSG-V1\x00"
    message.key = OKPKey(crv=Ed25519, d=SENDER.seed, x=SENDER.public_key.raw)
    data = message.encode()
    assert data == ENVELOPE  # same canonical header, same deterministic signature
    directory = StaticDirectory()
    directory.add_key(SENDER_DID, SENDER.public_key.raw)
    opened = open_envelope(data, directory, now_ms=NOW_MS + 1, replay=None, recipient=RECIPIENT_DID)
    assert opened.body == BODY
