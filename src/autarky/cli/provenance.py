"""``autarky provenance …``: anchor data, register models, track items; read them back.

Write commands sign one transaction and wait for its block; ``anchor`` prints the anchor id, which
the client computes from the transaction hash (``provenance/anchor-id``). Read commands ask the
node's API (``/api/v1/provenance/…``). Hashes are 64 hex characters; ``--file`` options hash a file
for you.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current
from autarky.cli.errors import NodeUnreachable, OperationFailed, UsageProblem
from autarky.cli.options import FeeOpt, FromOpt, JsonOpt, KeyFileOpt, PasswordFileOpt, parse_hex32
from autarky.cli.remote import send_as, tx_summary
from autarky.modules.provenance import keeper
from autarky.modules.provenance import messages as prov

app = typer.Typer(
    help="Provenance: anchor data (Merkle roots of records), register model files with their cards "
    "and training-data anchors, and track items' custody and condition.",
    no_args_is_help=True,
)

MetaOpt = Annotated[list[str] | None, typer.Option("--meta", help="KEY=VALUE metadata (repeatable).")]


def _metadata(entries: list[str] | None) -> dict[str, str]:
    metadata = {}
    for entry in entries or []:
        name, sep, value = entry.partition("=")
        if not sep:
            raise UsageProblem(f"--meta {entry!r} is not KEY=VALUE")
        metadata[name] = value
    return metadata


def _hash_of(hex_value: str | None, file: Path | None, what: str) -> bytes:
    if (hex_value is None) == (file is None):
        raise UsageProblem(f"give the {what} as a hash or a file (one of them)")
    if file is not None:
        if not file.is_file():
            raise UsageProblem(f"no file {file}")
        return hashlib.sha256(file.read_bytes()).digest()
    assert hex_value is not None
    return parse_hex32(hex_value, f"a {what} hash")


def _get(path: str, **params: Any) -> Any:
    ctx = current()
    url = ctx.node_address()
    key = ctx.node_api_key()
    try:
        response = httpx.get(
            url + path, params=params or None, headers={} if key is None else {"X-API-Key": key}, timeout=10
        )
    except httpx.HTTPError as error:
        raise NodeUnreachable(f"no node answers at {url}: {error}") from error
    if response.status_code == 404:
        raise OperationFailed(
            response.json().get("error", {}).get("message", "not found"), code="cli.not_found"
        )
    if response.status_code >= 400:
        raise OperationFailed(f"the node answered {response.status_code}: {response.text[:200]}")
    return response.json()


@app.command("anchor")
def anchor(
    sender: FromOpt,
    schema: Annotated[
        str, typer.Option("--schema", help="What the records are, e.g. autarky.training/pv/1.")
    ],
    root: Annotated[str | None, typer.Option("--root", help="The Merkle root (64 hex characters).")] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="How many records the root covers.")
    ] = None,
    records: Annotated[
        Path | None,
        typer.Option("--records", help="A canonical CBOR list of records: root and count computed from it."),
    ] = None,
    from_ms: Annotated[int, typer.Option("--from-ms", min=0, help="Time of the first record.")] = 0,
    until_ms: Annotated[int, typer.Option("--until-ms", min=0, help="Time of the last record.")] = 0,
    meta: MetaOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Anchor a set of records on chain by its Merkle root; prints the anchor id.

    Example:  autarky provenance anchor --from trainer --schema autarky.training/pv/1 --records data.cbor
    """
    from autarky.encoding import canonical_decode
    from autarky.provenance import training_data_bytes

    output.set_json_mode(json_out)
    if records is not None:
        if root is not None or count is not None:
            raise UsageProblem("give --records, or --root and --count")
        rows = canonical_decode(records.read_bytes())
        if not isinstance(rows, list) or not rows:
            raise UsageProblem(f"{records} is not a non-empty canonical CBOR list")
        _, digest = training_data_bytes(rows)
        count = len(rows)
    elif root is None or count is None:
        raise UsageProblem("give --records, or --root and --count")
    else:
        digest = parse_hex32(root, "a Merkle root")
    message = prov.anchor(schema, digest, count, from_ms, until_ms, _metadata(meta))
    result = send_as(sender, message, fee, password_file, key_file)
    anchor_id = keeper.new_anchor_id(bytes.fromhex(result["tx_hash"]), 0).hex()
    output.emit(
        {"anchor": anchor_id, "root": digest.hex(), "count": count, **result},
        lambda: output.stdout.print(
            f"[bold green]anchored[/] {count} records, root {digest.hex()[:16]}…\n  anchor {anchor_id}\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("register-model")
def register_model(
    sender: FromOpt,
    model_id: Annotated[str, typer.Option("--model-id", help="The model's name, e.g. pv-forecaster.")],
    version: Annotated[str, typer.Option("--version", help="Its version, e.g. 1 or 2024.06.")],
    kind: Annotated[str, typer.Option("--kind", help="What it is, e.g. pv-forecaster.")],
    training_anchor: Annotated[
        list[str], typer.Option("--anchor", help="A training-data anchor id (repeatable, 1 to 16).")
    ],
    model_file: Annotated[Path | None, typer.Option("--file", help="The model file (hashed here).")] = None,
    model_hash: Annotated[str | None, typer.Option("--hash", help="The model file's sha256.")] = None,
    card_file: Annotated[
        Path | None, typer.Option("--card", help="The model card file (hashed here).")
    ] = None,
    card_hash: Annotated[str | None, typer.Option("--card-hash", help="The card's sha256.")] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a model file's hash, its card's hash and its training data anchors; you become its owner.

    Example:  autarky provenance register-model --from trainer --model-id pv-forecaster --version 1
    --kind pv-forecaster --file m/ab12….model --card m/cd34….card.json --anchor 9f…
    """
    output.set_json_mode(json_out)
    file_digest = _hash_of(model_hash, model_file, "model file")
    card_digest = _hash_of(card_hash, card_file, "model card")
    anchors = [parse_hex32(a, "an anchor id") for a in training_anchor]
    message = prov.register_model(model_id, version, file_digest, card_digest, kind, anchors)
    result = send_as(sender, message, fee, password_file, key_file)
    output.emit(
        {
            "model_id": model_id,
            "version": version,
            "hash": file_digest.hex(),
            "card_hash": card_digest.hex(),
            **result,
        },
        lambda: output.stdout.print(
            f"[bold green]registered[/] {model_id} {version} hash {file_digest.hex()}\n  {tx_summary(result)}"
        ),
    )


@app.command("models")
def models(
    model_id: Annotated[str | None, typer.Option("--model-id", help="Only this model's versions.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Registered models.

    Example:  autarky provenance models --model-id pv-forecaster
    """
    output.set_json_mode(json_out)
    document = _get("/api/v1/provenance/models", **({} if model_id is None else {"model_id": model_id}))

    def human() -> None:
        table = Table("model", "version", "kind", "hash", "owner", "retired", box=None)
        for model in document["models"]:
            retired = "-" if model["retired_height"] is None else f"at {model['retired_height']}"
            table.add_row(
                model["model_id"],
                model["version"],
                model["kind"],
                model["hash"][:16] + "…",
                output.short(model["owner"]),
                retired,
            )
        output.stdout.print(table)

    output.emit(document, human)


@app.command("register-item")
def register_item(
    sender: FromOpt,
    item_id: Annotated[str, typer.Argument(help="The item's id, e.g. a serial number.", metavar="ITEM")],
    kind: Annotated[str, typer.Option("--kind", help="What it is, e.g. bearing.")],
    meta: MetaOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a tracked item; you become its custodian.

    Example:  autarky provenance register-item --from lathe SN-4711 --kind spindle-bearing --meta lot=L7
    """
    output.set_json_mode(json_out)
    result = send_as(sender, prov.register_item(item_id, kind, _metadata(meta)), fee, password_file, key_file)
    output.emit(
        {"item": item_id, **result},
        lambda: output.stdout.print(f"[bold green]registered[/] item {item_id}\n  {tx_summary(result)}"),
    )


@app.command("item-event")
def item_event(
    sender: FromOpt,
    item_id: Annotated[str, typer.Argument(help="The item's id.", metavar="ITEM")],
    to: Annotated[str | None, typer.Option("--to", help="Hand the item to this name or did:key.")] = None,
    condition: Annotated[
        str | None, typer.Option("--condition", help="Record a condition, e.g. inspected-ok.")
    ] = None,
    evidence_file: Annotated[
        Path | None, typer.Option("--evidence-file", help="Evidence (its sha256 is sent).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The custodian hands the item on (--to) or records its condition (--condition).

    Example:  autarky provenance item-event --from lathe SN-4711 --to carrier
    """
    output.set_json_mode(json_out)
    if (to is None) == (condition is None):
        raise UsageProblem("give --to or --condition (one of them)")
    digest = None if evidence_file is None else hashlib.sha256(evidence_file.read_bytes()).digest()
    if to is not None:
        message = prov.item_custody(item_id, current().keyring.resolve(to), digest)
    else:
        assert condition is not None
        message = prov.item_condition(item_id, condition, digest)
    result = send_as(sender, message, fee, password_file, key_file)
    what = f"handed to {output.short(message.get('to'))}" if to is not None else f"condition {condition}"
    output.emit(
        {"item": item_id, **result},
        lambda: output.stdout.print(f"[bold green]{what}[/] item {item_id}\n  {tx_summary(result)}"),
    )


@app.command("items")
def items(
    item_id: Annotated[str, typer.Argument(help="The item's id.", metavar="ITEM")],
    json_out: JsonOpt = False,
) -> None:
    """A tracked item: its custodian, condition and history.

    Example:  autarky provenance items SN-4711
    """
    output.set_json_mode(json_out)
    document = _get(f"/api/v1/provenance/items/{item_id}")

    def human() -> None:
        output.stdout.print(
            f"[bold]{document['item_id']}[/] ({document['kind']}) held by "
            f"{output.short(document['custodian'])}, condition {document['condition'] or '-'}"
        )
        table = Table("#", "event", "by", "to / condition", "height", box=None)
        for event in document["history"]:
            detail = (
                output.short(event.get("to")) if event["event"] == "custody" else event.get("condition") or ""
            )
            table.add_row(
                str(event["n"]), event["event"], output.short(event["by"]), detail, str(event["height"])
            )
        output.stdout.print(table)

    output.emit(document, human)


@app.command("anchors")
def anchors(
    anchor_id: Annotated[str, typer.Argument(help="The anchor id (64 hex characters).", metavar="ANCHOR")],
    json_out: JsonOpt = False,
) -> None:
    """One data anchor.

    Example:  autarky provenance anchors 9f…
    """
    output.set_json_mode(json_out)
    document = _get(f"/api/v1/provenance/anchors/{parse_hex32(anchor_id, 'an anchor id').hex()}")
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold]{document['schema']}[/] {document['count']} records, root {document['root']}\n"
            f"  {document['from_ms']}..{document['until_ms']} ms, by {output.short(document['sender'])} "
            f"at height {document['height']}"
        ),
    )
