"""``autarky decisions …``: explain a transaction by the decision behind it; list and verify a
machine's decision records.

The records live off chain in a SQLite store (``autarky.provenance.DecisionStore``; default the
``autarky up`` workspace's ``.autarky/demo/decisions.sqlite``), the anchors on chain; model files
and cards in a model directory (default ``.autarky/demo/models``). Every command exits 1 when a
check fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current
from autarky.cli.errors import NodeUnreachable, UsageProblem
from autarky.cli.options import JsonOpt, NodeOpt, parse_hex32
from autarky.demo.workspace import DEFAULT_WORKSPACE

app = typer.Typer(
    help="Decision records: why a machine did what it did. Explain a transaction by its decision "
    "record, the model and the training data behind it, checking each link against the chain.",
    no_args_is_help=True,
)

DEFAULT_STORE = DEFAULT_WORKSPACE / "decisions.sqlite"
DEFAULT_MODELS = DEFAULT_WORKSPACE / "models"
StoreOpt = Annotated[Path, typer.Option("--store", help="The decision store (SQLite).")]
ModelsOpt = Annotated[Path, typer.Option("--models", help="Directory of model files and cards.")]
MachineOpt = Annotated[str, typer.Option("--machine", help="The machine's did:key.")]


def _open_store(path: Path) -> Any:
    from autarky.provenance import DecisionStore

    if not path.is_file():
        raise UsageProblem(f"no decision store at {path}: pass --store PATH")
    return DecisionStore(path)


def _view(node: str | None) -> Any:
    from autarky.web.provenance_view import HttpLedgerView

    ctx = current()
    url = node.rstrip("/") if node else ctx.node_address()
    return HttpLedgerView(url, api_key=ctx.node_api_key())


def _mark(ok: bool | None) -> str:
    return "[green]ok[/]" if ok else "[red]FAILED[/]" if ok is False else "[yellow]not checked[/]"


@app.command("explain")
def explain_command(
    tx_hash: Annotated[
        str, typer.Argument(help="The transaction hash (64 hex characters).", metavar="TX_HASH")
    ],
    node: NodeOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    models: ModelsOpt = DEFAULT_MODELS,
    json_out: JsonOpt = False,
) -> None:
    """Why did the machine send this transaction? The decision, its model, and every check.

    Prints the decision record, its inputs, the model and its card, and every check: record
    hash, inputs digest, chain link, Merkle proof against the on-chain batch, the model file and
    card hashes, the training-data anchors.

    Example:  autarky decisions explain 4f2a…9b --store sim/decisions.sqlite --models sim/models
    """
    from autarky.provenance import explain

    output.set_json_mode(json_out)
    digest = parse_hex32(tx_hash, "a transaction hash")
    with _open_store(store) as decision_store, _view(node) as view:
        try:
            result = explain(digest, decision_store, view, models if models.is_dir() else None)
        except httpx.HTTPError as error:
            raise NodeUnreachable(f"the node did not answer: {error}") from error
    document = result.to_json()

    def human() -> None:
        record = document["record"]
        if record is not None:
            output.stdout.print(
                f"[bold]decision[/] {record['machine']} #{record['seq']} ({record['policy']})"
            )
            output.stdout.print(f"  output      {record['output']}")
            output.stdout.print(f"  allowed by  {record['allowed_by']['kind']} {record['allowed_by']['ref']}")
            if document["inputs"] is not None:
                output.stdout.print(f"  inputs      {document['inputs']}")
        if document["model"] is not None:
            model = document["model"]
            output.stdout.print(f"[bold]model[/] {model['model_id']} {model['version']} ({model['kind']})")
        table = Table("check", "result", "detail", box=None)
        for check in document["checks"]:
            table.add_row(check["name"], _mark(check["ok"]), check["detail"])
        output.stdout.print(table)
        output.stdout.print("[bold green]all checks ok[/]" if result.ok else "[bold red]a check failed[/]")

    output.emit(document, human)
    if not result.ok:
        raise typer.Exit(1)


@app.command("list")
def list_command(
    machine: MachineOpt,
    store: StoreOpt = DEFAULT_STORE,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N records.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """A machine's newest decision records from the store.

    Example:  autarky decisions list --machine "$BATTERY_DID" --limit 10
    """
    output.set_json_mode(json_out)
    with _open_store(store) as decision_store:
        total = decision_store.count(machine)
        records = decision_store.records(machine, max(0, total - limit))
        anchored = decision_store.anchored_count(machine)
    rows = [
        {
            "seq": r.seq,
            "time_ms": r.time_ms,
            "policy": r.policy,
            "output": output_json(r.output),
            "tx": None if r.tx is None else r.tx.hex(),
            "hash": r.hash.hex(),
            "anchored": r.seq < anchored,
        }
        for r in records
    ]

    def human() -> None:
        table = Table("seq", "time_ms", "policy", "output", "tx", "anchored", box=None)
        for row in rows:
            tx = "-" if row["tx"] is None else row["tx"][:16] + "…"
            table.add_row(
                str(row["seq"]),
                str(row["time_ms"]),
                row["policy"],
                str(row["output"])[:40],
                tx,
                "yes" if row["anchored"] else "no",
            )
        output.stdout.print(table)
        output.stdout.print(f"{total} records, {anchored} anchored")

    output.emit({"machine": machine, "total": total, "anchored": anchored, "records": rows}, human)


def output_json(value: Any) -> Any:
    from autarky.provenance import to_jsonable

    return to_jsonable(value)


@app.command("verify")
def verify_command(
    machine: MachineOpt,
    store: StoreOpt = DEFAULT_STORE,
    node: NodeOpt = None,
    offline: Annotated[bool, typer.Option("--offline", help="Check the chain of records only.")] = False,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=1000, hidden=True, help="Batches read per request.")
    ] = 1000,
    json_out: JsonOpt = False,
) -> None:
    """Check a machine's record chain and its anchored batches.

    The whole chain of records (seq, prev links, stored hashes) and, unless --offline, every
    anchored batch on chain against the stored records (Merkle root and head).

    Example:  autarky decisions verify --machine "$BATTERY_DID"
    """
    from autarky.provenance import ChainError, batch_anchor, verify_chain

    output.set_json_mode(json_out)
    problems: list[str] = []
    with _open_store(store) as decision_store:
        records = decision_store.records(machine)
        try:
            verify_chain(records)
        except ChainError as error:
            problems.append(str(error))
        for record in records:
            if decision_store.stored_hash(machine, record.seq) != record.hash:
                problems.append(f"record {record.seq}: its bytes do not hash to its stored hash")
        batches: list[dict[str, Any]] = []
        if not offline:
            batches = _batches(node, machine, page_size)
            for batch in batches:
                first, count = batch["first_seq"], batch["count"]
                run = records[first : first + count]
                if len(run) != count:
                    problems.append(f"batch {first}: the store holds {len(run)} of its {count} records")
                    continue
                computed = batch_anchor(run)
                if computed.root.hex() != batch["root"] or computed.head.hex() != batch["head"]:
                    problems.append(
                        f"batch {first}..{first + count - 1}: the records do not reproduce its root/head"
                    )
    anchored = sum(b["count"] for b in batches)
    document = {
        "machine": machine,
        "records": len(records),
        "anchored_on_chain": anchored,
        "batches": len(batches),
        "ok": not problems,
        "problems": problems,
    }

    def human() -> None:
        for problem in problems:
            output.stdout.print(f"[red]FAILED[/] {problem}")
        checked = "" if offline else f", {len(batches)} batches ({anchored} records) match the chain"
        if not problems:
            output.stdout.print(f"[bold green]ok[/] {len(records)} records chain{checked}")

    output.emit(document, human)
    if problems:
        raise typer.Exit(1)


def _batches(node: str | None, machine: str, page_size: int) -> list[dict[str, Any]]:
    """Every anchored batch of ``machine`` on the node, oldest first, a page at a time."""
    with _view(node) as view:
        try:
            return list(view.decision_batches(machine, page_size))
        except httpx.HTTPError as error:
            raise NodeUnreachable(f"the node at {view.base_url} did not answer: {error}") from error
