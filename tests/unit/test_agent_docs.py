"""The Python examples of ``docs/agents.md`` run as written and print what the page says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    found = blocks()
    assert len(found) == 3
    namespace: dict[str, Any] = {}
    for code in found:
        exec(compile(code, str(DOCS), "exec", dont_inherit=True), namespace)
    printed = capsys.readouterr().out.splitlines()
    page = DOCS.read_text(encoding="utf-8")
    # The first example's output is quoted on the page, line for line.
    for line in printed[:3]:
        assert line in page, line
    assert printed[3] == "identity/pause identity/resume"
    assert namespace["battery"].paused is False
    assert callable(namespace["battery_on_node"])  # run against a node by test_agent_docs_node.py


def test_the_agent_file_on_the_page_is_the_example_the_tests_run() -> None:
    """The "One machine per process" section shows ``examples/energy_buyer.py`` as it is
    (``tests/integration/test_agent_run_cli.py`` runs it in two processes, ``test_agent_file.py``
    in process)."""
    (shown,) = re.findall(
        r"```python examples/energy_buyer.py\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL
    )
    example = DOCS.parents[1] / "examples" / "energy_buyer.py"
    assert shown == example.read_text(encoding="utf-8")
