"""``autarky up``: the main job. One command: an embedded node, the API and dashboard, and a demo fleet.

Nothing to set up: the first run creates a demo workspace (``.autarky/demo``) with a demo chain, the
fleet's keys and its trained models; later runs reuse it (``--fresh`` starts over). The fleet (see
:mod:`autarky.demo.fleet` and :mod:`autarky.demo.agents`) runs as autonomous agents over the HTTP
API: they forecast, plan, bid and ask, pay, and record every decision (``decisions.sqlite`` in the
workspace, anchored on chain); their pre-check refuses, before signing, what their guardrails would
refuse. The dashboard's ``/agents`` page shows them live (this process hands the page its activity
feed). A live summary refreshes until Ctrl-C; with ``--duration`` the run ends by itself, and with
``--json`` it prints one JSON object at the end (progress goes to stderr).

``--engine nats`` runs the same demo on a local cluster instead (:mod:`autarky.cluster`): three
nats-servers and three node processes, every node a validator, in ``<workspace>/cluster`` (reused on
the next run, like the embedded ledger). The fleet submits through node 0's API (all of a sender's
transactions go to one node); the dashboard is node 0's. The summary then also says where every
node stands and whether all agree on the state root.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.config import Config
from autarky.demo.workspace import DEFAULT_WORKSPACE, Workspace, open_workspace, remove_workspace
from autarky.node.node import Node

if TYPE_CHECKING:
    from autarky.cluster import LocalAutarkyCluster
    from autarky.demo.fleet import Fleet
    from autarky.provenance import DecisionStore
    from autarky.web.client import AutarkyClient

DEMO_HOST = "127.0.0.1"
PROGRESS_EVERY_S = 5.0
CLUSTER_DIR = "cluster"
CLUSTER_NODES = 3
CLUSTER_SERVERS = 3
CLUSTER_START_TIMEOUT_S = 90.0


class EngineChoice(enum.StrEnum):
    embedded = "embedded"
    nats = "nats"


def up(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Demo workspace folder (node data, demo keys).")
    ] = DEFAULT_WORKSPACE,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Delete the demo workspace and start a new chain.")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="API and dashboard port; 0 picks a free one (default: api.port)."
        ),
    ] = None,
    rate: Annotated[
        float,
        typer.Option("--rate", min=0.1, max=500, help="Transactions per second, the whole fleet together."),
    ] = 4.0,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.0, help="Stop after this many seconds (default: Ctrl-C)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed the fleet's choices, for a repeatable run.")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary at the end; progress goes to stderr.")
    ] = False,
    engine: Annotated[
        EngineChoice,
        typer.Option(
            "--engine",
            help=(
                "embedded: one node in this process. nats: a local cluster of 3 nats-servers and 3 node "
                "processes (in <workspace>/cluster); --port is then node 0's API port."
            ),
        ),
    ] = EngineChoice.embedded,
) -> None:
    """Run an embedded node, the API and dashboard on 127.0.0.1, and a fleet of machine agents on it.

    The fleet, all owned by a site operator who set their guardrails: a solar inverter that forecasts
    its output and asks it in the energy auction, two households that forecast their load and bid,
    a home battery that plans with an LP, an EV charger paid by a car, a weather sensor and a farm
    controller that buys weather data when its soil sensor is not enough. Every decision is recorded
    and anchored (autarky decisions explain TX); the dashboard's /agents page shows them live. Their
    keys are demo keys stored UNENCRYPTED in the workspace. With --engine nats the same fleet trades
    on a local 3-node cluster on the nats engine.

    Example:  autarky up                          (Ctrl-C to stop)
    Example:  autarky up --duration 20 --json --port 0
    Example:  autarky up --engine nats            (3 nats-servers, 3 nodes; dashboard of node 0)
    """
    from autarky.demo.fleet import NAMES, OWNER  # loads the web client (FastAPI) only for this command

    output.set_json_mode(json_out)
    config = current().config()
    if fresh:
        remove_workspace(data_dir)
    workspace = open_workspace(data_dir, NAMES, OWNER, log=output.note)
    chosen_port = config.api.port if port is None else port
    if engine is EngineChoice.nats:
        summary = run(_run_cluster(config, workspace, chosen_port, rate, duration, seed))
    else:
        summary = run(_run(config, workspace, DEMO_HOST, chosen_port, rate, duration, seed))
    output.emit(summary, lambda: _print_summary(summary))


async def _run(
    config: Config,
    workspace: Workspace,
    host: str,
    port: int,
    rate: float,
    duration: float | None,
    seed: int | None,
) -> dict[str, Any]:
    from autarky.web.client import AutarkyClient
    from autarky.web.server import start_api

    # The embedded demo is embedded whatever node.engine says (--engine nats is the cluster demo).
    embedded = config.model_copy(update={"node": config.node.model_copy(update={"engine": "embedded"})})
    settings = dataclasses.replace(embedded.node_settings(), data_dir=workspace.node_dir)
    node = await Node.open(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = None
    started = time.monotonic()
    try:
        await node.start()
        try:
            server = await start_api(
                node, host, port, config.api.api_key, max_body_bytes=config.api.max_body_bytes
            )
        except OSError as exc:
            raise UsageProblem(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another `autarky up` or node "
                "running? Pass --port 0 for a free port, or --port N"
            ) from exc
        dashboard = f"{server.url}/"
        _announce(workspace, dashboard, server.url)
        async with (
            AutarkyClient(server.url, api_key=config.api.api_key) as client,
            _store(workspace) as store,
        ):
            fleet = _fleet(client, workspace, store, rate, seed)
            server.app.state.agents = fleet.activity  # the dashboard's /agents page reads it
            registered = await fleet.bootstrap()
            if registered:
                output.note(f"registered {registered} machines on the ledger")
            start_height = node.height
            if duration is not None:
                loop.call_later(duration, stop.set)
            runner = asyncio.create_task(fleet.run(stop), name="demo-fleet")
            await _watch(fleet, lambda: node.height, runner, dashboard, workspace, start_height)
            await runner
            status = await client.status()
        return _summary(
            fleet, workspace, dashboard, server.url, status, start_height, time.monotonic() - started
        )
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if server is not None:
            await server.stop()
        await node.stop()
        output.note("stopped cleanly")


async def _run_cluster(
    config: Config,
    workspace: Workspace,
    port: int,
    rate: float,
    duration: float | None,
    seed: int | None,
) -> dict[str, Any]:
    """The demo on a local nats cluster: start it, run the fleet against node 0, stop everything."""
    from autarky.cluster import ClusterError
    from autarky.engines.nats_server import NatsOpsError
    from autarky.web.client import AutarkyClient

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    cluster: LocalAutarkyCluster | None = None
    try:
        try:
            cluster = _open_cluster(workspace, port)
            output.note(
                f"starting {len(cluster.nats.servers)} nats-servers and {len(cluster.nodes)} nodes in "
                f"{cluster.base_dir}…"
            )
            if not await _start_unless_stopped(cluster, stop):
                output.error("interrupted while the cluster was starting; everything it started is stopped")
                raise typer.Exit(130)
        except (ClusterError, NatsOpsError) as exc:
            raise UsageProblem(
                f"cannot start the demo cluster: {exc}"
                + (" (pass --port 0 for a free port)" if "cannot listen" in str(exc) else "")
            ) from exc
        api = cluster.api_urls[0]
        dashboard = f"{api}/"
        _announce(workspace, dashboard, api)
        _announce_cluster(cluster)
        async with AutarkyClient(api) as client, _store(workspace) as store:
            fleet = _fleet(client, workspace, store, rate, seed)
            registered = await fleet.bootstrap()
            if registered:
                output.note(f"registered {registered} machines on the ledger")
            heights = _HeightProbe(int((await client.status())["height"]))
            start_height = heights.height
            probe = asyncio.create_task(heights.follow(client), name="demo-height")
            if duration is not None:
                loop.call_later(duration, stop.set)
            runner = asyncio.create_task(fleet.run(stop), name="demo-fleet")
            try:
                await _watch(fleet, lambda: heights.height, runner, dashboard, workspace, start_height)
                await runner
            finally:
                probe.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await probe
            try:
                agreed: dict[str, Any] = await cluster.wait_converged(30)
            except ClusterError as exc:
                output.warn(str(exc))
                agreed = {"error": str(exc)}
            status = await client.status()
            nodes = await cluster.status()
        summary = _summary(fleet, workspace, dashboard, api, status, start_height, time.monotonic() - started)
        summary.update(_cluster_summary(cluster, nodes, agreed))
        return summary
    finally:
        if cluster is not None:
            output.note("stopping the cluster: nodes first, then the nats-servers…")
            await asyncio.to_thread(cluster.stop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        output.note("stopped cleanly")


def _fleet(
    client: AutarkyClient, workspace: Workspace, store: DecisionStore, rate: float, seed: int | None
) -> Fleet:
    """The demo fleet with the workspace's models and decision store, and its activity feed."""
    from autarky.demo.activity import Activity
    from autarky.demo.fleet import Fleet
    from autarky.demo.models import ensure_models

    models = ensure_models(workspace.root, output.note)
    activity = Activity(store=store, models_dir=workspace.models_dir)
    return Fleet(
        client,
        workspace.keys,
        rate=rate,
        seed=seed,
        log=output.note,
        models=models,
        store=store,
        activity=activity,
    )


