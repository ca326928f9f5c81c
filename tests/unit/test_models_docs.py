"""The Python examples of ``docs/models.md`` run as written, and ``autarky model`` works as a command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    path = DOCS / "models.md"
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 5
    for code in blocks:
        exec(compile(code, str(path), "exec"), {})
    printed = capsys.readouterr().out
    assert "(100, 96)" in printed and "refused:" in printed and "sensor stuck" in printed


def _autarky(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autarky.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_model_cli_train_show_verify(tmp_path: Path) -> None:
    trained = _autarky("model", "train", "irrigation", "--seed", "2", "--out", str(tmp_path), "--json")
    assert trained.returncode == 0, trained.stderr
    document = json.loads(trained.stdout)
    model = Path(document["model"])
    assert model.name == document["model_hash"] + ".model"
    shown = _autarky("model", "show", str(model), "--json")
    assert json.loads(shown.stdout)["card"]["training_data"]["merkle_root"] == document["training_root"]
    verified = _autarky("model", "verify", str(model), "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    records = Path(document["records"])
    records.write_bytes(records.read_bytes() + b"\x00")
    broken = _autarky("model", "verify", str(model), "--json")
    assert broken.returncode == 1
    assert "training.data" in broken.stdout
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    assert _autarky("model", "show", str(model)).returncode == 1
    assert _autarky("model", "train", "no-such-model", "--out", str(tmp_path)).returncode == 2
