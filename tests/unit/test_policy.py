"""The policy module (grants, delegation, revocation) and ``bank/send_from`` through the real executor.

Layout: a small world (an owner, its robot, a helper, a third party, a shop, a stranger) on the
in-memory chain built by ``build_app``, then one section per behaviour: the vocabulary, ``policy/grant``,
``policy/delegate`` and attenuation, ``policy/revoke`` and cascading, expiry by block time, uses and
spend, the pure ``check`` (every refusal code and its precedence), ``bank/send_from`` end to end,
genesis and state roots, invariants, and the README example. A test that names a precedence puts
two faults in one message and checks the one documented first wins.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_decode, canonical_encode
from autarky.ledger.errors import TxError
from autarky.ledger.executor import execute_genesis
from autarky.ledger.router import App
from autarky.ledger.state import MappingState, Overlay, get_obj
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import BankModule
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.bank import messages as bank
from autarky.modules.bank.errors import BANK_CODES, GRANTOR_MISMATCH, SEND_FROM_PRECEDENCE
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.policy import Allowed, GrantRecord, GrantRefused, PolicyModule, check, check_grant
from autarky.modules.policy import keeper as policy_keeper
from autarky.modules.policy import messages as policy
from autarky.modules.policy.check import Headroom, headroom, load_chain, lookup_in
from autarky.modules.policy.errors import CHECK_CODES_IN_PRECEDENCE, POLICY_CODES_IN_PRECEDENCE
from autarky.modules.validators import ValidatorsModule

CHAIN_ID = "policy-test"
T0 = 1_700_000_000_000
BLOCK_MS = 1000


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/policy-test/" + name.encode()))


OWNER = make_key("owner")
ROBOT = make_key("robot")  # a machine OWNER registered at genesis
HELPER = make_key("helper")
THIRD = make_key("third")
SHOP = make_key("shop")
STRANGER = make_key("stranger")
SCOPED = make_key("helper-scoped-key")

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "identity": {"accounts": [{"did": ROBOT.did, "owner": OWNER.did, "kind": "robot"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "assets": ["kwh"],
            "balances": [
                {"account": OWNER.did, "asset": "aut", "amount": 10_000},
                {"account": OWNER.did, "asset": "kwh", "amount": 500},
                {"account": ROBOT.did, "asset": "aut", "amount": 1_000},
                {"account": HELPER.did, "asset": "aut", "amount": 100},
                {"account": STRANGER.did, "asset": "aut", "amount": 100},
            ],
        },
    },
}


class World:
    """The chain of GENESIS, with helpers that sign, run one transaction per block and check invariants."""

    def __init__(self) -> None:
        self.chain = Chain.from_genesis(GENESIS, block_ms=BLOCK_MS)
        module = self.chain.app.module("policy")
        assert isinstance(module, PolicyModule)
        self.policy: PolicyModule = module

    @property
    def now(self) -> int:
        """The time of the last block; the next block is at ``now + BLOCK_MS`` unless told."""
        return self.chain.headers[-1].time_ms

    def tx(
        self,
        signer: SigningKey,
        *msgs: dict[str, Any],
        sender: SigningKey | None = None,
        cosigners: Sequence[SigningKey] = (),
        fee: int = 0,
    ) -> SignedTx:
        account = (sender or signer).did
        body = TxBody(CHAIN_ID, account, self.chain.sequence(account), fee, 0, tuple(msgs))
        return sign_tx(body, signer, cosigners)

    def run_tx(self, tx: SignedTx, time_ms: int | None = None) -> Any:
        (receipt,) = self.chain.execute([tx.raw], time_ms)
        assert self.chain.invariants() == []
        return receipt

    def run(
        self, signer: SigningKey, *msgs: dict[str, Any], time_ms: int | None = None, **options: Any
    ) -> Any:
        return self.run_tx(self.tx(signer, *msgs, **options), time_ms)

    def code(self, signer: SigningKey, *msgs: dict[str, Any], **options: Any) -> str:
        return str(self.run(signer, *msgs, **options).code)

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], **options: Any) -> Any:
        receipt = self.run(signer, *msgs, **options)
        assert receipt.code == "ok", receipt.detail
        return receipt

    def grant(
        self, grantor: SigningKey, grantee: SigningKey, capability: str = "actuate:valve-7", **limits: Any
    ) -> bytes:
        action, resource = policy.parse_capability(capability)
        tx = self.tx(grantor, policy.grant(grantee.did, action, resource, **limits))
        receipt = self.run_tx(tx)
        assert receipt.code == "ok", receipt.detail
        return policy_keeper.new_grant_id(tx.hash, 0)

    def delegate(
        self,
        delegator: SigningKey,
        parent: bytes,
        grantee: SigningKey,
        resource: str | None = None,
        **limits: Any,
    ) -> bytes:
        resource = self.record(parent).resource if resource is None else resource
        tx = self.tx(delegator, policy.delegate(parent, grantee.did, resource, **limits))
        receipt = self.run_tx(tx)
        assert receipt.code == "ok", receipt.detail
        return policy_keeper.new_grant_id(tx.hash, 0)

    def record(self, grant_id: bytes) -> GrantRecord:
        record = self.policy.grant(self.chain.state, grant_id)
        assert record is not None
        return record

    def balance(self, account: SigningKey, asset: str = "aut") -> int:
        return bank_keeper.balance(self.chain.state, account.did, asset)


@pytest.fixture
def world() -> World:
    return World()


def spend_from(
    payer: SigningKey, to: SigningKey, amount: int, grant_id: bytes, asset: str = "aut"
) -> dict[str, Any]:
    return bank.send_from(payer.did, to.did, asset, amount, grant_id)


# ---------------------------------------------------------------------------------------------------
# Vocabulary


@pytest.mark.parametrize("action", ["actuate", "read", "charge", "spend", "a", "open_valve", "x-2", "a" * 32])
def test_valid_actions(action: str) -> None:
    assert policy.is_action(action)


@pytest.mark.parametrize(
    "action", ["", "Actuate", "1read", "_x", "read:x", "read/x", "a" * 33, "é", "read\n"]
)
def test_invalid_actions(action: str) -> None:
    assert not policy.is_action(action)


@pytest.mark.parametrize(
    "resource",
    ["valve-7", "stream/weather-12", "station-3", "energy-market", "bank/aut", "7", "a.b_c-d/e", "a" * 128],
)
def test_valid_resources(resource: str) -> None:
    assert policy.is_resource(resource)


@pytest.mark.parametrize(
    "resource",
    ["", "/a", "a/", "a//b", "Valve-7", "a:b", "a b", "-a", "a/.b", "a" * 129, "valve\n", "did:key:z6Mk"],
)
def test_invalid_resources(resource: str) -> None:
    assert not policy.is_resource(resource)


def test_coverage_is_equal_or_below() -> None:
    assert policy.covers("valve-7", "valve-7")
    assert policy.covers("valve-7", "valve-7/open")
    assert policy.covers("stream", "stream/weather-12/hourly")
    assert not policy.covers("valve-7", "valve-70")
    assert not policy.covers("stream/weather-12", "stream")
    assert not policy.covers("bank/aut", "bank/kwh")


def test_capability_text() -> None:
    assert policy.parse_capability("read:stream/weather-12") == ("read", "stream/weather-12")
    assert policy.capability("actuate", "valve-7") == "actuate:valve-7"
    for text in ("actuate", "actuate:", ":valve-7", "Actuate:valve-7", "actuate:valve:7"):
        with pytest.raises(ValueError):
            policy.parse_capability(text)


def test_spend_limit_assets_are_bank_asset_names() -> None:
    for name in ("aut", "kwh", "a1", "a" * 16, "a" * 17, "Aut", "1a", "", "a-b", "aut\n"):
        assert policy.is_asset(name) == bank_keeper.is_asset_name(name), name


def test_codes_are_namespaced_and_unique() -> None:
    codes = [error.code for error in POLICY_CODES_IN_PRECEDENCE]
    assert len(set(codes)) == len(codes) and all(code.startswith("policy.") for code in codes)
    assert [c for c in POLICY_CODES_IN_PRECEDENCE if c in CHECK_CODES_IN_PRECEDENCE] == list(
        CHECK_CODES_IN_PRECEDENCE
    )
    assert [error.code for error in BANK_CODES].count("bank.grantor_mismatch") == 1
    assert SEND_FROM_PRECEDENCE.index(GRANTOR_MISMATCH) == 4  # after the message checks, before the debit


# ---------------------------------------------------------------------------------------------------
# policy/grant


def test_grant_stores_record_indexes_and_event(world: World) -> None:
    message = policy.grant(
        ROBOT.did,
        "charge",
        "station-3",
        expires_ms=T0 + 60_000,
        max_uses=3,
        spend_limit={"kwh": 5, "aut": 7},
        delegable=2,
    )
    tx = world.tx(OWNER, message)
    receipt = world.run_tx(tx)
    assert receipt.code == "ok", receipt.detail
    grant_id = policy_keeper.new_grant_id(tx.hash, 0)
    assert grant_id == sha256(canonical_encode(["autarky/policy/grant-id", tx.hash, 0]))
    (event,) = receipt.events
    assert event.type == "policy.granted"
    assert dict(event.attributes) == {
        "grant": grant_id,
        "grantor": OWNER.did,
        "grantee": ROBOT.did,
        "action": "charge",
        "resource": "station-3",
    }
    record = world.record(grant_id)
    assert record == GrantRecord(
        id=grant_id,
        grantor=OWNER.did,
        grantee=ROBOT.did,
        action="charge",
        resource="station-3",
        expires_ms=T0 + 60_000,
        max_uses=3,
        spend_limit=(("aut", 7), ("kwh", 5)),
        delegable=2,
        parent=None,
        root_grantor=OWNER.did,
        depth=0,
        created=world.chain.height,
        revoked=None,
        uses=0,
        spent=(),
    )
    state = world.chain.state
    assert state.get(f"policy/grant/{grant_id.hex()}") is not None
    assert world.policy.grants_of_grantee(state, ROBOT.did) == [grant_id]
    assert world.policy.grants_of_grantor(state, OWNER.did) == [grant_id]
    assert world.policy.grants_of_grantee(state, OWNER.did) == []
    assert get_obj(state, policy_keeper.by_grantee_key(ROBOT.did, grant_id)) == "charge:station-3"


def test_grant_ids_follow_the_message_index(world: World) -> None:
    """Two grants in one transaction, after a message of another module: ids from their positions."""
    tx = world.tx(
        OWNER,
        bank.send(SHOP.did, "aut", 1),
        policy.grant(ROBOT.did, "actuate", "valve-7"),
        policy.grant(HELPER.did, "actuate", "valve-7"),
    )
    receipt = world.run_tx(tx)
    assert receipt.code == "ok", receipt.detail
    granted = [event.get("grant") for event in receipt.events if event.type == "policy.granted"]
    assert granted == [policy_keeper.new_grant_id(tx.hash, 1), policy_keeper.new_grant_id(tx.hash, 2)]
    assert world.record(policy_keeper.new_grant_id(tx.hash, 2)).grantee == HELPER.did


def test_grant_delegable_forms(world: World) -> None:
    assert world.record(world.grant(OWNER, ROBOT)).delegable == 0
    assert world.record(world.grant(OWNER, ROBOT, delegable=True)).delegable == policy.MAX_DELEGATION_DEPTH
    assert world.record(world.grant(OWNER, ROBOT, delegable=3)).delegable == 3
    minimal = {"type": "policy/grant", "grantee": ROBOT.did, "action": "read", "resource": "stream"}
    receipt = world.ok(OWNER, minimal)  # optional fields left out
    record = world.record(receipt.events[0].get("grant"))
    assert (record.expires_ms, record.max_uses, record.spend_limit, record.delegable) == (None, None, None, 0)


def good_grant(**changes: Any) -> dict[str, Any]:
    message = policy.grant(ROBOT.did, "actuate", "valve-7", max_uses=2, spend_limit={"aut": 1}, delegable=1)
    message.update(changes)
    return message


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"grantee": None}, "core.invalid_message"),
        ({"extra": 1}, "core.invalid_message"),
        ({"max_uses": True}, "core.invalid_message"),
        ({"max_uses": "2"}, "core.invalid_message"),
        ({"expires_ms": "soon"}, "core.invalid_message"),
        ({"spend_limit": {"aut": 1}}, "core.invalid_message"),
        ({"spend_limit": [["aut", 1, 2]]}, "core.invalid_message"),
        ({"spend_limit": [["aut", True]]}, "core.invalid_message"),
        ({"delegable": None}, "core.invalid_message"),
        ({"delegable": "yes"}, "core.invalid_message"),
        ({"grantee": "did:key:zNotAKey"}, "policy.invalid_grantee"),
        ({"grantee": OWNER.did}, "policy.invalid_grantee"),
        ({"action": "Actuate"}, "policy.invalid_action"),
        ({"action": ""}, "policy.invalid_action"),
        ({"resource": "valve 7"}, "policy.invalid_resource"),
        ({"resource": "a" * 129}, "policy.invalid_resource"),
        ({"max_uses": 0}, "policy.invalid_limits"),
        ({"max_uses": 2**64}, "policy.invalid_limits"),
        ({"spend_limit": [["aut", 1], ["aut", 2]]}, "policy.invalid_limits"),
        ({"spend_limit": [["AUT", 1]]}, "policy.invalid_limits"),
        ({"spend_limit": [["aut", -1]]}, "policy.invalid_limits"),
        ({"spend_limit": [[f"a{i}", 1] for i in range(17)]}, "policy.invalid_limits"),
        ({"delegable": 9}, "policy.invalid_limits"),
        ({"delegable": -1}, "policy.invalid_limits"),
        ({"expires_ms": 2**64}, "policy.invalid_expiry"),
        ({"expires_ms": -1}, "policy.invalid_expiry"),
        ({"expires_ms": T0}, "policy.invalid_expiry"),
    ],
)
def test_grant_rejections(world: World, changes: dict[str, Any], code: str) -> None:
    receipt = world.run(OWNER, good_grant(**changes))
    assert receipt.code == code, receipt.detail
    assert receipt.events == ()
    assert not any(key.startswith("policy/") for key in world.chain.data)  # nothing of the message stayed


def test_grant_expiry_must_be_after_the_block_time(world: World) -> None:
    next_block = world.now + BLOCK_MS
    assert world.code(OWNER, good_grant(expires_ms=next_block)) == "policy.invalid_expiry"
    assert world.code(OWNER, good_grant(expires_ms=world.now + BLOCK_MS + 1)) == "ok"


@pytest.mark.parametrize(
    ("faults", "code"),
    [
        ({"grantee": OWNER.did, "action": "Bad"}, "policy.invalid_grantee"),
        ({"action": "Bad", "resource": "Bad"}, "policy.invalid_action"),
        ({"resource": "Bad", "max_uses": 0}, "policy.invalid_resource"),
        ({"max_uses": 0, "expires_ms": 1}, "policy.invalid_limits"),
        ({"delegable": 99, "expires_ms": 1}, "policy.invalid_limits"),
        ({"extra": 1, "grantee": "nope"}, "core.invalid_message"),
    ],
)
def test_grant_precedence(world: World, faults: dict[str, Any], code: str) -> None:
    assert world.code(OWNER, good_grant(**faults)) == code


# ---------------------------------------------------------------------------------------------------
# policy/delegate and attenuation


def test_delegate_creates_a_child_with_event_and_indexes(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "read:stream", max_uses=10, spend_limit={"aut": 50}, delegable=2)
    tx = world.tx(
        ROBOT, policy.delegate(root, HELPER.did, "stream/weather-12", max_uses=4, spend_limit={"aut": 20})
    )
    receipt = world.run_tx(tx)
    assert receipt.code == "ok", receipt.detail
    child = policy_keeper.new_grant_id(tx.hash, 0)
    (event,) = receipt.events
    assert event.type == "policy.delegated"
    assert dict(event.attributes) == {
        "grant": child,
        "parent": root,
        "grantor": ROBOT.did,
        "grantee": HELPER.did,
        "action": "read",
        "resource": "stream/weather-12",
        "depth": 1,
    }
    record = world.record(child)
    assert (record.action, record.parent, record.root_grantor, record.depth, record.delegable) == (
        "read",
        root,
        OWNER.did,
        1,
        0,
    )
    state = world.chain.state
    assert world.policy.children_of(state, root) == [child]
    assert world.policy.grants_of_grantor(state, ROBOT.did) == [child]
    assert world.policy.chain(state, child) == (record, world.record(root))


def test_delegable_true_takes_what_the_parent_allows(world: World) -> None:
    root = world.grant(OWNER, ROBOT, delegable=3)
    child = world.delegate(ROBOT, root, HELPER, delegable=True)
    assert world.record(child).delegable == 2
    grandchild = world.delegate(HELPER, child, THIRD, delegable=False)
    assert world.record(grandchild).delegable == 0


def test_chains_are_at_most_nine_grants(world: World) -> None:
    keys = [make_key(f"link-{index}") for index in range(policy.MAX_DELEGATION_DEPTH + 2)]
    grant_id = world.grant(OWNER, keys[0], delegable=True)
    for delegator, delegate in itertools.pairwise(keys[: policy.MAX_DELEGATION_DEPTH + 1]):
        grant_id = world.delegate(delegator, grant_id, delegate, delegable=True)
    last = world.record(grant_id)
    assert (last.depth, last.delegable) == (policy.MAX_DELEGATION_DEPTH, 0)
    next_key = keys[policy.MAX_DELEGATION_DEPTH + 1]
    message = policy.delegate(grant_id, next_key.did, "valve-7")
    assert world.code(keys[policy.MAX_DELEGATION_DEPTH], message) == "policy.not_delegable"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"resource": "valves"}, "policy.widens"),  # the parent is valves/7: a wider resource
        ({"resource": "valves/8"}, "policy.widens"),  # a sibling
        ({"resource": "valves/70"}, "policy.widens"),  # a prefix that is not a path below
        ({"expires_ms": None}, "policy.widens"),
        ({"expires_ms": T0 + 1_000_001}, "policy.widens"),
        ({"max_uses": None}, "policy.widens"),
        ({"max_uses": 6}, "policy.widens"),
        ({"spend_limit": None}, "policy.widens"),
        ({"spend_limit": [["aut", 31]]}, "policy.widens"),
        ({"spend_limit": [["aut", 30], ["kwh", 0]]}, "policy.widens"),
        ({"delegable": 2}, "policy.widens"),
        ({"grantee": ROBOT.did}, "policy.invalid_grantee"),  # the sender itself
        ({"resource": "Valves/7"}, "policy.invalid_resource"),
        ({"max_uses": 0}, "policy.invalid_limits"),
        ({"delegable": 9}, "policy.invalid_limits"),
        ({"expires_ms": T0}, "policy.invalid_expiry"),
        ({"parent": b"\x01" * 31}, "core.invalid_message"),
        ({"action": "actuate"}, "core.invalid_message"),  # the child takes the parent's action
    ],
)
def test_delegation_rejections(world: World, changes: dict[str, Any], code: str) -> None:
    root = world.grant(
        OWNER,
        ROBOT,
        "actuate:valves/7",
        expires_ms=T0 + 1_000_000,
        max_uses=5,
        spend_limit={"aut": 30},
        delegable=2,
    )
    world.ok(ROBOT, bank.send(SHOP.did, "aut", 1))  # a block between, nothing used yet
    message = policy.delegate(
        root,
        HELPER.did,
        "valves/7",
        expires_ms=T0 + 1_000_000,
        max_uses=5,
        spend_limit={"aut": 30},
        delegable=1,
    )
    assert world.code(ROBOT, message) == "ok"  # the message without the change is the most a child may get
    message.update(changes)
    assert world.code(ROBOT, message) == code


def test_narrower_delegations_are_allowed(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "actuate:valves", expires_ms=T0 + 1_000_000, max_uses=5, delegable=2)
    child = world.delegate(
        ROBOT, root, HELPER, "valves/7/open", expires_ms=T0 + 500_000, max_uses=1, delegable=1
    )
    assert world.record(child).resource == "valves/7/open"
    assert world.record(world.delegate(HELPER, child, THIRD, max_uses=1, expires_ms=T0 + 10_000)).depth == 2


def test_delegation_is_bounded_by_what_the_chain_has_left(world: World) -> None:
    """Uses and spend left are the minimum over the chain, not the parent's own record."""
    root = world.grant(OWNER, ROBOT, "spend:bank", max_uses=10, spend_limit={"aut": 100}, delegable=3)
    child = world.delegate(ROBOT, root, HELPER, max_uses=10, spend_limit={"aut": 100}, delegable=2)
    for _ in range(8):
        world.ok(ROBOT, spend_from(OWNER, SHOP, 10, root))  # the root has 2 uses and 20 aut left
    assert headroom(world.policy.chain(world.chain.state, child)) == Headroom(2, (("aut", 20),))
    too_many = policy.delegate(child, THIRD.did, "bank", max_uses=3, spend_limit={"aut": 20})
    assert world.code(HELPER, too_many) == "policy.widens"
    too_much = policy.delegate(child, THIRD.did, "bank", max_uses=2, spend_limit={"aut": 21})
    assert world.code(HELPER, too_much) == "policy.widens"
    world.delegate(HELPER, child, THIRD, "bank/aut", max_uses=2, spend_limit={"aut": 20})


