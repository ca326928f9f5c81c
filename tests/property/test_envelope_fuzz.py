"""R6 and R5 for M2M envelopes: fuzzing the decoder, and message and transaction signatures kept apart.

Inputs (hypothesis; derandomized under the ``ci`` profile, so a run repeats exactly):

* random bytes, with and without the COSE_Sign1 tag in front;
* single-byte replacements, deletions, insertions, truncations and extensions of valid envelopes;
* envelopes whose COSE structure and signature are correct but whose payload is any value of the
  data model (random maps, near-miss payloads with one field changed), so the checks after the
  signature are reached too.

Properties:

* ``peek``, ``open_envelope`` and the device's ``CommandHandler`` raise nothing but
  :class:`MessageError` (the handler raises nothing at all: it returns a refusal), and its code is
  one of the declared ``msg.*`` codes;
* a damaged envelope that still opens is the same message as the original (only the tag, which is
  outside the signature, may differ), and a refused one leaves the replay guard as it was;
* the hand-written reader of the outer COSE array accepts exactly what the canonical decoder
  accepts in that shape;
* R5: a message signature never verifies as a transaction signature (offline, and through the
  executor on a real chain, where the state root does not move), and a transaction signature never
  opens as a message.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autarky.crypto.cose import CoseError, _split_sign1, decode_sign1, protected_header
from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.keys import PublicKey, SigningKey, cose_sig_structure, verify_raw
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.ledger.executor import verify_signatures
from autarky.ledger.tx import TxBody, decode_tx, encode_signed, sign_tx
from autarky.messaging import (
    MAX_ENVELOPE_BYTES,
    MessageError,
    ReplayGuard,
    StaticDirectory,
    key_id,
    open_envelope,
)
from autarky.messaging import errors as codes
from autarky.messaging.commands import COMMAND_TYPE, CommandHandler, MemoryDecisionLog, command_body
from autarky.messaging.directory import StaticGrant
from autarky.messaging.envelope import CONTENT_TYPE, peek, seal
from autarky.modules.bank import messages as bank_messages
from autarky.modules.harness import Chain
from autarky.node.genesis import dev_genesis

SENDER = SigningKey.from_seed(b"fuzz-sender".ljust(32, b"\x00"))
DEVICE = SigningKey.from_seed(b"fuzz-device".ljust(32, b"\x00"))
NOW = 1_767_225_600_000
CHAIN_ID = "fuzz"
DECLARED = frozenset(code.code for code in codes.ALL_CODES)
SEED_ENVELOPE = seal(
    SENDER, SENDER.did, DEVICE.did, COMMAND_TYPE, command_body("open", "valve-1", "g", 3), now_ms=NOW
)


def fuzz(max_examples: int) -> settings:
    # Inherits the loaded profile (``ci``: derandomized); only the budget is set here.
    return settings(max_examples=max_examples, deadline=None)


def directory() -> StaticDirectory:
    book = StaticDirectory(grants=[StaticGrant("g", DEVICE.did, SENDER.did, "open", "valve-1")])
    for signer in (SENDER, DEVICE):
        book.add_key(signer.did, signer.public_key.raw)
    return book


def check(data: bytes) -> Any:
    """Every entry point on ``data``: only typed refusals; returns the opened message or None."""
    try:
        peek(data)
    except MessageError as exc:
        assert exc.code in DECLARED, exc.code
    guard = ReplayGuard()
    try:
        message = open_envelope(data, directory(), now_ms=NOW, replay=guard, recipient=DEVICE.did)
    except MessageError as exc:
        assert exc.code in DECLARED, exc.code
        assert len(guard) == 0
        message = None
    device = CommandHandler(
        DEVICE, directory(), {"open": lambda command: command.args}, log=MemoryDecisionLog()
    )
    decision, reply = device.handle(data, NOW)  # never raises
    assert decision.code is None or decision.code in DECLARED
    if decision.accepted:  # only a message that opens can be obeyed
        assert message is not None and message.type == COMMAND_TYPE
    if reply is not None:
        assert peek(reply).correlation == peek(data).nonce
    return message


# --- random and damaged bytes ----------------------------------------------------------------------


@fuzz(1500)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes(data: bytes, tagged: bool) -> None:
    check(b"\xd2" + data if tagged else data)


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    how = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "extend"]))
    position = draw(st.integers(0, len(data) - 1))
    if how == "replace":
        value = draw(st.integers(0, 255).filter(lambda byte: byte != data[position]))
        return data[:position] + bytes([value]) + data[position + 1 :]
    if how == "delete":
        return data[:position] + data[position + 1 :]
    if how == "insert":
        return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position:]
    if how == "truncate":
        return data[:position]
    return data + draw(st.binary(min_size=1, max_size=8))


@fuzz(2000)
@given(damaged(SEED_ENVELOPE))
def test_damaged_envelopes_open_only_as_the_original(data: bytes) -> None:
    message = check(data)
    if message is not None:
        original = peek(SEED_ENVELOPE)
        assert data in (SEED_ENVELOPE, SEED_ENVELOPE[1:])  # dropping the tag is the one harmless change
        assert (message.sender, message.body, message.nonce) == (
            original.sender,
            original.body,
            original.nonce,
        )


# --- well-signed envelopes around any payload ---------------------------------------------------------

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.binary(max_size=20) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers(-5, 5), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ("type", "sender", "recipient", "body", "nonce", "issued_ms", "expires_ms", "correlation")


def signed_around(payload_bytes: bytes, signer: SigningKey = SENDER) -> bytes:
    protected = protected_header(key_id(signer.did, signer.public_key.raw).encode(), CONTENT_TYPE)
    signature = signer.sign_cose(Domain.MESSAGE, protected, payload_bytes)
    return b"\xd2" + canonical_encode([protected, {}, payload_bytes, signature])


@fuzz(600)
@given(VALUES)
def test_any_payload_value(value: Any) -> None:
    check(signed_around(canonical_encode(value)))


@fuzz(800)
@given(st.sampled_from(FIELDS), VALUES | st.just("__absent__"))
def test_payloads_with_one_field_changed(field: str, value: Any) -> None:
    payload = canonical_decode(decode_sign1(SEED_ENVELOPE, max_bytes=MAX_ENVELOPE_BYTES).payload)
    if value == "__absent__":
        payload.pop(field, None)
    else:
        payload[field] = value
    message = check(signed_around(canonical_encode(payload)))
    if message is not None:  # a change the checks allow (another body, another nonce) is what was signed
        assert message.body == payload["body"]


# --- the hand-written outer reader equals the canonical decoder ---------------------------------------


def reference_split(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    try:
        value = canonical_decode(data)
    except DecodeError:
        return None
    shape_ok = (
        type(value) is list
        and len(value) == 4
        and type(value[0]) is bytes
        and value[1] == {}
        and type(value[2]) is bytes
        and type(value[3]) is bytes
    )
    return (value[0], value[2], value[3]) if shape_ok else None


def fast_split(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    try:
        return _split_sign1(data, 0)
    except CoseError:
        return None


@fuzz(2000)
@given(
    st.one_of(
        st.binary(max_size=80),
        damaged(SEED_ENVELOPE[1:]),
        st.tuples(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=70)).map(
            lambda parts: canonical_encode([parts[0], {}, parts[1], parts[2]])
        ),
        st.builds(
            lambda prefix, rest: b"\x84" + prefix + rest, st.binary(max_size=3), st.binary(max_size=40)
        ),
    )
)
def test_outer_reader_accepts_exactly_what_the_canonical_decoder_accepts(data: bytes) -> None:
    assert fast_split(data) == reference_split(data)


# --- R5: message and transaction signatures never stand for each other --------------------------------


def test_every_other_signed_byte_string_starts_with_autarky_and_a_sig_structure_never_does() -> None:
    for domain in Domain:
        chain_id = (
            CHAIN_ID if domain in (Domain.TRANSACTION, Domain.BLOCK_HEADER, Domain.VOTE, Domain.CUT) else None
        )
        assert domain_tag(domain, chain_id).startswith(b"AUTARKY-")
    assert cose_sig_structure(Domain.MESSAGE, b"", b"")[:1] == b"\x84"


def _chain() -> Chain:
    return Chain.from_genesis(
        dev_genesis(CHAIN_ID, time_ms=NOW, allocations=[(SENDER.did, "aut", 1_000_000)])
    )


@fuzz(150)
@given(VALUES)
def test_a_message_signature_is_never_a_transaction_signature(body: Any) -> None:
    envelope = seal(SENDER, SENDER.did, DEVICE.did, "m2m/note", body, now_ms=NOW)
    cose = decode_sign1(envelope, max_bytes=MAX_ENVELOPE_BYTES)
    signed = cose.signed_bytes(Domain.MESSAGE)
    assert verify_raw(SENDER.public_key.raw, signed, cose.signature)  # the control
    public_key = PublicKey(SENDER.public_key.raw)
    # Whatever bytes a transaction signature would cover (tag || body), this signature is not one:
    for candidate in (cose.payload, signed, signed[1:], cose.protected + cose.payload):
        assert not public_key.verify(Domain.TRANSACTION, candidate, cose.signature, CHAIN_ID)
        assert not public_key.verify(Domain.BLOCK_HEADER, candidate, cose.signature, CHAIN_ID)
    # ... and on a real chain: a transfer carrying the message signature is refused, nothing changes.
    chain = _chain()
    tx_body = TxBody(CHAIN_ID, SENDER.did, 0, 1, 0, (bank_messages.send(DEVICE.did, "aut", 5),)).encode()
    raw = encode_signed(tx_body, [(SENDER.public_key.raw, cose.signature)])
    assert not verify_signatures(decode_tx(raw))
    root = chain.root
    (receipt,) = chain.execute([raw])
    assert receipt.code == "core.bad_signature"
    assert chain.root == root


@fuzz(150)
@given(st.integers(0, 2**32), st.integers(1, 10**6))
def test_a_transaction_signature_never_opens_as_a_message(sequence: int, amount: int) -> None:
    tx = sign_tx(
        TxBody(CHAIN_ID, SENDER.did, sequence, 1, 0, (bank_messages.send(DEVICE.did, "aut", amount),)), SENDER
    )
    (_, tx_signature) = tx.signatures[0]
    assert verify_signatures(tx)  # the control
    protected = protected_header(key_id(SENDER.did, SENDER.public_key.raw).encode(), CONTENT_TYPE)
    good = decode_sign1(
        seal(SENDER, SENDER.did, DEVICE.did, "m2m/note", amount, now_ms=NOW), max_bytes=MAX_ENVELOPE_BYTES
    )
    # The transaction signature inside an otherwise valid envelope, and around the transaction's own bytes:
    for payload in (good.payload, tx.body_bytes, tx.signed_payload()):
        data = b"\xd2" + canonical_encode([protected, {}, payload, tx_signature])
        try:
            open_envelope(data, directory(), now_ms=NOW, replay=ReplayGuard(), recipient=DEVICE.did)
        except MessageError as exc:
            assert exc.code in ("msg.bad_signature", "msg.malformed"), exc.code
        else:
            raise AssertionError("a transaction signature opened as a message")
    assert not PublicKey(SENDER.public_key.raw).verify_cose(
        Domain.MESSAGE, protected, tx.body_bytes, tx_signature
    )
