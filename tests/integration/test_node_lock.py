"""One node per data directory: a second ``Node.open`` on the same ledger is refused with a clear
error until the first node stops (two writers would both append blocks)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autarky.node.errors import ConfigError
from autarky.node.node import Node, NodeSettings, init_data_dir
from autarky.web.testing import TestKeys, standard_genesis


def test_a_second_node_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    init_data_dir(data_dir, standard_genesis(TestKeys.create()))

    async def main() -> None:
        first = await Node.open(NodeSettings(data_dir=data_dir))
        try:
            with pytest.raises(ConfigError, match="another node is already running"):
                await Node.open(NodeSettings(data_dir=data_dir))
        finally:
            await first.stop()
        again = await Node.open(NodeSettings(data_dir=data_dir))  # released by stop()
        await again.stop()

    asyncio.run(main())
