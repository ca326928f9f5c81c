"""The models a scenario's machines decide with: trained once per seed, cached, registered on chain.

::

    models = trained_models(["pv-forecaster", "load-forecaster"], seed=1)   # train or load
    ctx.model_dir = models_dir(1)
    operator.include(registration_skill(models))   # on_start: anchor the training data, register

:func:`trained_models` trains each model with :func:`autarky.models.train` on data generated from
the run's seed, into a cache folder (``$AUTARKY_MODEL_CACHE`` or ``~/.cache/autarky/sim-models``,
one sub-folder per seed), and loads it from there the next time (the model file's hash is checked
on load). :func:`registration_skill` is the owner's set-up: one transaction anchors every model's
training data (``provenance/anchor``, the card's Merkle root), the next registers the models
(``provenance/register_model``) naming those anchors, so ``autarky.provenance.explain`` can walk
from a machine's transaction to its model, card and training data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autarky.agent import Machine, Skill
from autarky.models import Trained, card_for, load_model, train
from autarky.models.training import DATA_SUFFIX, VERSIONS
from autarky.modules.provenance import keeper as provenance
from autarky.modules.provenance import messages as prov


def models_dir(seed: int) -> Path:
    """The cache folder of the models trained with ``seed``."""
    root = os.environ.get("AUTARKY_MODEL_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "autarky" / "sim-models"
    return base / f"seed-{seed}"


def _cached(name: str, folder: Path) -> Trained | None:
    for path in sorted(folder.glob("*.model")):
        try:
            model = load_model(path)
        except Exception:
            continue
        if model.kind != name or model.version != VERSIONS[name]:
            continue  # another model, or one trained by older code
        found = card_for(model.hash, folder)
        if found is None:
            continue
        card_path, card = found
        root_hex = str(card["training_data"]["merkle_root"])
        data_path = folder / (root_hex + DATA_SUFFIX)
        if not data_path.is_file():
            continue
        from autarky.crypto.hashing import sha256

        return Trained(
            name,
            model,
            path,
            model.hash,
            card,
            card_path,
            sha256(card_path.read_bytes()),
            data_path,
            bytes.fromhex(root_hex),
            int(card["training_data"]["records"]),
        )
    return None


def trained_models(names: Sequence[str], seed: int, folder: Path | None = None) -> dict[str, Trained]:
    """Each model in ``names`` trained with ``seed``: from the cache folder, or trained into it."""
    folder = folder or models_dir(seed)
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, Trained] = {}
    for name in names:
        cached = _cached(name, folder)
        found[name] = cached if cached is not None else train(name, seed, folder)
    return found


def registration_skill(models: dict[str, Trained], start_ms: int = 0) -> Skill:
    """The owner's set-up: anchor every model's training data, then register the models."""
    skill = Skill("model-registration")
    ordered = [models[name] for name in sorted(models)]

    @skill.on_start
    async def register(m: Machine) -> None:
        anchors = [
            prov.anchor(
                f"autarky.training/{t.model.kind}/{t.model.version}",
                t.data_root,
                t.records,
                start_ms,
                start_ms,
                {"model": t.name, "generator": str(t.card["training_data"].get("generator", ""))},
            )
            for t in ordered
        ]
        receipt = await m.submit(*anchors)
        if not receipt.ok:
            return
        messages: list[dict[str, Any]] = [
            prov.register_model(
                t.name,
                t.model.version,
                t.model_hash,
                t.card_hash,
                t.model.kind,
                [provenance.new_anchor_id(receipt.tx_hash, index)],
            )
            for index, t in enumerate(ordered)
        ]
        await m.submit(*messages)

    return skill


__all__ = ["models_dir", "registration_skill", "trained_models"]
