"""``autarky sim run NAME`` and ``autarky sim list``: whole machine economies on a virtual clock.

The scenarios live in :mod:`autarky.scenarios`; this module only exposes them as commands. Progress
goes to stderr (a bar of simulated hours); ``--json`` prints one JSON object with the run's metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autarky.cli import output

app = typer.Typer(
    help="Simulations: whole machine economies on the real ledger, with agents, on a virtual clock.",
    no_args_is_help=True,
)

SUMMARY_KEYS = (
    "wall_s",
    "transactions_committed",
    "trades",
    "decisions_recorded",
    "decisions_anchored",
    "conserved",
    "escrow_open_locks",
    "invariants_ok",
    "state_root",
)


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Scenario name (see: autarky sim list).")],
    machines: Annotated[int, typer.Option("--machines", min=10, help="Machines in the simulation.")] = 100,
    hours: Annotated[int, typer.Option("--hours", min=1, max=24 * 7, help="Simulated hours.")] = 24,
    seed: Annotated[int, typer.Option("--seed", help="Seed: same seed, same state root.")] = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder (default: ./sim-NAME-SEED).", show_default=False),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object with the metrics.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar on stderr.")] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="A scenario parameter NAME=VALUE (repeatable), e.g. battery_policy=rule for microgrid.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a scenario and write its report (metrics.json, report.html, decisions.sqlite).

    Example:  autarky sim run microgrid --machines 1000 --hours 24 --seed 1 --json
    """
    from autarky.scenarios import SimConfig, get
    from autarky.scenarios.runner import run as run_scenario

    output.set_json_mode(json_out)
    try:
        scenario_class = get(name)
    except KeyError as exc:
        output.error(str(exc.args[0]))
        raise typer.Exit(2) from None
    params = [item.partition("=") for item in param or []]
    if any(not key or not sep for key, sep, _ in params):
        output.error("--param takes NAME=VALUE")
        raise typer.Exit(2)
    folder = out if out is not None else Path(f"sim-{name}-{seed}")
    config = SimConfig(
        machines=machines,
        hours=hours,
        seed=seed,
        out=folder,
        params=tuple((key, value) for key, _, value in params),
    )
    try:
        scenario_class(config)  # refuses unknown parameters and bad values before the run
    except ValueError as exc:
        output.error(str(exc))
        raise typer.Exit(2) from None
    if no_progress:
        metrics = run_scenario(name, config)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn(f"{name} · {machines} machines"),
            BarColumn(),
            TextColumn("{task.completed:.1f}/{task.total:.0f} h simulated"),
            TimeElapsedColumn(),
            console=output.stderr,
            transient=json_out,
        ) as bar:
            task = bar.add_task("sim", total=hours)

            def progress(done: float, total: float) -> None:
                bar.update(task, completed=min(done, hours), total=hours)

            metrics = run_scenario(name, config, progress)
    metrics["report"] = str(folder / "report.html")

    def human() -> None:
        for key in SUMMARY_KEYS:
            output.stdout.print(f"{key:24} {metrics.get(key)}")
        output.stdout.print(f"{'report':24} {metrics['report']}")

    output.emit(metrics, human)
    if not metrics["conserved"] or not metrics["invariants_ok"]:
        raise typer.Exit(1)


@app.command("list")
def list_scenarios(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The scenarios autarky sim run knows.

    Example:  autarky sim list
    """
    from autarky.scenarios import available

    output.set_json_mode(json_out)
    scenarios = {name: cls.summary for name, cls in available().items()}

    def human() -> None:
        for scenario_name, summary in scenarios.items():
            output.stdout.print(f"{scenario_name:12} {summary}")

    output.emit({"scenarios": scenarios}, human)


__all__ = ["app"]
