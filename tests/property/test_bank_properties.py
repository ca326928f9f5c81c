"""R7: random transactions never let a machine's keys spend past its guardrails, and value is conserved.

A hypothesis state machine drives the real application (``build_app``) through the in-memory chain:
two owners, three machines (one with an extra scoped key), a stranger and an unfunded peer send
random transactions, valid and invalid: sends of random amounts (too large, zero, several per
transaction), random guardrails (some malformed), freezes, unfreezes and sweeps, by the owner or by
someone else, with the owner's co-signature present or missing, over many blocks (some empty, so
windows roll).

After every block it checks, from the receipts' events alone and a model of what was authorised:

* the bank invariants hold, supply per asset never changes, and the balances on the chain equal
  the balances obtained by replaying every ``bank.fee`` and ``bank.transfer`` event;
* no machine ever debits more than ``per_tx`` of an asset in one transaction, nor more than
  ``per_window`` in ANY ``window_blocks`` consecutive blocks under the same guardrails;
* a debit above ``cosign_above`` always carried the owner's co-signature, and every counterparty was
  on the allowlist;
* a frozen machine never debits, except through its owner's sweep;
* a scoped key never spends past its allowance.

Runs derandomized under the ``ci`` profile (``tests/conftest.py``); sizes are set below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import FEE_COLLECTOR, keeper
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain

CHAIN_ID = "bank-properties"
ASSETS = ("aut", "kwh")
SCOPED_ALLOWANCE = {"aut": 400, "kwh": 150}


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/bank-properties/" + name.encode()))


OWNER_A, OWNER_B = make_key("owner-a"), make_key("owner-b")
MACHINES = (make_key("machine-1"), make_key("machine-2"), make_key("machine-3"))
OWNER_OF = {MACHINES[0].did: OWNER_A, MACHINES[1].did: OWNER_A, MACHINES[2].did: OWNER_B}
SCOPED = make_key("machine-1-scoped")  # a key of MACHINES[0], limited to bank/send, with an allowance
STRANGER, PEER = make_key("stranger"), make_key("peer")
SENDERS = (*MACHINES, *MACHINES, OWNER_A, OWNER_B, STRANGER, PEER)  # machines twice as likely
EVERYONE = (OWNER_A, OWNER_B, *MACHINES, STRANGER, PEER)
DIDS = tuple(key.did for key in EVERYONE)

GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": 0,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 1},
            "balances": [
                *({"account": key.did, "asset": "aut", "amount": 50_000} for key in (OWNER_A, OWNER_B)),
                {"account": STRANGER.did, "asset": "aut", "amount": 5_000},
                *({"account": key.did, "asset": "aut", "amount": 3_000} for key in MACHINES),
                *({"account": key.did, "asset": "kwh", "amount": 1_000} for key in MACHINES),
                *({"account": key.did, "asset": "kwh", "amount": 20_000} for key in (OWNER_A, OWNER_B)),
            ],
        }
    },
}

amounts = st.one_of(
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(0, 300),
    st.sampled_from([2**64, 10**9]),
)
optional_limit = st.one_of(st.integers(0, 80), st.integers(0, 80), st.none())


@st.composite
def asset_limits(draw: st.DrawFn) -> dict[str, int | None]:
    return {
        "per_tx": draw(optional_limit),
        "per_window": draw(st.one_of(st.integers(0, 160), st.integers(0, 160), st.none())),
        "cosign_above": draw(optional_limit),
    }


@st.composite
def ordered_asset_limits(draw: st.DrawFn) -> dict[str, int | None]:
    """Limits as an operator would set them: cosign_above <= per_tx <= per_window."""
    cosign_above, per_tx, per_window = sorted(draw(st.lists(st.integers(0, 160), min_size=3, max_size=3)))
    return {"per_tx": per_tx, "per_window": per_window, "cosign_above": cosign_above}


@st.composite
def guardrail_values(draw: st.DrawFn) -> dict[str, Any]:
    """Guardrails in their stored form (so the model can compare them with the state)."""
    limited = draw(st.sampled_from([ASSETS, ASSETS, ("aut",), ("kwh",), ()]))
    limits = {asset: draw(st.one_of(asset_limits(), ordered_asset_limits())) for asset in limited}
    allowlist = draw(st.one_of(st.none(), st.lists(st.sampled_from(DIDS), unique=True).map(sorted)))
    return {"window_blocks": draw(st.integers(1, 4)), "limits": limits, "allowlist": allowlist}


malformed_guardrails = st.sampled_from(
    [
        {"window_blocks": 0, "limits": {}, "allowlist": None},
        {
            "window_blocks": 2,
            "limits": {"aut": {"per_tx": -1, "per_window": None, "cosign_above": None}},
            "allowlist": None,
        },
        {"window_blocks": 2, "limits": {}, "allowlist": ["nobody"]},
        {"window_blocks": 2, "limits": {}},
    ]
)


Transfer = tuple[SigningKey, str, int]


@dataclass
class Intent:
    """What the test meant by a transaction, to interpret its receipt."""

    sender: str
    scoped: bool = False
    owner_cosigned: bool = False
    guard_update: tuple[str, dict[str, Any] | None] | None = None
    sweep_of: str | None = None


@dataclass
class MachineModel:
    guard: dict[str, Any] | None = None
    frozen: bool = False
    segment: list[tuple[int, str, int]] = field(default_factory=list)
    """Debits (height, asset, amount) since the guardrails last changed."""
    history: list[tuple[int, str, int]] = field(default_factory=list)
    """Every debit (height, asset, amount), as the events tell it."""


class GuardrailMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.from_genesis(GENESIS)
        self.supply = {asset: keeper.supply(self.chain.state, asset) for asset in ASSETS}
        self.balances: dict[tuple[str, str], int] = {
            (did, asset): keeper.balance(self.chain.state, did, asset) for did in DIDS for asset in ASSETS
        }
        self.machines = {key.did: MachineModel() for key in MACHINES}
        self.allowance_used = {asset: 0 for asset in ASSETS}
        self.pending: list[tuple[bytes, Intent]] = []
        self.next_seq: dict[str, int] = {}

    # -- setup: the owners register their machines (block 1) -------------------------------------------

    @initialize()
    def register_machines(self) -> None:
        for machine in MACHINES:
            owner = OWNER_OF[machine.did]
            register = {
                "type": "identity/register",
                "did": machine.did,
                "kind": "robot",
                "maker": "acme",
                "model": "r1",
                "capabilities": [],
                "metadata": {},
            }
            self._queue(owner, [register], 1, [machine], Intent(owner.did))
        add_key = {
            "type": "identity/add_key",
            "did": MACHINES[0].did,
            "key": SCOPED.public_key.raw,
            "actions": ["bank/send"],
            "allowance": SCOPED_ALLOWANCE,
        }
        self._queue(OWNER_A, [add_key], 1, [SCOPED], Intent(OWNER_A.did))
        receipts = self._execute()
        assert all(receipt.ok for receipt in receipts), [receipt.detail for receipt in receipts]

    @initialize(values=st.tuples(*(guardrail_values() for _ in MACHINES)))
    def install_guardrails(self, values: tuple[dict[str, Any] | None, ...]) -> None:
        for machine, value in zip(MACHINES, values, strict=True):
            self.set_guardrails(machine, True, value)
        self._execute()

    # -- rules: transactions into the pending block ----------------------------------------------------

    @rule(
        machine=st.sampled_from(MACHINES),
        sends=st.lists(
            st.tuples(
                st.lists(
                    st.tuples(st.sampled_from(EVERYONE), st.sampled_from(ASSETS), amounts),
                    min_size=1,
                    max_size=2,
                ),
                st.sampled_from([1, 1, 2]),
                st.booleans(),
                st.sampled_from(["owner", "none", "stranger"]),
                st.sampled_from([None, "per_tx", "per_window", "per_window", "cosign_above"]),
                st.integers(-2, 3),
            ),
            min_size=1,
            max_size=5,
        ),
    )
    def machine_spree(
        self, machine: SigningKey, sends: list[tuple[list[Transfer], int, bool, str, str | None, int]]
    ) -> None:
        """A machine sends in consecutive blocks, mostly well-formed: where windows fill up.

        ``aim`` moves the first transfer's amount next to one of the machine's current limits
        (``delta`` from it, the fee counted), so that off-by-one mistakes at a boundary get tried.
        """
        sender = machine
        for transfers, fee, use_scoped_key, cosigner, aim, delta in sends:
            to, asset, amount = transfers[0]
            if sender.did in self.next_seq:
                self._execute()  # the next block, and the limits see the previous send
            if keeper.balance(self.chain.state, sender.did, "aut") < 300:
                self.refill(sender)
            if aim is not None:
                # Keep the other guardrails out of the way of the one aimed at.
                asset, amount = self._amount_near_limit(sender.did, asset, aim, fee)
                amount += delta
                to = self._allowed_counterparty(sender.did, to)
                cosigner = cosigner if aim == "cosign_above" else "owner"
            self.send(sender, [(to, asset, max(amount, 1)), *transfers[1:]], fee, use_scoped_key, cosigner)

    @rule(
        sender=st.sampled_from(SENDERS),
        transfers=st.lists(
            st.tuples(st.sampled_from(EVERYONE), st.sampled_from((*ASSETS, "gold")), amounts),
            min_size=1,
            max_size=3,
        ),
        fee=st.sampled_from([1, 1, 2, 5, 0]),
        use_scoped_key=st.booleans(),
        cosigner=st.sampled_from(["owner", "none", "stranger"]),
    )
    def send(
        self,
        sender: SigningKey,
        transfers: list[Transfer],
        fee: int,
        use_scoped_key: bool,
        cosigner: str,
    ) -> None:
        scoped = use_scoped_key and sender.did == MACHINES[0].did
        signer = SCOPED if scoped else sender
        owner = OWNER_OF.get(sender.did)
        cosigners = [owner] if cosigner == "owner" and owner else [STRANGER] if cosigner == "stranger" else []
        if STRANGER in cosigners and sender is STRANGER:
            cosigners = []
        msgs = [bank.send(to.did, asset, amount) for to, asset, amount in transfers]
        intent = Intent(sender.did, scoped=scoped, owner_cosigned=owner in cosigners if owner else False)
        self._queue(signer, msgs, fee, cosigners, intent, account=sender.did)

    @rule(
        machine=st.sampled_from(MACHINES),
        by_owner=st.booleans(),
        value=st.one_of(guardrail_values(), st.none(), malformed_guardrails),
    )
    def set_guardrails(self, machine: SigningKey, by_owner: bool, value: dict[str, Any] | None) -> None:
        sender = OWNER_OF[machine.did] if by_owner else STRANGER
        message = {"type": "bank/set_guardrails", "machine": machine.did, "guardrails": value}
        self._queue(sender, [message], 1, [], Intent(sender.did, guard_update=(machine.did, value)))

    @rule(
        machine=st.sampled_from(MACHINES),
        by_owner=st.booleans(),
        freeze=st.sampled_from([False, True, False]),
    )
    def freeze_or_unfreeze(self, machine: SigningKey, by_owner: bool, freeze: bool) -> None:
        sender = OWNER_OF[machine.did] if by_owner else MACHINES[1]
        message = bank.freeze(machine.did) if freeze else bank.unfreeze(machine.did)
        self._queue(sender, [message], 1, [], Intent(sender.did))

    @rule(machine=st.sampled_from(MACHINES))
    def refill(self, machine: SigningKey) -> None:
        owner = OWNER_OF[machine.did]
        msgs = [bank.send(machine.did, "aut", 1_000), bank.send(machine.did, "kwh", 300)]
        self._queue(owner, msgs, 1, [], Intent(owner.did))

    @rule(
        machine=st.sampled_from(MACHINES),
        by_owner=st.sampled_from([False, True, False]),
        to=st.sampled_from((None, *EVERYONE)),
    )
    def sweep(self, machine: SigningKey, by_owner: bool, to: SigningKey | None) -> None:
        sender = OWNER_OF[machine.did] if by_owner else STRANGER
        message = bank.sweep(machine.did, None if to is None else to.did)
        self._queue(sender, [message], 1, [], Intent(sender.did, sweep_of=machine.did))

    # -- rules: blocks ----------------------------------------------------------------------------------

    @rule()
    def end_block(self) -> None:
        self._execute()

    @rule(count=st.integers(1, 4))
    def empty_blocks(self, count: int) -> None:
        self._execute()
        for _ in range(count):
            self._execute()

    def teardown(self) -> None:
        if self.pending:
            self._execute()

    # -- machinery ---------------------------------------------------------------------------------------

    def _allowed_counterparty(self, machine: str, preferred: SigningKey) -> SigningKey:
        """``preferred`` if the machine may pay it, else the first account it may pay (not itself)."""
        guard = self.machines[machine].guard
        allowlist = None if guard is None else guard["allowlist"]
        for key in (preferred, *EVERYONE):
            if key.did != machine and (allowlist is None or key.did in allowlist):
                return key
        return preferred

    def _amount_near_limit(self, machine: str, asset: str, aim: str, fee: int) -> tuple[str, int]:
        """An asset with an ``aim`` limit (``asset`` first), and the amount that would take the
        machine's next transaction exactly to that limit."""
        guard = self.machines[machine].guard
        for candidate in (asset, *ASSETS):
            limit = None if guard is None else guard["limits"].get(candidate)
            if limit is not None and limit[aim] is not None:
                fee_share = fee if candidate == "aut" else 0
                amount = int(limit[aim]) - fee_share
                if aim == "per_window":
                    # What the events say was spent in the window, not what the bank says: a bank
                    # that forgets a debit then lets this transaction through, and is caught. A
                    # window larger than the per-transaction cap fills up over several blocks.
                    assert guard is not None
                    oldest = self.chain.height + 1 - guard["window_blocks"]
                    history = self.machines[machine].history
                    amount -= sum(spent for at, kind, spent in history if kind == candidate and at > oldest)
                    if limit["per_tx"] is not None:
                        amount = min(amount, int(limit["per_tx"]) - fee_share)
                return candidate, amount
        return asset, 20

    def _queue(
        self,
        signer: SigningKey,
        msgs: list[dict[str, Any]],
        fee: int,
        cosigners: list[SigningKey],
        intent: Intent,
        account: str | None = None,
    ) -> None:
        account = account or signer.did
        if account in self.next_seq:
            # One transaction per sender per block: a refusal in ante (no sequence increment) would
            # turn every later transaction of that sender in the block into core.bad_sequence.
            self._execute()
        sequence = self.next_seq.get(account, self.chain.sequence(account))
        self.next_seq[account] = sequence + 1
        body = TxBody(CHAIN_ID, account, sequence, fee, 0, tuple(msgs))
        self.pending.append((sign_tx(body, signer, cosigners=cosigners).raw, intent))

    def _execute(self) -> tuple[Receipt, ...]:
        pending, self.pending, self.next_seq = self.pending, [], {}
        receipts = self.chain.execute([raw for raw, _ in pending])
        for receipt, (_, intent) in zip(receipts, pending, strict=True):
            self._check_receipt(receipt, intent)
        self._check_block()
        return receipts

    def _check_receipt(self, receipt: Receipt, intent: Intent) -> None:
        event(f"code {receipt.code}")  # see them with --hypothesis-show-statistics
        height = self.chain.height
        sender = intent.sender
        debits: dict[str, int] = {}
        for emitted in receipt.events:
            attributes = dict(emitted.attributes)
            if emitted.type == "bank.fee":
                assert attributes["payer"] == sender
                debits[str(attributes["asset"])] = debits.get(str(attributes["asset"]), 0) + int(
                    attributes["amount"]
                )
                self._move(sender, FEE_COLLECTOR, str(attributes["asset"]), int(attributes["amount"]))
            elif emitted.type == "bank.transfer":
                source, to = str(attributes["from"]), str(attributes["to"])
                asset, amount = str(attributes["asset"]), int(attributes["amount"])
                if source == sender:
                    debits[asset] = debits.get(asset, 0) + amount
                    self._check_counterparty(sender, to)
                else:  # only the owner's sweep moves another account's funds
                    assert receipt.ok and intent.sweep_of == source and OWNER_OF[source].did == sender
                self._move(source, to, asset, amount)
        if sender in self.machines:
            self._check_machine_debits(receipt, intent, height, debits)
        if intent.scoped:
            for asset, amount in debits.items():
                self.allowance_used[asset] += amount
                assert self.allowance_used[asset] <= SCOPED_ALLOWANCE[asset]
        if receipt.ok:
            self._apply_owner_actions(receipt, intent)

    def _check_counterparty(self, machine: str, to: str) -> None:
        model = self.machines.get(machine)
        if model is not None and model.guard is not None and model.guard["allowlist"] is not None:
            assert to in model.guard["allowlist"], f"{machine} paid {to}, outside its allowlist"

    def _check_machine_debits(
        self, receipt: Receipt, intent: Intent, height: int, debits: dict[str, int]
    ) -> None:
        model = self.machines[intent.sender]
        if model.frozen:
            assert debits == {} and not receipt.ok, receipt.code
            return
        model.history.extend((height, asset, total) for asset, total in debits.items())
        guard = model.guard
        if guard is None:
            return
        for asset, total in debits.items():
            limit = guard["limits"].get(asset)
            if limit is None:
                continue
            if limit["per_tx"] is not None:
                assert total <= limit["per_tx"], f"{total} {asset} in one transaction, cap {limit['per_tx']}"
            if limit["cosign_above"] is not None and total > limit["cosign_above"]:
                assert intent.owner_cosigned, (
                    f"{total} {asset} above {limit['cosign_above']} without the owner"
                )
            model.segment.append((height, asset, total))

    def _apply_owner_actions(self, receipt: Receipt, intent: Intent) -> None:
        for emitted in receipt.events:
            attributes = dict(emitted.attributes)
            if emitted.type == "bank.guardrails_set":
                assert intent.guard_update is not None
                machine, value = intent.guard_update
                previous = self.machines[machine]
                self.machines[machine] = MachineModel(value, previous.frozen, [], previous.history)
            elif emitted.type == "bank.frozen":
                self.machines[str(attributes["machine"])].frozen = True
            elif emitted.type == "bank.unfrozen":
                self.machines[str(attributes["machine"])].frozen = False

    def _move(self, source: str, to: str, asset: str, amount: int) -> None:
        self.balances[source, asset] = self.balances.get((source, asset), 0) - amount
        self.balances[to, asset] = self.balances.get((to, asset), 0) + amount
        assert self.balances[source, asset] >= 0

    def _check_block(self) -> None:
        state = self.chain.state
        assert self.chain.invariants() == []
        for asset in ASSETS:
            assert keeper.supply(state, asset) == self.supply[asset]
        for (account, asset), amount in self.balances.items():
            assert keeper.balance(state, account, asset) == amount, (account, asset)
        for did, model in self.machines.items():
            assert keeper.guardrails(state, did) == model.guard
            assert keeper.is_frozen(state, did) == model.frozen
            if model.guard is not None:
                self._check_windows(did, model.guard, model.segment)

    def _check_windows(self, did: str, guard: dict[str, Any], segment: list[tuple[int, str, int]]) -> None:
        """Every window of ``window_blocks`` consecutive blocks, ending at any height of the segment."""
        window_blocks = guard["window_blocks"]
        for asset, limit in guard["limits"].items():
            if limit["per_window"] is None:
                continue
            per_height: dict[int, int] = {}
            for height, debit_asset, amount in segment:
                if debit_asset == asset:
                    per_height[height] = per_height.get(height, 0) + amount
            for end in per_height:
                spent = sum(
                    amount for height, amount in per_height.items() if end - window_blocks < height <= end
                )
                assert spent <= limit["per_window"], (
                    f"{did} spent {spent} {asset} in blocks {end - window_blocks + 1}..{end}, "
                    f"limit {limit['per_window']}"
                )


GuardrailMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=100, deadline=None)
test_guardrails_hold_under_random_transactions = GuardrailMachine.TestCase