def test_delegate_state_checks_in_precedence(world: World) -> None:
    """invalid_expiry, unknown_grant, wrong_grantee, revoked, expired, not_delegable, widens."""
    expiry = world.now + 100 * BLOCK_MS
    unknown = b"\x07" * 32
    assert (
        world.code(ROBOT, policy.delegate(unknown, HELPER.did, "valve-7", expires_ms=T0))
        == "policy.invalid_expiry"
    )
    assert world.code(ROBOT, policy.delegate(unknown, HELPER.did, "valve-7")) == "policy.unknown_grant"
    fixed = world.grant(OWNER, ROBOT, expires_ms=expiry)  # not delegable
    live = world.grant(OWNER, ROBOT, expires_ms=expiry, delegable=1)
    world.ok(OWNER, policy.revoke(fixed))
    widening = policy.delegate(fixed, HELPER.did, "valves")
    assert world.code(STRANGER, widening) == "policy.wrong_grantee"
    assert world.run(ROBOT, widening, time_ms=expiry).code == "policy.revoked"  # revoked and expired
    widening = policy.delegate(live, HELPER.did, "valves")
    assert world.run(ROBOT, widening, time_ms=expiry + 1).code == "policy.expired"
    other = world.grant(OWNER, ROBOT)
    assert world.code(ROBOT, policy.delegate(other, HELPER.did, "valves")) == "policy.not_delegable"
    delegable = world.grant(OWNER, ROBOT, delegable=1)
    assert world.code(ROBOT, policy.delegate(delegable, HELPER.did, "valves")) == "policy.widens"


