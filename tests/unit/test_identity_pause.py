"""The kill-switch (``identity/pause``, ``identity/resume``, ``core.account_paused``) and the
executor's pre-check (``check_tx``), through the real executor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.errors import ACCOUNT_PAUSED, ACCOUNT_REVOKED, CORE_CODES_IN_PRECEDENCE
from autarky.ledger.executor import check_tx
from autarky.ledger.router import App
from autarky.ledger.state import Overlay
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import messages as m
from autarky.modules.identity.errors import IDENTITY_CODES_IN_PRECEDENCE
from autarky.modules.identity.keeper import pause_key

CHAIN_ID = "test"


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER, MACHINE, STRANGER, PERSON, K1, K2 = (
    key(n) for n in ("owner", "machine", "stranger", "person", "k1", "k2")
)


def raw(signing_key: SigningKey) -> bytes:
    return signing_key.public_key.raw


class Harness:
    def __init__(self, app: App | None = None, app_state: dict[str, Any] | None = None) -> None:
        if app is None:
            self.identity = IdentityModule()
            app = App([self.identity], authenticator=self.identity)
        else:
            self.identity = app.module("identity")  # type: ignore[assignment]
        genesis = {"chain_id": CHAIN_ID, "genesis_time_ms": 0, "app_state": app_state or {}}
        self.chain = Chain.from_genesis(genesis, app=app)

    def body(self, sender: str, *msgs: dict[str, Any], fee: int = 0) -> TxBody:
        return TxBody(CHAIN_ID, sender, self.chain.sequence(sender), fee, 0, tuple(msgs))

    def submit(
        self,
        signer: SigningKey,
        *msgs: dict[str, Any],
        sender: str | None = None,
        cosigners: Sequence[SigningKey] = (),
    ) -> Receipt:
        body = self.body(sender or signer.did, *msgs)
        (receipt,) = self.chain.execute([sign_tx(body, signer, cosigners).raw])
        assert self.chain.invariants() == []
        return receipt

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], **kwargs: Any) -> Receipt:
        receipt = self.submit(signer, *msgs, **kwargs)
        assert receipt.code == "ok", receipt.detail
        return receipt

    def status(self, did: str) -> str:
        record = self.identity.account(self.chain.state, did)
        assert record is not None
        return str(record["status"])


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.ok(OWNER, m.register(MACHINE.did, "pump"), cosigners=[MACHINE])
    harness.ok(PERSON, m.register(PERSON.did, "person"))
    return harness


def test_core_precedence_places_paused_after_revoked() -> None:
    codes = [error.code for error in CORE_CODES_IN_PRECEDENCE]
    assert codes.index("core.account_paused") == codes.index("core.account_revoked") + 1
    identity = [error.code for error in IDENTITY_CODES_IN_PRECEDENCE]
    assert identity.index("identity.already_paused") == identity.index("identity.account_revoked") + 1
    assert identity.index("identity.not_paused") == identity.index("identity.already_paused") + 1


def test_the_owner_pauses_and_resumes_a_machine(h: Harness) -> None:
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K1), ["identity/set_service"], None), cosigners=[K1])
    receipt = h.ok(OWNER, m.pause(MACHINE.did, "firmware recall"))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.paused", {"did": MACHINE.did, "reason": "firmware recall"})
    ]
    assert h.status(MACHINE.did) == "paused"
    pause = h.identity.pause_record(h.chain.state, MACHINE.did)
    assert pause is not None and (pause.reason, pause.by, pause.height) == ("firmware recall", OWNER.did, 4)
    # Everything the machine signs is refused, with any of its keys, and the reason is in the detail.
    for signer, msg in [
        (MACHINE, m.set_service(MACHINE.did, "mqtt", "MQTTBroker", "mqtts://x")),
        (K1, m.set_service(MACHINE.did, "mqtt", "MQTTBroker", "mqtts://x")),
    ]:
        refused = h.submit(signer, msg, sender=MACHINE.did)
        assert refused.code == ACCOUNT_PAUSED.code
        assert "firmware recall" in refused.detail
    # The owner still manages the paused machine.
    h.ok(OWNER, m.set_service(MACHINE.did, "mqtt", "MQTTBroker", "mqtts://x"))
    receipt = h.ok(OWNER, m.resume(MACHINE.did))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.resumed", {"did": MACHINE.did})
    ]
    assert h.status(MACHINE.did) == "active"
    assert h.identity.pause_record(h.chain.state, MACHINE.did) is None
    h.ok(MACHINE, m.remove_service(MACHINE.did, "mqtt"))


def test_unknown_signer_and_revoked_come_before_paused(h: Harness) -> None:
    h.ok(OWNER, m.pause(MACHINE.did, ""))
    assert h.submit(STRANGER, m.resume(MACHINE.did), sender=MACHINE.did).code == "core.unknown_signer"
    refused = h.submit(MACHINE, m.resume(MACHINE.did))
    assert refused.code == ACCOUNT_PAUSED.code and refused.detail.endswith("is paused by its owner")
    h.ok(OWNER, m.revoke(MACHINE.did))  # revoking a paused machine is allowed; the pause record goes
    assert h.status(MACHINE.did) == "revoked"
    assert h.chain.state.get(pause_key(MACHINE.did)) is None
    assert h.submit(MACHINE, m.resume(MACHINE.did)).code == ACCOUNT_REVOKED.code


@pytest.mark.parametrize(
    ("signer", "message", "code"),
    [
        (OWNER, {"type": "identity/pause", "did": MACHINE.did}, "core.invalid_message"),
        (OWNER, {"type": "identity/pause", "did": MACHINE.did, "reason": 5}, "core.invalid_message"),
        (OWNER, m.pause("did:key:nope", "x"), "identity.invalid_did"),
        (OWNER, m.pause(MACHINE.did, "x" * 257), "identity.too_large"),
        (OWNER, m.pause(K2.did, "x"), "identity.not_registered"),
        (MACHINE, m.pause(MACHINE.did, "x"), "identity.not_authorised"),
        (STRANGER, m.pause(MACHINE.did, "x"), "identity.not_authorised"),
        (PERSON, m.pause(PERSON.did, "x"), "identity.not_authorised"),  # no owner: nobody could resume it
        (OWNER, {"type": "identity/resume", "did": MACHINE.did, "reason": ""}, "core.invalid_message"),
        (OWNER, m.resume("did:key:nope"), "identity.invalid_did"),
        (OWNER, m.resume(K2.did), "identity.not_registered"),
        (STRANGER, m.resume(MACHINE.did), "identity.not_authorised"),
        (OWNER, m.resume(MACHINE.did), "identity.not_paused"),
    ],
)
def test_pause_and_resume_codes(h: Harness, signer: SigningKey, message: dict[str, Any], code: str) -> None:
    assert h.submit(signer, message).code == code


def test_already_paused_and_revoked_codes(h: Harness) -> None:
    h.ok(OWNER, m.pause(MACHINE.did, "a"))
    assert h.submit(OWNER, m.pause(MACHINE.did, "b")).code == "identity.already_paused"
    h.ok(OWNER, m.revoke(MACHINE.did))
    assert h.submit(OWNER, m.pause(MACHINE.did, "c")).code == "identity.account_revoked"
    assert h.submit(OWNER, m.resume(MACHINE.did)).code == "identity.account_revoked"


def test_recovery_keeps_a_paused_machine_paused(h: Harness) -> None:
    h.ok(OWNER, m.pause(MACHINE.did, "stolen"))
    h.ok(OWNER, m.recover(MACHINE.did, raw(K2)), cosigners=[K2])
    assert h.status(MACHINE.did) == "paused"
    assert h.submit(K2, m.remove_service(MACHINE.did, "x"), sender=MACHINE.did).code == ACCOUNT_PAUSED.code
    h.ok(OWNER, m.resume(MACHINE.did))
    assert (
        h.submit(K2, m.remove_service(MACHINE.did, "x"), sender=MACHINE.did).code
        == "identity.service_not_found"
    )


def test_invariants_tie_pause_records_to_paused_accounts(h: Harness) -> None:
    h.ok(OWNER, m.pause(MACHINE.did, "x"))
    broken = Overlay(h.chain.state)
    broken.delete(pause_key(MACHINE.did))
    broken.set_obj(pause_key(PERSON.did), {"reason": "", "by": OWNER.did, "height": 1})
    problems = h.identity.invariants(broken)
    assert any("paused without a pause record" in p for p in problems)
    assert any(f"pause record of {PERSON.did}" in p for p in problems)


# -- with the bank: the fast path of a plain send must refuse a paused sender too ---------------------


def bank_chain() -> Harness:
    from autarky.modules import build_app

    state = {
        "identity": {"accounts": [{"did": MACHINE.did, "owner": OWNER.did, "kind": "pump"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 1},
            "balances": [
                {"account": MACHINE.did, "asset": "aut", "amount": 1000},
                {"account": OWNER.did, "asset": "aut", "amount": 1000},
            ],
        },
    }
    return Harness(build_app(), state)


def send(amount: int) -> dict[str, Any]:
    return {"type": "bank/send", "to": PERSON.did, "asset": "aut", "amount": amount}


def test_a_paused_machine_cannot_pay() -> None:
    h = bank_chain()
    body = h.body(MACHINE.did, send(5), fee=1)
    (receipt,) = h.chain.execute([sign_tx(body, MACHINE).raw])
    assert receipt.ok
    body = h.body(OWNER.did, m.pause(MACHINE.did, "leak detected"), fee=1)
    (receipt,) = h.chain.execute([sign_tx(body, OWNER).raw])
    assert receipt.ok
    body = h.body(MACHINE.did, send(5), fee=1)
    (receipt,) = h.chain.execute([sign_tx(body, MACHINE).raw])
    assert receipt.code == ACCOUNT_PAUSED.code


# -- check_tx ------------------------------------------------------------------------------------------


def test_check_tx_answers_without_signatures_and_writes_nothing() -> None:
    h = bank_chain()
    before = dict(h.chain.data)
    env = h.chain.next_env()
    body = h.body(MACHINE.did, send(5), fee=1)
    receipt = check_tx(h.chain.state, env, body, raw(MACHINE), h.chain.app)
    assert receipt.ok and [e.type for e in receipt.events] == ["bank.fee", "bank.transfer"]
    assert dict(h.chain.data) == before
    # The real transaction gets the same code and events.
    (real,) = h.chain.execute([sign_tx(body, MACHINE).raw])
    assert real.code == receipt.code and real.events == receipt.events


@pytest.mark.parametrize(
    ("sequence", "signer", "messages", "code"),
    [
        (1, MACHINE, [send(5)], "core.bad_sequence"),
        (0, STRANGER, [send(5)], "core.unknown_signer"),
        (0, MACHINE, [{"type": "nope/x"}], "core.unknown_message"),
        (0, MACHINE, [send(5000)], "bank.insufficient_funds"),
    ],
)
def test_check_tx_refusals(
    sequence: int, signer: SigningKey, messages: list[dict[str, Any]], code: str
) -> None:
    h = bank_chain()
    body = TxBody(CHAIN_ID, MACHINE.did, sequence, 1, 0, tuple(messages))
    assert check_tx(h.chain.state, h.chain.next_env(), body, raw(signer), h.chain.app).code == code


def test_check_tx_of_a_paused_machine_and_of_a_wrong_chain() -> None:
    h = bank_chain()
    body = h.body(OWNER.did, m.pause(MACHINE.did, "storm"), fee=1)
    h.chain.execute([sign_tx(body, OWNER).raw])
    paused = check_tx(
        h.chain.state, h.chain.next_env(), h.body(MACHINE.did, send(1), fee=1), raw(MACHINE), h.chain.app
    )
    assert paused.code == ACCOUNT_PAUSED.code and "storm" in paused.detail
    other = TxBody("other", MACHINE.did, 0, 1, 0, (send(1),))
    assert (
        check_tx(h.chain.state, h.chain.next_env(), other, raw(MACHINE), h.chain.app).code
        == "core.wrong_chain"
    )
