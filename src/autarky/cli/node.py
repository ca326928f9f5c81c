"""``autarky node …``: run a node, ask it how it is, replay it, snapshot it."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import NodeUnreachable, OperationFailed, UsageProblem
from autarky.config import Config
from autarky.encoding import canonical_decode
from autarky.engines.nats import EngineUnavailable
from autarky.engines.nats_server import NatsOpsError
from autarky.ledger.smt import SparseMerkleTree
from autarky.node.node import DB_FILE, GENESIS_FILE, Node, ensure_node_key
from autarky.node.replay import ReplayReport, replay_data_dir
from autarky.node.snapshot import export_snapshot, import_snapshot
from autarky.node.storage import Storage

app = typer.Typer(
    help="Run a node and look after its data: start, status, replay, snapshot.", no_args_is_help=True
)
snapshot_app = typer.Typer(
    help="Export the state at the latest block to a file, or start a node from one.", no_args_is_help=True
)
app.add_typer(snapshot_app, name="snapshot")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Node data directory (default: node.data_dir).", show_default=False),
]


def _config(data_dir: Path | None = None, host: str | None = None, port: int | None = None) -> Config:
    node: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    api: dict[str, Any] = {}
    if host is not None:
        api["host"] = host
    if port is not None:
        api["port"] = port
    overrides = {key: value for key, value in (("node", node), ("api", api)) if value}
    return current().config(**overrides)


# -- start ----------------------------------------------------------------------------------------------


@app.command("start")
def start(
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option("--host", help="API address (default: api.host).")] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="API port; 0 picks a free one (default: api.port)."),
    ] = None,
) -> None:
    """Run the node and its HTTP API (and dashboard) until Ctrl-C or SIGTERM, then stop cleanly.

    Every block is stored durably before a submission is answered. The first line on stdout is the
    API address, e.g. "API http://127.0.0.1:8620".

    Example:  autarky node start --port 8620
    """
    config = _config(data_dir, host, port)
    run(_serve(config))


async def _serve(config: Config) -> None:
    from autarky.web.server import start_api

    node = await Node.open(config.node_settings())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    server = None
    try:
        try:
            await node.start()
        except (EngineUnavailable, NatsOpsError) as exc:
            raise OperationFailed(f"{node.engine.name} engine: {exc}", code="cli.engine") from exc
        try:
            server = await start_api(
                node,
                config.api.host,
                config.api.port,
                config.api.api_key,
                max_body_bytes=config.api.max_body_bytes,
            )
        except OSError as exc:
            raise UsageProblem(
                f"cannot listen on {config.api.host}:{config.api.port}: {exc.strerror or exc}; "
                "choose another --port (0 picks a free one)"
            ) from exc
        output.stdout.print(f"API {server.url}", markup=False)
        output.stdout.print(f"Dashboard {server.url}/", markup=False)
        output.stdout.file.flush()
        output.note(
            f"node running: chain {node.chain_id}, height {node.height}, data {config.node.data_dir}; "
            "Ctrl-C to stop"
        )
        await stopping.wait()
        output.note("stopping: finishing the block in progress…")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if server is not None:
            await server.stop()
        await node.stop()
    output.note(f"stopped cleanly at height {node.height}")


# -- key ------------------------------------------------------------------------------------------------


@app.command("key")
def key(data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """This node's signing key: made (encrypted with a key file in the data dir) if there is none yet.

    A validator's key goes into the genesis of a cluster, so on each machine run this first and
    give the printed public key to whoever writes the genesis (`autarky init --validator <key>`).

    Example:  autarky node key --data-dir .autarky/node
    """
    output.set_json_mode(json_out)
    path = data_dir if data_dir is not None else _config().node.data_dir
    signing_key = ensure_node_key(path)
    document = {
        "data_dir": str(path),
        "public_key": signing_key.public_key.hex(),
        "did": signing_key.did,
    }

    def human() -> None:
        output.stdout.print(f"node key    {document['public_key']}")
        output.stdout.print(f"did         {document['did']}")
        output.stdout.print(f"stored in   {path} (node_key.json, encrypted with node_key.secret)")

    output.emit(document, human)


# -- status ---------------------------------------------------------------------------------------------


@app.command("status")
def status(data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Chain id, height, latest block hash and state root of the running node.

    If no node answers, the data directory is read instead ("running": false).

    Example:  autarky node status --json
    """
    output.set_json_mode(json_out)
    ctx = current()
    document: dict[str, Any]
    try:
        document = run(_remote_status())
        document["running"] = True
        document["url"] = ctx.node_address()
    except NodeUnreachable as exc:
        config = _config(data_dir)
        path = config.node.data_dir
        if not (path / DB_FILE).exists():
            raise NodeUnreachable(
                f"{exc.message}; and there is no ledger in {path} either (run `autarky init`)"
            ) from exc
        document = _offline_status(path)
        document["running"] = False
        document["url"] = None

    def human() -> None:
        table = Table.grid(padding=(0, 2))
        state = (
            "[green]running[/] at " + str(document["url"])
            if document["running"]
            else "[yellow]not running[/]"
        )
        table.add_row("node", state)
        table.add_row("chain", str(document["chain_id"]))
        table.add_row("height", str(document["height"]))
        table.add_row("block", str(document["block_hash"]))
        table.add_row("state root", str(document["state_root"]))
        if document.get("mempool"):
            table.add_row("mempool", f"{document['mempool']['transactions']} transactions")
        if document.get("fault"):
            table.add_row("fault", f"[red]{document['fault']}[/]")
        output.stdout.print(table)

    output.emit(document, human)


