"""The M2M envelope, its directory, replay guard and the device command handler (``autarky.messaging``).

Every refusal code is produced here by a message that has exactly that one fault, and the order of
precedence is checked with messages that have two faults at once. Time is always injected.
"""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from pathlib import Path
from typing import Any

import cbor2
import pytest

from autarky.crypto.cose import decode_sign1, protected_header
from autarky.crypto.domains import Domain
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.ledger.tx import TxBody, sign_tx
from autarky.messaging import (
    MAX_ENVELOPE_BYTES,
    Message,
    MessageError,
    ReplayGuard,
    StaticDirectory,
    StaticGrant,
    key_id,
    open_envelope,
    peek,
    public_key_from_kid,
    seal,
)
from autarky.messaging import errors as codes
from autarky.messaging.commands import (
    COMMAND_TYPE,
    RESULT_TYPE,
    Command,
    CommandHandler,
    JsonLinesDecisionLog,
    MemoryDecisionLog,
    command_body,
)
from autarky.messaging.directory import resource_covers, split_kid
from autarky.messaging.envelope import CONTENT_TYPE, MAX_CLOCK_SKEW_MS, NONCE_BYTES, untagged
from autarky.messaging.transport import recipient_token, subject_for


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER, CONTROLLER, VALVE, STRANGER, SENSOR_KEY = (
    key("owner"),
    key("controller"),
    key("valve"),
    key("stranger"),
    key("sensor-scoped"),
)
NOW = 1_767_225_600_000
TTL = 30_000


def directory() -> StaticDirectory:
    book = StaticDirectory()
    for signer in (OWNER, CONTROLLER, VALVE):
        book.add_key(signer.did, signer.public_key.raw)
    return book


def sealed(signer: SigningKey = CONTROLLER, recipient: str = VALVE.did, **overrides: Any) -> bytes:
    fields: dict[str, Any] = {"msg_type": "m2m/note", "body": {"n": 1}, "now_ms": NOW, "ttl_ms": TTL}
    fields.update(overrides)
    return seal(signer, signer.did, recipient, **fields)


def refusal(data: bytes, book: StaticDirectory | None = None, **kwargs: Any) -> str:
    options: dict[str, Any] = {"now_ms": NOW, "replay": ReplayGuard(), "recipient": VALVE.did}
    options.update(kwargs)
    with pytest.raises(MessageError) as caught:
        open_envelope(data, book or directory(), **options)
    return caught.value.code


def forge(
    payload: Any,
    signer: SigningKey = CONTROLLER,
    *,
    kid: bytes | None = None,
    protected: bytes | None = None,
    payload_bytes: bytes | None = None,
    tag: bytes = b"\xd2",
) -> bytes:
    """A correctly signed COSE_Sign1 around any payload: to reach the checks after the signature."""
    kid = kid if kid is not None else key_id(signer.did, signer.public_key.raw).encode()
    protected = protected if protected is not None else protected_header(kid, CONTENT_TYPE)
    payload_bytes = payload_bytes if payload_bytes is not None else canonical_encode(payload)
    signature = signer.sign_cose(Domain.MESSAGE, protected, payload_bytes)
    return tag + canonical_encode([protected, {}, payload_bytes, signature])


def good_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "m2m/note",
        "sender": CONTROLLER.did,
        "recipient": VALVE.did,
        "body": {"n": 1},
        "nonce": b"\x07" * NONCE_BYTES,
        "issued_ms": NOW,
        "expires_ms": NOW + TTL,
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not _DROP}


_DROP = object()


# --- seal / open ------------------------------------------------------------------------------------


def test_seal_then_open_gives_back_every_field() -> None:
    data = sealed(correlation=b"\x01" * 16, nonce=b"\x02" * 16)
    guard = ReplayGuard()
    message = open_envelope(data, directory(), now_ms=NOW + 1, replay=guard, recipient=VALVE.did)
    assert message == Message(
        sender=CONTROLLER.did,
        kid=key_id(CONTROLLER.did, CONTROLLER.public_key.raw),
        public_key=CONTROLLER.public_key.raw,
        recipient=VALVE.did,
        type="m2m/note",
        body={"n": 1},
        nonce=b"\x02" * 16,
        issued_ms=NOW,
        expires_ms=NOW + TTL,
        correlation=b"\x01" * 16,
        raw=data,
    )
    assert len(guard) == 1
    with pytest.raises(FrozenInstanceError):
        message.body = None  # type: ignore[misc]


def test_envelope_is_tagged_cose_sign1_with_eddsa_and_the_kid() -> None:
    data = sealed()
    assert data[:2] == b"\xd2\x84"  # tag 18, array of 4
    cose = decode_sign1(data, max_bytes=MAX_ENVELOPE_BYTES)
    assert cose.tagged
    assert cose.kid.decode() == f"{CONTROLLER.did}#{CONTROLLER.did.removeprefix('did:key:')}"
    assert cose.content_type == CONTENT_TYPE


def test_nonces_are_random_and_sixteen_bytes() -> None:
    nonces = {peek(sealed()).nonce for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(nonce) == NONCE_BYTES for nonce in nonces)


def test_untagged_envelope_opens_and_is_the_same_message_for_the_replay_guard() -> None:
    data = sealed()
    bare = untagged(data)
    assert bare == data[1:]
    guard = ReplayGuard()
    assert open_envelope(bare, directory(), now_ms=NOW, replay=guard).body == {"n": 1}
    assert refusal(data, replay=guard) == "msg.replay"


