"""A factory floor for a day: machine tools renting edge compute, predictive maintenance, tracked parts.

Machines (``--machines`` machine tools, plus one edge compute provider per 250 tools, one
maintenance provider per 100 tools and one parts supplier per 500 tools; each plant of 100 tools
has an owner):

* **Compute by lease.** Each edge provider offers one VM per tool it serves (``lease/offer``,
  compute, by the hour). Every six hours each tool reserves the next block of hours on its VM
  (``lease/reserve``: the whole price into escrow); the provider confirms the start
  (``lease/confirm_start``, batched); the ``lease`` module pays the provider hour by hour from escrow.
  A tool runs its detector only while its lease is active.
* **Predictive maintenance.** Each tool streams vibration RMS, kurtosis and bearing temperature every
  15 minutes (``autarky.world.machine_telemetry``; ``fault_windows`` are the injected bearing faults,
  the ground truth). Every hour the tools' detector (``AnomalyDetector``, trained on generated data)
  scores **all tools in one** ``score_batch`` call; a tool whose score crosses the threshold runs
  the model on its own window (the decision record) and posts a maintenance job with a bounty
  (``jobs/post``). A maintenance provider accepts, gets a spare bearing from the supplier, repairs
  for an hour and completes with the hash of its report; the tool attests once its detector sees a
  healthy bearing again; the bounty is paid after the dispute window.
* **Tracked parts.** The supplier registers its spare bearings (``provenance/register_item``); at a
  repair the part's custody goes supplier -> maintenance provider -> machine tool
  (``provenance/item_event`` custody), and the tool records its condition (``installed``) when it
  attests the repair.

Detector quality against the ground truth: a job is a **true positive** if it is posted while its
tool is inside a fault window or within 2 hours after the window ended (the fault's severity ramps up
from zero, so it is visible late; the same rule the detector was trained with). Precision = true
positive jobs / jobs posted; recall = fault windows with at least one true-positive job / fault
windows that were open at some hourly check of the run.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import numpy as np

from autarky import world
from autarky.agent import ActionRefused, LedgerEvent, Machine
from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode
from autarky.models import AnomalyDetector
from autarky.models.anomaly import BASELINE, RECENT
from autarky.modules.jobs import messages as jobs
from autarky.modules.lease import messages as lease
from autarky.modules.provenance import messages as provenance
from autarky.scenarios.base import HOUR_MS, Scenario, ScenarioContext, scenario
from autarky.scenarios.genesis import ASSET, GenesisBuilder, batched
from autarky.scenarios.models import models_dir, registration_skill, trained_models
from autarky.scenarios.report import Section, table
from autarky.scenarios.svg import bar_chart, line_chart

DETECTOR = "anomaly-detector"
SAMPLE_MS = world.INTERVAL_MS
WINDOW = BASELINE + RECENT
HISTORY_MS = (WINDOW + 4) * SAMPLE_MS
"""Telemetry starts this long before the run, so the first check has a full baseline window."""
LEASE_BLOCK_H = 6
VM_PRICE = 40
"""aut per hour of a VM."""
BOUNTY = 2_500
JOB_DEADLINE_MS = 4 * HOUR_MS
REPAIR_MS = HOUR_MS
MATCH_AFTER_MS = 2 * HOUR_MS
FAULT_RATE = world.machinery.FAULT_RATE_PER_DAY
TOOLS_PER_EDGE = 250
TOOLS_PER_MAINTAINER = 100
TOOLS_PER_SUPPLIER = 500
TOOLS_PER_PLANT = 100


@functools.lru_cache(maxsize=4)
def detector(seed: int) -> AnomalyDetector:
    """The tools' detector, trained on generated telemetry with the run's seed (cached on disk by
    ``scenarios.models``) and loaded from its model file."""
    return AnomalyDetector(trained_models([DETECTOR], seed)[DETECTOR].model)


def _milli(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.rint(values * 1000.0)]


@scenario
class Factory(Scenario):
    name = "factory"
    summary = "machine tools renting edge compute (lease), predictive maintenance (jobs), tracked parts"
    tail_ms = 6 * HOUR_MS

    # -- genesis ------------------------------------------------------------------------------------

    def build_genesis(self, g: GenesisBuilder) -> None:
        n = max(1, self.config.machines)
        self.n = n
        self.model_owner = g.actor("plant-engineering", "model-owner")
        plants = [
            g.actor(f"plant-{k}", "plant-owner", balance=1_000_000) for k in range(-(-n // TOOLS_PER_PLANT))
        ]
        self.edges = [
            g.actor(f"edge-{k}", "edge-compute", balance=10_000) for k in range(-(-n // TOOLS_PER_EDGE))
        ]
        self.maintainers = [
            g.actor(f"maintainer-{k}", "maintenance-provider", balance=10_000)
            for k in range(-(-n // TOOLS_PER_MAINTAINER))
        ]
        self.suppliers = [
            g.actor(f"supplier-{k}", "parts-supplier", balance=10_000)
            for k in range(-(-n // TOOLS_PER_SUPPLIER))
        ]
        self.tools = [
            g.actor(f"tool-{i}", "machine-tool", owner=plants[i // TOOLS_PER_PLANT], balance=50_000)
            for i in range(n)
        ]
        self.tool_index = {actor.did: i for i, actor in enumerate(self.tools)}
        g.sections["jobs"] = {"params": {"attest_window_ms": HOUR_MS, "dispute_window_ms": HOUR_MS // 2}}
        # The physical world: every tool's telemetry, faulty (the truth) and as it would be with a
        # new bearing (after a repair), at 15-minute samples, in two vectorised calls.
        seed = self.config.seed
        first = self.start_ms - HISTORY_MS
        self.times = np.arange(first, self.end_ms + self.tail_ms + 1, SAMPLE_MS, dtype=np.int64)
        idx = np.arange(n)
        self.faulty = world.machine_telemetry(seed, idx, self.times, FAULT_RATE)
        self.healthy = world.machine_telemetry(seed, idx, self.times, 0.0)
        self.windows = world.fault_windows(seed, idx, int(self.times[0]), self.end_ms, FAULT_RATE)
        self.repaired_at = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        self._scores: tuple[int, np.ndarray] | None = None

    # -- telemetry and the batched detector ---------------------------------------------------------

    def _column(self, time_ms: int) -> int:
        """Index of the last sample taken at or before ``time_ms``."""
        return int(np.searchsorted(self.times, time_ms, side="right")) - 1

    def _window(self, rows: np.ndarray | slice, end: int) -> tuple[np.ndarray, ...]:
        """Each tool's telemetry over the last WINDOW samples up to column ``end`` (inclusive), with
        the new bearing's telemetry after its repair."""
        cols = slice(end - WINDOW + 1, end + 1)
        repaired = self.times[cols][None, :] >= self.repaired_at[rows][:, None]
        out = []
        for name in ("vibration_rms", "kurtosis", "temperature_c", "spindle_load"):
            before = getattr(self.faulty, name)[rows, cols]
            after = getattr(self.healthy, name)[rows, cols]
            out.append(np.where(repaired, after, before))
        return tuple(out)

    def scores(self, time_ms: int) -> np.ndarray:
        """Every tool's anomaly score at ``time_ms``: one ``score_batch`` for the whole fleet, computed
        by the first tool that asks in that instant."""
        if self._scores is None or self._scores[0] != time_ms:
            column = self._column(time_ms)
            self._scores = (
                time_ms,
                detector(self.config.seed).score_batch(*self._window(slice(None), column)),
            )
            self.checks += 1
        return self._scores[1]

    def inputs(self, tool: int, time_ms: int) -> dict[str, Any]:
        """The tool's own window as the detector's inputs (integers, thousandths)."""
        rms, kurt, temp, load = (w[0] for w in self._window(np.asarray([tool]), self._column(time_ms)))
        return {
            "rms_milli": _milli(rms),
            "kurtosis_milli": _milli(kurt),
            "temperature_milli": _milli(temp),
            "load_milli": _milli(load),
        }

    # -- machines -----------------------------------------------------------------------------------

    def setup(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.checks = 0
        self.catalogue: dict[int, bytes] = {}  # tool index -> its VM's offer id
        self.jobs_posted: list[tuple[int, int, bytes]] = []  # (tool, time, job id)
        self.job_tool: dict[bytes, int] = {}
        self.outcomes: Counter[str] = Counter()
        self.lease_paid = 0
        self.lease_reserved = 0
        self.lease_refunded = 0
        self.bounties_paid = 0
        self.custody = 0
        self.conditions: Counter[str] = Counter()
        self.parts_registered = 0
        self.skipped_checks = 0
        self.held: dict[str, str] = {}  # tool did -> the part installed at its last repair
        self.queues: list[list[bytes]] = [[] for _ in self.maintainers]  # jobs to accept
        self.tool_state: list[dict[str, Any]] = [
            {"lease_until": 0, "job": None, "evidence": None} for _ in self.tools
        ]
        ledger = ctx.ledger
        ledger.subscribe("lease.paid", self._on_lease_paid)
        ledger.subscribe("lease.refunded", self._on_lease_refunded)
        ledger.subscribe("jobs.posted", self._on_job_posted)
        ledger.subscribe("jobs.completed", self._on_job_completed)
        ledger.subscribe("jobs.closed", self._on_job_closed)
        ledger.subscribe("provenance.item_custody", self._on_custody)
        ledger.subscribe("provenance.item_condition", self._on_condition)
        seed = self.config.seed
        ctx.model_dir = models_dir(seed)
        owner = ctx.machine(self.model_owner)
        owner.include(registration_skill(trained_models([DETECTOR], seed), self.start_ms))
        for k, actor in enumerate(self.edges):
            self._edge(ctx.machine(actor), k)
        for k, actor in enumerate(self.suppliers):
            self._supplier(ctx.machine(actor), k)
        for k, actor in enumerate(self.maintainers):
            self._maintainer(ctx.machine(actor), k)
        for i, actor in enumerate(self.tools):
            self._tool(ctx.machine(actor, anchor_interval_ms=6 * HOUR_MS), i)

    def _edge(self, m: Machine, k: int) -> None:
        """Offers a VM per tool it serves; confirms the reservations of its VMs."""
        served = range(k * TOOLS_PER_EDGE, min(self.n, (k + 1) * TOOLS_PER_EDGE))
        reserved: list[bytes] = []
        self.ctx.ledger.subscribe(
            "lease.reserved", lambda e: reserved.append(e.get("lease")), ("provider", m.did)
        )
        level = {"uptime_bps": 9990}

        @m.on_start
        async def offer(m: Machine) -> None:
            offers = [
                lease.offer("compute", f"edge-{k}/vm-{i}", VM_PRICE, ASSET, HOUR_MS, 1, 24, level)
                for i in served
            ]
            groups = [list(served)[j : j + 32] for j in range(0, len(served), 32)]
            for chunk, tools in zip(batched(offers), groups, strict=True):
                receipt = await m.submit(*chunk)
                offered = [e for e in receipt.events if e.type == "lease.offered"]
                for tool, event in zip(tools, offered, strict=True):
                    offer_id = dict(event.attributes)["offer"]
                    assert isinstance(offer_id, bytes)
                    self.catalogue[tool] = offer_id

        @m.on_interval(period_ms=SAMPLE_MS, offset_ms=2 * 60_000)
        async def confirm(m: Machine) -> None:
            pending, reserved[:] = list(reserved), []
            for chunk in batched([lease.confirm_start(lease_id) for lease_id in pending]):
                await m.submit(*chunk)

    def _supplier(self, m: Machine, k: int) -> None:
        """Registers its spare bearings; hands one to each maintenance provider that takes a job."""
        count = min(TOOLS_PER_SUPPLIER, self.n) // 5 + 5
        stock = [f"bearing-{m.name}-{j:05d}" for j in range(count)]
        wanted: list[str] = []
        maintainers = {a.did for a in self.maintainers}

        def on_accepted(event: LedgerEvent) -> None:
            job = event.get("job")
            if event.get("provider") in maintainers and self.job_tool.get(job, -1) // TOOLS_PER_SUPPLIER == k:
                wanted.append(str(event.get("provider")))

        self.ctx.ledger.subscribe("jobs.accepted", on_accepted)

        @m.on_start
        async def register(m: Machine) -> None:
            items = [
                provenance.register_item(item, "bearing", {"model": "6205-2RS", "supplier": m.name})
                for item in stock
            ]
            for chunk in batched(items):
                receipt = await m.submit(*chunk)
                if receipt.ok:
                    self.parts_registered += len(chunk)

        @m.on_interval(period_ms=SAMPLE_MS, offset_ms=5 * 60_000)
        async def ship(m: Machine) -> None:
            orders, wanted[:] = list(wanted), []
            messages = []
            for provider in orders:
                if stock:
                    messages.append(provenance.item_custody(stock.pop(0), provider))
            for chunk in batched(messages):
                await m.submit(*chunk)

    def _maintainer(self, m: Machine, k: int) -> None:
        """Accepts maintenance jobs, repairs with a part from the supplier, completes with evidence."""
        posted = self.queues[k]
        parts: list[str] = []
        repairs: list[tuple[int, bytes]] = []  # (done at, job)
        self.ctx.ledger.subscribe(
            "provenance.item_custody", lambda e: parts.append(str(e.get("item_id"))), ("to", m.did)
        )

        @m.on_interval(period_ms=SAMPLE_MS, offset_ms=60_000)
        async def work(m: Machine) -> None:
            now = m.now_ms()
            accepted, posted[:] = list(posted), []
            messages: list[dict[str, Any]] = [jobs.accept(job) for job in accepted]
            for done_at, job in [r for r in repairs if r[0] <= now]:
                if not parts:
                    break  # waiting for a part from the supplier: the next round
                part = parts.pop(0)
                tool = self.job_tool[job]
                report = sha256(canonical_encode(["factory/repair-report", job, part, done_at]))
                messages.append(provenance.item_custody(part, self.tools[tool].did, report))
                messages.append(jobs.complete(job, report))
                repairs.remove((done_at, job))
                self.repaired_at[tool] = done_at  # the new bearing runs from the repair on
            for chunk in batched(messages):
                await m.submit(*chunk)
            repairs.extend((now + REPAIR_MS, job) for job in accepted)

    def _tool(self, m: Machine, i: int) -> None:
        """Rents its VM, checks its bearing every hour, posts a job when the detector fires, attests
        the repair when the detector sees a healthy bearing again."""
        state = self.tool_state[i]
        model = detector(self.config.seed)
        threshold = model.threshold

        block_ms = LEASE_BLOCK_H * HOUR_MS

        @m.on_interval(period_ms=block_ms, offset_ms=(self.start_ms - HOUR_MS // 2) % block_ms)
        async def rent(m: Machine) -> None:
            begin = m.now_ms() + HOUR_MS // 2
            hours = min(LEASE_BLOCK_H, (self.end_ms - begin) // HOUR_MS)
            offer_id = self.catalogue.get(i)
            if hours <= 0 or offer_id is None:
                return
            receipt = await m.submit(lease.reserve(offer_id, begin, hours))
            if receipt.ok:
                state["lease_until"] = begin + hours * HOUR_MS
                self.lease_reserved += 1

        @m.on_interval(period_ms=HOUR_MS, offset_ms=0)
        async def check(m: Machine) -> None:
            now = m.now_ms()
            if now < self.start_ms:
                return
            score = float(self.scores(now)[i])
            if state["job"] is not None:
                if state["evidence"] is not None and score <= threshold:
                    decision = m.decide(model, self.inputs(i, now))
                    if decision.output["fires"]:
                        return
                    evidence = state["evidence"]
                    messages = [jobs.attest(state["job"], evidence)]
                    part = self.held.get(m.did)
                    if part is not None:
                        messages.append(provenance.item_condition(part, "installed", evidence))
                    receipt = await m.submit(*messages, decision=decision)
                    if receipt.ok:
                        state["job"], state["evidence"] = None, None
                return
            if now >= self.end_ms or now >= state["lease_until"] or score <= threshold:
                if score > threshold and now < self.end_ms:
                    self.skipped_checks += 1  # no compute leased: the detector does not run
                return
            decision = m.decide(model, self.inputs(i, now))
            if not decision.output["fires"]:
                return
            out = decision.output
            description = f"bearing anomaly: score {out['score_milli']} > {out['threshold_milli']}"
            try:
                receipt = await m.submit(
                    jobs.post("maintenance", description, BOUNTY, ASSET, now + JOB_DEADLINE_MS),
                    decision=decision,
                )
            except ActionRefused:
                return
            if not receipt.ok:
                return

    # -- ledger events for the metrics --------------------------------------------------------------

    def _on_job_posted(self, event: LedgerEvent) -> None:
        tool = self.tool_index.get(str(event.get("poster")))
        if tool is None:
            return
        job: bytes = event.get("job")
        self.job_tool[job] = tool
        self.jobs_posted.append((tool, event.time_ms, job))
        self.queues[tool // TOOLS_PER_MAINTAINER].append(job)
        self.tool_state[tool]["job"] = job

    def _on_job_completed(self, event: LedgerEvent) -> None:
        tool = self.job_tool.get(event.get("job"))
        if tool is not None:
            self.tool_state[tool]["evidence"] = event.get("evidence")

    def _on_lease_paid(self, event: LedgerEvent) -> None:
        self.lease_paid += int(event.get("amount", 0))

    def _on_lease_refunded(self, event: LedgerEvent) -> None:
        self.lease_refunded += int(event.get("amount", 0))

    def _on_job_closed(self, event: LedgerEvent) -> None:
        if event.get("job") in self.job_tool:
            self.outcomes[str(event.get("outcome"))] += 1
            self.bounties_paid += int(event.get("paid", 0))

    def _on_custody(self, event: LedgerEvent) -> None:
        self.custody += 1
        if event.get("to") in self.tool_index:
            self.held[str(event.get("to"))] = str(event.get("item_id"))

    def _on_condition(self, event: LedgerEvent) -> None:
        self.conditions[str(event.get("condition"))] += 1

    # -- metrics and report -------------------------------------------------------------------------

    def detection(self) -> dict[str, Any]:
        """Precision and recall of the posted jobs against the injected fault windows."""
        w = self.windows
        first_check = self.start_ms
        last_check = self.end_ms - HOUR_MS
        counted = [
            k for k in range(len(w)) if int(w.start_ms[k]) <= last_check and int(w.end_ms[k]) > first_check
        ]
        hit: set[int] = set()
        true_jobs = 0
        for tool, time_ms, _job in self.jobs_posted:
            match = [
                k
                for k in counted
                if int(w.machine[k]) == tool
                and int(w.start_ms[k]) <= time_ms < int(w.end_ms[k]) + MATCH_AFTER_MS
            ]
            true_jobs += bool(match)
            hit.update(match)
        posted = len(self.jobs_posted)
        return {
            "fault_windows": len(counted),
            "jobs_posted": posted,
            "true_positive_jobs": true_jobs,
            "false_positive_jobs": posted - true_jobs,
            "faults_caught": len(hit),
            "precision": round(true_jobs / posted, 4) if posted else 1.0,
            "recall": round(len(hit) / len(counted), 4) if counted else 1.0,
        }

    def finish(self, ctx: ScenarioContext) -> dict[str, Any]:
        detection = self.detection()
        return {
            "machine_tools": self.n,
            "detector": {
                "policy": detector(self.config.seed).name,
                "model_hash": (detector(self.config.seed).model_hash or b"").hex(),
                "threshold": detector(self.config.seed).threshold,
                "fleet_checks": self.checks,
                "true_positive_rule": "job posted in a fault window or up to 2 h after it ended",
                **detection,
            },
            "jobs": {
                "posted": len(self.jobs_posted),
                "outcomes": dict(sorted(self.outcomes.items())),
                "bounties_paid": self.bounties_paid,
            },
            "leases": {
                "reservations": self.lease_reserved,
                "paid_to_providers": self.lease_paid,
                "refunded": self.lease_refunded,
                "checks_without_compute": self.skipped_checks,
            },
            "parts": {
                "registered": self.parts_registered,
                "custody_transfers": self.custody,
                "conditions": dict(sorted(self.conditions.items())),
            },
        }

    def sections(self, metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
        d = metrics["detector"]
        hours = [[float(h), 0.0] for h in range(self.config.hours)]
        per_hour: Counter[int] = Counter((t - self.start_ms) // HOUR_MS for _, t, _ in self.jobs_posted)
        faults: Counter[int] = Counter()
        for k in range(len(self.windows)):
            for h in range(self.config.hours):
                t = self.start_ms + h * HOUR_MS
                if int(self.windows.start_ms[k]) <= t < int(self.windows.end_ms[k]):
                    faults[h] += 1
        return [
            Section(
                "Predictive maintenance",
                table(
                    [
                        ("detector", f"{d['policy']} (threshold {d['threshold']})"),
                        ("fault windows (ground truth)", d["fault_windows"]),
                        ("jobs posted", d["jobs_posted"]),
                        ("true / false positives", f"{d['true_positive_jobs']} / {d['false_positive_jobs']}"),
                        ("precision", d["precision"]),
                        ("recall", d["recall"]),
                        ("job outcomes", metrics["jobs"]["outcomes"]),
                        ("bounties paid (aut)", metrics["jobs"]["bounties_paid"]),
                    ]
                )
                + line_chart(
                    {
                        "tools in a fault window": [[h[0], faults[int(h[0])]] for h in hours],
                        "jobs posted": [[h[0], per_hour[int(h[0])]] for h in hours],
                    },
                    y_label="tools",
                ),
                "A job is a true positive if posted while its tool is in an injected fault window or up to "
                "2 h after it ended; recall counts the fault windows open at some hourly check.",
            ),
            Section(
                "Compute leases and parts",
                table(
                    [
                        ("lease reservations", metrics["leases"]["reservations"]),
                        ("paid to edge providers (aut)", metrics["leases"]["paid_to_providers"]),
                        ("refunded to tools (aut)", metrics["leases"]["refunded"]),
                        ("spare parts registered", metrics["parts"]["registered"]),
                        ("custody transfers", metrics["parts"]["custody_transfers"]),
                    ]
                )
                + bar_chart(metrics["parts"]["conditions"] or {"installed": 0}, "condition events"),
            ),
        ]
