"""Run a scenario end to end: genesis, chain, agents on virtual time, audit, metrics and report.

::

    from autarky.scenarios.runner import run
    from autarky.scenarios import SimConfig
    result = run("microgrid", SimConfig(machines=100, hours=24, seed=1, out=Path("sim-microgrid-1")))
    result["state_root"], result["conserved"], result["wall_s"]

The machines are :class:`autarky.agent.Machine` s on an :class:`autarky.agent.InProcessLedger` over
the real executor and modules, run by a :class:`autarky.agent.VirtualEventLoop`: when every machine
waits, the ledger executes one block with everything pending; the runner adds a block at every
multiple of the scenario's ``block_every_ms`` (end_block work); then virtual time jumps to the next
timer. Signatures are verified by a :class:`~autarky.node.admission.PrefetchVerifier` in one worker
process (the second core) while the machines go on. At the end every machine anchors its pending
decision records, and a few sampled transactions are walked back to their models with
:func:`autarky.provenance.explain` (metric ``explained``).

``wall_s`` and ``timings`` are the only non-deterministic figures; everything else is a function
of the config.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from autarky.agent import Fleet, InProcessBus, InProcessLedger, VirtualClock, VirtualEventLoop
from autarky.ledger.block import Event, Receipt
from autarky.modules.bank import keeper as bank
from autarky.modules.harness import Chain
from autarky.node.admission import PrefetchVerifier, exit_with_parent
from autarky.node.commit_worker import RootWorker
from autarky.node.pipe_executor import PipeExecutor
from autarky.provenance import ChainLedgerView, DecisionStore, explain
from autarky.scenarios import get
from autarky.scenarios.base import HOUR_MS, Scenario, ScenarioContext, ScenarioMachine, SimConfig
from autarky.scenarios.genesis import GenesisBuilder
from autarky.scenarios.metrics import Recorder, ledger_checks
from autarky.scenarios.report import render_html, standard_sections, write_report

Progress = Callable[[float, float], None]
"""Called with (simulated hours done, hours in total) after each block."""

EXPLAIN_PER_POLICY = 2
"""Transactions per model-backed decision policy that ``explain`` walks at the end of a run."""


def _one_worker() -> ProcessPoolExecutor:
    """A pool of one spawned worker process that dies with this one."""
    return ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent
    )


def run(name: str, config: SimConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run scenario ``name``; write the report folder if ``config.out``; return the metrics."""
    wall_start = time.perf_counter()
    timings: dict[str, float] = {}
    scenario = get(name)(config)
    config = scenario.config  # a scenario may fix its own start time
    chain_id = f"sim-{name}-{config.seed}"
    builder = GenesisBuilder(name, config.seed, chain_id, config.start_ms - scenario.setup_ms)
    scenario.build_genesis(builder)
    chain = Chain.from_genesis(builder.build())
    genesis_supply = bank.supplies(chain.state)
    if config.out is not None:
        config.out.mkdir(parents=True, exist_ok=True)
        path = config.out / "decisions.sqlite"
        if path.exists():
            path.unlink()
        store = DecisionStore(path)
    else:
        store = DecisionStore.memory()
    recorder = Recorder(chain, config.start_ms, builder.actors)
    end_ms = scenario.end_ms + scenario.tail_ms
    total_h = (end_ms - config.start_ms) / HOUR_MS

    def on_block(ledger: Any, receipts: tuple[Receipt, ...], end_events: tuple[Event, ...]) -> None:
        recorder.on_block(ledger, receipts, end_events)
        # What is alive after a block mostly stays alive (state, decision records, machine logs):
        # move it out of the cyclic collector's reach too, or each full collection walks all of
        # it again (at 3,000 machines 23 full collections took 10 of 139 s). Cyclic garbage
        # frozen here is kept until the run ends; there is little of it.
        gc.freeze()
        if progress is not None:
            done = (chain.tip_time_ms - config.start_ms) / HOUR_MS
            progress(max(0.0, done), total_h)

    # Signatures: small batches, sent often, over a pipe with no threads in this process.
    pool = PipeExecutor()
    # A second worker for the scenario's own pure work (the battery LPs); signatures keep theirs.
    workers = _one_worker()
    # State roots are hashed one block behind in a second worker (node/commit_worker.py): the
    # headers are the same, sealed when read (the summary's state_root).
    roots = RootWorker(sorted(chain.data.items()))
    chain.defer_roots(roots)
    thresholds = gc.get_threshold()
    try:
        ledger = InProcessLedger(chain, on_block=on_block, verifier=PrefetchVerifier(pool))
        ctx = ScenarioContext(
            config,
            chain,
            ledger,
            store,
            recorder,
            actors=dict(builder.by_name),
            bus=InProcessBus(ledger, seed=f"{chain_id}/bus".encode()),
            workers=workers,
        )
        scenario.setup(ctx)
        # The world, the genesis state and the machines live for the whole run: keep the cyclic
        # garbage collector from walking them again and again (at 1,000 machines full collections
        # took 4 of 58 s), and collect the young generation less often: every 200,000 new
        # containers instead of 700 (at 1,000 machines young collections took 2.1 s with 5,000,
        # 0.6 s with 200,000; most young objects die by reference counting before one is due).
        gc.collect()
        gc.freeze()
        gc.set_threshold(200_000, thresholds[1], thresholds[2])
        timings["setup_s"] = time.perf_counter() - wall_start
        loop = VirtualEventLoop(config.start_ms - scenario.setup_ms + 1_000)
        try:
            loop.run_until_complete(_drive(ctx, scenario, loop, end_ms))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        chain.headers  # seal every header while the root worker is up  # noqa: B018
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        pool.shutdown(wait=True, cancel_futures=True)
        workers.shutdown(wait=True, cancel_futures=True)
        roots.close()
    store.flush()
    timings["run_s"] = time.perf_counter() - wall_start - timings["setup_s"]
    checks = ledger_checks(chain, genesis_supply)
    scenario_metrics = scenario.finish(ctx)
    explained = _explain_sample(ctx)
    timings["finish_s"] = time.perf_counter() - wall_start - timings["setup_s"] - timings["run_s"]
    machines = ctx.machines
    anchored = sum(m.decisions.anchored for m in machines if m.decisions is not None)
    recorded = sum(m.decisions.next_seq for m in machines if m.decisions is not None)
    failures = sum(m.failures for m in machines)
    metrics: dict[str, Any] = {
        "scenario": name,
        "machines": config.machines,
        "hours": config.hours,
        "seed": config.seed,
        "params": dict(config.params),
        "accounts": len(builder.actors),
        "agents": len(machines),
        "height": chain.height,
        "state_root": chain.root.hex(),
        "transactions_committed": recorder.committed,
        "refusals": dict(sorted(recorder.refused.items())),
        "prechecks_refused": dict(sorted(recorder.prechecks_refused.items())),
        "handler_failures": failures,
        "trades": recorder.trades,
        "traded_units": recorder.traded_units,
        "traded_value": recorder.traded_value,
        "decisions_recorded": recorded,
        "decisions_anchored": anchored,
        "anchor_transactions": int(recorder.counters.get("provenance.decisions_anchored", 0)),
        "decisions_by_policy": dict(sorted(recorder.decisions_by_policy.items())),
        "explained": explained["ok"],
        "explained_txs": explained["txs"],
        "explain_failures": explained["failures"],
        "events": dict(sorted(recorder.counters.items())),
        **checks,
        **scenario_metrics,
    }
    metrics["transactions_submitted"] = recorder.committed + sum(recorder.refused.values())
    series: dict[str, Any] = {"prices": recorder.prices, **recorder.series}
    metrics["wall_s"] = round(time.perf_counter() - wall_start, 3)
    metrics["timings"] = {k: round(v, 3) for k, v in timings.items()}
    if config.out is not None:
        refused = sum(recorder.refused.values())
        summary = [
            ("scenario", f"{name}: {scenario.summary}"),
            ("machines / hours / seed", f"{config.machines} / {config.hours} / {config.seed}"),
            *([("parameters", " ".join(f"{k}={v}" for k, v in config.params))] if config.params else []),
            ("state root", metrics["state_root"]),
            ("blocks", chain.height),
            ("transactions committed", recorder.committed),
            (
                "transactions refused (ledger / pre-check)",
                f"{refused} / {sum(recorder.prechecks_refused.values())}",
            ),
            ("trades", recorder.trades),
            ("decision records (anchored)", f"{recorded:,} ({anchored:,})"),
            (
                "sampled transactions explained",
                f"{explained['txs']} ({'all checks ok' if explained['ok'] else 'FAILED'})",
            ),
            ("supply conserved", "yes" if checks["conserved"] else "NO"),
            ("escrow open at the end", checks["escrow_open_locks"]),
            ("ledger invariants", "all hold" if checks["invariants_ok"] else "VIOLATED"),
            ("wall time (s)", metrics["wall_s"]),
        ]
        sections = scenario.sections(metrics, series) + standard_sections(metrics, series)
        html = render_html(f"Autarky simulation: {name}, seed {config.seed}", summary, sections)
        write_report(config.out, {**metrics, "series": series}, html)
    store.close()
    return metrics