def test_peek_checks_shape_but_not_the_signature() -> None:
    data = bytearray(sealed())
    data[-1] ^= 1  # break the signature
    message = peek(bytes(data))
    assert message.sender == CONTROLLER.did
    assert message.public_key == CONTROLLER.public_key.raw
    assert refusal(bytes(data)) == "msg.bad_signature"
    with pytest.raises(MessageError) as caught:
        peek(b"\x00")
    assert caught.value.code == "msg.malformed"


def test_recipient_none_accepts_any_recipient_and_subjects_are_recipients() -> None:
    data = sealed(recipient="site-1.weather")
    assert open_envelope(data, directory(), now_ms=NOW, replay=None).recipient == "site-1.weather"
    assert refusal(data) == "msg.wrong_recipient"


# --- seal refuses what a receiver would refuse ----------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"msg_type": "Bad Type"}, "msg.malformed"),
        ({"msg_type": ""}, "msg.malformed"),
        ({"body": 1.5}, "msg.malformed"),
        ({"body": {1.5: 1}}, "msg.malformed"),
        ({"body": {"set": {1, 2}}}, "msg.malformed"),
        ({"ttl_ms": 0}, "msg.malformed"),
        ({"now_ms": -1}, "msg.malformed"),
        ({"nonce": b"short"}, "msg.malformed"),
        ({"correlation": b""}, "msg.malformed"),
        ({"correlation": b"x" * 65}, "msg.malformed"),
        ({"body": b"x" * MAX_ENVELOPE_BYTES}, "msg.too_large"),
    ],
)
def test_seal_refuses_bad_fields_with_the_receivers_code(overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(MessageError) as caught:
        sealed(**overrides)
    assert caught.value.code == code


def test_seal_refuses_a_sender_that_is_not_a_did_key_or_a_bad_recipient() -> None:
    for sender, recipient in (("alice", VALVE.did), (CONTROLLER.did, "has space"), (CONTROLLER.did, "")):
        with pytest.raises(MessageError) as caught:
            seal(CONTROLLER, sender, recipient, "m2m/note", None, now_ms=NOW)
        assert caught.value.code == "msg.malformed"


# --- every refusal code, one fault each ------------------------------------------------------------


def test_too_large_is_checked_before_decoding() -> None:
    assert refusal(b"\xff" * (MAX_ENVELOPE_BYTES + 1)) == "msg.too_large"
    body = "x" * (MAX_ENVELOPE_BYTES - 1000)
    assert len(sealed(body=body)) <= MAX_ENVELOPE_BYTES  # just under the cap still opens
    assert open_envelope(sealed(body=body), directory(), now_ms=NOW, replay=None).body == body


def _malformed_cases() -> list[tuple[str, bytes]]:
    good = sealed()
    cose = decode_sign1(good, max_bytes=MAX_ENVELOPE_BYTES)
    kid, protected, payload, signature = cose.kid, cose.protected, cose.payload, cose.signature
    ct = CONTENT_TYPE

    def outer(*items: Any) -> bytes:
        return b"\xd2" + canonical_encode(list(items))

    def with_header(header: dict[int, Any]) -> bytes:
        return forge(good_payload(), protected=canonical_encode(header))

    def with_kid(kid: bytes) -> bytes:
        return forge(good_payload(), kid=kid)

    unsorted_header = b"\xa3\x03" + canonical_encode(ct) + b"\x01\x27\x04" + canonical_encode(kid)
    float_payload = cbor2.dumps(good_payload(body=0.5), canonical=True)
    return [
        ("empty", b""),
        ("not cbor", b"\xff\xff"),
        ("trailing byte", good + b"\x00"),
        ("truncated", good[:-1]),
        ("other tag (COSE_Mac0)", b"\xd1" + good[1:]),
        ("array of 3", b"\xd2\x83" + good[2:]),
        ("bare map", canonical_encode({"a": 1})),
        ("unprotected header not empty", outer(protected, {4: kid}, payload, signature)),
        ("signature of 63 bytes", outer(protected, {}, payload, signature[:63])),
        ("detached payload", outer(protected, {}, None, signature)),
        ("non-canonical length head", b"\xd2\x84\x59\x00" + good[3:]),  # 2-byte length where 1 fits
        ("alg ES256", with_header({1: -7, 3: ct, 4: kid})),
        ("extra header label", with_header({1: -8, 3: ct, 4: kid, 5: b""})),
        ("text alg", with_header({1: "EdDSA", 3: ct, 4: kid})),
        ("kid as text", with_header({1: -8, 3: ct, 4: kid.decode()})),
        ("content type", forge(good_payload(), protected=protected_header(kid, "application/cbor"))),
        ("unsorted header", forge(good_payload(), protected=unsorted_header)),  # decodes, not canonical
        ("payload not a map", forge([1, 2])),
        ("payload float", forge(None, payload_bytes=float_payload)),
        ("payload non-canonical", forge(None, payload_bytes=b"\xa1\x61a\x18\x01")),  # {"a": 1}, long head
        ("missing field", forge(good_payload(nonce=_DROP))),
        ("extra field", forge({**good_payload(), "reply_to": "x"})),
        ("null correlation", forge(good_payload(correlation=None))),
        ("empty correlation", forge(good_payload(correlation=b""))),
        ("nonce 15 bytes", forge(good_payload(nonce=b"\x00" * 15))),
        ("nonce text", forge(good_payload(nonce="0" * 16))),
        ("bool time", forge(good_payload(issued_ms=True))),
        ("negative time", forge(good_payload(issued_ms=-1))),
        ("expires before issued", forge(good_payload(expires_ms=NOW))),
        ("time past 2**63", forge(good_payload(expires_ms=1 << 63))),
        ("bad type", forge(good_payload(type="M2M/NOTE"))),
        ("sender not a did", forge(good_payload(sender="controller"))),
        ("recipient with space", forge(good_payload(recipient="a b"))),
        ("recipient too long", forge(good_payload(recipient="a" * 257))),
        ("kid of another account", with_kid(key_id(OWNER.did, CONTROLLER.public_key.raw).encode())),
        ("kid without fragment", with_kid(CONTROLLER.did.encode())),
        ("kid not utf-8", with_kid(b"\xff" * 8)),
        ("kid fragment not a key", with_kid((CONTROLLER.did + "#z111").encode())),
    ]


@pytest.mark.parametrize(
    ("label", "data"), _malformed_cases(), ids=[label for label, _ in _malformed_cases()]
)
def test_malformed(label: str, data: bytes) -> None:
    assert refusal(data) == "msg.malformed", label
    with pytest.raises(MessageError):
        peek(data)


def test_forged_helper_builds_acceptable_envelopes() -> None:
    """The control for the cases above: with nothing wrong, a forged envelope opens."""
    data = forge(good_payload())
    assert open_envelope(data, directory(), now_ms=NOW, replay=ReplayGuard(), recipient=VALVE.did).body == {
        "n": 1
    }


def test_wrong_recipient() -> None:
    assert refusal(sealed(recipient=OWNER.did)) == "msg.wrong_recipient"


def test_not_yet_valid_at_the_clock_skew_boundary() -> None:
    data = sealed(now_ms=NOW + MAX_CLOCK_SKEW_MS)
    assert (
        open_envelope(data, directory(), now_ms=NOW, replay=ReplayGuard()).issued_ms
        == NOW + MAX_CLOCK_SKEW_MS
    )
    assert refusal(sealed(now_ms=NOW + MAX_CLOCK_SKEW_MS + 1)) == "msg.not_yet_valid"


def test_expired_at_exactly_expires_ms() -> None:
    data = sealed()
    assert (
        open_envelope(data, directory(), now_ms=NOW + TTL - 1, replay=ReplayGuard()).expires_ms == NOW + TTL
    )
    assert refusal(data, now_ms=NOW + TTL) == "msg.expired"
    assert refusal(data, now_ms=NOW + TTL + 10**9) == "msg.expired"


def test_ttl_too_long_only_with_a_replay_guard() -> None:
    guard = ReplayGuard(max_ttl_ms=60_000)
    assert open_envelope(sealed(ttl_ms=60_000), directory(), now_ms=NOW, replay=guard).type == "m2m/note"
    assert refusal(sealed(ttl_ms=60_001), replay=ReplayGuard(max_ttl_ms=60_000)) == "msg.ttl_too_long"
    assert open_envelope(sealed(ttl_ms=10**9), directory(), now_ms=NOW, replay=None).type == "m2m/note"


def test_unknown_key_for_a_stranger_and_for_a_key_the_account_does_not_list() -> None:
    assert refusal(sealed(STRANGER)) == "msg.unknown_key"
    book = directory()
    book.remove_key(key_id(CONTROLLER.did, CONTROLLER.public_key.raw))
    book.add_key(CONTROLLER.did, key("rotated").public_key.raw)  # the account's key was rotated
    assert refusal(sealed(), book) == "msg.unknown_key"


def test_key_signing_for_another_account_is_not_that_accounts_key() -> None:
    # CONTROLLER's key claims to act for OWNER: well formed, but the directory lists no such key.
    data = seal(CONTROLLER, OWNER.did, VALVE.did, "m2m/note", None, now_ms=NOW)
    assert refusal(data) == "msg.unknown_key"


def test_key_revoked() -> None:
    book = directory()
    book.revoke_account(CONTROLLER.did)
    assert refusal(sealed(), book) == "msg.key_revoked"


def test_key_scope() -> None:
    book = directory()
    book.add_key(CONTROLLER.did, SENSOR_KEY.public_key.raw, actions=["m2m/reading"])
    reading = seal(SENSOR_KEY, CONTROLLER.did, VALVE.did, "m2m/reading", 21, now_ms=NOW)
    assert open_envelope(reading, book, now_ms=NOW, replay=None).kid.endswith(
        SENSOR_KEY.did.removeprefix("did:key:")
    )
    command = seal(SENSOR_KEY, CONTROLLER.did, VALVE.did, "m2m/command", 21, now_ms=NOW)
    assert refusal(command, book) == "msg.key_scope"


def test_bad_signature_for_a_changed_payload_a_flipped_bit_and_another_domain() -> None:
    cose = decode_sign1(sealed(), max_bytes=MAX_ENVELOPE_BYTES)
    changed = canonical_encode(good_payload(body={"n": 2}, nonce=peek(sealed()).nonce))
    assert (
        refusal(b"\xd2" + canonical_encode([cose.protected, {}, changed, cose.signature]))
        == "msg.bad_signature"
    )
    flipped = bytearray(sealed())
    flipped[-5] ^= 0x10
    assert refusal(bytes(flipped)) == "msg.bad_signature"
    protected = protected_header(key_id(CONTROLLER.did, CONTROLLER.public_key.raw).encode(), CONTENT_TYPE)
    payload = canonical_encode(good_payload())
    other_domain = CONTROLLER.sign_cose(Domain.KEYSTORE_PROOF, protected, payload)
    assert refusal(b"\xd2" + canonical_encode([protected, {}, payload, other_domain])) == "msg.bad_signature"


def test_replay_within_the_window_and_the_same_nonce_from_another_sender_is_fine() -> None:
    guard = ReplayGuard()
    data = sealed(nonce=b"\x09" * 16)
    open_envelope(data, directory(), now_ms=NOW, replay=guard)
    assert refusal(data, replay=guard, now_ms=NOW + TTL - 1) == "msg.replay"
    other = sealed(OWNER, nonce=b"\x09" * 16)
    assert open_envelope(other, directory(), now_ms=NOW, replay=guard).sender == OWNER.did


def test_overloaded_guard_refuses_rather_than_forgets() -> None:
    guard = ReplayGuard(max_entries=2)
    for _ in range(2):
        open_envelope(sealed(), directory(), now_ms=NOW, replay=guard)
    assert refusal(sealed(), replay=guard) == "msg.overloaded"
    # once the first two expire, there is room again
    later = sealed(now_ms=NOW + TTL)
    assert open_envelope(later, directory(), now_ms=NOW + TTL, replay=guard).issued_ms == NOW + TTL
    assert len(guard) == 1


# --- precedence -------------------------------------------------------------------------------------


def test_precedence_order_is_the_documented_one() -> None:
    assert [code.code for code in codes.ENVELOPE_CODES_IN_PRECEDENCE] == [
        "msg.too_large",
        "msg.malformed",
        "msg.wrong_recipient",
        "msg.not_yet_valid",
        "msg.expired",
        "msg.ttl_too_long",
        "msg.stale_directory",
        "msg.unknown_key",
        "msg.key_revoked",
        "msg.key_scope",
        "msg.bad_signature",
        "msg.replay",
        "msg.overloaded",
    ]
    every = [code.code for code in codes.ALL_CODES]
    assert len(every) == len(set(every))
    assert all(code.startswith("msg.") for code in every)


def _tampered(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[-1] ^= 1
    return bytes(flipped)


def test_precedence_with_two_faults_at_once() -> None:
    revoked = directory()
    revoked.revoke_account(CONTROLLER.did)
    expired_at = NOW + TTL
    assert refusal(b"\x00" * (MAX_ENVELOPE_BYTES + 1)) == "msg.too_large"  # and malformed
    assert refusal(sealed(recipient=OWNER.did), now_ms=expired_at) == "msg.wrong_recipient"  # and expired
    assert refusal(_tampered(sealed(recipient=OWNER.did))) == "msg.wrong_recipient"  # and bad signature
    assert refusal(_tampered(sealed()), now_ms=expired_at) == "msg.expired"  # and bad signature
    assert refusal(sealed(STRANGER), now_ms=expired_at) == "msg.expired"  # and unknown key
    assert refusal(_tampered(sealed(STRANGER))) == "msg.unknown_key"  # and bad signature
    assert refusal(_tampered(sealed()), revoked) == "msg.key_revoked"  # and bad signature
    guard = ReplayGuard()
    data = sealed()
    open_envelope(data, directory(), now_ms=NOW, replay=guard)
    assert refusal(_tampered(data), replay=guard) == "msg.bad_signature"  # and a replayed nonce
    assert refusal(data, revoked, replay=guard) == "msg.key_revoked"  # and replay


def test_a_refused_message_leaves_no_nonce_behind() -> None:
    guard = ReplayGuard()
    data = sealed()
    for bad in (_tampered(data), sealed(recipient=OWNER.did, nonce=peek(data).nonce)):
        with pytest.raises(MessageError):
            open_envelope(bad, directory(), now_ms=NOW, replay=guard, recipient=VALVE.did)
    assert len(guard) == 0
    open_envelope(
        data, directory(), now_ms=NOW, replay=guard, recipient=VALVE.did
    )  # the real one still opens


# --- replay guard -----------------------------------------------------------------------------------


def test_guard_forgets_nonces_only_after_their_expiry() -> None:
    guard = ReplayGuard()
    guard.check_and_remember("a", b"n" * 16, NOW + 10, NOW)
    guard.check_and_remember("a", b"m" * 16, NOW + 20, NOW)
    guard.check_and_remember("b", b"n" * 16, NOW + 10, NOW + 9)
    assert len(guard) == 3
    guard.check_and_remember("c", b"n" * 16, NOW + 30, NOW + 10)
    assert not guard.seen("a", b"n" * 16)
    assert guard.seen("a", b"m" * 16)
    assert len(guard) == 2


def test_guard_is_not_fooled_by_a_clock_stepping_back() -> None:
    guard = ReplayGuard()
    guard.check_and_remember("a", b"n" * 16, NOW + 10, NOW)
    guard.check_and_remember("z", b"z" * 16, NOW + 100, NOW + 50)  # time moves on; "a" is forgotten
    assert not guard.seen("a", b"n" * 16)
    with pytest.raises(MessageError) as caught:  # the clock steps back to before a's expiry
        guard.check_and_remember("a", b"n" * 16, NOW + 10, NOW + 5)
    assert caught.value.code == "msg.expired"


def test_guard_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(max_ttl_ms=0)
    with pytest.raises(ValueError):
        ReplayGuard(max_entries=0)


# --- key ids and the static directory ------------------------------------------------------------


def test_key_ids_are_did_document_method_ids_and_read_back() -> None:
    kid = key_id(OWNER.did, CONTROLLER.public_key.raw)
    assert kid == f"{OWNER.did}#{CONTROLLER.did.removeprefix('did:key:')}"
    assert split_kid(kid) == (OWNER.did, CONTROLLER.public_key.raw)
    assert public_key_from_kid(kid) == CONTROLLER.public_key.raw
    for bad in ("", "no-hash", f"{OWNER.did}#", f"{OWNER.did}#x#y", f"did:web:x#{OWNER.did[8:]}", 7):
        with pytest.raises(ValueError):
            split_kid(bad)  # type: ignore[arg-type]


def _ledger_documents() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """DID documents from real ledger state: a machine with a scoped key, a revoked one, an implicit one."""
    from autarky.ledger.router import App
    from autarky.modules.harness import Chain
    from autarky.modules.identity import IdentityModule
    from autarky.modules.identity import messages as identity_messages
    from autarky.modules.identity.did_document import did_document

    identity = IdentityModule()
    chain = Chain.from_genesis(
        {"chain_id": "msgs", "genesis_time_ms": 0, "app_state": {}},
        app=App([identity], authenticator=identity),
    )
    revoked = key("revoked-machine")

    def submit(signer: SigningKey, message: dict[str, Any], cosigners: tuple[SigningKey, ...] = ()) -> None:
        body = TxBody("msgs", signer.did, chain.sequence(signer.did), 0, 0, (message,))
        (receipt,) = chain.execute([sign_tx(body, signer, cosigners).raw])
        assert receipt.ok, receipt

    submit(OWNER, identity_messages.register(VALVE.did, "valve", "acme", "v1"), (VALVE,))
    submit(
        VALVE,
        identity_messages.add_key(VALVE.did, SENSOR_KEY.public_key.raw, ["m2m/reading"], None),
        (SENSOR_KEY,),
    )
    submit(OWNER, identity_messages.register(revoked.did, "pump", "acme", "p1"), (revoked,))
    submit(OWNER, identity_messages.revoke(revoked.did))
    state = chain.state
    return did_document(state, VALVE.did), did_document(state, revoked.did), did_document(state, STRANGER.did)


def test_static_directory_from_ledger_did_documents() -> None:
    valve_doc, revoked_doc, implicit_doc = _ledger_documents()
    book = StaticDirectory(documents=[valve_doc, revoked_doc, implicit_doc])
    full = book.key(key_id(VALVE.did, VALVE.public_key.raw), NOW)
    assert (full.account, full.public_key, full.active, full.actions) == (
        VALVE.did,
        VALVE.public_key.raw,
        True,
        None,
    )
    scoped = book.key(key_id(VALVE.did, SENSOR_KEY.public_key.raw), NOW)
    assert scoped.actions == ("m2m/reading",)
    assert scoped.permits("m2m/reading") and not scoped.permits("m2m/command")
    revoked = key("revoked-machine")
    with pytest.raises(MessageError) as caught:
        book.key(key_id(revoked.did, revoked.public_key.raw), NOW)
    assert caught.value.code == "msg.key_revoked"
    assert book.key(key_id(STRANGER.did, STRANGER.public_key.raw), NOW).actions is None
    # end to end: the scoped key may send readings for the valve, not commands
    reading = seal(SENSOR_KEY, VALVE.did, OWNER.did, "m2m/reading", 3, now_ms=NOW)
    assert open_envelope(reading, book, now_ms=NOW, replay=None).sender == VALVE.did
    with pytest.raises(MessageError) as caught:
        open_envelope(
            seal(SENSOR_KEY, VALVE.did, OWNER.did, "m2m/command", 3, now_ms=NOW),
            book,
            now_ms=NOW,
            replay=None,
        )
    assert caught.value.code == "msg.key_scope"


def test_documents_without_the_autarky_extension_use_assertion_method() -> None:
    kid = key_id(OWNER.did, OWNER.public_key.raw)
    other = key_id(OWNER.did, CONTROLLER.public_key.raw)
    document = {
        "id": OWNER.did,
        "verificationMethod": [
            {"id": kid, "type": "Multikey", "controller": OWNER.did, "publicKeyMultibase": kid.split("#")[1]},
            {
                "id": other,
                "type": "Multikey",
                "controller": OWNER.did,
                "publicKeyMultibase": other.split("#")[1],
            },
        ],
        "assertionMethod": [kid],
    }
    book = StaticDirectory([document])
    assert book.key(kid, NOW).actions is None
    assert book.key(other, NOW).actions == ()  # listed, but may sign nothing


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"id": "did:key:x", "verificationMethod": "nope"},
        {"id": "X", "verificationMethod": [{"id": "did:key:z6Mk#z6Mk"}]},
        {"id": "Y", "verificationMethod": [{"no": "id"}]},
    ],
)
def test_documents_that_do_not_hold_together_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StaticDirectory([document])


