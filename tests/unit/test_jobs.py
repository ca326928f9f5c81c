"""The jobs module through the real executor: posting with a bounty in escrow, accepting, completing,
attesting (by the machine, its owner or a named party), the dispute window with and without an
arbiter, cancel, every timeout, parameters and invariants.

Layout: a lathe (a registered machine) and its owner, a mechanic, a second mechanic, an inspector
(a named attester, e.g. an oracle reporter), an arbiter and a stranger on the in-memory chain built
by ``build_app``. Every block has an explicit block time; after every block the world checks every
module's invariants (bank supply, escrow balance, the job records against escrow) and that no value
was created or destroyed. A test that names a precedence puts two faults in one message and checks
the one documented first wins.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.state import MappingState, Overlay
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.jobs import JobRecord, JobsModule, keeper
from autarky.modules.jobs import messages as jobs
from autarky.modules.jobs.errors import JOBS_CODES_IN_PRECEDENCE
from autarky.modules.jobs.params import DEFAULTS, from_genesis

CHAIN_ID = "jobs-test"
T0 = 1_000_000
HOUR = 3_600_000
DAY = 24 * HOUR
README = Path(__file__).resolve().parents[2] / "src/autarky/modules/jobs/README.md"


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/jobs-test/" + name.encode()))


LATHE = make_key("lathe")  # the machine that posts
OWNER = make_key("owner")
MECHANIC = make_key("mechanic")
MECHANIC_2 = make_key("mechanic-2")
INSPECTOR = make_key("inspector")
ARBITER = make_key("arbiter")
STRANGER = make_key("stranger")
LONER = make_key("loner")  # an unregistered machine, no owner

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "identity": {"accounts": [{"did": LATHE.did, "owner": OWNER.did, "kind": "lathe"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [
                {"account": LATHE.did, "asset": "aut", "amount": 10_000},
                {"account": LONER.did, "asset": "aut", "amount": 1_000},
            ],
        },
    },
}
SUPPLY = 11_000
REPORT = sha256(b"bearing replaced, vibration 0.8 mm/s")


class World:
    def __init__(self, genesis: dict[str, Any] | None = None) -> None:
        self.chain = Chain.from_genesis(genesis or GENESIS)
        module = self.chain.app.module("jobs")
        assert isinstance(module, JobsModule)
        self.jobs: JobsModule = module

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def tx(self, signer: SigningKey, *msgs: dict[str, Any]) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer)

    def block(self, at: int, *txs: SignedTx) -> Any:
        receipts = self.chain.execute([tx.raw for tx in txs], at)
        assert self.chain.invariants() == []
        total = sum(
            amount for _, asset, amount in bank_keeper.all_balances(self.chain.state) if asset == "aut"
        )
        assert total == SUPPLY == bank_keeper.supply(self.chain.state, "aut")
        return receipts

    def run(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> Any:
        (receipt,) = self.block(self.now + 1000 if at is None else at, self.tx(signer, *msgs))
        return receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> str:
        return str(self.run(signer, *msgs, at=at).code)

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> Any:
        receipt = self.run(signer, *msgs, at=at)
        assert receipt.code == "ok", (receipt.code, receipt.detail)
        return receipt

    def tick(self, at: int) -> None:
        self.block(at)

    def post(
        self,
        poster: SigningKey = LATHE,
        bounty: int = 300,
        deadline_ms: int | None = None,
        attesters: tuple[str, ...] = ("poster", "owner"),
        arbiter: SigningKey | None = None,
    ) -> bytes:
        deadline = self.now + DAY if deadline_ms is None else deadline_ms
        message = jobs.post(
            "maintenance", "replace the spindle bearing", bounty, "aut", deadline, attesters,
            None if arbiter is None else arbiter.did,
        )  # fmt: skip
        tx = self.tx(poster, message)
        (receipt,) = self.block(self.now + 1000, tx)
        assert receipt.code == "ok", (receipt.code, receipt.detail)
        return keeper.new_job_id(tx.hash, 0)

    def attested(self, **post: Any) -> bytes:
        """A job accepted and completed by MECHANIC and attested by the lathe itself."""
        job = self.post(**post)
        self.ok(MECHANIC, jobs.accept(job))
        self.ok(MECHANIC, jobs.complete(job, REPORT))
        self.ok(LATHE, jobs.attest(job, REPORT))
        return job

    def job(self, job_id: bytes) -> JobRecord:
        record = self.jobs.job(self.chain.state, job_id)
        assert record is not None
        return record

    def balance(self, account: SigningKey) -> int:
        return bank_keeper.balance(self.chain.state, account.did, "aut")


@pytest.fixture
def world() -> World:
    return World()


# ---------------------------------------------------------------------------------------------------
# jobs/post


def test_post_locks_the_bounty(world: World) -> None:
    deadline = world.now + DAY
    tx = world.tx(LATHE, jobs.post("maintenance", "replace the bearing", 300, "aut", deadline, ["poster"]))
    (receipt,) = world.block(world.now + 1000, tx)
    assert [event.type for event in receipt.events] == ["escrow.locked", "jobs.posted"]
    job_id = keeper.new_job_id(tx.hash, 0)
    assert receipt.events[1].get("job") == job_id
    job = world.job(job_id)
    assert (job.status, job.bounty, job.attesters, job.arbiter, job.due_ms) == (
        "open",
        300,
        ("poster",),
        None,
        deadline,
    )
    assert job.attest_window_ms == DEFAULTS.attest_window_ms and job.posted_ms == world.now
    lock = escrow_keeper.get(world.chain.state, job.lock)
    assert lock is not None and (lock.amount, lock.holder, lock.payer) == (300, "jobs", LATHE.did)
    assert lock.expires_ms == job.settle_by_ms + 1
    assert world.balance(LATHE) == 9_700
    assert world.jobs.jobs_in(world.chain.state, "open") == [job]
    assert world.jobs.jobs_of(world.chain.state, LATHE.did) == [(job, "poster")]


def _post(**changes: Any) -> dict[str, Any]:
    message = jobs.post("maintenance", "replace the bearing", 300, "aut", T0 + DAY, ["poster", "owner"])
    message.update(changes)
    return message


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"kind": "Maintenance"}, "jobs.invalid_kind"),
        ({"kind": "a" * 33}, "jobs.invalid_kind"),
        ({"description": ""}, "jobs.invalid_description"),
        ({"description": "x" * 281}, "jobs.invalid_description"),
        ({"description": "two\nlines"}, "jobs.invalid_description"),
        ({"bounty": 0}, "jobs.invalid_bounty"),
        ({"bounty": 2**64}, "jobs.invalid_bounty"),
        ({"asset": "Aut"}, "jobs.invalid_asset"),
        ({"attesters": []}, "jobs.invalid_attesters"),
        ({"attesters": ["poster", "poster"]}, "jobs.invalid_attesters"),
        ({"attesters": ["machine"]}, "jobs.invalid_attesters"),
        ({"attesters": [LATHE.did]}, "jobs.invalid_attesters"),
        ({"attesters": [make_key(str(i)).did for i in range(9)]}, "jobs.invalid_attesters"),
        ({"arbiter": "nobody"}, "jobs.invalid_arbiter"),
        ({"arbiter": LATHE.did}, "jobs.invalid_arbiter"),
        ({"attesters": [INSPECTOR.did], "arbiter": INSPECTOR.did}, "jobs.invalid_arbiter"),
        ({"deadline_ms": T0}, "jobs.invalid_deadline"),
        ({"deadline_ms": T0 + DEFAULTS.max_deadline_ms + DAY}, "jobs.invalid_deadline"),
        ({"bounty": 20_000}, "bank.insufficient_funds"),
        ({"asset": "gold"}, "bank.unknown_asset"),
        ({"bounty": True}, "core.invalid_message"),
        ({"attesters": "poster"}, "core.invalid_message"),
        ({"attesters": [1]}, "core.invalid_message"),
        ({"arbiter": 5}, "core.invalid_message"),
        ({"extra": 1}, "core.invalid_message"),
    ],
)
def test_post_refusals(world: World, changes: dict[str, Any], code: str) -> None:
    assert world.code(LATHE, _post(**changes)) == code
    assert world.jobs.jobs_of(world.chain.state, LATHE.did) == []
    assert world.balance(LATHE) == 10_000


def test_post_precedence_follows_the_table(world: World) -> None:
    pairs = [
        ({"kind": "X", "description": ""}, "jobs.invalid_kind"),
        ({"description": "", "bounty": 0}, "jobs.invalid_description"),
        ({"bounty": 0, "asset": "A"}, "jobs.invalid_bounty"),
        ({"asset": "A", "attesters": []}, "jobs.invalid_asset"),
        ({"attesters": [], "arbiter": "x"}, "jobs.invalid_attesters"),
        ({"arbiter": "x", "deadline_ms": 0}, "jobs.invalid_arbiter"),
        ({"deadline_ms": 0, "bounty": 20_000}, "jobs.invalid_deadline"),
    ]
    for changes, code in pairs:
        assert world.code(LATHE, _post(**changes)) == code, changes
    # "owner" with no registered owner, before the funds are checked.
    assert world.code(LONER, _post(bounty=5_000)) == "jobs.no_owner"
    assert world.code(LONER, _post(bounty=5_000, attesters=["poster"])) == "bank.insufficient_funds"


# ---------------------------------------------------------------------------------------------------
# The happy path: accept, complete, attest, window, payout


def test_attested_job_pays_out_after_the_dispute_window(world: World) -> None:
    job_id = world.post(attesters=("poster", "owner", INSPECTOR.did))
    receipt = world.ok(MECHANIC, jobs.accept(job_id))
    assert receipt.events[0].type == "jobs.accepted"
    assert world.jobs.jobs_of(world.chain.state, MECHANIC.did)[0][1] == "provider"
    world.ok(MECHANIC, jobs.complete(job_id, REPORT))
    receipt = world.ok(INSPECTOR, jobs.attest(job_id, REPORT))
    attested_at = world.now
    assert receipt.events[0].get("pay_at_ms") == attested_at + DEFAULTS.dispute_window_ms
    job = world.job(job_id)
    assert (job.status, job.attested_by, job.due_ms) == ("attested", INSPECTOR.did, attested_at + DAY)
    world.tick(attested_at + DAY - 1)
    assert world.balance(MECHANIC) == 0
    world.tick(attested_at + DAY)
    job = world.job(job_id)
    assert (job.status, job.outcome, job.paid, job.refunded) == ("closed", "paid", 300, 0)
    assert world.balance(MECHANIC) == 300 and world.balance(LATHE) == 9_700
    assert escrow_keeper.get(world.chain.state, job.lock) is None
    assert world.jobs.jobs_in(world.chain.state, "closed") == [job]


@pytest.mark.parametrize("attester", ["poster", "owner", "named"])
def test_each_attester_rule(world: World, attester: str) -> None:
    signer = {"poster": LATHE, "owner": OWNER, "named": INSPECTOR}[attester]
    rule = INSPECTOR.did if attester == "named" else attester
    job_id = world.post(attesters=(rule,))
    world.ok(MECHANIC, jobs.accept(job_id))
    world.ok(MECHANIC, jobs.complete(job_id, REPORT))
    others = [key for key in (LATHE, OWNER, INSPECTOR, STRANGER, MECHANIC) if key is not signer]
    for other in others:
        assert world.code(other, jobs.attest(job_id, REPORT)) == "jobs.not_attester", other.did
    world.ok(signer, jobs.attest(job_id, REPORT))
    assert world.job(job_id).attested_by == signer.did


def test_accept_refusals(world: World) -> None:
    job_id = world.post(attesters=("poster", "owner", INSPECTOR.did), arbiter=ARBITER)
    assert world.code(MECHANIC, jobs.accept(b"\x01" * 32)) == "jobs.unknown_job"
    for conflicted in (LATHE, OWNER, INSPECTOR, ARBITER):
        assert world.code(conflicted, jobs.accept(job_id)) == "jobs.conflicting_role", conflicted.did
    deadline = world.job(job_id).deadline_ms
    assert world.code(MECHANIC, jobs.accept(job_id), at=deadline) == "jobs.deadline_passed"
    other = world.post()
    world.ok(MECHANIC, jobs.accept(other))
    assert world.code(MECHANIC_2, jobs.accept(other)) == "jobs.not_open"
    assert world.code(LATHE, jobs.accept(other)) == "jobs.not_open"  # the status comes first


def test_owner_may_take_a_job_its_machine_attests_itself(world: World) -> None:
    job_id = world.post(attesters=("poster",))
    world.ok(OWNER, jobs.accept(job_id))  # the owner is no attester here
    world.ok(OWNER, jobs.complete(job_id, REPORT))
    world.ok(LATHE, jobs.attest(job_id, REPORT))


def test_complete_refusals(world: World) -> None:
    job_id = world.post()
    assert world.code(MECHANIC, jobs.complete(job_id, REPORT)) == "jobs.not_provider"  # nobody accepted
    world.ok(MECHANIC, jobs.accept(job_id))
    assert world.code(MECHANIC_2, jobs.complete(job_id, REPORT)) == "jobs.not_provider"
    bad = {**jobs.complete(job_id, REPORT), "evidence": b"short"}
    assert world.code(MECHANIC, bad) == "core.invalid_message"
    deadline = world.job(job_id).deadline_ms
    assert world.code(MECHANIC, jobs.complete(job_id, REPORT), at=deadline) == "jobs.deadline_passed"
    assert world.job(job_id).outcome == "expired"  # and that block's end_block refunded it
    assert world.code(MECHANIC, jobs.complete(job_id, REPORT)) == "jobs.not_accepted"


def test_attest_refusals(world: World) -> None:
    job_id = world.post()
    assert world.code(LATHE, jobs.attest(job_id, REPORT)) == "jobs.not_completed"
    world.ok(MECHANIC, jobs.accept(job_id))
    assert world.code(MECHANIC, jobs.attest(job_id, REPORT)) == "jobs.not_attester"  # role first
    world.ok(MECHANIC, jobs.complete(job_id, REPORT))
    assert world.code(LATHE, jobs.attest(job_id, sha256(b"other"))) == "jobs.evidence_mismatch"
    attest_by = world.job(job_id).attest_by_ms
    assert world.code(LATHE, jobs.attest(job_id, sha256(b"other")), at=attest_by) == "jobs.attest_too_late"
    job = world.job(job_id)
    assert (job.outcome, job.refunded) == ("unattested", 300) and world.balance(LATHE) == 10_000


def test_attestation_may_come_after_the_deadline_within_the_window(world: World) -> None:
    job_id = world.post()
    world.ok(MECHANIC, jobs.accept(job_id))
    deadline = world.job(job_id).deadline_ms
    world.ok(MECHANIC, jobs.complete(job_id, REPORT), at=deadline - 1)
    world.tick(deadline + HOUR)
    assert world.job(job_id).status == "completed"
    world.ok(OWNER, jobs.attest(job_id, REPORT))
    assert world.job(job_id).status == "attested"


# ---------------------------------------------------------------------------------------------------
# Timeouts and cancel


def test_open_and_accepted_jobs_expire_at_the_deadline(world: World) -> None:
    never = world.post(deadline_ms=world.now + HOUR)
    abandoned = world.post(deadline_ms=world.now + HOUR)
    world.ok(MECHANIC, jobs.accept(abandoned))
    world.tick(world.now + HOUR)
    for job_id in (never, abandoned):
        job = world.job(job_id)
        assert (job.status, job.outcome, job.refunded, job.due_ms) == ("closed", "expired", 300, None)
    assert world.balance(LATHE) == 10_000 and world.balance(MECHANIC) == 0


def test_cancel(world: World) -> None:
    job_id = world.post()
    assert world.code(STRANGER, jobs.cancel(job_id)) == "jobs.not_poster"
    receipt = world.ok(OWNER, jobs.cancel(job_id))  # the owner may cancel for its machine
    assert [event.type for event in receipt.events] == ["jobs.cancelled", "jobs.closed", "escrow.refunded"]
    assert world.job(job_id).outcome == "cancelled" and world.balance(LATHE) == 10_000
    assert world.code(LATHE, jobs.cancel(job_id)) == "jobs.not_open"
    taken = world.post()
    world.ok(MECHANIC, jobs.accept(taken))
    assert world.code(LATHE, jobs.cancel(taken)) == "jobs.not_open"
    assert world.code(LATHE, jobs.cancel(b"\x02" * 32)) == "jobs.unknown_job"


# ---------------------------------------------------------------------------------------------------
# Disputes


def test_dispute_without_an_arbiter_refunds(world: World) -> None:
    job_id = world.attested()
    assert world.code(MECHANIC, jobs.dispute(job_id)) == "jobs.not_poster"
    receipt = world.ok(OWNER, jobs.dispute(job_id))
    assert [event.type for event in receipt.events] == ["jobs.disputed", "jobs.closed", "escrow.refunded"]
    job = world.job(job_id)
    assert (job.status, job.outcome, job.disputed_by, job.refunded) == ("closed", "disputed", OWNER.did, 300)
    assert world.balance(LATHE) == 10_000 and world.balance(MECHANIC) == 0


def test_dispute_with_an_arbiter_waits_for_its_split(world: World) -> None:
    job_id = world.attested(arbiter=ARBITER)
    world.ok(LATHE, jobs.dispute(job_id))
    job = world.job(job_id)
    assert (job.status, job.due_ms) == ("disputed", world.now + DEFAULTS.resolve_window_ms)
    assert world.code(STRANGER, jobs.resolve(job_id, 100)) == "jobs.not_arbiter"
    assert world.code(ARBITER, jobs.resolve(job_id, 301)) == "jobs.invalid_amount"
    assert world.code(ARBITER, jobs.resolve(job_id, -1)) == "jobs.invalid_amount"
    receipt = world.ok(ARBITER, jobs.resolve(job_id, 120))
    assert [event.type for event in receipt.events] == [
        "jobs.resolved", "jobs.closed", "escrow.released", "escrow.refunded",
    ]  # fmt: skip
    job = world.job(job_id)
    assert (job.outcome, job.paid, job.refunded) == ("arbitrated", 120, 180)
    assert world.balance(MECHANIC) == 120 and world.balance(LATHE) == 9_880
    assert world.code(ARBITER, jobs.resolve(job_id, 0)) == "jobs.not_disputed"


@pytest.mark.parametrize(("split", "paid"), [(0, 0), (300, 300)])
def test_arbiter_may_give_all_or_nothing(world: World, split: int, paid: int) -> None:
    job_id = world.attested(arbiter=ARBITER)
    world.ok(LATHE, jobs.dispute(job_id))
    world.ok(ARBITER, jobs.resolve(job_id, split))
    assert world.balance(MECHANIC) == paid and world.balance(LATHE) == 9_700 + 300 - paid


def test_unresolved_dispute_is_refunded(world: World) -> None:
    job_id = world.attested(arbiter=ARBITER)
    world.ok(LATHE, jobs.dispute(job_id))
    due = world.job(job_id).due_ms
    assert due is not None
    assert world.code(ARBITER, jobs.resolve(job_id, 300), at=due) == "jobs.resolve_too_late"
    job = world.job(job_id)
    assert (job.outcome, job.refunded) == ("unresolved", 300) and world.balance(MECHANIC) == 0


def test_dispute_refusals(world: World) -> None:
    job_id = world.post()
    assert world.code(LATHE, jobs.dispute(job_id)) == "jobs.not_attested"
    assert world.code(STRANGER, jobs.dispute(job_id)) == "jobs.not_poster"  # the role first
    attested = world.attested()
    pay_at = world.job(attested).due_ms
    receipt = world.run(LATHE, jobs.dispute(attested), at=pay_at)
    assert receipt.code == "jobs.dispute_too_late"
    assert world.job(attested).outcome == "paid"


# ---------------------------------------------------------------------------------------------------
# Genesis, parameters, invariants, the spec


def test_a_chain_without_jobs_settings_writes_no_jobs_key() -> None:
    chain = Chain.from_genesis(GENESIS)
    assert not any(key.startswith("jobs/") for key in chain.data)
    assert keeper.params(chain.state) == DEFAULTS


def test_genesis_parameters() -> None:
    genesis = {**GENESIS, "app_state": {**GENESIS["app_state"], "jobs": {"params": {"dispute_window_ms": 0}}}}
    world = World(genesis)
    assert keeper.params(world.chain.state) == dataclasses.replace(DEFAULTS, dispute_window_ms=0)
    job_id = world.attested()  # no dispute window: paid in the attesting block's end_block
    assert world.job(job_id).outcome == "paid" and world.balance(MECHANIC) == 300
    for bad in ({"params": {"attest_window_ms": 0}}, {"params": {"x": 1}}, {"jobs": []}, {"params": 3}):
        with pytest.raises(ValueError, match="jobs genesis"):
            from_genesis(bad)


def orphan_lock(state: Overlay, lock_id: bytes) -> None:
    """A copy of an open lock under another id: a lock the module holds but no record names."""
    lock = escrow_keeper.get(state, lock_id)
    assert lock is not None
    escrow_keeper.create(state, dataclasses.replace(lock, id=b"\x09" * 32, locked=lock.amount))


def test_invariants_catch_corruption(world: World) -> None:
    job_id = world.attested()
    closed = world.post()
    world.ok(LATHE, jobs.cancel(closed))
    job = world.job(job_id)
    key = keeper.job_key(job_id)

    def rewrite(record: JobRecord, **changes: Any) -> Any:
        return lambda state: state.set_obj(
            keeper.job_key(record.id), dataclasses.replace(record, **changes).to_cbor()
        )

    def drain(state: Overlay) -> None:
        lock = escrow_keeper.get(state, job.lock)
        assert lock is not None
        escrow_keeper.set_amount(state, lock, lock.amount - 1)

    cases = {
        "paid early": rewrite(job, paid=1),
        "no provider": rewrite(job, provider=None),
        "provider is attester": rewrite(job, provider=LATHE.did),
        "due": rewrite(job, due_ms=1),
        "status": rewrite(job, status="done"),
        "closed with lock": rewrite(job, status="closed", outcome="paid", paid=300, due_ms=None),
        "closed sums": rewrite(world.job(closed), refunded=299),
        "closed outcome": rewrite(world.job(closed), outcome="paid"),
        "lock drained": drain,
        "orphan lock": lambda state: orphan_lock(state, job.lock),
        "malformed": lambda state: state.set_obj(key, {"poster": LATHE.did}),
        "status index": lambda state: state.delete(keeper.by_status_key("attested", job_id)),
        "account index": lambda state: state.set_obj(keeper.by_account_key(STRANGER.did, job_id), "poster"),
        "due index": lambda state: state.set_obj(keeper.due_key(5, job_id), True),
    }
    for name, edit in cases.items():
        state = Overlay(MappingState(dict(world.chain.data)))
        edit(state)
        assert world.jobs.invariants(state) != [], name


def test_may_attest_query(world: World) -> None:
    job_id = world.post(attesters=("owner",))
    job = world.job(job_id)
    state = world.chain.state
    assert world.jobs.may_attest(state, job, OWNER.did) and not world.jobs.may_attest(state, job, LATHE.did)


def test_replay_reaches_the_same_roots(world: World) -> None:
    world.attested(arbiter=ARBITER)
    world.post()
    world.tick(world.now + 3 * DAY)
    assert world.chain.replay().root == world.chain.root


def test_readme_lists_every_code_in_precedence_order() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Errors, in order of precedence", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| \d+ +\| `(jobs\.[a-z_]+)`", table, flags=re.MULTILINE)
    assert listed == [code.code for code in JOBS_CODES_IN_PRECEDENCE]


def test_readme_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(README), "exec"), {})


def test_the_guides_machine_example_runs() -> None:
    guide = Path(__file__).resolve().parents[2] / "docs/jobs.md"
    text = guide.read_text(encoding="utf-8").split("## A machine posting its own jobs", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[:1]
    exec(compile(code, str(guide), "exec"), {})