def test_delegating_from_an_expired_or_exhausted_parent(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "spend:bank", max_uses=1, expires_ms=T0 + 100_000, delegable=1)
    world.ok(ROBOT, spend_from(OWNER, SHOP, 1, root))
    message = policy.delegate(root, HELPER.did, "bank", max_uses=1, expires_ms=T0 + 100_000)
    assert world.code(ROBOT, message) == "policy.uses_exhausted"
    other = world.grant(OWNER, ROBOT, expires_ms=T0 + 100_000, delegable=1)
    message = policy.delegate(other, HELPER.did, "valve-7")  # no expiry: would also widen
    assert world.run(ROBOT, message, time_ms=T0 + 100_000).code == "policy.expired"


# ---------------------------------------------------------------------------------------------------
# policy/revoke and cascading


def test_revoke_marks_the_grant_and_cuts_off_everything_below(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "spend:bank", delegable=3)
    child = world.delegate(ROBOT, root, HELPER, delegable=1)
    grandchild = world.delegate(HELPER, child, THIRD)
    world.ok(THIRD, spend_from(OWNER, SHOP, 1, grandchild))
    receipt = world.ok(ROBOT, policy.revoke(child))
    (event,) = receipt.events
    assert (event.type, dict(event.attributes)) == ("policy.revoked", {"grant": child, "by": ROBOT.did})
    assert world.record(child).revoked == world.chain.height
    assert world.record(grandchild).revoked is None  # its record is not rewritten ...
    assert world.code(THIRD, spend_from(OWNER, SHOP, 1, grandchild)) == "policy.revoked"  # ... but it is dead
    assert world.code(HELPER, spend_from(OWNER, SHOP, 1, child)) == "policy.revoked"
    world.ok(ROBOT, spend_from(OWNER, SHOP, 1, root))  # above the revoked grant, nothing changed
    assert world.code(ROBOT, policy.delegate(child, HELPER.did, "bank")) == "policy.wrong_grantee"
    assert world.code(HELPER, policy.delegate(child, STRANGER.did, "bank")) == "policy.revoked"