def test_a_method_whose_multibase_disagrees_with_its_id_is_refused() -> None:
    kid = key_id(OWNER.did, OWNER.public_key.raw)
    wrong = CONTROLLER.did.removeprefix("did:key:")
    with pytest.raises(ValueError):
        StaticDirectory([{"id": OWNER.did, "verificationMethod": [{"id": kid, "publicKeyMultibase": wrong}]}])
    with pytest.raises(ValueError):  # a method of another DID inside this document
        StaticDirectory(
            [{"id": CONTROLLER.did, "verificationMethod": [{"id": kid, "publicKeyMultibase": kid[-48:]}]}]
        )


# --- grants in the static directory ---------------------------------------------------------------

ROOT = StaticGrant("g-root", OWNER.did, CONTROLLER.did, "actuate", "valve-7")


def grants(*extra: StaticGrant) -> StaticDirectory:
    book = directory()
    for grant in (ROOT, *extra):
        book.add_grant(grant)
    return book


def authorize_code(book: StaticDirectory, grant_id: str, **kwargs: Any) -> str:
    request: dict[str, Any] = {
        "grantee": CONTROLLER.did,
        "grant_id": grant_id,
        "action": "actuate",
        "resource": "valve-7",
        "now_ms": NOW,
    }
    request.update(kwargs)
    try:
        decision = book.authorize(**request)
    except MessageError as exc:
        return exc.code
    return f"ok:{decision.grant_id}:{decision.root_grantor}"