@contextlib.asynccontextmanager
async def _store(workspace: Workspace) -> Any:
    from autarky.provenance import DecisionStore

    store = DecisionStore(workspace.decisions_path)
    try:
        yield store
    finally:
        store.close()


def _open_cluster(workspace: Workspace, port: int) -> LocalAutarkyCluster:
    """The workspace's cluster, created on first use with the demo genesis (operator funded)."""
    from autarky.cluster import LocalAutarkyCluster
    from autarky.cluster.local import CLUSTER_FILE
    from autarky.demo.economy import economy_genesis
    from autarky.demo.fleet import OWNER
    from autarky.demo.workspace import OWNER_SUPPLY
    from autarky.node.genesis import DEFAULT_ASSET

    base_dir = workspace.root / CLUSTER_DIR
    api_ports = [port] if port else []
    if (base_dir / CLUSTER_FILE).exists():
        return LocalAutarkyCluster.open(base_dir, fresh_ports=True, api_ports=api_ports)
    owner = workspace.did(OWNER)
    return LocalAutarkyCluster.create(
        base_dir,
        CLUSTER_NODES,
        CLUSTER_SERVERS,
        chain_id=workspace.chain_id,
        genesis_extra_allocations=[(owner, DEFAULT_ASSET, OWNER_SUPPLY)],
        genesis_identities=[{"did": owner, "kind": "operator", "metadata": {"name": OWNER}}],
        genesis_time_ms=workspace.created_ms,
        api_ports=api_ports,
        genesis_modules=economy_genesis(),
    )