def test_who_may_revoke(world: World) -> None:
    """The grant's grantor, any grantor above it, or the owner of one of them; nobody else."""
    root = world.grant(SHOP, ROBOT, "actuate:valve-7", delegable=3)  # ROBOT is OWNER's machine
    child = world.delegate(ROBOT, root, HELPER, delegable=1)
    grandchild = world.delegate(HELPER, child, THIRD)
    assert world.code(THIRD, policy.revoke(grandchild)) == "policy.not_authorised"  # the grantee
    assert world.code(STRANGER, policy.revoke(grandchild)) == "policy.not_authorised"
    assert world.code(STRANGER, policy.revoke(b"\x09" * 32)) == "policy.unknown_grant"
    assert world.code(HELPER, policy.revoke(root)) == "policy.not_authorised"  # below, not above
    for revoker in (HELPER, ROBOT, SHOP, OWNER):  # the grantor, two above, the owner of ROBOT
        grant_id = world.delegate(HELPER, child, THIRD)
        assert world.code(revoker, policy.revoke(grant_id)) == "ok", revoker
    world.ok(OWNER, policy.revoke(child))  # OWNER owns ROBOT, the grantor of child
    # already_revoked comes after not_authorised.
    assert world.code(STRANGER, policy.revoke(child)) == "policy.not_authorised"
    assert world.code(ROBOT, policy.revoke(child)) == "policy.already_revoked"
    # A grant below a revoked one can still be revoked, for the record.
    world.ok(HELPER, policy.revoke(grandchild))