def test_resource_coverage_is_equal_or_below_never_a_prefix_of_the_name() -> None:
    assert resource_covers("valve-7", "valve-7")
    assert resource_covers("valve-7", "valve-7/flow")
    assert not resource_covers("valve-7", "valve-70")
    assert not resource_covers("valve-7/flow", "valve-7")


def test_a_root_grant_covers_its_action_and_resource() -> None:
    book = grants()
    assert authorize_code(book, "g-root") == f"ok:g-root:{OWNER.did}"
    assert authorize_code(book, "g-root", resource="valve-7/flow") == f"ok:g-root:{OWNER.did}"
    assert book.authorize(CONTROLLER.did, "g-root", "actuate", "valve-7", NOW).chain == ("g-root",)


def test_unknown_grant() -> None:
    assert authorize_code(grants(), "g-missing") == "msg.unknown_grant"
    assert authorize_code(grants(), "00" * 32) == "msg.unknown_grant"


@pytest.mark.parametrize(
    "request_fields",
    [
        {"grantee": STRANGER.did},
        {"action": "read"},
        {"resource": "valve-70"},
        {"resource": "valve-8"},
    ],
)
def test_no_grant(request_fields: dict[str, Any]) -> None:
    assert authorize_code(grants(), **{"grant_id": "g-root", **request_fields}) == "msg.no_grant"