async def _remote_status() -> dict[str, Any]:
    from autarky.cli.remote import connect

    async with connect() as client:
        return dict(await client.status())


def _offline_status(data_dir: Path) -> dict[str, Any]:
    genesis = canonical_decode((data_dir / GENESIS_FILE).read_bytes())
    storage = Storage(data_dir / DB_FILE)
    try:
        height = storage.applied_height
        assert height is not None
        header = storage.header(height)
        assert header is not None
    finally:
        storage.close()
    return {
        "chain_id": genesis["chain_id"],
        "height": header.height,
        "block_hash": header.hash.hex(),
        "state_root": header.state_root.hex(),
        "time_ms": header.time_ms,
        "data_dir": str(data_dir),
    }


# -- replay ---------------------------------------------------------------------------------------------


@app.command("replay")
def replay(data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Re-execute every stored block from genesis in memory and compare with what is stored.

    Checks each block's header hash and, at the end, the state root (against the last header and the
    state in the database) and the module invariants. Reports the first mismatch. Nothing is written.
    Run it with the node stopped. Exit 1 when anything differs.

    Example:  autarky node replay --json
    """
    output.set_json_mode(json_out)
    config = _config(data_dir)
    last_note = [time.monotonic()]

    def progress(height: int, top: int) -> None:
        if not json_out and time.monotonic() - last_note[0] > 2:
            last_note[0] = time.monotonic()
            output.note(f"replayed {height}/{top} blocks…")

    report = replay_data_dir(config.node.data_dir, progress)
    output.emit(report.to_json(), lambda: _print_replay(report))
    if not report.equal:
        raise typer.Exit(1)


def _print_replay(report: ReplayReport) -> None:
    out = output.stdout
    if report.equal:
        out.print(
            f"[bold green]equal[/]: replayed {report.blocks_replayed} blocks "
            f"({report.transactions} transactions) "
            f"of chain {report.chain_id} in {report.seconds:.2f} s"
        )
        out.print(f"  state root {report.state_root} at height {report.height}")
        return
    out.print("[bold red]MISMATCH[/]")
    if report.first_mismatch is not None:
        mismatch = report.first_mismatch
        out.print(f"  first differing block: {mismatch['height']} (fields: {', '.join(mismatch['fields'])})")
        for name, value in mismatch["stored"].items():
            out.print(f"    stored   {name} {value}")
            out.print(f"    replayed {name} {mismatch['replayed'].get(name)}")
    out.print(f"  replayed state root {report.state_root}")
    out.print(f"  stored header root  {report.stored_state_root}")
    out.print(f"  database state root {report.database_state_root}")
    for problem in report.invariants:
        out.print(f"  invariant broken: {problem}")


# -- snapshots ------------------------------------------------------------------------------------------


@snapshot_app.command("export")
def snapshot_export(
    file: Annotated[Path, typer.Argument(help="Snapshot file to write.")],
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the state at the latest stored block to FILE (canonical CBOR; best with the node stopped).

    Example:  autarky node snapshot export plant-7-h1200.snap
    """
    output.set_json_mode(json_out)
    config = _config(data_dir)
    info = export_snapshot(config.node.data_dir, file)
    document = {"file": str(file), **info.to_json()}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"wrote {file}: chain {info.chain_id}, height {info.height}, {info.items} state items, "
            f"{output.fmt_amount(info.bytes)} bytes\n  state root {info.state_root}"
        ),
    )


@snapshot_app.command("import")
def snapshot_import(
    file: Annotated[Path, typer.Argument(help="Snapshot file to read.")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="New, empty data directory to create.")],
    json_out: JsonOpt = False,
) -> None:
    """Check FILE and create a node data directory from it.

    The state is checked against the snapshot's header (state root, chain id, node signature) before
    anything is written. Compare the printed block hash with a node you trust.

    Example:  autarky node snapshot import plant-7-h1200.snap --data-dir /var/lib/autarky/node
    """
    output.set_json_mode(json_out)
    info = import_snapshot(file, data_dir)
    storage = Storage(data_dir / DB_FILE)
    try:
        root = SparseMerkleTree.from_items(sorted(storage.load_state().items())).root.hex()
    finally:
        storage.close()
    if root != info.state_root:
        raise OperationFailed(f"the imported state root {root} differs from the snapshot's {info.state_root}")
    document = {"data_dir": str(data_dir), **info.to_json()}
    output.emit(
        document,
        lambda: output.stdout.print(
            f"imported {file} into {data_dir}: chain {info.chain_id}, height {info.height}\n"
            f"  block hash {info.block_hash}\n  state root {info.state_root}\n"
            f"Start it with: autarky node start --data-dir {data_dir}"
        ),
    )