def test_revoke_message_shape(world: World) -> None:
    assert world.code(OWNER, {"type": "policy/revoke", "grant": "00" * 32}) == "core.invalid_message"
    assert world.code(OWNER, {"type": "policy/revoke"}) == "core.invalid_message"


# ---------------------------------------------------------------------------------------------------
# Expiry by block time, uses and spend


def test_expiry_follows_the_block_time(world: World) -> None:
    expiry = world.now + 10 * BLOCK_MS
    root = world.grant(OWNER, ROBOT, "spend:bank", expires_ms=expiry, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, expires_ms=expiry)
    assert world.run(HELPER, spend_from(OWNER, SHOP, 1, child), time_ms=expiry - 1).code == "ok"
    assert world.run(HELPER, spend_from(OWNER, SHOP, 1, child), time_ms=expiry).code == "policy.expired"
    assert world.run(ROBOT, spend_from(OWNER, SHOP, 1, root), time_ms=expiry + 5).code == "policy.expired"


def test_parent_expiry_applies_to_the_child(world: World) -> None:
    """The root's expiry ends the child too; a child record that outlives its parent (only possible
    in forged data) makes the chain broken."""
    root = world.grant(OWNER, ROBOT, "spend:bank", expires_ms=world.now + 5 * BLOCK_MS, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, expires_ms=world.now + 4 * BLOCK_MS)
    chain = world.policy.chain(world.chain.state, child)
    at = chain[1].expires_ms
    assert at is not None
    forged = (dataclasses.replace(chain[0], expires_ms=None), chain[1])
    with pytest.raises(GrantRefused) as refused:
        check(forged, grantee=HELPER.did, action="spend", resource="bank", now_ms=at - 1)
    assert refused.value.code == "policy.broken_chain"
    with pytest.raises(GrantRefused) as refused:
        check(chain, grantee=HELPER.did, action="spend", resource="bank", now_ms=at)
    assert refused.value.code == "policy.expired"


def test_uses_are_counted_at_every_link(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "spend:bank", max_uses=3, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, max_uses=3)
    world.ok(ROBOT, spend_from(OWNER, SHOP, 1, root))
    world.ok(HELPER, spend_from(OWNER, SHOP, 1, child))
    assert (world.record(root).uses, world.record(child).uses) == (2, 1)
    world.ok(HELPER, spend_from(OWNER, SHOP, 1, child))  # the root's third and last use
    assert world.code(HELPER, spend_from(OWNER, SHOP, 1, child)) == "policy.uses_exhausted"
    assert world.code(ROBOT, spend_from(OWNER, SHOP, 1, root)) == "policy.uses_exhausted"
    assert (world.record(root).uses, world.record(child).uses) == (3, 2)


def test_spend_limits_per_asset_at_every_link(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "spend:bank", spend_limit={"aut": 100, "kwh": 10}, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, spend_limit={"aut": 60})
    world.ok(HELPER, spend_from(OWNER, SHOP, 60, child))
    assert world.code(HELPER, spend_from(OWNER, SHOP, 1, child)) == "policy.spend_over_limit"
    assert (
        world.code(HELPER, spend_from(OWNER, SHOP, 1, child, "kwh")) == "policy.spend_over_limit"
    )  # not named
    world.ok(ROBOT, spend_from(OWNER, SHOP, 40, root))
    assert world.code(ROBOT, spend_from(OWNER, SHOP, 1, root)) == "policy.spend_over_limit"
    world.ok(ROBOT, spend_from(OWNER, SHOP, 10, root, "kwh"))
    assert world.record(root).spent == (("aut", 100), ("kwh", 10))
    assert world.record(child).spent == (("aut", 60),)
    unlimited = world.grant(OWNER, HELPER, "spend:bank")
    world.ok(HELPER, spend_from(OWNER, SHOP, 5_000, unlimited))
    assert world.record(unlimited).spent == (("aut", 5_000),)


# ---------------------------------------------------------------------------------------------------
# The pure check: every refusal, and their precedence


def record(**changes: Any) -> GrantRecord:
    base = GrantRecord(
        id=b"\x01" * 32,
        grantor=OWNER.did,
        grantee=ROBOT.did,
        action="actuate",
        resource="valves",
        expires_ms=T0 + 1000,
        max_uses=5,
        spend_limit=(("aut", 100),),
        delegable=2,
        parent=None,
        root_grantor=OWNER.did,
        depth=0,
        created=1,
        revoked=None,
        uses=0,
        spent=(),
    )
    return dataclasses.replace(base, **changes)


def chain_of_two(**child_changes: Any) -> tuple[GrantRecord, GrantRecord]:
    root = record()
    child = record(
        id=b"\x02" * 32,
        grantor=ROBOT.did,
        grantee=HELPER.did,
        resource="valves/7",
        max_uses=3,
        spend_limit=(("aut", 50),),
        delegable=1,
        parent=root.id,
        depth=1,
    )
    return dataclasses.replace(child, **child_changes), root


def refusal(chain: Sequence[GrantRecord], **asked: Any) -> str:
    request: dict[str, Any] = {
        "grantee": HELPER.did,
        "action": "actuate",
        "resource": "valves/7",
        "now_ms": T0,
    }
    request.update(asked)
    try:
        check(chain, **request)
    except GrantRefused as exc:
        return exc.code
    return "ok"


def test_check_allows_and_names_the_grant_and_root() -> None:
    chain = chain_of_two()
    allowed = check(
        chain, grantee=HELPER.did, action="actuate", resource="valves/7/open", now_ms=T0, spend=("aut", 50)
    )
    assert allowed == Allowed(b"\x02" * 32, OWNER.did, (b"\x02" * 32, b"\x01" * 32))