def test_delegation_chain_is_walked_to_its_root() -> None:
    child = StaticGrant("g-child", CONTROLLER.did, STRANGER.did, "actuate", "valve-7/flow", parent="g-root")
    book = grants(child)
    decision = book.authorize(STRANGER.did, "g-child", "actuate", "valve-7/flow", NOW)
    assert (decision.grant_id, decision.root_grantor, decision.chain) == (
        "g-child",
        OWNER.did,
        ("g-child", "g-root"),
    )


@pytest.mark.parametrize(
    "child",
    [
        StaticGrant("g-child", CONTROLLER.did, STRANGER.did, "actuate", "valve-7", parent="g-unknown"),
        StaticGrant(
            "g-child", STRANGER.did, STRANGER.did, "actuate", "valve-7", parent="g-root"
        ),  # not the grantee
        StaticGrant(
            "g-child", CONTROLLER.did, STRANGER.did, "actuate", "valve", parent="g-root"
        ),  # wider resource
        StaticGrant(
            "g-child", CONTROLLER.did, STRANGER.did, "actuate", "valve-7", parent="g-short"
        ),  # outlives
        StaticGrant(
            "g-child", CONTROLLER.did, STRANGER.did, "actuate", "valve-7", parent="g-few"
        ),  # more uses
    ],
)
def test_a_delegate_with_more_than_its_delegator_is_refused(child: StaticGrant) -> None:
    short = StaticGrant("g-short", OWNER.did, CONTROLLER.did, "actuate", "valve-7", expires_ms=NOW + 5)
    few = StaticGrant("g-few", OWNER.did, CONTROLLER.did, "actuate", "valve-7", max_uses=3)
    book = grants(short, few, child)
    resource = "valve" if child.resource == "valve" else "valve-7"
    code = authorize_code(book, "g-child", grantee=STRANGER.did, resource=resource)
    assert code == "msg.grant_chain_invalid"


