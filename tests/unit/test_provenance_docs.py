"""The Python examples of ``docs/provenance.md`` and ``docs/decisions.md`` run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", ["provenance.md", "decisions.md"])
def test_python_examples_run(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = DOCS / name
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    for code in blocks:
        exec(compile(code, str(path), "exec"), {})
    if name == "decisions.md":
        printed = capsys.readouterr().out
        assert "batch.proof" in printed and "False" not in printed
