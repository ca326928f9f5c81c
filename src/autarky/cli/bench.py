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
    help=(
        "Benchmarks: ledger throughput and latency, state commitment, crash loop, nats cluster, M2M, "
        "energy auction."
    ),
    no_args_is_help=True,
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


@app.command("cluster")
def cluster(
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Autarky nodes (each its own process).")] = 3,
    transfers: Annotated[
        int | None,
        typer.Option(
            "--transfers",
            min=1,
            help="Transfers to submit (default 20,000; with --fault 10,000, the R1 figure).",
            show_default=False,
        ),
    ] = None,
    fault: Annotated[
        str | None,
        typer.Option(
            "--fault",
            help="Inject a fault while submitting: kill-server, kill-node, restart-all or pause-server.",
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=1, help="With --fault: transfers offered per second.")
    ] = 500.0,
    accounts: Annotated[int, typer.Option("--accounts", min=2, help="Sending accounts.")] = 2_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the accounts' keys.")] = 1,
    latency_s: Annotated[float, typer.Option("--latency-seconds", min=0.5, help="Latency phase, s.")] = 5.0,
    latency_rate: Annotated[
        float | None,
        typer.Option(
            "--latency-rate",
            min=1,
            help="Transfers/s offered in the latency phase (default: half the measured peak).",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Keep the cluster (servers, nodes, logs) here (default: a temporary folder)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The nats engine on a local 3-server cluster, through the HTTP API (P3, R1).

    Without --fault: the embedded engine's transfers/s, then the cluster's
    (committed, and final, on every node), their ratio (target >= 0.4) and
    p50/p99 submit-to-final latency at half the cluster's rate (p99 < 500 ms).

    With --fault: transfers offered at --rate while the stream leader's
    nats-server is killed (kill-server) or paused (pause-server), the node
    cutting blocks is killed (kill-node), or every server and node is killed
    (restart-all), each then brought back; clients retry on errors. Reports
    acknowledged, lost (must be 0), applied_twice (must be 0), conserved and
    roots_equal (must be true).

    Example:  autarky bench cluster --nodes 3 --json

    Example:  autarky bench cluster --nodes 3 --fault kill-server --json

    Example:  autarky bench cluster --fault kill-node --transfers 2000 --dir /tmp/bc
    """
    from autarky.bench.cluster import FAULTS, ClusterBenchError, run_cluster_bench
    from autarky.cli.errors import OperationFailed
    from autarky.cluster.local import ClusterError
    from autarky.engines.nats_server import NatsOpsError
    from autarky.web.client import ClientError

    if fault is not None and fault not in FAULTS:
        raise typer.BadParameter(f"{fault!r}: choose one of {', '.join(FAULTS)}", param_hint="--fault")
    output.set_json_mode(json_out)
    what = "throughput and latency" if fault is None else f"fault {fault}"
    output.note(f"running the cluster benchmark ({what}; one to three minutes), progress on stderr…")
    try:
        report = run_cluster_bench(
            nodes,
            transfers,
            fault,
            seed,
            data_dir,
            accounts=accounts,
            rate=rate,
            latency_s=latency_s,
            latency_rate=latency_rate,
        )
    except (ClusterBenchError, ClusterError, NatsOpsError, ClientError) as exc:
        # A ClientError here comes from one of the bench's own nodes, not from --node: say so.
        raise OperationFailed(f"cluster benchmark failed: {exc}", code="bench.cluster_failed") from exc
    _show(report)


@app.command("messaging")
def messaging(
    messages: Annotated[int, typer.Option("--messages", min=1, help="Round trips to measure.")] = 20_000,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Requests kept in flight by the requester.")
    ] = 64,
    latency_round_trips: Annotated[
        int, typer.Option("--latency-round-trips", min=1, help="Round trips with one in flight, for latency.")
    ] = 1_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the two agents' keys.")] = 1,
    json_out: JsonOpt = False,
) -> None:
    """Signed M2M round trips between two agents over a local nats-server (P9).

    Starts its own nats-server and two agent processes (requester, responder)
    with keys in a cached directory. A round trip: sign a request, send it,
    receive and verify it, sign a reply, receive and verify the reply. Prints
    messages_per_s (signed messages verified per second, both directions;
    target >= 5,000), p50/p99 round-trip ms, and raw Ed25519 verifies/s on one
    core measured in the same run.

    Example:  autarky bench messaging --json

    Example:  autarky bench messaging --messages 2000 --concurrency 16 --json
    """
    from autarky.bench.messaging import MessagingBenchError, run_messaging_bench
    from autarky.cli.errors import OperationFailed
    from autarky.engines.nats_server import NatsOpsError
    from autarky.messaging.errors import MessageError
    from autarky.messaging.transport import TransportError

    output.set_json_mode(json_out)
    output.note(f"running the messaging benchmark ({messages} round trips, {concurrency} in flight)…")
    try:
        report = run_messaging_bench(messages, concurrency, seed, latency_round_trips)
    except (MessagingBenchError, NatsOpsError, TransportError, MessageError) as exc:
        raise OperationFailed(f"messaging benchmark failed: {exc}", code="bench.messaging_failed") from exc
    _show(report)


@app.command("auction")
def auction(
    orders: Annotated[int, typer.Option("--orders", min=1, help="Random orders in the book.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the random book.")] = 1,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Timed runs of clear (median reported).")] = 5,
    json_out: JsonOpt = False,
) -> None:
    """The energy auction (P5): clear a random book and check it against an LP reference.

    Draws ORDERS random bids and asks (seeded), times the ledger's pure
    clearing function (clear_ms: median of --runs; target < 100), solves the
    same book as a welfare-maximising linear program with scipy's HiGHS
    (lp_ms), and reports matches_reference: identical fills and price.

    Example:  autarky bench auction --orders 10000 --json
    """
    from autarky.bench.auction import run_auction_bench
    from autarky.cli.errors import OperationFailed

    output.set_json_mode(json_out)
    output.note(f"clearing {orders} random orders and solving the LP reference…")
    try:
        report = run_auction_bench(orders, seed, runs)
    except RuntimeError as exc:
        raise OperationFailed(f"auction benchmark failed: {exc}", code="bench.auction_failed") from exc
    _show(report)