def test_a_delegation_loop_is_refused() -> None:
    loop_a = StaticGrant("g-a", CONTROLLER.did, CONTROLLER.did, "actuate", "valve-7", parent="g-b")
    loop_b = StaticGrant("g-b", CONTROLLER.did, CONTROLLER.did, "actuate", "valve-7", parent="g-a")
    assert authorize_code(grants(loop_a, loop_b), "g-a") == "msg.grant_chain_invalid"


def test_revoked_expired_and_exhausted_anywhere_in_the_chain() -> None:
    child = StaticGrant("g-child", CONTROLLER.did, STRANGER.did, "actuate", "valve-7", parent="g-root")
    stranger = {"grantee": STRANGER.did}
    assert authorize_code(grants(replace(child, revoked=True)), "g-child", **stranger) == "msg.grant_revoked"
    revoked_root = grants(child)
    revoked_root.add_grant(replace(ROOT, revoked=True))
    assert authorize_code(revoked_root, "g-child", **stranger) == "msg.grant_revoked"
    expiring = grants(replace(child, expires_ms=NOW + 10))
    expiring.add_grant(replace(ROOT, expires_ms=NOW + 10))
    assert authorize_code(expiring, "g-child", now_ms=NOW + 9, **stranger).startswith("ok:")
    assert authorize_code(expiring, "g-child", now_ms=NOW + 10, **stranger) == "msg.grant_expired"
    used_up = grants(child)
    used_up.add_grant(replace(ROOT, max_uses=2, uses=2))
    assert authorize_code(used_up, "g-root") == "msg.grant_exhausted"


def test_grant_precedence_revoked_before_expired_before_exhausted() -> None:
    assert [code.code for code in codes.GRANT_CODES_IN_PRECEDENCE] == [
        "msg.stale_directory",
        "msg.unknown_grant",
        "msg.grant_chain_invalid",
        "msg.no_grant",
        "msg.grant_revoked",
        "msg.grant_expired",
        "msg.grant_exhausted",
    ]
    everything = replace(ROOT, revoked=True, expires_ms=NOW, max_uses=1, uses=1)
    book = directory()
    book.add_grant(everything)
    assert authorize_code(book, "g-root") == "msg.grant_revoked"
    assert authorize_code(book, "g-root", action="read") == "msg.no_grant"
    book.add_grant(replace(everything, revoked=False))
    assert authorize_code(book, "g-root") == "msg.grant_expired"