async def _start_unless_stopped(cluster: LocalAutarkyCluster, stop: asyncio.Event) -> bool:
    """Start the cluster; False (everything stopped again) if Ctrl-C or SIGTERM came first."""
    starting = asyncio.create_task(cluster.start(CLUSTER_START_TIMEOUT_S), name="demo-cluster-start")
    signalled = asyncio.create_task(stop.wait(), name="demo-cluster-signal")
    await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()  # start() stops whatever it started before the cancellation propagates
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return False
    signalled.cancel()
    starting.result()
    return True


class _HeightProbe:
    """Node 0's height, polled through the API (the nodes run in other processes)."""

    def __init__(self, height: int) -> None:
        self.height = height

    async def follow(self, client: AutarkyClient) -> None:
        from autarky.web.client import ClientError

        while True:
            with contextlib.suppress(ClientError):
                self.height = int((await client.status())["height"])
            await asyncio.sleep(0.5)


def _announce_cluster(cluster: LocalAutarkyCluster) -> None:
    lines = [
        f"  engine nats: {len(cluster.nodes)} nodes, {len(cluster.nats.servers)} nats-servers, "
        f"data in {cluster.base_dir}"
    ]
    lines += [f"  node {node.index} API {node.api_url}" for node in cluster.nodes]
    lines += [f"  NATS {server.name} {server.url}" for server in cluster.nats.servers]
    lines.append(f"  try: autarky cluster status --dir {cluster.base_dir}")
    for line in lines:
        if output.json_mode() or not sys.stdout.isatty():
            output.note(line)
        else:
            output.stdout.print(Text(line))


