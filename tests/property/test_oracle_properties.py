"""Oracle rounds and reward budgets against a step model (issue 5, SPEC C9; property tests).

``test_rounds_and_budgets_follow_the_model``: random blocks of reports (for the current round, the
one before or the one after, by registered reporters and a stranger), reporter changes (by the
owner or not), budget funding and withdrawal, and time jumps that let rounds go stale and values
age, run through the real executor. An independent model (``statistics.median_low`` for the median,
its own bookkeeping of rounds, deadlines and balances) predicts every receipt's code, every round's
outcome, the latest value, ``fresh`` at and around the heartbeat, and every balance. After each
block: the chain's invariants hold (oracle, bank supply == balances, escrow account == open locks);
every final round holds at least its quorum of reports and its value is their lower median, within
their [min, max]; no escrow lock held by ``oracle`` lacks a budget. At the end, once every budget
has expired, no oracle lock remains and money is conserved.

``test_lower_median_is_a_report_and_ignores_order``: the median rule alone, on random values.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.oracle import FinalValue, OracleModule, keeper, lower_median, messages

CHAIN_ID = "oracle-prop"
T0 = 1_700_000_000_000
FEED = "weather/temp-c/farm-1"
OWNER = SigningKey.from_seed(sha256(b"autarky/oracle-prop/owner"))
FUNDER = SigningKey.from_seed(sha256(b"autarky/oracle-prop/funder"))
REPORTERS = [SigningKey.from_seed(sha256(b"autarky/oracle-prop/r" + bytes([i]))) for i in range(5)]
STRANGER = SigningKey.from_seed(sha256(b"autarky/oracle-prop/stranger"))
EVERYONE = [OWNER, FUNDER, STRANGER, *REPORTERS]
START_BALANCE = 1_000
GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": k.did, "asset": "aut", "amount": START_BALANCE} for k in EVERYONE],
        },
        "oracle": {"params": {"history_rounds": 4}},
    },
}

# -- strategies --------------------------------------------------------------------------------------

DELTA = st.sampled_from([0, 0, 0, 0, 0, -1, 1])  # mostly the current round
REPORT = st.tuples(st.just("report"), st.integers(0, 5), DELTA, st.integers(-50, 50))
SET = st.tuples(st.just("set"), st.integers(1, 31), st.integers(1, 5), st.booleans())
FUND = st.tuples(st.just("fund"), st.integers(1, 300), st.integers(1, 40), st.integers(0, 12_000))
DEFUND = st.tuples(st.just("defund"), st.booleans())
ACTION = st.one_of(REPORT, REPORT, REPORT, REPORT, REPORT, REPORT, SET, FUND, FUND, DEFUND)
BLOCK = st.tuples(st.sampled_from([1000, 1000, 2000, 3000, 5000, 9000]), st.lists(ACTION, max_size=8))


# -- the model ---------------------------------------------------------------------------------------


@dataclass
class OpenRound:
    number: int
    quorum: int
    opened_ms: int
    deadline_ms: int
    reports: dict[str, int] = field(default_factory=dict)


@dataclass
class Budget:
    payer: str
    reward: int
    remaining: int
    expires_ms: int


@dataclass
class Model:
    reporters: set[str]
    quorum: int
    round_ms: int
    heartbeat_ms: int
    current: int = 1
    open: OpenRound | None = None
    latest: FinalValue | None = None
    statuses: dict[int, str] = field(default_factory=dict)
    budget: Budget | None = None
    balances: dict[str, int] = field(default_factory=lambda: {k.did: START_BALANCE for k in EVERYONE})

    def close(self, status: str) -> None:
        assert self.open is not None
        self.statuses[self.open.number] = status
        self.open = None
        self.current += 1

    def report(self, reporter: str, number: int, value: int, now: int) -> str:
        if reporter not in self.reporters:
            return "oracle.not_reporter"
        if number < self.current:
            return "oracle.round_closed"
        if number > self.current:
            return "oracle.round_ahead"
        if self.open is not None and now >= self.open.deadline_ms:
            return "oracle.round_stale"
        if self.open is not None and reporter in self.open.reports:
            return "oracle.already_reported"
        if self.open is None:
            self.open = OpenRound(number, self.quorum, now, now + self.round_ms)
        self.open.reports[reporter] = value
        return "ok"

    def set_reporters(self, sender: str, reporters: set[str], quorum: int) -> str:
        if quorum > len(reporters):
            return "oracle.invalid_quorum"
        if sender != OWNER.did:
            return "oracle.not_owner"
        if self.open is not None:
            self.close("abandoned")
        self.reporters, self.quorum = reporters, quorum
        return "ok"

    def fund(self, amount: int, reward: int, expires_ms: int, now: int) -> str:
        if reward > amount:
            return "oracle.invalid_reward"
        if self.budget is not None:
            return "oracle.budget_exists"
        if expires_ms <= now:
            return "escrow.invalid_expiry"
        if amount > self.balances[FUNDER.did]:
            return "bank.insufficient_funds"
        self.balances[FUNDER.did] -= amount
        self.budget = Budget(FUNDER.did, reward, amount, expires_ms)
        return "ok"

    def defund(self, sender: str) -> str:
        if self.budget is None:
            return "oracle.no_budget"
        if sender != self.budget.payer:
            return "oracle.not_funder"
        self.refund_budget()
        return "ok"

    def refund_budget(self) -> None:
        assert self.budget is not None
        self.balances[self.budget.payer] += self.budget.remaining
        self.budget = None

    def end_block(self, now: int) -> None:
        if self.budget is not None and self.budget.expires_ms <= now:
            self.refund_budget()
        if self.open is not None and len(self.open.reports) >= self.open.quorum:
            value = statistics.median_low(self.open.reports.values())
            self.latest = FinalValue(FEED, value, self.open.number, now)
            self.pay(sorted(self.open.reports))
            self.close("final")
        if self.open is not None and self.open.deadline_ms <= now:
            self.close("stale")

    def pay(self, reporters: list[str]) -> None:
        if self.budget is None:
            return
        total = self.budget.reward * len(reporters)
        if total > self.budget.remaining:
            self.refund_budget()
            return
        for reporter in reporters:
            self.balances[reporter] += self.budget.reward
        self.budget.remaining -= total
        if self.budget.remaining == 0:
            self.budget = None

    def fresh(self, now: int) -> FinalValue | None:
        if self.latest is None or now >= self.latest.time_ms + self.heartbeat_ms:
            return None
        return self.latest


# -- the test ----------------------------------------------------------------------------------------


def _signed(chain: Chain, signer: SigningKey, message: dict[str, Any], sequences: dict[str, int]) -> bytes:
    sequence = sequences.get(signer.did, chain.sequence(signer.did))
    sequences[signer.did] = sequence + 1
    return sign_tx(TxBody(CHAIN_ID, signer.did, sequence, 0, 0, (message,)), signer).raw


@settings(max_examples=150, deadline=None)
@given(
    quorum=st.integers(1, 4),
    round_ms=st.sampled_from([1500, 3000, 6000]),
    heartbeat_extra_ms=st.sampled_from([0, 2000, 10_000]),
    blocks=st.lists(BLOCK, min_size=1, max_size=25),
)
def test_rounds_and_budgets_follow_the_model(
    quorum: int, round_ms: int, heartbeat_extra_ms: int, blocks: list[tuple[int, list[tuple[Any, ...]]]]
) -> None:
    chain = Chain.from_genesis(GENESIS)
    oracle = chain.app.module("oracle")
    assert isinstance(oracle, OracleModule)
    reporters = [key.did for key in REPORTERS]
    heartbeat_ms = round_ms + heartbeat_extra_ms
    create = messages.create_feed(FEED, reporters, quorum, heartbeat_ms, round_ms=round_ms, decimals=1)
    (receipt,) = chain.execute([_signed(chain, OWNER, create, {})])
    assert receipt.code == "ok"
    model = Model(set(reporters), quorum, round_ms, heartbeat_ms)

    for advance_ms, actions in blocks:
        now = chain.headers[-1].time_ms + advance_ms
        sequences: dict[str, int] = {}
        raws: list[bytes] = []
        expected: list[str] = []
        for action in actions:
            signer, message, code = _action(model, action, now)
            raws.append(_signed(chain, signer, message, sequences))
            expected.append(code)
        receipts = chain.execute(raws, now)
        model.end_block(now)
        assert [r.code for r in receipts] == expected
        _check(chain, oracle, model, now)

    # Let every budget expire: nothing stays locked for the oracle, and no value was made or lost.
    chain.execute([], chain.headers[-1].time_ms + 20_000)
    model.end_block(chain.headers[-1].time_ms)
    _check(chain, oracle, model, chain.headers[-1].time_ms)
    assert not [lock for lock in escrow_keeper.all_locks(chain.state) if lock.holder == "oracle"]
    total = sum(bank_keeper.balance(chain.state, key.did, "aut") for key in EVERYONE)
    assert total == START_BALANCE * len(EVERYONE)


def _action(model: Model, action: tuple[Any, ...], now: int) -> tuple[SigningKey, dict[str, Any], str]:
    kind = action[0]
    if kind == "report":
        _, who, delta, value = action
        signer = STRANGER if who == 5 else REPORTERS[who]
        number = max(1, model.current + delta)
        return signer, messages.report(FEED, number, value), model.report(signer.did, number, value, now)
    if kind == "set":
        _, mask, quorum, by_owner = action
        chosen = {REPORTERS[i].did for i in range(5) if mask >> i & 1}
        signer = OWNER if by_owner else STRANGER
        message = messages.set_reporters(FEED, sorted(chosen), quorum)
        return signer, message, model.set_reporters(signer.did, chosen, quorum)
    if kind == "fund":
        _, amount, reward, expires_in = action
        message = messages.fund(FEED, "aut", amount, reward, now + expires_in)
        return FUNDER, message, model.fund(amount, reward, now + expires_in, now)
    _, by_funder = action
    signer = FUNDER if by_funder else STRANGER
    return signer, messages.defund(FEED), model.defund(signer.did)


def _check(chain: Chain, oracle: OracleModule, model: Model, now: int) -> None:
    state = chain.state
    assert chain.invariants() == []
    assert oracle.latest(state, FEED) == model.latest
    for probe in (now, now + 1, now + model.heartbeat_ms - 1, now + model.heartbeat_ms):
        assert oracle.fresh(state, FEED, probe) == model.fresh(probe)
    feed = keeper.read_feed(state, FEED)
    assert feed is not None and feed.round == model.current and feed.quorum == model.quorum
    for record in keeper.iter_rounds(state, FEED):
        if record.round == model.current:
            assert model.open is not None and record.status == "open"
            assert dict(record.reports) == model.open.reports
            continue
        assert record.status == model.statuses[record.round]
        values = record.reporter_values()
        if record.status == "final":
            assert len(values) >= record.quorum
            assert record.value == statistics.median_low(values) and min(values) <= record.value <= max(
                values
            )
        else:
            assert record.value is None
        if record.status == "stale":
            assert len(values) < record.quorum
    budget = oracle.budget(state, FEED)
    if model.budget is None:
        assert budget is None
    else:
        assert budget is not None and budget.remaining == model.budget.remaining
    oracle_locks = [lock for lock in escrow_keeper.all_locks(state) if lock.holder == "oracle"]
    assert [lock.id for lock in oracle_locks] == ([] if budget is None else [budget.lock])
    for key in EVERYONE:
        assert bank_keeper.balance(state, key.did, "aut") == model.balances[key.did], key.did


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_lower_median_is_a_report_and_ignores_order(values: list[int], random: Any) -> None:
    median = lower_median(values)
    assert median == statistics.median_low(values)
    assert min(values) <= median <= max(values) and median in values
    shuffled = list(values)
    random.shuffle(shuffled)
    assert lower_median(shuffled) == median
    # At least half of the values (rounded up) are >= the median, and more than half are <= it.
    assert 2 * sum(1 for v in values if v <= median) >= len(values)
    assert 2 * sum(1 for v in values if v >= median) > len(values)
