"""The "against a real node" example of ``docs/agents.md``, run against a node."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autarky.modules.bank import messages as bank
from autarky.web.client import AutarkyClient
from autarky.web.testing import LiveNode, TestKeys

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agents.md"
GUARD = {
    "window_blocks": 1000,
    "limits": {"aut": {"per_tx": 500, "per_window": None, "cosign_above": None}},
    "allowlist": None,
}


def test_node_example(start_node: Callable[..., LiveNode], test_keys: TestKeys) -> None:
    live = start_node()
    code = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)[-1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec", dont_inherit=True), namespace)

    async def main() -> tuple[bool, str | None]:
        async with AutarkyClient(live.url) as client:
            guarded = await client.submit_messages(
                test_keys.alice, [bank.set_guardrails(test_keys.battery.did, GUARD)]
            )
            assert guarded.ok
        result: tuple[bool, str | None] = await namespace["battery_on_node"](
            live.url, test_keys.battery, test_keys.bob.did
        )
        return result

    ok, explanation = asyncio.run(main())
    assert ok is True
    assert explanation is not None and "exceeds the per-transaction cap of 500 aut" in explanation
