"""Run a scenario end to end: genesis, chain, virtual time, audit, metrics and report.

::

    from autarky.scenarios.runner import run
    from autarky.scenarios import SimConfig
    result = run("microgrid", SimConfig(machines=100, hours=24, seed=1, out=Path("sim-microgrid-1")))
    result["state_root"], result["conserved"], result["wall_s"]

``wall_s`` is the only non-deterministic figure; everything else is a function of the config.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from autarky.modules.bank import keeper as bank
from autarky.modules.harness import Chain
from autarky.provenance import DecisionStore
from autarky.scenarios import get
from autarky.scenarios.base import HOUR_MS, SimConfig
from autarky.scenarios.genesis import GenesisBuilder
from autarky.scenarios.metrics import Recorder, ledger_checks
from autarky.scenarios.report import render_html, standard_sections, write_report
from autarky.scenarios.runtime import Sim

Progress = Callable[[float, float], None]
"""Called with (simulated hours done, hours in total) after each block."""


def run(name: str, config: SimConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run scenario ``name``; write the report folder if ``config.out``; return the metrics."""
    wall_start = time.perf_counter()
    timings: Counter[str] = Counter()
    scenario = get(name)(config)
    chain_id = f"sim-{name}-{config.seed}"
    builder = GenesisBuilder(name, config.seed, chain_id, config.start_ms - HOUR_MS)
    scenario.build_genesis(builder)
    genesis = builder.build()
    chain = Chain.from_genesis(genesis)
    genesis_supply = bank.supplies(chain.state)
    timings["genesis_s"] = time.perf_counter() - wall_start
    if config.out is not None:
        config.out.mkdir(parents=True, exist_ok=True)
        path = config.out / "decisions.sqlite"
        if path.exists():
            path.unlink()
        store = DecisionStore(path)
    else:
        store = DecisionStore.memory()
    sim = Sim(chain, config.start_ms - HOUR_MS + 1, store)
    sim.actors = builder.actors
    recorder = Recorder(sim, config.start_ms)
    scenario.start(sim, recorder)
    for hour in range(config.hours + 1):
        moment = config.start_ms + hour * HOUR_MS
        sim.at(moment, lambda moment=moment: recorder.sample_wallets(chain, moment))
    end_ms = scenario.end_ms + scenario.tail_ms
    total_h = (end_ms - config.start_ms) / HOUR_MS

    def on_block(time_ms: int) -> None:
        if progress is not None:
            progress(max(0.0, (time_ms - config.start_ms) / HOUR_MS), total_h)

    sim.run_until(end_ms - 1, on_block)
    sim.anchor_all()
    sim.block_at(end_ms)
    sim.run_until(end_ms, on_block)
    store.flush()
    timings["run_s"] = time.perf_counter() - wall_start - timings["genesis_s"]
    checks = ledger_checks(chain, genesis_supply)
    scenario_metrics = scenario.finish(sim, recorder, chain)
    metrics: dict[str, Any] = {
        "scenario": name,
        "machines": config.machines,
        "hours": config.hours,
        "seed": config.seed,
        "accounts": len(builder.actors),
        "height": chain.height,
        "state_root": chain.root.hex(),
        "transactions_submitted": sim.submitted,
        "transactions_committed": sim.committed,
        "refusals": dict(sorted(sim.refused.items())),
        "trades": recorder.trades,
        "traded_units": recorder.traded_units,
        "traded_value": recorder.traded_value,
        "decisions_recorded": sim.decisions_recorded,
        "decisions_anchored": sim.anchored_records,
        "anchor_transactions": sim.anchor_txs,
        "decisions_by_policy": dict(sorted(sim.decisions_by_policy.items())),
        "events": dict(sorted(recorder.counters.items())),
        **checks,
        **scenario_metrics,
    }
    series: dict[str, Any] = {"prices": recorder.prices, **recorder.series}
    metrics["wall_s"] = round(time.perf_counter() - wall_start, 3)
    metrics["timings"] = {k: round(v, 3) for k, v in timings.items()}
    if config.out is not None:
        summary = [
            ("scenario", f"{name}: {scenario.summary}"),
            ("machines / hours / seed", f"{config.machines} / {config.hours} / {config.seed}"),
            ("state root", metrics["state_root"]),
            ("blocks", chain.height),
            ("transactions committed", sim.committed),
            ("transactions refused", sum(sim.refused.values())),
            ("trades", recorder.trades),
            ("decision records (anchored)", f"{sim.decisions_recorded:,} ({sim.anchored_records:,})"),
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