def test_grant_records_from_the_ledger_are_checked_by_the_policy_modules_code() -> None:
    """Grants made on a real chain, read from its state as a device would hold them."""
    from autarky.modules.harness import Chain
    from autarky.modules.policy import keeper as policy_keeper
    from autarky.modules.policy import messages as policy

    bank = {"params": {"fee_asset": "aut", "min_fee": 0}, "balances": []}
    chain = Chain.from_genesis({"chain_id": "grants", "genesis_time_ms": 0, "app_state": {"bank": bank}})

    def run(signer: SigningKey, message: dict[str, Any]) -> bytes:
        tx = sign_tx(TxBody("grants", signer.did, chain.sequence(signer.did), 0, 0, (message,)), signer)
        (receipt,) = chain.execute([tx.raw])
        assert receipt.ok, receipt
        return policy_keeper.new_grant_id(tx.hash, 0)

    root = run(OWNER, policy.grant(CONTROLLER.did, "actuate", "valve-7", delegable=1))
    child = run(CONTROLLER, policy.delegate(root, STRANGER.did, "valve-7/flow"))

    def device_view() -> StaticDirectory:
        book = directory()
        for grant_id in (root, child):
            record = policy_keeper.read_grant(chain.state, grant_id)
            assert record is not None
            book.add_grant(record)
        return book

    decision = device_view().authorize(STRANGER.did, child.hex(), "actuate", "valve-7/flow", NOW)
    assert (decision.grant_id, decision.root_grantor, decision.chain) == (
        child.hex(),
        OWNER.did,
        (child.hex(), root.hex()),
    )
    assert (
        authorize_code(device_view(), child.hex(), grantee=STRANGER.did, resource="valve-7") == "msg.no_grant"
    )
    run(OWNER, policy.revoke(root))
    assert authorize_code(device_view(), child.hex(), grantee=STRANGER.did, resource="valve-7/flow") == (
        "msg.grant_revoked"
    )


# --- the command handler --------------------------------------------------------------------------


class Valve:
    """A device with one action; records what it was told to do."""

    def __init__(self) -> None:
        self.opened: list[Any] = []

    def actuate(self, command: Command) -> Any:
        if command.args == "explode":
            raise RuntimeError("valve jammed")
        if command.args == "float":
            return 0.5
        self.opened.append((command.resource, command.args, command.grant.grant_id))
        return {"position": command.args}


def handler(book: StaticDirectory | None = None, **kwargs: Any) -> tuple[CommandHandler, Valve]:
    valve = Valve()
    options: dict[str, Any] = {"authorities": [OWNER.did, VALVE.did], "log": MemoryDecisionLog()}
    options.update(kwargs)
    return CommandHandler(VALVE, book or grants(), {"actuate": valve.actuate}, **options), valve


def command(
    signer: SigningKey = CONTROLLER,
    *,
    action: str = "actuate",
    resource: str = "valve-7",
    grant: str = "g-root",
    args: Any = 40,
    **overrides: Any,
) -> bytes:
    fields: dict[str, Any] = {"msg_type": COMMAND_TYPE, "body": command_body(action, resource, grant, args)}
    fields.update(overrides)
    return sealed(signer, **fields)


def reply_of(reply: bytes | None, request: bytes) -> Message:
    assert reply is not None
    message = open_envelope(reply, directory(), now_ms=NOW, replay=None, recipient=peek(request).sender)
    assert message.type == RESULT_TYPE
    assert message.sender == VALVE.did
    assert message.correlation == peek(request).nonce
    return message


def test_a_granted_command_is_accepted_run_logged_and_answered_signed() -> None:
    device, valve = handler()
    data = command()
    decision, reply = device.handle(data, NOW)
    assert decision.accepted and decision.code is None
    assert valve.opened == [("valve-7", 40, "g-root")]
    assert (decision.grant, decision.root_grantor, decision.action, decision.resource) == (
        "g-root",
        OWNER.did,
        "actuate",
        "valve-7",
    )
    assert decision.kid == key_id(CONTROLLER.did, CONTROLLER.public_key.raw)
    assert decision.verified and decision.time_ms == NOW
    assert device.log.decisions == [decision]  # type: ignore[attr-defined]
    body = reply_of(reply, data).body
    assert body == {
        "accepted": True,
        "code": None,
        "detail": "accepted",
        "grant": "g-root",
        "result": {"position": 40},
    }