@pytest.mark.parametrize(
    ("chain", "asked", "code"),
    [
        ((), {}, "policy.broken_chain"),
        (chain_of_two(parent=b"\x03" * 32), {}, "policy.broken_chain"),
        (chain_of_two(grantor=STRANGER.did), {}, "policy.broken_chain"),
        (chain_of_two(depth=2), {}, "policy.broken_chain"),
        (chain_of_two(root_grantor=ROBOT.did), {}, "policy.broken_chain"),
        (chain_of_two(action="read"), {"action": "read"}, "policy.broken_chain"),
        (chain_of_two(resource="pumps"), {"resource": "pumps"}, "policy.broken_chain"),
        (chain_of_two(expires_ms=T0 + 1001), {}, "policy.broken_chain"),
        (chain_of_two(max_uses=None), {}, "policy.broken_chain"),
        (chain_of_two(spend_limit=(("aut", 101),)), {}, "policy.broken_chain"),
        (chain_of_two(spend_limit=(("kwh", 1),)), {}, "policy.broken_chain"),
        (chain_of_two(delegable=2), {}, "policy.broken_chain"),
        ((record(depth=1),), {"grantee": ROBOT.did}, "policy.broken_chain"),
        ((record(parent=b"\x05" * 32),), {"grantee": ROBOT.did}, "policy.broken_chain"),
        ((chain_of_two()[1], chain_of_two()[0]), {}, "policy.broken_chain"),
        (chain_of_two(), {"grantee": ROBOT.did}, "policy.wrong_grantee"),
        (chain_of_two(), {"action": "read"}, "policy.not_covered"),
        (chain_of_two(), {"resource": "valves"}, "policy.not_covered"),
        (chain_of_two(), {"resource": "valves/70"}, "policy.not_covered"),
        (chain_of_two(revoked=3), {}, "policy.revoked"),
        ((chain_of_two()[0], record(revoked=3)), {}, "policy.revoked"),
        (chain_of_two(), {"now_ms": T0 + 1000}, "policy.expired"),
        (chain_of_two(uses=3), {}, "policy.uses_exhausted"),
        ((chain_of_two(uses=1)[0], record(uses=5)), {}, "policy.uses_exhausted"),
        (chain_of_two(), {"spend": ("aut", 51)}, "policy.spend_over_limit"),
        (chain_of_two(), {"spend": ("kwh", 1)}, "policy.spend_over_limit"),
        (
            (chain_of_two()[0], record(spent=(("aut", 90),))),
            {"spend": ("aut", 11)},
            "policy.spend_over_limit",
        ),
        ((chain_of_two()[0], record(spent=(("aut", 90),))), {"spend": ("aut", 10)}, "ok"),
        (chain_of_two(), {"spend": ("aut", 50)}, "ok"),
    ],
)
def test_check_refusals(chain: Sequence[GrantRecord], asked: dict[str, Any], code: str) -> None:
    assert refusal(chain, **asked) == code


@pytest.mark.parametrize(
    ("chain", "asked", "code"),
    [
        (chain_of_two(parent=b"\x03" * 32, revoked=1), {"grantee": STRANGER.did}, "policy.broken_chain"),
        (chain_of_two(revoked=1), {"grantee": STRANGER.did, "action": "read"}, "policy.wrong_grantee"),
        (chain_of_two(revoked=1), {"action": "read"}, "policy.not_covered"),
        ((chain_of_two(uses=3)[0], record(revoked=1)), {"now_ms": T0 + 5000}, "policy.revoked"),
        (chain_of_two(uses=3), {"now_ms": T0 + 5000}, "policy.expired"),
        (chain_of_two(uses=3), {"spend": ("kwh", 1)}, "policy.uses_exhausted"),
    ],
)
def test_check_precedence(chain: Sequence[GrantRecord], asked: dict[str, Any], code: str) -> None:
    assert refusal(chain, **asked) == code


def test_load_chain_and_offline_check_from_records(world: World) -> None:
    """A device decodes proof-checked values with GrantRecord.from_cbor and decides with check_grant."""
    root = world.grant(OWNER, ROBOT, "actuate:valves", max_uses=2, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, "valves/7", max_uses=1)
    raw = {gid: world.chain.state.get(policy_keeper.grant_key(gid)) for gid in (root, child)}
    records = {gid: GrantRecord.from_cbor(canonical_decode(value)) for gid, value in raw.items() if value}
    allowed = check_grant(
        lookup_in(records), child, grantee=HELPER.did, action="actuate", resource="valves/7", now_ms=0
    )
    assert (allowed.grant_id, allowed.root_grantor, allowed.chain) == (child, OWNER.did, (child, root))
    with pytest.raises(GrantRefused) as refused:
        load_chain(lookup_in({child: records[child]}), child)
    assert refused.value.code == "policy.broken_chain"
    with pytest.raises(GrantRefused) as refused:
        load_chain(lookup_in(records), b"\x00" * 32)
    assert refused.value.code == "policy.unknown_grant"
    assert isinstance(refused.value, TxError)
    swapped = {child: records[root], root: records[root]}  # a lookup that answers with another grant
    with pytest.raises(GrantRefused) as refused:
        load_chain(lookup_in(swapped), child)
    assert refused.value.code == "policy.broken_chain"


def test_records_decode_strictly() -> None:
    good = record().to_cbor()
    assert GrantRecord.from_cbor(good) == record()
    bad_values: list[tuple[str, Any]] = [
        ("id", b"\x01" * 31),
        ("grantor", "did:key:nope"),
        ("action", "Bad"),
        ("resource", "a//b"),
        ("expires_ms", -1),
        ("max_uses", 0),
        ("spend_limit", [["kwh", 1], ["aut", 1]]),  # not sorted
        ("spend_limit", [["aut", 1], ["aut", 2]]),
        ("spent", [["aut", 0]]),
        ("delegable", 9),
        ("depth", True),
        ("uses", 2**64),
        ("parent", b""),
    ]
    for name, value in bad_values:
        with pytest.raises(ValueError):
            GrantRecord.from_cbor({**good, name: value})
    with pytest.raises(ValueError):
        GrantRecord.from_cbor({**good, "extra": 1})
    with pytest.raises(ValueError):
        GrantRecord.from_cbor([good])
    missing = dict(good)
    del missing["uses"]
    with pytest.raises(ValueError):
        GrantRecord.from_cbor(missing)


# ---------------------------------------------------------------------------------------------------
# bank/send_from end to end