def _cluster_summary(
    cluster: LocalAutarkyCluster, nodes: list[dict[str, Any]], agreed: dict[str, Any]
) -> dict[str, Any]:
    return {
        "engine": "nats",
        "cluster_dir": str(cluster.base_dir),
        "converged": agreed,
        "nodes": [
            {
                "index": entry["index"],
                "api_url": entry["api_url"],
                "height": entry.get("height"),
                "state_root": entry.get("state_root"),
                "final_height": entry.get("final_height"),
                "fault": entry.get("fault"),
                **({"error": entry["error"]} if "error" in entry else {}),
            }
            for entry in nodes
        ],
        "nats_servers": cluster.server_urls,
    }


def _workspace_state(workspace: Workspace) -> str:
    return "new chain" if workspace.created_now else "reused; --fresh to start over"


def _announce(workspace: Workspace, dashboard: str, api: str) -> None:
    lines = [
        f"Autarky demo running: dashboard {dashboard}",
        f"  API {api}/api/v1 (OpenAPI reference at {api}/docs)",
        f"  workspace {workspace.root} ({_workspace_state(workspace)})",
        f"  demo keys in {workspace.keys_dir} are INSECURE DEMO KEYS stored unencrypted",
        f"  try: autarky --node {api} --keys-dir {workspace.keys_dir} wallet balance car",
    ]
    if output.json_mode() or not sys.stdout.isatty():
        for line in lines:
            output.note(line)
    else:
        for line in lines:
            output.stdout.print(Text(line))


async def _watch(
    fleet: Fleet,
    height: Callable[[], int],
    runner: asyncio.Task[None],
    dashboard: str,
    workspace: Workspace,
    start_height: int,
) -> None:
    """Show progress until the fleet stops: a live table on a terminal, else a line every few seconds."""
    if not output.json_mode() and output.stdout.is_terminal:
        with Live(
            _render(fleet, height(), dashboard, workspace, start_height),
            console=output.stdout,
            refresh_per_second=4,
            transient=False,
        ) as live:
            while not runner.done():
                await asyncio.wait({runner}, timeout=0.5)
                live.update(_render(fleet, height(), dashboard, workspace, start_height))
        return
    while not runner.done():
        await asyncio.wait({runner}, timeout=PROGRESS_EVERY_S)
        feed = fleet.activity
        codes = ", ".join(f"{code} {count}" for code, count in feed.refusal_codes.most_common(3)) or "none"
        output.note(
            f"height {height()}: {feed.committed} committed, {feed.failed} failed, "
            f"{feed.refused} refused before signing ({codes}), "
            f"{feed.decisions} decisions recorded"
        )


def _render(fleet: Fleet, height: int, dashboard: str, workspace: Workspace, start_height: int) -> Group:
    from autarky.demo.fleet import ASSET, NAMES

    feed = fleet.activity
    elapsed = max(time.monotonic() - feed.started, 0.001)
    header = Text.assemble(
        ("Dashboard ", "bold"),
        (dashboard, "bold cyan underline"),
        ("  machines deciding live: ", "dim"),
        (f"{dashboard}agents", "cyan underline"),
        "\n",
        f"chain {workspace.chain_id} · height {height} · ",
        f"{height - start_height} blocks this run · ",
        (f"{feed.committed} committed", "green"),
        " · ",
        (f"{feed.refused} refused before signing", "red" if feed.refused else ""),
        f" · {feed.decisions} decisions recorded ({feed.anchored} anchored)",
        f" · {feed.committed / elapsed:.1f} tx/s",
    )
    table = Table(expand=True, box=None, header_style="bold")
    table.add_column("machine")
    table.add_column("kind", style="dim")
    table.add_column(f"balance ({ASSET})", justify="right")
    table.add_column("ok", justify="right", style="green")
    table.add_column("refused", justify="right", style="red")
    table.add_column("decisions", justify="right", style="cyan")
    table.add_column("last")
    for name in NAMES:
        machine = feed.machines.get(name)
        table.add_row(
            name,
            machine.kind if machine else "",
            output.fmt_amount(fleet.balances.get(name, 0)),
            str(machine.committed if machine else 0),
            str(machine.refused if machine else 0),
            str(machine.decisions if machine else 0),
            Text(machine.last if machine else "", overflow="ellipsis", no_wrap=True),
        )
    codes = " · ".join(f"{code} {count}" for code, count in feed.refusal_codes.most_common()) or "none yet"
    recent = Table.grid(padding=(0, 1))
    styles = {"ok": "green", "refused": "red", "failed": "yellow"}
    for event in list(feed.recent)[-5:]:
        recent.add_row(
            f"{event['at_s']:6.1f}s",
            event["machine"],
            Text(event["text"], style=styles.get(event["outcome"], "")),
        )
    footer = Text(
        f"Refused before signing (never signed), by code: {codes}\n"
        f"Ctrl-C to stop · demo keys (unencrypted) in {workspace.keys_dir} · "
        f"autarky decisions explain TX --store {workspace.decisions_path}",
        style="dim",
    )
    return Group(
        Panel(header, title="Autarky demo: a microgrid site of machine agents", border_style="cyan"),
        table,
        recent,
        footer,
    )