async def _drive(ctx: ScenarioContext, scenario: Scenario, loop: VirtualEventLoop, end_ms: int) -> None:
    """Start every machine, run to ``end_ms`` with scheduled blocks, anchor, stop."""
    ledger = ctx.ledger
    ledger.attach(loop)
    period = scenario.block_every_ms
    wanted = False

    def scheduled_block() -> bool:  # an idle hook after the ledger's: only when nothing is pending
        nonlocal wanted
        if not wanted:
            return False
        wanted = False
        if ledger.chain.tip_time_ms >= loop.now_ms():
            return False  # a block at this moment was already produced
        ledger.produce_block()
        return True

    async def ticker(every: int) -> None:
        nonlocal wanted
        while True:
            now = loop.now_ms()
            await asyncio.sleep(((now // every + 1) * every - now) / 1000)
            wanted = True

    loop.add_idle_hook(scheduled_block)
    ticking = loop.create_task(ticker(period)) if period else None
    clock = VirtualClock(loop)
    fleet = Fleet(ctx.machines)
    fleet.clock = clock
    for machine in ctx.machines:
        machine.clock = clock
    try:
        # Concurrently, so the set-up transactions of on_start handlers share blocks.
        await asyncio.gather(*(machine.start() for machine in ctx.machines))
        await _sleep_until(loop, end_ms - 1)
        for _ in range(3):  # anchor every machine's pending records (one batch each, 4096 max)
            due = [m for m in ctx.machines if m.decisions is not None and m.decisions.pending_count]
            if not due:
                break
            await asyncio.gather(*(m.anchor() for m in due))
        await _sleep_until(loop, end_ms)
        if ledger.pending or ledger.chain.tip_time_ms < end_ms:
            ledger.produce_block()
    finally:
        if ticking is not None:
            ticking.cancel()
        await fleet.stop()
        loop.remove_idle_hook(scheduled_block)
        ledger.detach()


async def _sleep_until(loop: VirtualEventLoop, time_ms: int) -> None:
    delay = time_ms - loop.now_ms()
    if delay > 0:
        await asyncio.sleep(delay / 1000)


def _explain_sample(ctx: ScenarioContext) -> dict[str, Any]:
    """Walk a few sampled transactions (``EXPLAIN_PER_POLICY`` per model-backed policy) back to
    their decision, batch, model, card and training data; all checks must pass."""
    sample: Sequence[bytes] = ctx.recorder.explain_sample
    if not sample:
        return {"ok": None, "txs": 0, "failures": []}
    view = ChainLedgerView(ctx.chain)
    failures: list[dict[str, Any]] = []
    for tx_hash in sample:
        result = explain(tx_hash, ctx.store, view, ctx.model_dir)
        bad = [check for check in result.checks if check.ok is False]
        if bad:
            failures.append({"tx": tx_hash.hex(), "checks": [f"{c.name}: {c.detail}" for c in bad]})
    return {"ok": not failures, "txs": len(sample), "failures": failures[:5]}


__all__ = ["EXPLAIN_PER_POLICY", "Progress", "ScenarioMachine", "run"]