def test_send_from_moves_funds_and_the_receipt_names_the_grant(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "spend:bank/aut", max_uses=5, spend_limit={"aut": 100}, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, max_uses=2, spend_limit={"aut": 30})
    before = (world.balance(OWNER), world.balance(SHOP), world.balance(HELPER))
    receipt = world.ok(HELPER, spend_from(OWNER, SHOP, 25, child))
    used, transfer = receipt.events
    assert used.type == "policy.grant_used"
    assert dict(used.attributes) == {
        "grant": child,
        "grantee": HELPER.did,
        "action": "spend",
        "resource": "bank/aut",
        "root_grantor": OWNER.did,
        "asset": "aut",
        "amount": 25,
    }
    assert transfer.type == "bank.transfer"
    assert dict(transfer.attributes) == {"from": OWNER.did, "to": SHOP.did, "asset": "aut", "amount": 25}
    assert (world.balance(OWNER), world.balance(SHOP), world.balance(HELPER)) == (
        before[0] - 25,
        before[1] + 25,
        before[2],
    )
    for grant_id in (child, root):
        assert (world.record(grant_id).uses, world.record(grant_id).spent) == (1, (("aut", 25),))


def test_send_from_fee_is_paid_by_the_sender(world: World) -> None:
    grant_id = world.grant(OWNER, HELPER, "spend:bank")
    receipt = world.ok(HELPER, spend_from(OWNER, SHOP, 10, grant_id), fee=3)
    assert [event.type for event in receipt.events] == ["bank.fee", "policy.grant_used", "bank.transfer"]
    assert world.balance(HELPER) == 97 and world.balance(OWNER) == 10_000 - 10


def send_from_raw(**changes: Any) -> dict[str, Any]:
    message = bank.send_from(OWNER.did, SHOP.did, "aut", 1, b"\x00" * 32)
    message.update(changes)
    return message


@pytest.mark.parametrize(
    "changes",
    [
        {"from": "did:key:zNope"},
        {"from": None},
        {"grant": b"\x00" * 31},
        {"grant": "00" * 32},
        {"amount": True},
        {"extra": 1},
    ],
)
def test_send_from_shape(world: World, changes: dict[str, Any]) -> None:
    assert world.code(HELPER, send_from_raw(**changes)) == "core.invalid_message"


def test_send_from_needs_every_field(world: World) -> None:
    for name in ("from", "to", "asset", "amount", "grant"):
        message = {key: value for key, value in send_from_raw().items() if key != name}
        assert world.code(HELPER, message) == "core.invalid_message", name


def test_send_from_codes_in_precedence(world: World) -> None:
    grant_id = world.grant(OWNER, HELPER, "spend:bank", spend_limit={"aut": 50})
    stranger_grant = world.grant(STRANGER, HELPER, "spend:bank")
    actuate = world.grant(OWNER, HELPER, "actuate:bank")
    unknown = b"\x05" * 32

    def code(to: str = SHOP.did, asset: str = "aut", amount: int = 1, grant: bytes = grant_id) -> str:
        return world.code(HELPER, bank.send_from(OWNER.did, to, asset, amount, grant))

    assert code(amount=0, to="nope") == "bank.invalid_amount"
    assert code(to="nope", asset="zzz") == "bank.invalid_recipient"
    assert code(to=OWNER.did, asset="zzz") == "bank.self_transfer"
    assert code(asset="zzz", grant=unknown) == "bank.unknown_asset"
    assert code(grant=unknown) == "policy.unknown_grant"
    assert (
        world.code(ROBOT, bank.send_from(OWNER.did, SHOP.did, "aut", 1, grant_id)) == "policy.wrong_grantee"
    )
    assert code(grant=actuate) == "policy.not_covered"
    assert code(amount=51) == "policy.spend_over_limit"
    # The grant checks out but comes from someone else: the stranger's grant cannot move OWNER's funds.
    assert code(grant=stranger_grant, amount=51) == "bank.grantor_mismatch"
    assert world.record(stranger_grant).uses == 0  # the refused message's use was rolled back
    assert code(amount=50) == "ok"


def test_send_from_respects_the_payers_guardrails_and_freeze(world: World) -> None:
    """A machine that lends its wallet under a grant stays within its own guardrails."""
    grant_id = world.grant(ROBOT, HELPER, "spend:bank", spend_limit={"aut": 900})
    limits = {"aut": {"per_tx": 100, "per_window": 150, "cosign_above": 80}}
    world.ok(
        OWNER,
        bank.set_guardrails(ROBOT.did, {"window_blocks": 10, "limits": limits, "allowlist": [SHOP.did]}),
    )

    def code(amount: int, to: SigningKey = SHOP, cosigners: Sequence[SigningKey] = ()) -> str:
        return world.code(HELPER, spend_from(ROBOT, to, amount, grant_id), cosigners=cosigners)

    assert code(1, to=STRANGER) == "bank.counterparty_not_allowed"
    assert code(101) == "bank.per_tx_cap"
    assert code(81) == "bank.cosign_required"
    assert code(81, cosigners=[ROBOT]) == "bank.cosign_required"  # the payer itself is not its owner
    assert code(81, cosigners=[OWNER]) == "ok"
    assert bank_keeper.window_spent(world.chain.state, ROBOT.did, "aut", world.chain.height) == 81
    assert code(70) == "bank.window_limit"
    assert code(69) == "ok"
    assert world.record(grant_id).spent == (("aut", 150),)  # refused spends did not count on the grant
    world.ok(OWNER, bank.set_guardrails(ROBOT.did, None))
    world.ok(OWNER, bank.freeze(ROBOT.did))
    assert code(1) == "bank.account_frozen"
    world.ok(OWNER, bank.unfreeze(ROBOT.did))
    assert code(851) == "policy.spend_over_limit"
    lean = world.grant(ROBOT, HELPER, "spend:bank")
    assert world.code(HELPER, spend_from(ROBOT, SHOP, 5_000, lean)) == "bank.insufficient_funds"


def test_send_from_charges_the_senders_scoped_key_allowance(world: World) -> None:
    register = {"type": "identity/register", "did": HELPER.did, "kind": "person", "maker": "", "model": "",
                "capabilities": [], "metadata": {}}  # fmt: skip
    world.ok(HELPER, register)
    add = {"type": "identity/add_key", "did": HELPER.did, "key": SCOPED.public_key.raw,
           "actions": ["bank/send_from"], "allowance": {"aut": 10}}  # fmt: skip
    world.ok(HELPER, add, cosigners=[SCOPED])
    grant_id = world.grant(OWNER, HELPER, "spend:bank")
    assert (
        world.code(SCOPED, spend_from(OWNER, SHOP, 11, grant_id), sender=HELPER)
        == "identity.allowance_exceeded"
    )
    assert world.code(SCOPED, spend_from(OWNER, SHOP, 10, grant_id), sender=HELPER) == "ok"
    assert world.code(SCOPED, bank.send(SHOP.did, "aut", 1), sender=HELPER) == "core.key_scope"


