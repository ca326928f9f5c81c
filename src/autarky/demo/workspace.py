"""The demo workspace: one folder holding a demo chain's node data, its keys and what the fleet is.

Layout (``.autarky/demo`` by default)::

    demo.json        {"format": "autarky-demo", "version": 1, "chain_id", "created_ms",
                      "identities": {name: did}}
    keys/NAME.json   one keystore per identity, in clear (INSECURE DEMO KEYS: never use them for value)
    node/            the node's data directory (genesis, node key, SQLite ledger)
    models/          the machines' models: model files, cards, training records (trained at creation,
                     seed fixed, a few seconds; ``models.json`` names them)
    decisions.sqlite the machines' decision records (``autarky decisions explain TX`` reads it)

The keystores use the same format as ``autarky identity new``, so ``autarky --keys-dir
.autarky/demo/keys wallet balance car`` works against a running demo. A workspace is reused on the
next ``autarky up``; ``--fresh`` deletes it first, but only a folder that holds ``demo.json`` (or an
empty one), never anything else.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import create_keystore, load_keystore
from autarky.node.errors import ConfigError
from autarky.node.genesis import DEFAULT_ASSET, dev_genesis
from autarky.node.node import DB_FILE, init_data_dir

FORMAT = "autarky-demo"
VERSION = 2
MARKER = "demo.json"
DEFAULT_WORKSPACE = Path(".autarky/demo")
DEMO_CHAIN_ID = "autarky-demo"
OWNER_SUPPLY = 1_000_000_000
DECISIONS_FILE = "decisions.sqlite"


class WorkspaceError(ConfigError):
    """The folder cannot be used as a demo workspace; the message says what to do."""


@dataclass
class Workspace:
    root: Path
    chain_id: str = DEMO_CHAIN_ID
    created_ms: int = 0
    keys: dict[str, SigningKey] = field(default_factory=dict)
    created_now: bool = False

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def node_dir(self) -> Path:
        return self.root / "node"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def decisions_path(self) -> Path:
        return self.root / DECISIONS_FILE

    def did(self, name: str) -> str:
        return self.keys[name].did

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "chain_id": self.chain_id,
            "created_ms": self.created_ms,
            "identities": {name: key.did for name, key in self.keys.items()},
        }


def is_workspace(root: Path) -> bool:
    return (root / MARKER).is_file()


def remove_workspace(root: Path) -> None:
    """Delete a demo workspace; refuses a folder that is not one (and not empty)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise WorkspaceError(f"{root} is a file, not a demo workspace; choose another --data-dir")
    if not is_workspace(root) and any(root.iterdir()):
        raise WorkspaceError(
            f"{root} is not an Autarky demo workspace (no {MARKER}); refusing to delete it. "
            "Choose another --data-dir"
        )
    shutil.rmtree(root)


def open_workspace(
    root: Path, names: Iterable[str], owner: str, log: Callable[[str], None] = lambda _: None
) -> Workspace:
    """Load the workspace at ``root``, or create it with a key per name, a genesis funding ``owner``
    and the demo's trained models."""
    root = Path(root)
    if is_workspace(root):
        return _load(root, list(names))
    if root.exists() and any(root.iterdir()):
        raise WorkspaceError(
            f"{root} exists and is not an Autarky demo workspace (no {MARKER}); choose another --data-dir"
        )
    return _create(root, list(names), owner, log)


def _create(root: Path, names: list[str], owner: str, log: Callable[[str], None]) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(root, created_ms=time.time_ns() // 1_000_000, created_now=True)
    workspace.keys_dir.mkdir(exist_ok=True)
    for name in names:
        key = SigningKey.generate()
        create_keystore(workspace.keys_dir / f"{name}.json", key, insecure_demo=True, label=name)
        workspace.keys[name] = key
    from autarky.demo.economy import economy_genesis  # imports the HTTP client: only when creating

    genesis = dev_genesis(
        workspace.chain_id,
        time_ms=workspace.created_ms,
        allocations=[(workspace.did(owner), DEFAULT_ASSET, OWNER_SUPPLY)],
        identities=[{"did": workspace.did(owner), "kind": "operator", "metadata": {"name": owner}}],
        modules=economy_genesis(),
    )
    init_data_dir(workspace.node_dir, genesis)
    from autarky.demo.models import ensure_models

    ensure_models(root, log)
    # The marker goes last: a workspace whose creation was interrupted is not mistaken for a good one.
    (root / MARKER).write_text(json.dumps(workspace.to_json(), indent=2) + "\n", encoding="utf-8")
    return workspace


def _load(root: Path, names: list[str]) -> Workspace:
    try:
        document = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{root / MARKER} is damaged ({exc}); start over with --fresh") from exc
    if type(document) is not dict or document.get("format") != FORMAT or document.get("version") != VERSION:
        raise WorkspaceError(
            f"{root / MARKER} is not a version-{VERSION} demo workspace (made by an older Autarky?); "
            "start over with --fresh"
        )
    workspace = Workspace(root, chain_id=str(document["chain_id"]), created_ms=int(document["created_ms"]))
    identities = document.get("identities", {})
    for name in names:
        path = workspace.keys_dir / f"{name}.json"
        if name not in identities or not path.exists():
            raise WorkspaceError(
                f"the demo workspace {root} lacks the identity {name!r}; start over with --fresh"
            )
        key = load_keystore(path)
        if key.did != identities[name]:
            raise WorkspaceError(f"{path} does not hold the key of {name!r} named in {MARKER}; use --fresh")
        workspace.keys[name] = key
    if not (workspace.node_dir / DB_FILE).exists():
        raise WorkspaceError(f"the demo workspace {root} has no ledger; start over with --fresh")
    return workspace
