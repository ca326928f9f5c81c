"""``autarky bench …``: the project's own benchmarks, each printing its figures (see docs/benchmarks.md).

The measuring code lives in :mod:`autarky.bench`; this module only exposes it as commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from autarky.cli import output

app = typer.Typer(
    help="Benchmarks: ledger throughput and latency, state commitment, crash loop.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _show(document: dict[str, Any]) -> None:
    output.emit(document, lambda: output.stdout.print_json(json.dumps(document)))


@app.command("ledger")
def ledger(
    transfers: Annotated[int, typer.Option("--transfers", min=1, help="Transfers to submit.")] = 30_000,
    accounts: Annotated[int, typer.Option("--accounts", min=2, help="Sending accounts.")] = 3_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for keys and amounts.")] = 1,
    latency_s: Annotated[float, typer.Option("--latency-seconds", min=0.5, help="Latency phase, s.")] = 4.0,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep the ledger here (default: a temporary folder).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Signed transfers per second through a real embedded node, against raw Ed25519 verifies (P1, P2).

    Example:  autarky bench ledger --json
    """
    from autarky.bench.ledger import run_ledger_bench

    output.set_json_mode(json_out)
    output.note("running the ledger benchmark (about a minute)…")
    _show(run_ledger_bench(transfers, accounts, seed, data_dir, latency_s))


@app.command("state")
def state(
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Accounts in the state.")] = 1_000_000,
    changes: Annotated[int, typer.Option("--changes", min=1, help="Keys changed per block.")] = 1_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for keys and values.")] = 1,
    json_out: JsonOpt = False,
) -> None:
    """State commitment over many accounts: root update per block, proof size and verify time (P4).

    Example:  autarky bench state --accounts 1000000 --json
    """
    from autarky.bench.state import run_state_bench

    output.set_json_mode(json_out)
    output.note("running the state benchmark…")
    _show(run_state_bench(accounts, changes, seed))


@app.command("crash")
def crash(
    cycles: Annotated[int, typer.Option("--cycles", min=1, help="Start / kill -9 cycles.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed for kill points and transfers.")] = 1,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep the ledger here (default: a temporary folder).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Crash loop (R2): kill -9 a node at random points while clients submit, then audit the ledger.

    Reports acknowledged, lost (must be 0), applied_twice (must be 0), the SQLite integrity check
    and whether replay from genesis reproduces the live state root.

    Example:  autarky bench crash --cycles 200 --json
    """
    from autarky.bench.crash import run_crash_bench

    output.set_json_mode(json_out)
    output.note(f"running {cycles} crash cycles (about a second each)…")
    _show(run_crash_bench(cycles, seed, data_dir))