def test_send_from_without_the_policy_module_is_unknown() -> None:
    identity = IdentityModule()
    app = App([identity, BankModule(identity=identity), ValidatorsModule()], authenticator=identity)
    chain = Chain.from_genesis(GENESIS, app=app)
    body = TxBody(
        CHAIN_ID, HELPER.did, 0, 0, 0, (bank.send_from(OWNER.did, SHOP.did, "aut", 1, b"\x00" * 32),)
    )
    (receipt,) = chain.execute([sign_tx(body, HELPER).raw])
    assert receipt.code == "core.unknown_message"


def test_send_from_is_equal_on_the_fast_and_reference_paths() -> None:
    chains = [Chain.from_genesis(GENESIS, app=build_app(fast_path=flag)) for flag in (True, False)]
    grant_body = TxBody(CHAIN_ID, OWNER.did, 0, 0, 0, (policy.grant(HELPER.did, "spend", "bank"),))
    grant_tx = sign_tx(grant_body, OWNER)
    grant_id = policy_keeper.new_grant_id(grant_tx.hash, 0)
    spends = [
        sign_tx(TxBody(CHAIN_ID, HELPER.did, seq, 0, 0, (spend_from(OWNER, SHOP, 7, grant_id),)), HELPER).raw
        for seq in range(2)
    ]
    plain = sign_tx(TxBody(CHAIN_ID, STRANGER.did, 0, 0, 0, (bank.send(SHOP.did, "aut", 3),)), STRANGER).raw
    results = []
    for chain in chains:
        receipts = chain.execute([grant_tx.raw]) + chain.execute([*spends, plain])
        results.append((receipts, chain.root))
    assert results[0] == results[1]
    assert [receipt.code for receipt in results[0][0]] == ["ok"] * 4


# ---------------------------------------------------------------------------------------------------
# Genesis, state roots, module wiring


def test_policy_adds_nothing_to_a_chain_that_never_uses_it() -> None:
    """Roots of genesis and of plain blocks equal those of the same app without the policy module."""
    identity = IdentityModule()
    without = App([identity, BankModule(identity=identity), ValidatorsModule()], authenticator=identity)
    chains = [Chain.from_genesis(GENESIS, app=app) for app in (build_app(), without)]
    assert chains[0].root == chains[1].root == execute_genesis(GENESIS, build_app()).header.state_root
    txs = [sign_tx(TxBody(CHAIN_ID, OWNER.did, 0, 0, 0, (bank.send(SHOP.did, "aut", 5),)), OWNER).raw]
    for chain in chains:
        chain.execute(txs)
    assert chains[0].root == chains[1].root
    assert not any(key.startswith("policy/") for key in chains[0].data)


def test_policy_genesis_takes_no_settings() -> None:
    genesis = {**GENESIS, "app_state": {**GENESIS["app_state"], "policy": {"grants": []}}}
    with pytest.raises(ValueError, match="policy genesis"):
        Chain.from_genesis(genesis)
    assert Chain.from_genesis({**GENESIS, "app_state": {**GENESIS["app_state"], "policy": {}}}).root


def test_build_app_wires_policy_into_the_bank() -> None:
    app = build_app()
    bank_module = app.module("bank")
    assert isinstance(bank_module, BankModule)
    assert bank_module.policy is app.module("policy")  # type: ignore[comparison-overlap]
    assert app.routes["bank/send_from"] is bank_module
    assert [app.routes[t] for t in policy.MESSAGE_TYPES] == [app.module("policy")] * 3


def test_check_grant_query_records_nothing(world: World) -> None:
    grant_id = world.grant(OWNER, HELPER, "spend:bank", max_uses=1)
    allowed = world.policy.check_grant(
        world.chain.state, grant_id, grantee=HELPER.did, action="spend", resource="bank/aut", now_ms=world.now
    )
    assert allowed.grant_id == grant_id and world.record(grant_id).uses == 0


# ---------------------------------------------------------------------------------------------------
# Invariants find what they claim to find


def corrupted(world: World, edit: Any) -> list[str]:
    state = Overlay(MappingState(dict(world.chain.data)))
    edit(state)
    return world.policy.invariants(state)


def test_invariants_catch_corruption(world: World) -> None:
    root = world.grant(OWNER, ROBOT, "spend:bank", max_uses=3, spend_limit={"aut": 10}, delegable=1)
    child = world.delegate(ROBOT, root, HELPER, max_uses=2, spend_limit={"aut": 5})
    world.ok(HELPER, spend_from(OWNER, SHOP, 2, child))
    assert world.policy.invariants(world.chain.state) == []
    key = policy_keeper.grant_key

    def rewrite(grant_id: bytes, **changes: Any) -> Any:
        def edit(state: Overlay) -> None:
            state.set_obj(key(grant_id), dataclasses.replace(world.record(grant_id), **changes).to_cbor())

        return edit

    cases = {
        "uses": rewrite(child, uses=3),
        "spent over": rewrite(child, spent=(("aut", 6),)),
        "spent unnamed": rewrite(child, spent=(("aut", 2), ("kwh", 1))),
        "widened": rewrite(child, max_uses=4),
        "root": rewrite(root, depth=1),
        "self grant": rewrite(root, grantee=OWNER.did),
        "revoked early": rewrite(root, revoked=0),
        "counts": rewrite(root, uses=0),
        "spend counts": rewrite(root, spent=(("aut", 1),)),
        "id": lambda state: state.set_obj(key(b"\x00" * 32), world.record(root).to_cbor()),
        "malformed": lambda state: state.set_obj(key(root), {"id": root}),
        "orphan": lambda state: state.delete(key(root)),
        "index missing": lambda state: state.delete(policy_keeper.by_grantee_key(HELPER.did, child)),
        "index extra": lambda state: state.set_obj(
            policy_keeper.by_grantor_key(SHOP.did, child), "spend:bank"
        ),
        "index value": lambda state: state.set_obj(policy_keeper.child_key(root, child), "spend:x"),
    }
    for name, edit in cases.items():
        assert corrupted(world, edit) != [], name


# ---------------------------------------------------------------------------------------------------
# The README example runs as written


def test_readme_example_runs() -> None:
    readme = Path(__file__).resolve().parents[2] / "src/autarky/modules/policy/README.md"
    text = readme.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(readme), "exec"), {})