def _summary(
    fleet: Fleet,
    workspace: Workspace,
    dashboard: str,
    api: str,
    status: dict[str, Any],
    start_height: int,
    seconds: float,
) -> dict[str, Any]:
    from autarky.demo.fleet import MACHINES, OWNER

    feed = fleet.activity
    machines = []
    for spec in MACHINES:
        machine = feed.machines[spec.name]
        machines.append(
            {
                "name": spec.name,
                "did": fleet.did(spec.name),
                "kind": spec.kind,
                "role": spec.role,
                "balance": fleet.balances.get(spec.name, 0),
                "committed": machine.committed,
                "failed": machine.failed,
                "refused_before_signing": machine.refused,
                "decisions_recorded": machine.decisions,
            }
        )
    operator = feed.machines[OWNER]
    return {
        "chain_id": status["chain_id"],
        "dashboard_url": dashboard,
        "agents_url": f"{dashboard}agents",
        "api_url": f"{api}/api/v1",
        "height": status["height"],
        "blocks": status["height"] - start_height,
        "state_root": status["state_root"],
        "transactions_committed": feed.committed,
        "transactions_failed": feed.failed,
        "failures_by_code": dict(feed.failure_codes.most_common()),
        "refused_before_signing": feed.refused,
        "refusals_by_code": dict(feed.refusal_codes.most_common()),
        "decisions_recorded": feed.decisions,
        "decisions_anchored": feed.anchored,
        "machines": machines,
        "operator": {
            "name": OWNER,
            "did": fleet.did(OWNER),
            "balance": fleet.balances.get(OWNER, 0),
            "committed": operator.committed,
            "failed": operator.failed,
            "refused_before_signing": operator.refused,
            "decisions_recorded": operator.decisions,
        },
        "workspace": str(workspace.root),
        "decision_store": str(workspace.decisions_path),
        "models_dir": str(workspace.models_dir),
        "models": {
            name: {"hash": model.model_hash.hex(), "kind": model.kind, "card": model.card_path.name}
            for name, model in fleet.models.items()
        },
        "insecure_demo_keys": str(workspace.keys_dir),
        "duration_s": round(seconds, 1),
    }


def _print_summary(summary: dict[str, Any]) -> None:
    out = output.stdout
    out.print(
        f"\n[bold]Demo stopped[/] at height {summary['height']} ({summary['blocks']} blocks this run): "
        f"[green]{summary['transactions_committed']} committed[/], "
        f"{summary['transactions_failed']} failed on the ledger, "
        f"[red]{summary['refused_before_signing']} refused before signing[/], "
        f"{summary['decisions_recorded']} decisions recorded ({summary['decisions_anchored']} anchored)"
    )
    for code, count in summary["refusals_by_code"].items():
        out.print(f"  refused {count:>4} × {code} (never signed)")
    for code, count in summary["failures_by_code"].items():
        out.print(f"  failed  {count:>4} × {code}")
    out.print(f"  state root {summary['state_root']}")
    out.print(f"  decisions in {summary['decision_store']}: autarky decisions explain TX_HASH")
    out.print(
        f"  workspace {summary['workspace']} (run `autarky up` again to continue, --fresh to start over)"
    )
