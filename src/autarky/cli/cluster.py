"""``autarky cluster …``: a local cluster on the ``nats`` engine, to try it on one machine.

``cluster up`` creates (or reuses) a cluster directory with :class:`~autarky.cluster.LocalAutarkyCluster`
(nats-servers and node processes on 127.0.0.1, free ports), funds a ``faucet`` demo key in its
genesis, prints every address and runs until Ctrl-C or SIGTERM, then stops every process it started.
``cluster status`` reads ``DIR/cluster.json`` and asks every node and server how it is.

The directory of the last ``cluster up`` is recorded in ``$XDG_STATE_HOME/autarky/last-cluster``
(``~/.local/state/autarky/last-cluster``), so ``cluster status`` needs no ``--dir`` right after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from autarky.cli import output
from autarky.cli.context import run
from autarky.cli.errors import OperationFailed, UsageProblem
from autarky.cluster import ClusterError, LocalAutarkyCluster
from autarky.cluster.local import CLUSTER_FILE
from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import create_keystore, read_public
from autarky.engines.nats_server import NatsOpsError, NatsServerNotFound
from autarky.node.genesis import DEFAULT_ASSET

app = typer.Typer(
    help=(
        "A local cluster on the nats engine (nats-servers and nodes on 127.0.0.1), to try it on one "
        "machine: up, status."
    ),
    no_args_is_help=True,
)

FAUCET = "faucet"
FAUCET_SUPPLY = 10**12
KEYS_DIR = "keys"
STATUS_EVERY_S = 30.0

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _last_cluster_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "autarky" / "last-cluster"


def _record_last(base_dir: Path) -> None:
    path = _last_cluster_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(base_dir) + "\n", encoding="utf-8")


def _recorded_last() -> Path | None:
    try:
        text = _last_cluster_file().read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text else None


def _translate(exc: ClusterError | NatsOpsError) -> Exception:
    if isinstance(exc, NatsServerNotFound):
        return UsageProblem(str(exc), code="cli.nats_server_missing")
    return OperationFailed(f"cluster: {exc}", code="cli.cluster")


# -- up -------------------------------------------------------------------------------------------------


@app.command("up")
def up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=7, help="Node processes (all validators).")] = 3,
    servers: Annotated[
        int, typer.Option("--servers", min=1, max=5, help="nats-server processes (1, 3 or 5 make sense).")
    ] = 3,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas", min=1, max=5, help="Copies of the stream (default: 3, or 1 with one server)."
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help=(
                "Cluster directory; an existing one is started again. Default: a new temporary "
                "directory, removed after a clean stop unless --keep."
            ),
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory (logs, ledgers) after stopping.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1.0, help="Seconds to wait for every server and node to be ready."),
    ] = 60.0,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object (every address, pid and path) once the cluster is ready."
        ),
    ] = False,
) -> None:
    """Start NATS servers and nodes on 127.0.0.1, print their addresses, run until Ctrl-C, stop everything.

    Every node runs the nats engine in its own process, from DIR/node<i>/autarky.toml, logging to
    DIR/node<i>/node.log; every node is a validator. A "faucet" key (an INSECURE DEMO KEY, stored in
    clear in DIR/keys) is funded in the genesis, so you can send transfers at once. Send one sender's
    transactions to one node. Human output: lines "Node <i> API <url> dashboard <url>" and
    "NATS <name> <url> monitor <url>"; with --json, one object when ready, nothing more on stdout.

    Example:  autarky cluster up                      (3 nodes, 3 servers; Ctrl-C to stop)
    Example:  autarky cluster up --nodes 3 --servers 3 --dir ./my-cluster --json
    Example:  autarky --node URL --keys-dir DIR/keys wallet send --from faucet --to DID --amount 100
    """
    output.set_json_mode(json_out)
    if replicas is not None and replicas > servers:
        raise UsageProblem(f"--replicas {replicas} needs at least {replicas} servers (--servers {servers})")
    if replicas == 1 and servers > 1:
        raise UsageProblem("--replicas 1 is for a single server; with several servers use 3 or 5")
    temporary = directory is None
    base_dir = (
        Path(tempfile.mkdtemp(prefix="autarky-cluster-")) if directory is None else directory
    ).resolve()
    try:
        cluster, faucet = _prepare(base_dir, nodes, servers, replicas)
    except (ClusterError, NatsOpsError) as exc:
        if temporary:
            shutil.rmtree(base_dir, ignore_errors=True)
        raise _translate(exc) from exc
    _record_last(base_dir)
    try:
        clean = run(_up(cluster, faucet, timeout))
    except (ClusterError, NatsOpsError) as exc:
        output.note(f"logs and data kept in {base_dir}")
        raise _translate(exc) from exc
    if temporary and not keep and clean:
        shutil.rmtree(base_dir, ignore_errors=True)
        output.note(f"removed the temporary directory {base_dir} (pass --keep to keep it)")
    else:
        output.note(f"data and logs are in {base_dir}; `autarky cluster up --dir {base_dir}` starts it again")


def _prepare(
    base_dir: Path, nodes: int, servers: int, replicas: int | None
) -> tuple[LocalAutarkyCluster, dict[str, str]]:
    """Create the cluster in ``base_dir``, or reopen the one there (refusing one that is running)."""
    keys_dir = base_dir / KEYS_DIR
    keystore = keys_dir / f"{FAUCET}.json"
    if (base_dir / CLUSTER_FILE).exists():
        # Refused (ClusterError) while another program runs this directory: it holds cluster.lock.
        cluster = LocalAutarkyCluster.open(base_dir, fresh_ports=True)
        output.note(
            f"starting the existing cluster in {base_dir} again ({len(cluster.nodes)} nodes, "
            f"{len(cluster.nats.servers)} servers) on new ports"
        )
        return cluster, _faucet_entry(keystore)
    if base_dir.exists() and not base_dir.is_dir():
        raise ClusterError(f"{base_dir} is a file; choose another --dir")
    if base_dir.is_dir() and any(base_dir.iterdir()):
        raise ClusterError(
            f"{base_dir} is not empty and holds no cluster ({CLUSTER_FILE}); choose another --dir"
        )
    faucet = SigningKey.generate()
    cluster = LocalAutarkyCluster.create(
        base_dir,
        nodes,
        servers,
        genesis_extra_allocations=[(faucet.did, DEFAULT_ASSET, FAUCET_SUPPLY)],
        replicas=replicas,
    )
    keys_dir.mkdir(exist_ok=True)
    create_keystore(keystore, faucet, insecure_demo=True, label=FAUCET)
    return cluster, _faucet_entry(keystore, faucet.did)


def _faucet_entry(keystore: Path, did: str | None = None) -> dict[str, str]:
    if did is None:
        did = read_public(keystore).did if keystore.exists() else ""
    return {"name": FAUCET, "did": did, "keystore": str(keystore), "keys_dir": str(keystore.parent)}


async def _up(cluster: LocalAutarkyCluster, faucet: dict[str, str], timeout_s: float) -> bool:
    """Run the cluster until SIGINT/SIGTERM; True if it stopped cleanly (no process died on its own)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    clean = True
    try:
        output.note(
            f"starting {len(cluster.nats.servers)} nats-servers and {len(cluster.nodes)} nodes in "
            f"{cluster.base_dir}…"
        )
        starting = asyncio.create_task(cluster.start(timeout_s), name="cluster-start")
        stopping = asyncio.create_task(stop.wait(), name="cluster-stop-signal")
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()  # start() stops whatever it started before the cancellation propagates
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            output.note("interrupted while starting; everything started was stopped")
            return True
        stopping.cancel()
        starting.result()
        _announce(cluster, faucet)
        clean = await _watch(cluster, stop)
        output.note(f"stopping {len(cluster.nodes)} nodes, then {len(cluster.nats.servers)} nats-servers…")
    finally:
        await asyncio.to_thread(cluster.stop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    left = [node.index for node in cluster.nodes if node.running] + [
        server.name for server in cluster.nats.servers if server.running
    ]
    if left:
        raise OperationFailed(f"still running after stop: {left}")
    output.note(
        f"stopped: {len(cluster.nodes)} nodes and {len(cluster.nats.servers)} nats-servers have all exited"
    )
    return clean


def _announce(cluster: LocalAutarkyCluster, faucet: dict[str, str]) -> None:
    description = cluster.describe()
    if output.json_mode():
        output.emit({"status": "running", **description, "faucet": faucet}, lambda: None)
        return
    out = output.stdout
    out.print(
        f"Autarky cluster running: chain {cluster.chain_id}, {len(cluster.nodes)} nodes, "
        f"{len(cluster.nats.servers)} NATS servers (stream {cluster.stream}, {cluster.replicas} replicas)",
        markup=False,
    )
    for node in cluster.nodes:
        out.print(f"Node {node.index} API {node.api_url} dashboard {node.dashboard_url}", markup=False)
    for server in cluster.nats.servers:
        out.print(f"NATS {server.name} {server.url} monitor {server.monitor_url}", markup=False)
    out.print(f"Directory {cluster.base_dir}", markup=False)
    out.file.flush()
    first = cluster.api_urls[0]
    output.note(f"logs: {cluster.base_dir}/node<i>/node.log and {cluster.base_dir}/nats/n<j>/nats-server.log")
    if faucet["did"]:
        output.note(
            f"faucet {faucet['did']} holds {FAUCET_SUPPLY:,} {DEFAULT_ASSET} (INSECURE DEMO KEY, in clear)"
        )
        output.note(f"  try: autarky --node {first} --keys-dir {faucet['keys_dir']} wallet balance {FAUCET}")
    output.note(f"  try: autarky cluster status --dir {cluster.base_dir}")
    output.note("send one sender's transactions to one node; Ctrl-C to stop everything")


async def _watch(cluster: LocalAutarkyCluster, stop: asyncio.Event) -> bool:
    """Until ``stop``: say when a process dies on its own, and how far the nodes are every 30 s."""
    reported: set[str] = set()
    next_status = time.monotonic() + STATUS_EVERY_S
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        for node in cluster.nodes:
            name = f"node {node.index}"
            if not node.running and name not in reported:
                reported.add(name)
                code = node.process.returncode if node.process is not None else None
                output.warn(f"{name} exited (code {code}); its log: {node.log_path}")
        for server in cluster.nats.servers:
            name = f"nats-server {server.name}"
            if not server.running and name not in reported:
                reported.add(name)
                output.warn(f"{name} exited; its log: {server.log_path}")
        if time.monotonic() >= next_status and not stop.is_set():
            next_status = time.monotonic() + STATUS_EVERY_S
            output.note(_one_line(await cluster.status()))
    return not reported


def _one_line(statuses: list[dict[str, Any]]) -> str:
    parts = []
    for entry in statuses:
        if "error" in entry:
            parts.append(f"node {entry['index']} unreachable")
        else:
            fault = f" FAULT {entry['fault']}" if entry.get("fault") else ""
            parts.append(
                f"node {entry['index']} height {entry.get('height')} final {entry.get('final_height')}{fault}"
            )
    return "; ".join(parts)


# -- status ---------------------------------------------------------------------------------------------


@app.command("status")
def status(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Cluster directory (default: the last `autarky cluster up`).", show_default=False
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Height, state root, final height, fault and NATS connection of every node; health of every server.

    Reads DIR/cluster.json, then asks each node (GET /api/v1/status) and each nats-server (GET /healthz,
    200 only when JetStream is current and in contact with its meta leader). "converged" means every
    node answered with the same height and state root. Exit 1 when a node is unreachable or faulty, or
    a server unhealthy (the report is printed all the same).

    Example:  autarky cluster status
    Example:  autarky cluster status --dir ./my-cluster --json
    """
    output.set_json_mode(json_out)
    base_dir = directory or _recorded_last()
    if base_dir is None:
        raise UsageProblem("no --dir given and no `autarky cluster up` recorded; pass --dir DIR")
    if directory is None and not (base_dir / CLUSTER_FILE).exists():
        raise UsageProblem(f"the last cluster ({base_dir}) is gone; pass --dir DIR")
    try:
        cluster = LocalAutarkyCluster.open(base_dir)
    except ClusterError as exc:
        raise UsageProblem(str(exc), code="cli.cluster") from exc
    document = run(_status_document(cluster))
    output.emit(document, lambda: _print_status(document))
    if not document["healthy"]:
        raise typer.Exit(1)


async def _status_document(cluster: LocalAutarkyCluster) -> dict[str, Any]:
    nodes = await cluster.status()
    servers = await cluster.server_health()
    answered = [entry for entry in nodes if "error" not in entry]
    converged = (
        len(answered) == len(nodes)
        and len({(entry.get("height"), entry.get("state_root")) for entry in answered}) == 1
    )
    healthy = (
        len(answered) == len(nodes)
        and not any(entry.get("fault") for entry in answered)
        and all((entry.get("engine") or {}).get("connected") for entry in answered)
        and all(server["healthy"] for server in servers)
    )
    return {
        "dir": str(cluster.base_dir),
        "chain_id": cluster.chain_id,
        "stream": cluster.stream,
        "replicas": cluster.replicas,
        "converged": converged,
        "healthy": healthy,
        "nodes": nodes,
        "servers": servers,
    }


def _print_status(document: dict[str, Any]) -> None:
    out = output.stdout
    out.print(
        f"cluster {document['dir']}: chain {document['chain_id']}, stream {document['stream']} "
        f"({document['replicas']} replicas)",
        markup=False,
    )
    nodes = Table(header_style="bold", box=None, padding=(0, 1))
    for column in ("node", "API", "height", "state root", "final", "fault", "NATS"):
        nodes.add_column(column, justify="right" if column in ("height", "final") else "left", no_wrap=True)
    for entry in document["nodes"]:
        if "error" in entry:
            nodes.add_row(
                str(entry["index"]),
                entry["api_url"],
                "-",
                Text("unreachable", style="red"),
                "-",
                "-",
                Text(entry["error"], overflow="ellipsis"),
            )
            continue
        engine = entry.get("engine") or {}
        server = entry.get("nats_server") or {}
        connection = (
            Text(f"on {server.get('name') or engine.get('server')}", style="green")
            if engine.get("connected")
            else Text("disconnected", style="red")
        )
        nodes.add_row(
            str(entry["index"]),
            entry["api_url"],
            str(entry.get("height")),
            str(entry.get("state_root", ""))[:12],
            str(entry.get("final_height")),
            Text(str(entry["fault"]), style="red") if entry.get("fault") else Text("none", style="dim"),
            connection,
        )
    out.print(nodes)
    servers = Table(header_style="bold", box=None, padding=(0, 1))
    for column in ("server", "URL", "monitor", "health", "pid"):
        servers.add_column(column, justify="right" if column == "pid" else "left", no_wrap=True)
    for server in document["servers"]:
        health = (
            Text("healthy", style="green")
            if server["healthy"]
            else Text(str(server["detail"]), style="red", overflow="ellipsis")
        )
        servers.add_row(
            server["name"], server["url"], server["monitor_url"], health, str(server.get("pid") or "-")
        )
    out.print(servers)
    verdict = "[green]converged[/]" if document["converged"] else "[yellow]not converged[/]"
    out.print(f"{verdict}; {'[green]healthy[/]' if document['healthy'] else '[red]not healthy[/]'}")
