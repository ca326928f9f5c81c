"""Random jobs: posting, cancelling, accepting, completing, attesting, disputing, resolving, and
block-time jumps, against a step model.

Two machines post jobs (one registered with an owner, one without), with random bounties, deadlines,
attester rules (the machine itself, its owner, a named inspector) and sometimes an arbiter; two
mechanics, the inspector, the arbiter, the owner and a stranger act on them, often without the right
or too late; block time jumps forward so deadlines, attestation windows, dispute windows and
arbiters' windows run out.

The **step model** states the README plainly: each job's status, outcome and parties, every
message's code from the README's precedence table, and end-of-block timeouts checked brute force
over every job (no due index). After every step the chain must agree with it: the exact result
code, every job's status, outcome, provider, paid and refunded amounts, every account's balance,
and every module's invariants (bank supply, escrow balance, the job records against escrow). At the
end time jumps past every job's last window: every job is closed with ``paid + refunded == bounty``
exactly and no escrow lock held by ``jobs`` is left. Runs derandomized under the ``ci`` profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.jobs import JobsModule, keeper
from autarky.modules.jobs import messages as jobs

CHAIN_ID = "jobs-model"
T0 = 1_000_000
ATTEST, DISPUTE, RESOLVE = 20_000, 10_000, 15_000
PARAMS = {"attest_window_ms": ATTEST, "dispute_window_ms": DISPUTE, "resolve_window_ms": RESOLVE}


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/jobs-model/" + name.encode()))


LATHE, PUMP, OWNER, MECH_1, MECH_2, INSPECTOR, ARBITER, STRANGER = (
    make_key(n) for n in ("lathe", "pump", "owner", "mech-1", "mech-2", "inspector", "arbiter", "stranger")
)
ACTORS = [LATHE, PUMP, OWNER, MECH_1, MECH_2, INSPECTOR, ARBITER, STRANGER]
OWNER_OF = {LATHE.did: OWNER.did}  # PUMP has no registered owner
FUNDS = 1_000_000
GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "identity": {"accounts": [{"did": LATHE.did, "owner": OWNER.did, "kind": "lathe"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": key.did, "asset": "aut", "amount": FUNDS} for key in ACTORS],
        },
        "jobs": {"params": PARAMS},
    },
}
RULES: list[tuple[str, ...]] = [
    ("poster",),
    ("owner",),
    ("poster", "owner"),
    (INSPECTOR.did,),
    ("poster", INSPECTOR.did),
]
EVIDENCE = [sha256(b"report-a"), sha256(b"report-b")]


@dataclass
class ModelJob:
    id: bytes
    poster: str
    bounty: int
    deadline: int
    attesters: tuple[str, ...]
    arbiter: str | None
    status: str = "open"
    outcome: str | None = None
    provider: str | None = None
    evidence: bytes | None = None
    attested_at: int | None = None
    disputed_at: int | None = None
    paid: int = 0
    refunded: int = 0

    def close(self, outcome: str, paid: int) -> None:
        self.status, self.outcome, self.paid, self.refunded = "closed", outcome, paid, self.bounty - paid

    @property
    def owner(self) -> str | None:
        return OWNER_OF.get(self.poster)

    def may_attest(self, did: str) -> bool:
        if did == self.provider:
            return False
        return (
            did in self.attesters
            or ("poster" in self.attesters and did == self.poster)
            or ("owner" in self.attesters and did == self.owner)
        )

    def conflicts(self, did: str) -> bool:
        return (
            did in (self.poster, self.arbiter)
            or did in self.attesters
            or ("owner" in self.attesters and did == self.owner)
        )

    @property
    def last_ms(self) -> int:
        return self.deadline + ATTEST + DISPUTE + RESOLVE


signer_is_wrong = st.integers(0, 4).map(lambda n: n == 0)


class JobsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.from_genesis(GENESIS)
        module = self.chain.app.module("jobs")
        assert isinstance(module, JobsModule)
        self.module = module
        self.now = T0
        self.jobs: list[ModelJob] = []

    # -- running blocks and the model's end of block --------------------------------------------------

    def _send(self, signer: SigningKey, message: dict[str, Any], expected: str, step: int) -> bytes:
        self.now += step
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,))
        tx = sign_tx(body, signer)
        (receipt,) = self.chain.execute([tx.raw], self.now)
        assert receipt.code == expected, (message["type"], receipt.code, expected, receipt.detail)
        event(f"{message['type']}: {expected}")
        return tx.hash

    def _end_block(self) -> None:
        for job in self.jobs:
            if job.status in ("open", "accepted") and self.now >= job.deadline:
                job.close("expired", 0)
            elif job.status == "completed" and self.now >= job.deadline + ATTEST:
                job.close("unattested", 0)
            elif (
                job.status == "attested"
                and job.attested_at is not None
                and self.now >= job.attested_at + DISPUTE
            ):
                job.close("paid", job.bounty)
            elif (
                job.status == "disputed"
                and job.disputed_at is not None
                and self.now >= job.disputed_at + RESOLVE
            ):
                job.close("unresolved", 0)

    def _step(
        self, signer: SigningKey, message: dict[str, Any], expected: str, step: int, apply: Any
    ) -> None:
        self._send(signer, message, expected, step)
        if expected == "ok":
            apply()
        self._end_block()

    def _pick(self, pick: int, status: str) -> ModelJob | None:
        if not self.jobs:
            return None
        wanted = [job for job in self.jobs if job.status == status]
        if pick % 4 and wanted:
            return wanted[pick % len(wanted)]
        return self.jobs[pick % len(self.jobs)]

    def _edge(self, step: int, due: int | None) -> int:
        """One step in five lands on ``due`` or 1 ms before it (the boundaries the README states)."""
        if due is None or step % 5 or due - 1 < self.now:
            return step
        event("at an edge")
        return due - self.now - (step // 5) % 2

    @staticmethod
    def _key(did: str | None) -> SigningKey | None:
        return next((key for key in ACTORS if key.did == did), None)

    # -- rules ---------------------------------------------------------------------------------------------

    @rule(
        poster=st.sampled_from([LATHE, LATHE, PUMP]),
        bounty=st.one_of(st.integers(1, 500), st.sampled_from([0, FUNDS * 2])),
        deadline=st.one_of(st.integers(1, 60_000), st.integers(-5_000, 0)),
        attesters=st.integers(0, len(RULES) - 1),
        arbitrated=st.booleans(),
        step=st.integers(0, 5_000),
    )
    def post(
        self, poster: SigningKey, bounty: int, deadline: int, attesters: int, arbitrated: bool, step: int
    ) -> None:
        now = self.now + step
        rule_set = RULES[attesters]
        if not 1 <= bounty <= 2**64 - 1:
            expected = "jobs.invalid_bounty"
        elif deadline <= 0:
            expected = "jobs.invalid_deadline"
        elif "owner" in rule_set and poster.did not in OWNER_OF:
            expected = "jobs.no_owner"
        elif bounty > bank_keeper.balance(self.chain.state, poster.did, "aut"):
            expected = "bank.insufficient_funds"
        else:
            expected = "ok"
        arbiter = ARBITER.did if arbitrated else None
        message = jobs.post("maintenance", "service it", bounty, "aut", now + deadline, rule_set, arbiter)
        tx_hash = self._send(poster, message, expected, step)
        if expected == "ok":
            self.jobs.append(
                ModelJob(keeper.new_job_id(tx_hash, 0), poster.did, bounty, now + deadline, rule_set, arbiter)
            )
        self._end_block()

    @rule(
        poster=st.sampled_from([LATHE, PUMP]),
        bounty=st.integers(1, 500),
        attesters=st.integers(0, len(RULES) - 1),
        arbitrated=st.booleans(),
        mechanic=st.sampled_from([MECH_1, MECH_2]),
        contest=st.sampled_from(["no", "dispute", "resolve"]),
        share=st.integers(0, 100),
    )
    def work(
        self,
        poster: SigningKey,
        bounty: int,
        attesters: int,
        arbitrated: bool,
        mechanic: SigningKey,
        contest: str,
        share: int,
    ) -> None:
        """Post, accept, complete and attest in four blocks: the common path, so disputes happen."""
        if "owner" in RULES[attesters] and poster.did not in OWNER_OF:
            attesters = 0
        count = len(self.jobs)
        self.post(poster, bounty, 30_000, attesters, arbitrated, 0)
        if len(self.jobs) == count:
            return
        job = self.jobs[-1]
        self._accept(job, mechanic, 1)
        self._complete(job, mechanic, EVIDENCE[0], 1)
        self._attest(job, next(key for key in ACTORS if job.may_attest(key.did)), EVIDENCE[0], 1)
        assert job.status == "attested"
        event("work: attested")
        if contest == "no":
            return

        def dispute() -> None:
            job.disputed_at = self.now
            if job.arbiter is None:
                job.close("disputed", 0)
            else:
                job.status = "disputed"

        self._step(poster, jobs.dispute(job.id), "ok", 1, dispute)
        if contest == "resolve" and job.arbiter is not None:
            amount = job.bounty * share // 100
            self._step(
                ARBITER, jobs.resolve(job.id, amount), "ok", 1, lambda: job.close("arbitrated", amount)
            )

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        step=st.integers(0, 5_000),
    )
    def cancel(self, pick: int, anyone: SigningKey, wrong: bool, step: int) -> None:
        job = self._pick(pick, "open")
        if job is None or pick % 3:  # cancel rarely, or little would ever be done
            return
        signer = anyone if wrong else self._key(job.poster) or anyone
        if signer.did not in (job.poster, job.owner):
            expected = "jobs.not_poster"
        elif job.status != "open":
            expected = "jobs.not_open"
        else:
            expected = "ok"
        self._step(signer, jobs.cancel(job.id), expected, step, lambda: job.close("cancelled", 0))

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        step=st.integers(0, 8_000),
    )
    def accept(self, pick: int, anyone: SigningKey, wrong: bool, step: int) -> None:
        job = self._pick(pick, "open")
        if job is None:
            return
        step = self._edge(step, job.deadline)
        self._accept(job, anyone if wrong else (MECH_1 if pick % 2 else MECH_2), step)

    def _accept(self, job: ModelJob, signer: SigningKey, step: int) -> None:
        now = self.now + step
        if job.status != "open":
            expected = "jobs.not_open"
        elif now >= job.deadline:
            expected = "jobs.deadline_passed"
        elif job.conflicts(signer.did):
            expected = "jobs.conflicting_role"
        else:
            expected = "ok"

        def apply() -> None:
            job.status, job.provider = "accepted", signer.did

        self._step(signer, jobs.accept(job.id), expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        evidence=st.sampled_from(EVIDENCE),
        step=st.integers(0, 8_000),
    )
    def complete(self, pick: int, anyone: SigningKey, wrong: bool, evidence: bytes, step: int) -> None:
        job = self._pick(pick, "accepted")
        if job is None:
            return
        step = self._edge(step, job.deadline)
        self._complete(job, anyone if wrong else self._key(job.provider) or anyone, evidence, step)

    def _complete(self, job: ModelJob, signer: SigningKey, evidence: bytes, step: int) -> None:
        now = self.now + step
        if signer.did != job.provider:
            expected = "jobs.not_provider"
        elif job.status != "accepted":
            expected = "jobs.not_accepted"
        elif now >= job.deadline:
            expected = "jobs.deadline_passed"
        else:
            expected = "ok"

        def apply() -> None:
            job.status, job.evidence = "completed", evidence

        self._step(signer, jobs.complete(job.id, evidence), expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        evidence=st.sampled_from([*EVIDENCE, None]),
        step=st.integers(0, 8_000),
    )
    def attest(self, pick: int, anyone: SigningKey, wrong: bool, evidence: bytes | None, step: int) -> None:
        job = self._pick(pick, "completed")
        if job is None:
            return
        step = self._edge(step, job.deadline + ATTEST)
        allowed = [key for key in ACTORS if job.may_attest(key.did)]
        signer = anyone if wrong or not allowed else allowed[pick % len(allowed)]
        claimed = job.evidence if evidence is None and job.evidence is not None else (evidence or EVIDENCE[0])
        self._attest(job, signer, claimed, step)

    def _attest(self, job: ModelJob, signer: SigningKey, claimed: bytes, step: int) -> None:
        now = self.now + step
        if not job.may_attest(signer.did):
            expected = "jobs.not_attester"
        elif job.status != "completed":
            expected = "jobs.not_completed"
        elif now >= job.deadline + ATTEST:
            expected = "jobs.attest_too_late"
        elif claimed != job.evidence:
            expected = "jobs.evidence_mismatch"
        else:
            expected = "ok"

        def apply() -> None:
            job.status, job.attested_at = "attested", now

        self._step(signer, jobs.attest(job.id, claimed), expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        step=st.integers(0, 8_000),
    )
    def dispute(self, pick: int, anyone: SigningKey, wrong: bool, step: int) -> None:
        job = self._pick(pick, "attested")
        if job is None or pick % 2:  # dispute about half the attested jobs
            return
        step = self._edge(step, None if job.attested_at is None else job.attested_at + DISPUTE)
        by_owner = job.owner is not None and pick % 3 == 0
        signer = anyone if wrong else self._key(job.owner if by_owner else job.poster) or anyone
        now = self.now + step
        if signer.did not in (job.poster, job.owner):
            expected = "jobs.not_poster"
        elif job.status != "attested":
            expected = "jobs.not_attested"
        elif job.attested_at is not None and now >= job.attested_at + DISPUTE:
            expected = "jobs.dispute_too_late"
        else:
            expected = "ok"

        def apply() -> None:
            job.disputed_at = now
            if job.arbiter is None:
                job.close("disputed", 0)
            else:
                job.status = "disputed"

        self._step(signer, jobs.dispute(job.id), expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        amount=st.one_of(st.integers(0, 500), st.just(-1)),
        step=st.integers(0, 8_000),
    )
    def resolve(self, pick: int, anyone: SigningKey, wrong: bool, amount: int, step: int) -> None:
        job = self._pick(pick, "disputed")
        if job is None:
            return
        step = self._edge(step, None if job.disputed_at is None else job.disputed_at + RESOLVE)
        signer = anyone if wrong else ARBITER
        now = self.now + step
        if signer.did != job.arbiter:
            expected = "jobs.not_arbiter"
        elif job.status != "disputed":
            expected = "jobs.not_disputed"
        elif job.disputed_at is not None and now >= job.disputed_at + RESOLVE:
            expected = "jobs.resolve_too_late"
        elif not 0 <= amount <= job.bounty:
            expected = "jobs.invalid_amount"
        else:
            expected = "ok"
        self._step(
            signer, jobs.resolve(job.id, amount), expected, step, lambda: job.close("arbitrated", amount)
        )

    @rule(step=st.integers(1, 30_000))
    def wait(self, step: int) -> None:
        self.now += step
        self.chain.execute([], self.now)
        self._end_block()

    # -- what must hold after every step -------------------------------------------------------------------

    @invariant()
    def chain_agrees_with_the_model(self) -> None:
        assert self.chain.invariants() == []
        state = self.chain.state
        balances = {key.did: FUNDS for key in ACTORS}
        for job in self.jobs:
            record = self.module.job(state, job.id)
            assert record is not None
            got = (record.status, record.outcome, record.provider, record.paid, record.refunded)
            assert got == (job.status, job.outcome, job.provider, job.paid, job.refunded), job
            balances[job.poster] -= job.bounty - job.refunded
            if job.provider is not None:
                balances[job.provider] += job.paid
        for key in ACTORS:
            assert bank_keeper.balance(state, key.did, "aut") == balances[key.did]

    def teardown(self) -> None:
        if not self.jobs:
            return
        self.now = max(self.now, *(job.last_ms for job in self.jobs)) + 1
        self.chain.execute([], self.now)
        self._end_block()
        self.chain_agrees_with_the_model()
        for job in self.jobs:
            assert job.status == "closed" and job.paid + job.refunded == job.bounty
        assert [lock for lock in escrow_keeper.all_locks(self.chain.state) if lock.holder == "jobs"] == []
        event(f"outcomes: {sorted({job.outcome or '' for job in self.jobs})}")


JobsMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=50, deadline=None)
TestJobsModel = JobsMachine.TestCase
