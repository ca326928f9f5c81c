"""Random sequences of identity messages from several actors, checked step by step against a model.

The model is a few dictionaries and the rules of README.md written out plainly. After every
transaction (one per block) the test checks that

* the receipt's code is the one the model predicts (core authentication codes included);
* every account's owner, status and keys (in order, with their scopes) equal the model's;
* for every (account, key) pair, ``authenticate`` accepts exactly when the model says the account
  lists the key (or, for an unregistered account, when the key is the one inside its did:key): no
  key ever authenticates for an account that does not list it;
* the module's invariants hold.

Derandomized: the same examples every run; a failure prints the steps that reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.errors import TxError
from autarky.ledger.router import App
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import messages as m

CHAIN_ID = "test"
ACTORS = 8
KEYS = [SigningKey.from_seed(sha256(f"actor-{index}".encode())) for index in range(ACTORS)]
RAW = [signing_key.public_key.raw for signing_key in KEYS]
DIDS = [signing_key.did for signing_key in KEYS]
BY_RAW = dict(zip(RAW, KEYS, strict=True))
BY_DID = dict(zip(DIDS, RAW, strict=True))

Actions = tuple[str, ...] | None
Choice = tuple[str, int]
Target = str | int
SCOPES: list[tuple[Actions, dict[str, int] | None]] = [
    (None, None),
    (("bank/send",), {"aut": 5}),
    (("identity/add_key", "identity/remove_key", "identity/revoke", "identity/rotate"), None),
    (("identity/register",), None),
]

actor = st.integers(0, ACTORS - 1)
# Who sends: a registered account, the owner of a machine, or anyone.
sender_choice = st.tuples(st.sampled_from(["registered", "owner", "any"]), actor)
# Three signers in four are picked, through the model, among the keys that sign for the sender,
# so that most transactions get past authentication and reach the handlers.
signer_choice = st.tuples(st.sampled_from(["listed", "listed", "listed", "any"]), actor)
# The account a message is about: the sender itself, a machine it owns, or anyone.
target_choice = st.one_of(st.just("self"), st.just("owned"), st.just("registered"), actor)
cosign_choice = st.sampled_from([True, True, True, False])


@dataclass
class ModelAccount:
    owner: str | None
    status: str = "active"
    keys: list[tuple[bytes, Actions]] = field(default_factory=list)

    def scope_of(self, key: bytes) -> Actions | str:
        for listed, actions in self.keys:
            if listed == key:
                return actions
        return "missing"


class Model:
    def __init__(self) -> None:
        self.accounts: dict[str, ModelAccount] = {}

    def holder(self, key: bytes) -> str | None:
        for did, account in self.accounts.items():
            if any(listed == key for listed, _ in account.keys):
                return did
        return None

    def authenticate(self, did: str, key: bytes) -> tuple[str, Actions]:
        account = self.accounts.get(did)
        if account is None:
            return ("ok", None) if BY_DID[did] == key else ("core.unknown_signer", None)
        scope = account.scope_of(key)
        if scope == "missing":
            return "core.unknown_signer", None
        if account.status != "active":
            return "core.account_revoked", None
        assert not isinstance(scope, str)
        return "ok", scope

    def signing_keys(self, did: str) -> list[bytes]:
        account = self.accounts.get(did)
        return [BY_DID[did]] if account is None else [key for key, _ in account.keys]

    def owned_by(self, did: str) -> list[str]:
        return [machine for machine, account in self.accounts.items() if account.owner == did]


class IdentityStateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.identity = IdentityModule()
        genesis = {"chain_id": CHAIN_ID, "genesis_time_ms": 0, "app_state": {}}
        self.chain = Chain.from_genesis(genesis, app=App([self.identity], authenticator=self.identity))
        self.model = Model()

    # -- choosing actors --------------------------------------------------------------------------

    def _signer(self, sender: str, choice: Choice) -> SigningKey:
        how, index = choice
        if how == "any":
            return KEYS[index]
        keys = self.model.signing_keys(sender)
        return BY_RAW[keys[index % len(keys)]]

    def _sender(self, choice: Choice) -> str:
        how, index = choice
        registered = list(self.model.accounts)
        owners = [account.owner for account in self.model.accounts.values() if account.owner is not None]
        if how == "registered" and registered:
            return registered[index % len(registered)]
        if how == "owner" and owners:
            return owners[index % len(owners)]
        return DIDS[index]

    def _target(self, sender: str, choice: Target) -> str:
        if isinstance(choice, int):
            return DIDS[choice]
        owned = self.model.owned_by(sender)
        if choice == "owned" and owned:
            return owned[len(owned) - 1]
        registered = list(self.model.accounts)
        if choice == "registered" and registered:
            return registered[len(sender) % len(registered)]
        return sender

    # -- one transaction ----------------------------------------------------------------------------

    def _run(self, sender: str, signer_choice: Choice, msg: dict[str, Any], cosign: bytes | None) -> None:
        signer = self._signer(sender, signer_choice)
        signers = [signer.public_key.raw]
        cosigners = []
        if cosign is not None and cosign != signers[0]:
            cosigners.append(BY_RAW[cosign])
            signers.append(cosign)
        expected = self._expected(sender, signer.public_key.raw, signers, msg)
        body = TxBody(CHAIN_ID, sender, self.chain.sequence(sender), 0, 0, (msg,))
        (receipt,) = self.chain.execute([sign_tx(body, signer, cosigners).raw])
        assert receipt.code == expected, (receipt.code, expected, receipt.detail, msg)
        self._compare_with_model()

    def _expected(self, sender: str, key: bytes, signers: list[bytes], msg: dict[str, Any]) -> str:
        code, actions = self.model.authenticate(sender, key)
        if code != "ok":
            return code
        if actions is not None and msg["type"] not in actions:
            return "core.key_scope"
        rejection = self._apply(sender, actions is None, signers, msg)
        return rejection or "ok"

    def _apply(self, sender: str, full: bool, signers: list[bytes], msg: dict[str, Any]) -> str | None:
        """The model's rules: the error code, or None after applying the message to the model."""
        model, kind, did = self.model, msg["type"], msg["did"]
        if kind == m.REGISTER:
            if did in model.accounts:
                return "identity.already_registered"
            if model.holder(BY_DID[did]) is not None:
                return "identity.key_in_use"
            if BY_DID[did] not in signers:
                return "identity.missing_key_signature"
            owner = None if did == sender else sender
            model.accounts[did] = ModelAccount(owner, keys=[(BY_DID[did], None)])
            return None
        account = model.accounts.get(did)
        if account is None:
            return "identity.not_registered"
        is_owner = account.owner is not None and sender == account.owner
        is_self = sender == did and full
        if kind == m.RECOVER:
            if not is_owner:
                return "identity.not_authorised"
            holder = model.holder(msg["new_key"])
            if holder is not None and holder != did:
                return "identity.key_in_use"
            if msg["new_key"] not in signers:
                return "identity.missing_key_signature"
            account.keys = [(msg["new_key"], None)]
            account.status = "active"
            return None
        ownerless_self = account.owner is None and is_self
        if not (is_owner or (ownerless_self if kind == m.REVOKE else is_self)):
            return "identity.not_authorised"
        if account.status != "active":
            return "identity.account_revoked"
        if kind == m.REVOKE:
            account.status = "revoked"
            return None
        if kind == m.ADD_KEY:
            if model.holder(msg["key"]) is not None:
                return "identity.key_in_use"
            if len(account.keys) >= m.MAX_KEYS_PER_ACCOUNT:
                return "identity.too_many_keys"
            if msg["key"] not in signers:
                return "identity.missing_key_signature"
            actions = None if msg["actions"] is None else tuple(sorted(msg["actions"]))
            account.keys.append((msg["key"], actions))
            return None
        if kind == m.REMOVE_KEY:
            scope = account.scope_of(msg["key"])
            if scope == "missing":
                return "identity.key_not_found"
            full_keys = [key for key, actions in account.keys if actions is None]
            if scope is None and len(full_keys) == 1:
                return "identity.last_full_key"
            account.keys = [(key, actions) for key, actions in account.keys if key != msg["key"]]
            return None
        assert kind == m.ROTATE
        if account.scope_of(msg["old_key"]) == "missing":
            return "identity.key_not_found"
        if model.holder(msg["new_key"]) is not None:
            return "identity.key_in_use"
        if msg["new_key"] not in signers:
            return "identity.missing_key_signature"
        account.keys = [
            (msg["new_key"] if key == msg["old_key"] else key, actions) for key, actions in account.keys
        ]
        return None

    def _compare_with_model(self) -> None:
        state = self.chain.state
        for did in DIDS:
            record = self.identity.account(state, did)
            expected = self.model.accounts.get(did)
            if expected is None:
                assert record is None
                continue
            assert record is not None
            assert record["owner"] == expected.owner
            assert record["status"] == expected.status
            keys = [
                (entry["key"], None if entry["actions"] is None else tuple(entry["actions"]))
                for entry in record["keys"]
            ]
            assert keys == expected.keys
        for did in DIDS:
            for key in RAW:
                expected_code, expected_actions = self.model.authenticate(did, key)
                try:
                    scope = self.identity.authenticate(state, did, key)
                except TxError as exc:
                    assert exc.code == expected_code, (did, key.hex(), exc.code, expected_code)
                    continue
                assert expected_code == "ok", (did, key.hex())
                assert scope.key == key and scope.actions == expected_actions
                listed = self.model.signing_keys(did)
                assert key in listed  # the account lists the key (or it is the implicit did key)

    # -- rules --------------------------------------------------------------------------------------

    def _key_of(self, did: str, choice: Choice) -> bytes:
        """A key the account lists (or its did key), or any actor's key."""
        how, index = choice
        if how == "any":
            return RAW[index]
        keys = self.model.signing_keys(did)
        return keys[index % len(keys)]

    @initialize(people=st.lists(actor, min_size=1, max_size=3, unique=True))
    def start_with_registered_accounts(self, people: list[int]) -> None:
        """Register a few accounts: the first person self-registered, the others its machines."""
        first = DIDS[people[0]]
        self._run(first, ("listed", 0), m.register(first, "person"), None)
        for machine in people[1:]:
            self._run(first, ("listed", 0), m.register(DIDS[machine], "machine"), RAW[machine])

    @rule(sender=sender_choice, signer=signer_choice, account=target_choice, cosign=cosign_choice)
    def register(self, sender: Choice, signer: Choice, account: Target, cosign: bool) -> None:
        by = self._sender(sender)
        did = self._target(by, account)
        self._run(by, signer, m.register(did, "machine"), BY_DID[did] if cosign else None)

    @rule(
        sender=sender_choice,
        signer=signer_choice,
        account=target_choice,
        new=actor,
        scope=st.integers(0, len(SCOPES) - 1),
        cosign=cosign_choice,
    )
    def add_key(
        self, sender: Choice, signer: Choice, account: Target, new: int, scope: int, cosign: bool
    ) -> None:
        by = self._sender(sender)
        did = self._target(by, account)
        actions, allowance = SCOPES[scope]
        msg = m.add_key(did, RAW[new], None if actions is None else list(actions), allowance)
        self._run(by, signer, msg, RAW[new] if cosign else None)

    @rule(sender=sender_choice, signer=signer_choice, account=target_choice, old=signer_choice)
    def remove_key(self, sender: Choice, signer: Choice, account: Target, old: Choice) -> None:
        by = self._sender(sender)
        did = self._target(by, account)
        self._run(by, signer, m.remove_key(did, self._key_of(did, old)), None)

    @rule(
        sender=sender_choice,
        signer=signer_choice,
        account=target_choice,
        old=signer_choice,
        new=actor,
        cosign=cosign_choice,
    )
    def rotate(
        self, sender: Choice, signer: Choice, account: Target, old: Choice, new: int, cosign: bool
    ) -> None:
        by = self._sender(sender)
        did = self._target(by, account)
        msg = m.rotate(did, self._key_of(did, old), RAW[new])
        self._run(by, signer, msg, RAW[new] if cosign else None)

    @rule(sender=sender_choice, signer=signer_choice, account=target_choice)
    def revoke(self, sender: Choice, signer: Choice, account: Target) -> None:
        by = self._sender(sender)
        self._run(by, signer, m.revoke(self._target(by, account)), None)

    @rule(sender=sender_choice, signer=signer_choice, account=target_choice, new=actor, cosign=cosign_choice)
    def recover(self, sender: Choice, signer: Choice, account: Target, new: int, cosign: bool) -> None:
        by = self._sender(sender)
        did = self._target(by, account)
        self._run(by, signer, m.recover(did, RAW[new]), RAW[new] if cosign else None)

    @invariant()
    def invariants_hold(self) -> None:
        assert self.chain.invariants() == []


IdentityStateMachine.TestCase.settings = settings(
    derandomize=True,
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIdentityModel = IdentityStateMachine.TestCase
