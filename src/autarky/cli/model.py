"""``autarky model …``: train embedded models on generated data, show and verify model files,
register them on chain.

A trained model is three content-addressed files in one folder: ``<sha256>.model`` (the model),
``<sha256>.card.json`` (its card) and ``<merkle root>.records.cbor`` (the training records whose
Merkle root is the training-data anchor). ``register`` anchors that root (``provenance/anchor``)
and then registers the model's hash, its card's hash and the anchor (``provenance/register_model``):
two transactions, because the anchor id is derived from the first one's hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import OperationFailed, UsageProblem
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, FromOpt, JsonOpt, KeyFileOpt, NodeOpt, PasswordFileOpt
from autarky.cli.remote import send_tx, tx_summary

app = typer.Typer(
    help="Embedded decision models: train them on generated data (pv-forecaster, load-forecaster, "
    "anomaly-detector, irrigation, battery-lp), show and verify their content-addressed files, and "
    "register them on chain with their training-data anchor.",
    no_args_is_help=True,
)

FileArg = Annotated[Path, typer.Argument(help="A model file, <sha256>.model.", metavar="FILE")]


def _load(path: Path) -> Any:
    from autarky.models import ModelFileError, load_model

    if not path.is_file():
        raise UsageProblem(f"no file {path}")
    try:
        return load_model(path)
    except ModelFileError as error:
        raise OperationFailed(f"{path.name}: {error}", code="model.invalid") from error


@app.command("train")
def train(
    name: Annotated[
        str,
        typer.Argument(
            help="pv-forecaster, load-forecaster, anomaly-detector, irrigation or battery-lp "
            "(battery-lp has no weights: its file holds the LP's parameters, its card the evaluation).",
            metavar="NAME",
        ),
    ],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the generated training data.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Folder for the model, card and records.")] = Path(
        "models"
    ),
    json_out: JsonOpt = False,
) -> None:
    """Train a model on generated data; the same seed gives the same bytes and the same hash.

    Example:  autarky model train pv-forecaster --seed 1 --out models/
    """
    from autarky.models.training import NAMES
    from autarky.models.training import train as train_model

    output.set_json_mode(json_out)
    if name not in NAMES:
        raise UsageProblem(f"unknown model {name!r}: one of {', '.join(NAMES)}")
    trained = train_model(name, seed, out, progress=None if json_out else output.note)
    document = {
        "name": name,
        "model": str(trained.model_path),
        "model_hash": trained.model_hash.hex(),
        "card": str(trained.card_path),
        "card_hash": trained.card_hash.hex(),
        "records": str(trained.data_path),
        "training_root": trained.data_root.hex(),
        "record_count": trained.records,
        "metrics": dict(trained.card["metrics"]),
    }
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]trained[/] {name} (seed {seed})\n  model   {trained.model_path}\n"
            f"  card    {trained.card_path}\n  records {trained.data_path} ({trained.records})\n"
            f"  metrics {document['metrics']}"
        ),
    )


@app.command("show")
def show(file: FileArg, json_out: JsonOpt = False) -> None:
    """Show a model file (its hash checked) and the card beside it.

    Example:  autarky model show models/4c76….model
    """
    from autarky.models import card_for

    output.set_json_mode(json_out)
    model = _load(file)
    found = card_for(model.hash, file.parent)
    document = {
        "file": str(file),
        "hash": model.hash.hex(),
        "kind": model.kind,
        "version": model.version,
        "params": {name: list(array.shape) for name, array in model.params.items()},
        "meta": dict(model.meta),
        "card": None if found is None else dict(found[1].fields),
    }

    def human() -> None:
        output.stdout.print(f"[bold]{model.kind}[/] version {model.version}\n  hash {document['hash']}")
        for name, shape in document["params"].items():
            output.stdout.print(f"  param {name} {shape}")
        for key, value in document["meta"].items():
            output.stdout.print(f"  meta  {key} = {value}")
        if found is not None:
            card = found[1]
            output.stdout.print(f"  card  {found[0].name}\n  use   {card['intended_use']}")
            output.stdout.print(f"  data  {card['training_data']}\n  metrics {card['metrics']}")

    output.emit(document, human)


@app.command("verify")
def verify(file: FileArg, json_out: JsonOpt = False) -> None:
    """Check a model file's hash, its card and its training records; exit 1 if any check fails.

    Example:  autarky model verify models/4c76….model
    """
    from autarky.models import ModelFileError, card_for, load_training_data, training_root
    from autarky.models.training import DATA_SUFFIX

    output.set_json_mode(json_out)
    checks: list[dict[str, Any]] = []
    model = _load(file)
    checks.append({"check": "model.hash", "ok": True, "detail": f"{file.name} hashes to its name"})
    found = card_for(model.hash, file.parent)
    if found is None:
        checks.append(
            {"check": "model.card", "ok": False, "detail": "no card in the folder names this model"}
        )
    else:
        checks.append({"check": "model.card", "ok": True, "detail": f"{found[0].name} names the model"})
        root_hex = found[1]["training_data"].get("merkle_root", "")
        path = file.parent / (root_hex + DATA_SUFFIX)
        if path.is_file():
            try:
                ok = training_root(load_training_data(path)).hex() == root_hex
            except (ModelFileError, ValueError):
                ok = False
            detail = "the records reproduce the card's Merkle root" if ok else f"{path.name} was altered"
            checks.append({"check": "training.data", "ok": ok, "detail": detail})
        else:
            checks.append(
                {"check": "training.data", "ok": None, "detail": "no records file beside the model"}
            )
    failed = [c for c in checks if c["ok"] is False]

    def human() -> None:
        for c in checks:
            mark = "[green]ok[/]" if c["ok"] else "[red]FAIL[/]" if c["ok"] is False else "[yellow]--[/]"
            output.stdout.print(f"  {mark}  {c['check']}: {c['detail']}")

    output.emit({"file": str(file), "hash": model.hash.hex(), "ok": not failed, "checks": checks}, human)
    if failed:
        raise OperationFailed(f"{len(failed)} check(s) failed", code="model.verify_failed")


@app.command("register")
def register(
    file: FileArg,
    sender: FromOpt,
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="Registry id (default: the card's name).")
    ] = None,
    version: Annotated[str | None, typer.Option("--version", help="Version (default: the card's).")] = None,
    node: NodeOpt = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Anchor the model's training data and register the model on chain (two transactions).

    Example:  autarky model register models/4c76….model --from trainer --node http://127.0.0.1:8620
    """
    from autarky.models import card_for, load_training_data
    from autarky.models.training import DATA_SUFFIX
    from autarky.modules.provenance import keeper
    from autarky.modules.provenance import messages as prov

    output.set_json_mode(json_out)
    model = _load(file)
    found = card_for(model.hash, file.parent)
    if found is None:
        raise UsageProblem(f"no card beside {file.name} names this model (train it with autarky model train)")
    card_path, card = found
    data = card["training_data"]
    root = bytes.fromhex(data["merkle_root"])
    from_ms = until_ms = 0
    records_path = file.parent / (data["merkle_root"] + DATA_SUFFIX)
    if records_path.is_file():
        times = [r.get("day_start_ms", r.get("start_ms", 0)) for r in load_training_data(records_path)]
        from_ms, until_ms = min(times), max(times)
    ctx = current()
    if node is not None:
        ctx.node_url = node
    identity, key = ctx.keyring.unlock(sender, Secrets(password_file=password_file, key_file=key_file))
    schema = f"autarky.training/{card['kind']}/{card['version']}"
    metadata = {"model": card["name"], "generator": str(data.get("generator", ""))}
    anchor_message = prov.anchor(schema, root, int(data["records"]), from_ms, until_ms, metadata)
    anchored = run(send_tx(identity.account, key, [anchor_message], fee=fee))
    anchor_id = keeper.new_anchor_id(bytes.fromhex(anchored["tx_hash"]), 0)
    register_message = prov.register_model(
        model_id or card["name"],
        version or card["version"],
        model.hash,
        card_path_hash(card_path),
        card["kind"],
        [anchor_id],
    )
    registered = run(send_tx(identity.account, key, [register_message], fee=fee))
    output.emit(
        {
            "model_hash": model.hash.hex(),
            "card_hash": card_path_hash(card_path).hex(),
            "anchor": anchor_id.hex(),
            "anchor_tx": anchored["tx_hash"],
            "register_tx": registered["tx_hash"],
        },
        lambda: output.stdout.print(
            f"[bold green]anchored[/] training data root {root.hex()[:16]}… as {anchor_id.hex()}\n"
            f"  {tx_summary(anchored)}\n[bold green]registered[/] {model_id or card['name']} "
            f"{version or card['version']} hash {model.hash.hex()}\n  {tx_summary(registered)}"
        ),
    )


def card_path_hash(path: Path) -> bytes:
    from autarky.crypto.hashing import sha256

    return sha256(path.read_bytes())
