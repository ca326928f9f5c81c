"""The public surface of ``autarky`` is exactly ``__all__``, and every name in it resolves."""

from __future__ import annotations

import subprocess
import sys

import autarky

EXPECTED = {
    "AutarkyClient",
    "BlockHeader",
    "ClientError",
    "Domain",
    "Node",
    "NodeSettings",
    "PublicKey",
    "Receipt",
    "Rejected",
    "SignedTx",
    "SigningKey",
    "TxBody",
    "TxError",
    "__version__",
    "decode_tx",
    "load_config",
    "sign_tx",
}


def test_public_names_are_pinned() -> None:
    assert set(autarky.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in autarky.__all__:
        assert getattr(autarky, name) is not None, name


def test_importing_the_core_does_not_load_the_web_layer() -> None:
    code = (
        "import autarky.ledger.executor, sys; print('fastapi' in sys.modules, 'autarky.node' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
