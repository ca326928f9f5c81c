"""``autarky model train`` then ``autarky model register`` against a real node, as a person runs them.

The trainer's training data becomes a data anchor whose Merkle root is the card's, and the model's
content hash, card hash and anchor land in the registry (read back through the provenance CLI).
Registering the same model twice is refused by the ledger with its code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import RunningNode, autarky_json

pytestmark = pytest.mark.slow


def test_train_register_and_read_back(tmp_path: Path) -> None:
    autarky_json(tmp_path, "init", "--chain-id", "model-test", "--insecure-demo")
    trained = autarky_json(tmp_path, "model", "train", "irrigation", "--seed", "3", "--out", "models")
    node = RunningNode(tmp_path)
    try:
        remote = ("--node", node.url)
        registered = autarky_json(tmp_path, *remote, "model", "register", trained["model"], "--from", "owner")
        assert registered["model_hash"] == trained["model_hash"]
        assert registered["card_hash"] == trained["card_hash"]

        anchor = autarky_json(tmp_path, *remote, "provenance", "anchors", registered["anchor"])
        assert anchor["root"] == trained["training_root"]
        assert anchor["count"] == trained["record_count"]

        listed = autarky_json(tmp_path, *remote, "provenance", "models", "--model-id", "irrigation")
        [entry] = listed["models"]
        assert entry["hash"] == trained["model_hash"]
        assert entry["card_hash"] == trained["card_hash"]
        assert entry["training_anchors"] == [registered["anchor"]]

        again = autarky_json(
            tmp_path, *remote, "model", "register", trained["model"], "--from", "owner", expect=1
        )
        assert again["error"]["code"].startswith("provenance.")
    finally:
        node.stop()
