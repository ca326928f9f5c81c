"""Autarky: every machine its own identity, wallet and rules, on a replicated ledger.

The public API is the names in ``__all__``; everything else is an implementation module that may
change. Names load lazily, so ``import autarky.ledger.tx`` does not pull in the web server.

    from autarky import SigningKey, TxBody, sign_tx, AutarkyClient

    key = SigningKey.generate()
    async with AutarkyClient("http://127.0.0.1:8620") as client:   # a running `autarky up`
        print(await client.balances(key.did))
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # crypto
    "Domain": "autarky.crypto.domains",
    "PublicKey": "autarky.crypto.keys",
    "SigningKey": "autarky.crypto.keys",
    # ledger
    "TxBody": "autarky.ledger.tx",
    "SignedTx": "autarky.ledger.tx",
    "sign_tx": "autarky.ledger.tx",
    "decode_tx": "autarky.ledger.tx",
    "TxError": "autarky.ledger.errors",
    "BlockHeader": "autarky.ledger.block",
    "Receipt": "autarky.ledger.block",
    # node
    "Node": "autarky.node.node",
    "NodeSettings": "autarky.node.node",
    "load_config": "autarky.config",
    # web
    "AutarkyClient": "autarky.web.client",
    "ClientError": "autarky.web.client",
    "Rejected": "autarky.web.client",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autarky' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