def _command_cases() -> list[tuple[str, Any]]:
    revoked = grants()
    revoked.revoke_account(CONTROLLER.did)
    foreign = grants(StaticGrant("g-foreign", STRANGER.did, CONTROLLER.did, "actuate", "valve-7"))
    return [
        ("msg.malformed", lambda: (command()[:-3], None)),
        ("msg.wrong_recipient", lambda: (command(recipient=OWNER.did), None)),
        ("msg.expired", lambda: (command(now_ms=NOW - TTL), None)),
        ("msg.unknown_key", lambda: (command(STRANGER), None)),
        ("msg.key_revoked", lambda: (command(), revoked)),
        ("msg.bad_signature", lambda: (_tampered(command()), None)),
        ("msg.bad_command", lambda: (sealed(body=command_body("actuate", "valve-7", "g-root")), None)),
        ("msg.bad_command", lambda: (sealed(msg_type=COMMAND_TYPE, body={"action": "actuate"}), None)),
        ("msg.bad_command", lambda: (command(action=""), None)),
        ("msg.unknown_action", lambda: (command(action="explode"), None)),
        ("msg.unknown_grant", lambda: (command(grant="g-none"), None)),
        ("msg.no_grant", lambda: (command(resource="valve-8"), None)),
        ("msg.untrusted_grant", lambda: (command(grant="g-foreign"), foreign)),
        ("msg.action_failed", lambda: (command(args="explode"), None)),
        ("msg.action_failed", lambda: (command(args="float"), None)),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "case"), _command_cases(), ids=[f"{c}-{i}" for i, (c, _) in enumerate(_command_cases())]
)
def test_every_command_refusal_is_logged_and_answered(code: str, case: Any) -> None:
    data, book = case()
    device, valve = handler(book)
    decision, reply = device.handle(data, NOW)
    assert (decision.accepted, decision.code) == (False, code)
    assert valve.opened == []
    assert device.log.decisions == [decision]  # type: ignore[attr-defined]
    if code == "msg.malformed":
        assert reply is None  # nobody to answer
        return
    body = reply_of(reply, data).body
    assert (body["accepted"], body["code"]) == (False, code)
    if code in ("msg.untrusted_grant", "msg.action_failed"):
        assert decision.grant is not None and body["grant"] == decision.grant


def test_a_replayed_command_is_refused_and_not_run_twice() -> None:
    device, valve = handler()
    data = command()
    assert device.handle(data, NOW)[0].accepted
    decision, reply = device.handle(data, NOW + 1)
    assert decision.code == "msg.replay"
    assert len(valve.opened) == 1
    assert reply_of(reply, data).body["code"] == "msg.replay"


def test_an_unsigned_command_is_refused_and_logged_as_unverified() -> None:
    device, _ = handler()
    cose = decode_sign1(command(), max_bytes=MAX_ENVELOPE_BYTES)
    unsigned = b"\xd2" + canonical_encode([cose.protected, {}, cose.payload, bytes(64)])
    decision, _ = device.handle(unsigned, NOW)
    assert decision.code == "msg.bad_signature"
    assert not decision.verified
    assert decision.sender == CONTROLLER.did  # who it claims to be, marked unverified


def test_command_precedence_is_the_documented_one() -> None:
    names = [code.code for code in codes.COMMAND_CODES_IN_PRECEDENCE]
    assert names[: len(codes.ENVELOPE_CODES_IN_PRECEDENCE)] == [
        c.code for c in codes.ENVELOPE_CODES_IN_PRECEDENCE
    ]
    assert names[len(codes.ENVELOPE_CODES_IN_PRECEDENCE) :] == [
        "msg.bad_command",
        "msg.unknown_action",
        "msg.stale_directory",
        "msg.unknown_grant",
        "msg.grant_chain_invalid",
        "msg.no_grant",
        "msg.grant_revoked",
        "msg.grant_expired",
        "msg.grant_exhausted",
        "msg.untrusted_grant",
        "msg.action_failed",
    ]
    device, _ = handler()
    # unknown action and unknown grant: the action is checked first
    assert device.handle(command(action="explode", grant="g-none"), NOW)[0].code == "msg.unknown_action"
    # unknown grant and expired: the envelope is checked first
    assert device.handle(command(grant="g-none", now_ms=NOW - TTL), NOW)[0].code == "msg.expired"
    # a grant not covering the resource, from an untrusted grantor: the grant is checked first
    untrusted = grants(StaticGrant("g-foreign", STRANGER.did, CONTROLLER.did, "actuate", "valve-7"))
    device, _ = handler(untrusted)
    assert device.handle(command(grant="g-foreign", resource="valve-8"), NOW)[0].code == "msg.no_grant"


def test_decisions_go_to_a_json_lines_file(tmp_path: Path) -> None:
    log = JsonLinesDecisionLog(tmp_path / "logs" / "decisions.jsonl", fsync=True)
    device, _ = handler(log=log)
    device.handle(command(), NOW)
    device.handle(command(grant="g-none"), NOW + 1)
    lines = (tmp_path / "logs" / "decisions.jsonl").read_text().splitlines()
    assert [json.loads(line)["code"] for line in lines] == [None, "msg.unknown_grant"]
    first = log.read()[0]
    assert first["grant"] == "g-root" and first["root_grantor"] == OWNER.did and first["accepted"] is True
    assert first["kid"] == key_id(CONTROLLER.did, CONTROLLER.public_key.raw)
    assert first["time_ms"] == NOW


def test_default_authorities_are_the_device_itself() -> None:
    self_granted = grants(StaticGrant("g-self", VALVE.did, CONTROLLER.did, "actuate", "valve-7"))
    device = CommandHandler(VALVE, self_granted, {"actuate": lambda command: None})
    assert device.authorities == frozenset({VALVE.did})
    assert device.handle(command(grant="g-self"), NOW)[0].accepted
    assert device.handle(command(), NOW)[0].code == "msg.untrusted_grant"  # granted by the owner


# --- subjects -------------------------------------------------------------------------------------


def test_subjects_for_dids_and_dotted_names() -> None:
    assert subject_for(VALVE.did, "cmd") == f"autarky.m2m.{VALVE.did.removeprefix('did:key:')}.cmd"
    assert subject_for("site-1.weather", "readings") == "autarky.m2m.site-1.weather.readings"
    assert recipient_token("site_1") == "site_1"
    for bad in ("a..b", "a.*", "a.>", "a b", "", "did:web:example"):
        with pytest.raises(ValueError):
            recipient_token(bad)
    with pytest.raises(ValueError):
        subject_for(VALVE.did, "a.b")
