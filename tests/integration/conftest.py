"""Integration fixtures: a real node with its HTTP API on a background event loop.

The machinery lives in :mod:`autarky.web.testing` (``LiveNode``, ``TestKeys``, ``standard_genesis``) so
tests elsewhere (property tests, CLI tests) can use it too; see its docstring for why a background
loop and how to read node state safely. Tests talk to 127.0.0.1:<port> over real HTTP (``live.http``)
or run async client code with ``asyncio.run`` in the test thread.

Fixtures:

* ``test_keys`` — deterministic keys (``TestKeys``), the same in every run;
* ``live_node`` — one node + API for a whole test module (chain ``test``, API key ``test-key``);
* ``start_node`` — ``start_node(genesis=None, api_key=None, **NodeSettings)``: a fresh node in the
  test's own temporary directory, for tests that need their own chain, settings or API key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autarky.web.testing import API_KEY, LiveNode, TestKeys, standard_genesis


@pytest.fixture(scope="session")
def test_keys() -> TestKeys:
    return TestKeys.create()


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory, test_keys: TestKeys) -> Iterator[LiveNode]:
    data_dir = tmp_path_factory.mktemp("live-node") / "node"
    with LiveNode(data_dir, standard_genesis(test_keys), api_key=API_KEY) as live:
        yield live


@pytest.fixture
def start_node(tmp_path: Path, test_keys: TestKeys) -> Iterator[Callable[..., LiveNode]]:
    """``start_node(genesis=None, api_key=None, **NodeSettings)``: a fresh node, stopped after the test."""
    started: list[LiveNode] = []

    def start(genesis: dict[str, Any] | None = None, api_key: str | None = None, **settings: Any) -> LiveNode:
        data_dir = tmp_path / f"node-{len(started)}"
        live = LiveNode(data_dir, genesis or standard_genesis(test_keys), api_key=api_key, **settings)
        live.start()
        started.append(live)
        return live

    yield start
    for live in reversed(started):
        live.stop()
