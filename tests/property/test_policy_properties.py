"""Random sequences of grants, delegations, revocations, uses and block-time jumps, against two models.

Several keys give grants to each other (two owners, a machine one of them owns, three other keys),
delegate them on with random attenuation (often asking for more than they hold), revoke them
(often without the right), use them to move their root grantor's funds (``bank/send_from``, the
ledger's consumer of grants), and ask read-only whether a grant covers an action (``check_grant``,
what a device does offline). Block time jumps forward in steps of 1 s to 2 min, so grants expire.

Two models watch the real chain:

* a **step model** predicts the exact result code of every transaction and query from the rules of
  ``modules/policy/README.md``, written out again plainly, and keeps every grant's use and spend
  counts; after every step the chain's records must equal it;
* a **root reference** is the property the issue asks for: every act the chain accepted is
  recorded (time, key, grant chain, action, resource, asset, amount), and for every grant (a root
  grant first of all) the acts made through it never exceed it: same action, resource covered,
  before its expiry, before its revocation, at most ``max_uses`` acts in total, at most its spend
  limit of each asset in total, only assets it names, and only by keys its delegations reached.

Two tests use them: ``TestPolicyModel`` (a hypothesis state machine over many keys and grants) and
``test_no_use_goes_beyond_any_grant_above_it`` (one chain of up to five grants built with random
attenuation, then random uses at every depth, revocations at every depth and waits), which reaches
deep chains far more often. Both were checked against deliberately broken policy code (a
revocation seen only at the leaf, uses counted only at the leaf, attenuation not enforced): each
breakage fails them, the root reference alone included.

The module's invariants hold after every step. Runs derandomized under the ``ci`` profile
(``tests/conftest.py``); a failure prints the steps that reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.errors import TxError
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain
from autarky.modules.policy import PolicyModule
from autarky.modules.policy import keeper as policy_keeper
from autarky.modules.policy import messages as policy

CHAIN_ID = "policy-model"
T0 = 1_700_000_000_000
BLOCK_MS = 1000


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/policy-model/" + name.encode()))


OWNER_A, OWNER_B, MACHINE, K1, K2, K3 = (
    make_key(n) for n in ("owner-a", "owner-b", "machine", "k1", "k2", "k3")
)
ACTORS = [OWNER_A, OWNER_B, MACHINE, K1, K2, K3]
OWNER_OF = {MACHINE.did: OWNER_A.did}
SHOP = make_key("shop")
FUNDS = 10**15
GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "identity": {"accounts": [{"did": MACHINE.did, "owner": OWNER_A.did, "kind": "robot"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [
                {"account": actor.did, "asset": asset, "amount": FUNDS}
                for actor in ACTORS
                for asset in ("aut", "kwh")
            ],
        },
    },
}

ACTIONS = ["spend", "spend", "actuate"]
RESOURCES = ["bank", "bank/aut", "bank/kwh", "valves", "valves/7", "valves/7/open", "valves/70"]
# What root grants are given for: mostly spending (which bank/send_from can use), some actuation.
CAPABILITIES = [("spend", "bank"), ("spend", "bank"), ("spend", "bank/aut"), ("spend", "bank/kwh"),
                ("actuate", "valves"), ("actuate", "valves/7"), ("spend", "valves")]  # fmt: skip
LIMITS: list[dict[str, int] | None] = [None, {"aut": 40}, {"aut": 100, "kwh": 30}, {"kwh": 8}, {"aut": 0}]

actor = st.integers(0, len(ACTORS) - 1)
pick = st.integers(0, 10**6)
expiry_choice = st.sampled_from([None, None, None, "past", 3, 20, 200])  # seconds after the next block
uses_choice = st.sampled_from([None, None, 1, 2, 3, 5, 8])
delegable_choice = st.sampled_from([False, True, True, 0, 1, 2, 3, 9])
limit_choice = st.integers(0, len(LIMITS) - 1)


@dataclass
class ModelGrant:
    id: bytes
    grantor: str
    grantee: str
    action: str
    resource: str
    expires_ms: int | None
    max_uses: int | None
    spend_limit: dict[str, int] | None
    delegable: int
    parent: bytes | None
    revoked_ms: int | None = None  # block time of the revocation
    uses: int = 0
    spent: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Act:
    """One accepted use of a grant, as the root reference sees it."""

    time_ms: int
    key: str
    chain: tuple[bytes, ...]  # leaf first
    action: str
    resource: str
    asset: str | None
    amount: int


def covers(granted: str, resource: str) -> bool:
    return resource == granted or resource.startswith(granted + "/")


# -- the rules of modules/policy/README.md, written out plainly over the model's grants ---------------


def live_code(chain: list[ModelGrant], now: int) -> str | None:
    """The first of revoked, expired, uses_exhausted over the whole chain, or None."""
    if any(link.revoked_ms is not None for link in chain):
        return "policy.revoked"
    if any(link.expires_ms is not None and now >= link.expires_ms for link in chain):
        return "policy.expired"
    if any(link.max_uses is not None and link.uses >= link.max_uses for link in chain):
        return "policy.uses_exhausted"
    return None


def room_of(chain: list[ModelGrant]) -> tuple[int | None, dict[str, int] | None]:
    """Uses and spend a chain has left: the minimum over its links (None: not limited)."""
    uses: int | None = None
    spend: dict[str, int] | None = None
    for link in chain:
        if link.max_uses is not None:
            left = link.max_uses - link.uses
            uses = left if uses is None else min(uses, left)
        if link.spend_limit is not None:
            link_left = {asset: limit - link.spent.get(asset, 0) for asset, limit in link.spend_limit.items()}
            if spend is None:
                spend = link_left
            else:
                spend = {a: min(v, link_left[a]) for a, v in spend.items() if a in link_left}
    return uses, spend


def use_code(
    grantee: str, chain: list[ModelGrant], action: str, resource: str, spend: tuple[str, int] | None, now: int
) -> str:
    leaf = chain[0]
    if leaf.grantee != grantee:
        return "policy.wrong_grantee"
    if leaf.action != action or not covers(leaf.resource, resource):
        return "policy.not_covered"
    live = live_code(chain, now)
    if live is not None:
        return live
    if spend is not None:
        asset, amount = spend
        for link in chain:
            if link.spend_limit is not None and link.spent.get(asset, 0) + amount > link.spend_limit.get(
                asset, 0
            ):
                return "policy.spend_over_limit"
    return "ok"


def record_act(chain: list[ModelGrant], act: Act) -> None:
    """Count an accepted use on every link of its chain, and remember it for the root reference."""
    for link in chain:
        link.uses += 1
        if act.asset is not None:
            link.spent[act.asset] = link.spent.get(act.asset, 0) + act.amount


def assert_within_every_grant(grants: dict[bytes, ModelGrant], acts: list[Act]) -> None:
    """The root reference: the acts made through each grant stay within it, root grants first of all.

    Only the acts and the grants as given are used (not the counts the step model keeps): same
    action, resource covered, before expiry and revocation, at most max_uses acts, at most the spend
    limit of each asset it names, by a key its delegations reached.
    """
    for grant in grants.values():
        through = [act for act in acts if grant.id in act.chain]
        if grant.max_uses is not None:
            assert len(through) <= grant.max_uses, (grant, len(through))
        totals: dict[str, int] = {}
        for act in through:
            assert act.action == grant.action
            assert covers(grant.resource, act.resource), (grant.resource, act.resource)
            assert grant.expires_ms is None or act.time_ms < grant.expires_ms
            assert grant.revoked_ms is None or act.time_ms < grant.revoked_ms
            # The acting key is reached from this grant's grantee by delegations.
            position = act.chain.index(grant.id)
            assert act.key == grants[act.chain[0]].grantee
            for lower, upper in zip(act.chain[:position], act.chain[1 : position + 1], strict=True):
                assert grants[lower].grantor == grants[upper].grantee
                assert grants[lower].parent == upper
            if act.asset is not None:
                totals[act.asset] = totals.get(act.asset, 0) + act.amount
        if grant.spend_limit is not None:
            for asset, total in totals.items():
                assert total <= grant.spend_limit.get(asset, 0), (grant, asset, total)
    for act in acts:
        assert grants[act.chain[-1]].parent is None  # every act goes back to a root grant


class PolicyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.from_genesis(GENESIS, block_ms=BLOCK_MS)
        module = self.chain.app.module("policy")
        assert isinstance(module, PolicyModule)
        self.policy = module
        self.grants: dict[bytes, ModelGrant] = {}
        self.order: list[bytes] = []
        self.acts: list[Act] = []
        self.last_use: tuple[bytes, SigningKey, str, str, int] | None = None

    # -- helpers ------------------------------------------------------------------------------------

    @property
    def next_time(self) -> int:
        return self.chain.headers[-1].time_ms + BLOCK_MS

    def _grant_at(self, index: int, prefer: str = "any") -> ModelGrant:
        """A grant chosen by ``index``: a quarter of the time the newest, a quarter among the
        delegations (``prefer="delegated"``) or the grants that have some (``"parent"``), newest
        first, else any. Recent grants are picked often so that grant, delegate, use and revoke
        meet on the same chains."""
        ids = self.order
        if prefer == "delegated":
            ids = [grant_id for grant_id in self.order if self.grants[grant_id].parent is not None] or ids
        elif prefer == "parent":
            parents = {grant.parent for grant in self.grants.values()}
            ids = [grant_id for grant_id in self.order if grant_id in parents] or ids
        mode, rest = index % 4, index // 4
        if mode == 0:
            return self.grants[self.order[-1]]
        if mode == 1:
            return self.grants[ids[-1 - rest % min(len(ids), 3)]]
        return self.grants[self.order[rest % len(self.order)]]

    def _expiry(self, choice: Any) -> int | None:
        if choice is None:
            return None
        if choice == "past":
            return self.next_time - 1
        return int(self.next_time + choice * BLOCK_MS)

    def _chain_of(self, grant: ModelGrant) -> list[ModelGrant]:
        return chain_from(self.grants, grant)

    def _run(self, signer: SigningKey, message: dict[str, Any], expected: str) -> Any:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,))
        tx = sign_tx(body, signer)
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == expected, (receipt.code, expected, receipt.detail, message)
        event(f"{message['type']}: {expected}")
        return tx, receipt

    # -- grant --------------------------------------------------------------------------------------

    @rule(grantor=actor, grantee=actor, capability=st.sampled_from(CAPABILITIES), expiry=expiry_choice,
          max_uses=uses_choice, limit=limit_choice, delegable=delegable_choice)  # fmt: skip
    def grant(
        self,
        grantor: int,
        grantee: int,
        capability: tuple[str, str],
        expiry: Any,
        max_uses: int | None,
        limit: int,
        delegable: bool | int,
    ) -> None:
        by, to = ACTORS[grantor], ACTORS[grantee]
        action, resource = capability
        expires_ms = self._expiry(expiry)
        spend_limit = LIMITS[limit]
        message = policy.grant(
            to.did,
            action,
            resource,
            expires_ms=expires_ms,
            max_uses=max_uses,
            spend_limit=spend_limit,
            delegable=delegable,
        )
        if by is to:
            expected = "policy.invalid_grantee"
        elif type(delegable) is int and delegable > policy.MAX_DELEGATION_DEPTH:
            expected = "policy.invalid_limits"
        elif expires_ms is not None and expires_ms <= self.next_time:
            expected = "policy.invalid_expiry"
        else:
            expected = "ok"
        tx, _ = self._run(by, message, expected)
        if expected == "ok":
            depth = policy.MAX_DELEGATION_DEPTH if delegable is True else int(delegable)
            self._add(ModelGrant(policy_keeper.new_grant_id(tx.hash, 0), by.did, to.did, action, resource,
                                 expires_ms, max_uses, spend_limit, depth, None))  # fmt: skip

    def _add(self, grant: ModelGrant) -> None:
        self.grants[grant.id] = grant
        self.order.append(grant.id)

    # -- delegate -----------------------------------------------------------------------------------

    @precondition(lambda self: self.order)
    @rule(parent=pick, holder=st.sampled_from([True, True, True, False]), sender=actor, grantee=actor,
          resource=st.sampled_from(RESOURCES),
          expiry=st.sampled_from(["same", "same", "same", "earlier", "later", None]),
          max_uses=st.sampled_from(["room", "room", "room", "more", 1, None]),
          spend=st.sampled_from(["room", "room", "room", "room", "more", "other", None]),
          delegable=st.sampled_from([True, True, False, 0, 1, 9]))  # fmt: skip
    def delegate(
        self,
        parent: int,
        holder: bool,
        sender: int,
        grantee: int,
        resource: str,
        expiry: Any,
        max_uses: Any,
        spend: Any,
        delegable: bool | int,
    ) -> None:
        above = self._grant_at(parent, prefer="delegated")
        chain = self._chain_of(above)
        # Mostly the parent's grantee delegates (else a random key), mostly within the parent's resource.
        by = next(a for a in ACTORS if a.did == above.grantee) if holder else ACTORS[sender]
        if holder and not covers(above.resource, resource):
            resource = above.resource if sender % 2 else above.resource + "/part"
        to = ACTORS[grantee]
        room_uses, room_spend = room_of(chain)
        now = self.next_time
        expires_ms = {
            "same": above.expires_ms,
            "earlier": None if above.expires_ms is None else max(above.expires_ms - 1500, now + 1),
            "later": None if above.expires_ms is None else above.expires_ms + 1,
            None: None,
        }[expiry]
        uses = {"room": room_uses, "more": None if room_uses is None else room_uses + 1}.get(
            max_uses, max_uses
        )
        if uses == 0:
            uses = 1
        spend_limit: dict[str, int] | None
        if spend == "room":
            spend_limit = room_spend
        elif spend == "more":
            spend_limit = (
                None if room_spend is None else {asset: left + 1 for asset, left in room_spend.items()}
            )
        elif spend == "other":
            spend_limit = {"kwh": 1}
        else:
            spend_limit = None
        message = policy.delegate(
            above.id,
            to.did,
            resource,
            expires_ms=expires_ms,
            max_uses=uses,
            spend_limit=spend_limit,
            delegable=delegable,
        )
        depth = above.delegable - 1 if delegable is True else (0 if delegable is False else delegable)
        if type(delegable) is int and delegable > policy.MAX_DELEGATION_DEPTH and to is not by:
            expected = "policy.invalid_limits"  # checked on the message, before the state
        else:
            expected = self._delegate_code(
                by, to, above, chain, resource, expires_ms, uses, spend_limit, depth, now
            )
        tx, _ = self._run(by, message, expected)
        if expected == "ok":
            grant_id = policy_keeper.new_grant_id(tx.hash, 0)
            limits = (expires_ms, uses, spend_limit, depth)
            self._add(ModelGrant(grant_id, by.did, to.did, above.action, resource, *limits, above.id))

    def _delegate_code(
        self,
        by: SigningKey,
        to: SigningKey,
        above: ModelGrant,
        chain: list[ModelGrant],
        resource: str,
        expires_ms: int | None,
        uses: int | None,
        spend_limit: dict[str, int] | None,
        depth: int,
        now: int,
    ) -> str:
        if to is by:
            return "policy.invalid_grantee"
        if not policy.is_resource(resource):
            return "policy.invalid_resource"
        if expires_ms is not None and expires_ms <= now:
            return "policy.invalid_expiry"
        if above.grantee != by.did:
            return "policy.wrong_grantee"
        live = live_code(chain, now)
        if live is not None:
            return live
        if above.delegable < 1:
            return "policy.not_delegable"
        room_uses, room_spend = room_of(chain)
        widens = (
            not covers(above.resource, resource)
            or (above.expires_ms is not None and (expires_ms is None or expires_ms > above.expires_ms))
            or (room_uses is not None and (uses is None or uses > room_uses))
            or (room_spend is not None and spend_limit is None)
            or (
                room_spend is not None
                and spend_limit is not None
                and any(
                    asset not in room_spend or amount > room_spend[asset]
                    for asset, amount in spend_limit.items()
                )
            )
            or depth > above.delegable - 1
        )
        return "policy.widens" if widens else "ok"

    # -- revoke -------------------------------------------------------------------------------------

    @precondition(lambda self: self.order)
    @rule(which=pick, sender=actor, unknown=st.sampled_from([False] * 9 + [True]))
    def revoke(self, which: int, sender: int, unknown: bool) -> None:
        by = ACTORS[sender]
        if unknown:
            self._run(by, policy.revoke(sha256(b"no such grant")), "policy.unknown_grant")
            return
        grant = self._grant_at(which, prefer="parent")
        chain = self._chain_of(grant)
        grantors = [link.grantor for link in chain]
        may = by.did in grantors or any(OWNER_OF.get(grantor) == by.did for grantor in grantors)
        if not may:
            expected = "policy.not_authorised"
        elif grant.revoked_ms is not None:
            expected = "policy.already_revoked"
        else:
            expected = "ok"
        time = self.next_time
        self._run(by, policy.revoke(grant.id), expected)
        if expected == "ok":
            grant.revoked_ms = time

    @precondition(lambda self: any(grant.parent is not None for grant in self.grants.values()))
    @rule(which=pick, level=st.integers(1, 3))
    def revoke_above(self, which: int, level: int) -> None:
        """A grantor above a delegation revokes its grant: everything below must stop working."""
        chain = self._chain_of(self._grant_at(which, prefer="delegated"))
        target = chain[min(level, len(chain) - 1)]
        by = next(a for a in ACTORS if a.did == target.grantor)
        expected = "ok" if target.revoked_ms is None else "policy.already_revoked"
        time = self.next_time
        self._run(by, policy.revoke(target.id), expected)
        if expected == "ok":
            target.revoked_ms = time

    # -- use: bank/send_from --------------------------------------------------------------------------

    @precondition(lambda self: self.order)
    @rule(which=pick, holder=st.sampled_from([True, True, True, False]), sender=actor,
          asset=st.sampled_from(["covered", "covered", "aut", "kwh"]), amount=st.sampled_from([1, 3, 10, 25]),
          own_payer=st.sampled_from([True, True, True, False]))  # fmt: skip
    def use(self, which: int, holder: bool, sender: int, asset: str, amount: int, own_payer: bool) -> None:
        grant = self._grant_at(which, prefer="delegated")
        root = self._chain_of(grant)[-1]
        by = next(a for a in ACTORS if a.did == grant.grantee) if holder else ACTORS[sender]
        if asset == "covered":  # the asset the grant's resource names, if it names one
            asset = "kwh" if grant.resource.startswith("bank/kwh") else "aut"
        payer = (
            root.grantor if own_payer else next(a.did for a in ACTORS if a.did not in (root.grantor, by.did))
        )
        self._use(grant, by, payer, asset, amount)

    @precondition(lambda self: self.last_use is not None)
    @rule()
    def use_again(self) -> None:
        """The last use once more: grants run out of uses and spend."""
        assert self.last_use is not None
        grant_id, by, payer, asset, amount = self.last_use
        self._use(self.grants[grant_id], by, payer, asset, amount)

    def _use(self, grant: ModelGrant, by: SigningKey, payer: str, asset: str, amount: int) -> None:
        self.last_use = (grant.id, by, payer, asset, amount)
        chain = self._chain_of(grant)
        root = chain[-1]
        now = self.next_time
        resource = f"bank/{asset}"
        expected = use_code(by.did, chain, "spend", resource, (asset, amount), now)
        if expected == "ok" and payer != root.grantor:
            expected = "bank.grantor_mismatch"
        self._run(by, bank.send_from(payer, SHOP.did, asset, amount, grant.id), expected)
        if expected == "ok":
            act = Act(now, by.did, tuple(link.id for link in chain), "spend", resource, asset, amount)
            record_act(chain, act)
            self.acts.append(act)

    # -- read-only check, as a device does ------------------------------------------------------------

    @precondition(lambda self: self.order)
    @rule(which=pick, holder=st.booleans(), sender=actor, action=st.sampled_from(ACTIONS),
          resource=st.sampled_from(RESOURCES), later=st.sampled_from([0, 0, 5_000, 500_000]))  # fmt: skip
    def query(self, which: int, holder: bool, sender: int, action: str, resource: str, later: int) -> None:
        grant = self._grant_at(which, prefer="delegated")
        chain = self._chain_of(grant)
        grantee = grant.grantee if holder else ACTORS[sender].did
        now = self.chain.headers[-1].time_ms + later
        expected = use_code(grantee, chain, action, resource, None, now)
        try:
            allowed = self.policy.check_grant(
                self.chain.state, grant.id, grantee=grantee, action=action, resource=resource, now_ms=now
            )
            code = "ok"
            assert allowed.root_grantor == chain[-1].grantor
            assert allowed.chain == tuple(link.id for link in chain)
        except TxError as exc:
            code = exc.code
        assert code == expected, (code, expected, grant, action, resource)
        event(f"check_grant: {expected}")

    # -- time -----------------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 5, 30, 120]))
    def advance_time(self, seconds: int) -> None:
        self.chain.execute([], self.chain.headers[-1].time_ms + seconds * BLOCK_MS)

    # -- after every step -------------------------------------------------------------------------------

    @invariant()
    def module_invariants_hold(self) -> None:
        assert self.chain.invariants() == []

    @invariant()
    def records_equal_the_model(self) -> None:
        state = self.chain.state
        for grant in self.grants.values():
            record = self.policy.grant(state, grant.id)
            assert record is not None
            assert (record.grantor, record.grantee, record.action, record.resource) == (
                grant.grantor,
                grant.grantee,
                grant.action,
                grant.resource,
            )
            assert record.uses == grant.uses
            assert dict(record.spent) == {asset: amount for asset, amount in grant.spent.items() if amount}
            assert (record.revoked is not None) == (grant.revoked_ms is not None)
        ids = sorted(key for key in self.chain.data if key.startswith(policy_keeper.GRANT_PREFIX))
        assert ids == sorted(policy_keeper.grant_key(grant_id) for grant_id in self.grants)

    @invariant()
    def no_key_acts_beyond_its_root_grant(self) -> None:
        assert_within_every_grant(self.grants, self.acts)


PolicyMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=80, deadline=None)
TestPolicyModel = PolicyMachine.TestCase


# ---------------------------------------------------------------------------------------------------
# Focused: one deep chain, then uses at any level, revocations at any level and waiting.

HOLDERS = [K1, K2, K3, MACHINE, OWNER_B]  # the root grantee, then each delegate; OWNER_A gives the root


@st.composite
def chain_programs(draw: st.DrawFn) -> dict[str, Any]:
    depth = draw(st.integers(1, len(HOLDERS) - 1))
    root = {
        "resource": draw(st.sampled_from(["bank", "bank", "bank/aut"])),
        "expires_s": draw(st.sampled_from([None, None, 40, 120, 400])),
        "max_uses": draw(st.sampled_from([None, 2, 4, 8])),
        "spend_limit": draw(st.sampled_from([None, {"aut": 60}, {"aut": 100, "kwh": 20}])),
    }
    links = [
        {
            "narrow": draw(st.booleans()),
            "expires": draw(st.sampled_from(["same", "earlier"])),
            "uses": draw(st.sampled_from(["room", "room", "room", "half", "more"])),
            "spend": draw(st.sampled_from(["room", "room", "room", "half", "more"])),
        }
        for _ in range(depth)
    ]
    level = st.integers(0, depth)
    deep = st.one_of(st.just(depth), level)  # uses often go through the whole chain
    use = st.tuples(
        st.just("use"), deep, st.sampled_from(["aut", "aut", "kwh"]), st.sampled_from([1, 5, 20, 45])
    )
    small_use = st.tuples(st.just("use"), deep, st.just("aut"), st.sampled_from([1, 10]))
    revoke = st.tuples(st.just("revoke"), level)
    wait = st.tuples(st.just("wait"), st.sampled_from([5, 30, 90]))
    operation = st.one_of(use, small_use, small_use, small_use, revoke, wait)
    return {"root": root, "links": links, "operations": draw(st.lists(operation, min_size=5, max_size=40))}


def _limited(room: int | None, choice: str) -> int | None:
    if room is None:
        return None if choice != "half" else 3
    return {"room": room, "half": room // 2, "more": room + 1}[choice]


class ChainProgram:
    """Runs one program on a fresh chain, predicting every code and checking the root reference."""

    def __init__(self) -> None:
        self.chain = Chain.from_genesis(GENESIS, block_ms=BLOCK_MS)
        self.grants: dict[bytes, ModelGrant] = {}
        self.links: list[ModelGrant] = []  # links[i] is held by HOLDERS[i]; links[0] is the root
        self.acts: list[Act] = []

    @property
    def next_time(self) -> int:
        return self.chain.headers[-1].time_ms + BLOCK_MS

    def run(self, signer: SigningKey, message: dict[str, Any], expected: str) -> tuple[bytes, str]:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,))
        tx = sign_tx(body, signer)
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == expected, (receipt.code, expected, receipt.detail, message)
        assert self.chain.invariants() == []
        return tx.hash, receipt.code

    def build(self, root: dict[str, Any], links: list[dict[str, Any]]) -> None:
        expires_ms = None if root["expires_s"] is None else self.next_time + root["expires_s"] * BLOCK_MS
        limits = {"max_uses": root["max_uses"], "spend_limit": root["spend_limit"], "delegable": True}
        message = policy.grant(HOLDERS[0].did, "spend", root["resource"], expires_ms=expires_ms, **limits)
        tx_hash, _ = self.run(OWNER_A, message, "ok")
        self._add(ModelGrant(policy_keeper.new_grant_id(tx_hash, 0), OWNER_A.did, HOLDERS[0].did, "spend",
                             root["resource"], expires_ms, root["max_uses"], root["spend_limit"],
                             policy.MAX_DELEGATION_DEPTH, None))  # fmt: skip
        for index, link in enumerate(links, start=1):
            parent = self.links[-1]
            chain = chain_from(self.grants, parent)
            uses_left, spend_left = room_of(chain)
            resource = "bank/aut" if link["narrow"] else parent.resource
            expires_ms = parent.expires_ms
            if link["expires"] == "earlier" and expires_ms is not None:
                expires_ms = max(expires_ms - 10 * BLOCK_MS, self.next_time + 1)
            max_uses = _limited(uses_left, link["uses"])
            spend_limit = None
            if spend_left is not None:
                spend_limit = {
                    asset: _limited(left, link["spend"]) or 0 for asset, left in spend_left.items()
                }
            if max_uses == 0:
                max_uses = 1  # 0 is not a valid max_uses; 1 more than none left widens
            widens = (max_uses is not None and uses_left is not None and max_uses > uses_left) or (
                spend_limit is not None
                and spend_left is not None
                and any(amount > spend_left[asset] for asset, amount in spend_limit.items())
            )
            message = policy.delegate(parent.id, HOLDERS[index].did, resource, expires_ms=expires_ms,
                                      max_uses=max_uses, spend_limit=spend_limit, delegable=True)  # fmt: skip
            tx_hash, code = self.run(HOLDERS[index - 1], message, "policy.widens" if widens else "ok")
            if code != "ok":
                return  # the chain ends here
            self._add(ModelGrant(policy_keeper.new_grant_id(tx_hash, 0), HOLDERS[index - 1].did,
                                 HOLDERS[index].did, "spend", resource, expires_ms, max_uses, spend_limit,
                                 parent.delegable - 1, parent.id))  # fmt: skip

    def _add(self, grant: ModelGrant) -> None:
        self.grants[grant.id] = grant
        self.links.append(grant)

    def step(self, operation: tuple[Any, ...]) -> None:
        kind = operation[0]
        if kind == "wait":
            self.chain.execute([], self.chain.headers[-1].time_ms + operation[1] * BLOCK_MS)
            return
        grant = self.links[min(operation[1], len(self.links) - 1)]
        if kind == "revoke":
            by = next(actor for actor in ACTORS if actor.did == grant.grantor)
            expected = "ok" if grant.revoked_ms is None else "policy.already_revoked"
            time = self.next_time
            _, code = self.run(by, policy.revoke(grant.id), expected)
            if code == "ok":
                grant.revoked_ms = time
            return
        _, _, asset, amount = operation
        by = next(actor for actor in ACTORS if actor.did == grant.grantee)
        chain = chain_from(self.grants, grant)
        now = self.next_time
        expected = use_code(by.did, chain, "spend", f"bank/{asset}", (asset, amount), now)
        _, code = self.run(by, bank.send_from(OWNER_A.did, SHOP.did, asset, amount, grant.id), expected)
        event(f"use at depth {len(chain) - 1}: {code}")
        if code == "ok":
            act = Act(now, by.did, tuple(link.id for link in chain), "spend", f"bank/{asset}", asset, amount)
            record_act(chain, act)
            self.acts.append(act)

    def check(self) -> None:
        assert_within_every_grant(self.grants, self.acts)
        for grant in self.grants.values():
            record = self.chain.app.module("policy").grant(self.chain.state, grant.id)  # type: ignore[attr-defined]
            assert (record.uses, dict(record.spent)) == (grant.uses, grant.spent)


def chain_from(grants: dict[bytes, ModelGrant], grant: ModelGrant) -> list[ModelGrant]:
    chain = [grant]
    while chain[-1].parent is not None:
        chain.append(grants[chain[-1].parent])
    return chain


@settings(max_examples=150, deadline=None)
@given(chain_programs())
def test_no_use_goes_beyond_any_grant_above_it(program: dict[str, Any]) -> None:
    runner = ChainProgram()
    runner.build(program["root"], program["links"])
    event(f"chain of {len(runner.links)} grants")
    for operation in program["operations"]:
        runner.step(operation)
        runner.check()
