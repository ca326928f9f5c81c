"""The demo's embedded models: trained once per workspace, registered on the ledger by the operator.

At workspace creation :func:`ensure_models` trains the PV and load forecasters, the battery LP and
the irrigation controller (:func:`autarky.models.train`, fixed seed) into ``<workspace>/models``:
content-addressed model files, cards and training records, the directory ``autarky decisions
explain`` reads by default. ``models.json`` there names each model's files; a later run loads
them (their hashes checked) instead of training again, unless the model's code has a newer version
(``autarky.models.training.VERSIONS``): then it trains that one, and the operator registers it.

:func:`register_models` makes the operator anchor each model's training data
(``provenance/anchor``: the records' Merkle root) and register the model
(``provenance/register_model``), unless the registry already has it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.models import load_card, load_model, load_training_data, train
from autarky.models.training import DATA_SUFFIX, VERSIONS
from autarky.web.client import AutarkyClient, ClientError, NotFound

MODELS_DIR = "models"
INDEX = "models.json"
SEED = 7
DEMO_MODELS = ("pv-forecaster", "load-forecaster", "battery-lp", "irrigation")


@dataclass(frozen=True)
class DemoModel:
    name: str
    kind: str
    version: str
    model_path: Path
    model_hash: bytes
    card_path: Path
    card_hash: bytes
    data_root: bytes
    records: int


def _entry(trained: Any) -> dict[str, Any]:
    return {
        "kind": trained.model.kind,
        "version": trained.model.version,
        "model": trained.model_path.name,
        "card": trained.card_path.name,
        "data_root": trained.data_root.hex(),
        "records": trained.records,
    }


def ensure_models(root: Path, log: Callable[[str], None] = lambda _: None) -> dict[str, DemoModel]:
    """The demo models in ``root/models``: trained now if missing (a few seconds), else loaded."""
    directory = root / MODELS_DIR
    index_path = directory / INDEX
    index: dict[str, Any] = {}
    if index_path.is_file():
        index = json.loads(index_path.read_text(encoding="utf-8"))
    changed = False
    for name in DEMO_MODELS:
        entry = index.get(name)
        if (
            entry is not None
            and entry["version"] == VERSIONS[name]
            and (directory / entry["model"]).is_file()
        ):
            continue  # trained before, by the same version of the model's code
        log(f"training the {name} model (seed {SEED})…")
        index[name] = _entry(train(name, SEED, directory))
        changed = True
    if changed:
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    models = {}
    for name in DEMO_MODELS:
        entry = index[name]
        model = load_model(directory / entry["model"])  # checks the hash against the file name
        card_path = directory / entry["card"]
        load_card(card_path)
        models[name] = DemoModel(
            name,
            entry["kind"],
            entry["version"],
            directory / entry["model"],
            model.hash,
            card_path,
            bytes.fromhex(card_path.name.split(".")[0]),
            bytes.fromhex(entry["data_root"]),
            int(entry["records"]),
        )
    return models


async def register_models(
    client: AutarkyClient,
    operator: SigningKey,
    models: dict[str, DemoModel],
    log: Callable[[str], None] = lambda _: None,
) -> int:
    """Anchor the training data and register every model the registry lacks; return how many."""
    from autarky.modules.provenance import keeper
    from autarky.modules.provenance import messages as prov

    registered = 0
    for model in models.values():
        try:
            await client.provenance_model(model.model_hash)
            continue
        except NotFound:
            pass
        times = [
            int(r.get("day_start_ms", r.get("start_ms", 0)))
            for r in load_training_data(model.model_path.parent / (model.data_root.hex() + DATA_SUFFIX))
        ]
        anchor = prov.anchor(
            f"autarky.training/{model.kind}/{model.version}",
            model.data_root,
            model.records,
            min(times),
            max(times),
            {"model": model.name, "site": "demo-microgrid"},
        )
        anchored = await client.submit_messages(operator, [anchor])
        if not (anchored.committed and anchored.ok):
            raise ClientError(0, str(anchored.code), f"anchoring {model.name}'s training data failed")
        anchor_id = keeper.new_anchor_id(bytes.fromhex(anchored.tx_hash), 0)
        message = prov.register_model(
            model.name, model.version, model.model_hash, model.card_hash, model.kind, [anchor_id]
        )
        result = await client.submit_messages(operator, [message])
        if not (result.committed and result.ok):
            raise ClientError(0, str(result.code), f"registering {model.name} failed: {result.detail}")
        registered += 1
        log(f"operator anchored {model.name}'s training data, registered model {model.model_hash.hex()[:12]}")
    return registered
