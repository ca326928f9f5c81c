"""Run a real node and its HTTP API on a background event loop, for tests and tools.

    with LiveNode(tmp_path / "node", standard_genesis(TestKeys.create())) as live:
        live.http.get("/api/v1/status")                  # real HTTP on 127.0.0.1:<free port>
        live.submit(live.transfer(keys.alice, bob, 5))   # sign with the next sequence, POST, wait
        live.call(lambda: live.node.height)              # read node state on its own loop thread

Why a background loop: code that drives a node from outside is often synchronous (pytest without
pytest-asyncio, Playwright's sync API, hypothesis). :class:`LiveNode` runs one asyncio loop in a
daemon thread; the node and the uvicorn server live on it until ``stop()``. Code that must touch the
node object goes through :meth:`LiveNode.call` / :meth:`LiveNode.run`, which execute on the node's
loop thread, the only thread that may read its in-memory state.

:class:`TestKeys` and :func:`standard_genesis` are fixed test data: deterministic, publicly known
keys (never hold anything of value with them), two funded people, a faucet and two machines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.engines.embedded import EmbeddedEngine
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank import messages as bank_messages
from autarky.node.genesis import dev_genesis
from autarky.node.node import Node, NodeSettings, init_data_dir
from autarky.web.server import ApiServer, start_api

T = TypeVar("T")

CHAIN_ID = "test"
API_KEY = "test-key"
FAUCET_FUNDS = 10**12


def key_for(name: str) -> SigningKey:
    """A deterministic key for ``name`` (test use only)."""
    return SigningKey.from_seed(sha256(b"autarky-test-key/" + name.encode("utf-8")))


@dataclass(frozen=True)
class TestKeys:
    __test__ = False  # not a test class, despite the name

    faucet: SigningKey
    alice: SigningKey
    bob: SigningKey
    carol: SigningKey
    battery: SigningKey  # a machine owned by alice
    solar: SigningKey  # a machine owned by alice

    @classmethod
    def create(cls) -> TestKeys:
        return cls(*(key_for(name) for name in ("faucet", "alice", "bob", "carol", "battery", "solar")))


def standard_genesis(keys: TestKeys, chain_id: str = CHAIN_ID) -> dict[str, Any]:
    return dev_genesis(
        chain_id,
        time_ms=1_767_225_600_000,
        allocations=[
            (keys.faucet.did, "aut", FAUCET_FUNDS),
            (keys.alice.did, "aut", 1_000_000),
            (keys.bob.did, "aut", 1_000_000),
            (keys.carol.did, "aut", 1_000),
            (keys.battery.did, "aut", 5_000),
            (keys.battery.did, "kwh", 120),
            (keys.solar.did, "aut", 2_500),
        ],
        identities=[
            {"did": keys.alice.did, "kind": "operator", "maker": "", "model": ""},
            {
                "did": keys.battery.did,
                "owner": keys.alice.did,
                "kind": "battery",
                "maker": "Voltaic",
                "model": "VB-10",
                "capabilities": ["store", "trade:energy"],
            },
            {
                "did": keys.solar.did,
                "owner": keys.alice.did,
                "kind": "solar-inverter",
                "maker": "Sunbeam",
                "model": "SB-5",
                "capabilities": ["trade:energy"],
            },
        ],
        assets=["kwh"],
    )


class LiveNode:
    """A started node and API server on a background event loop. Use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        genesis: dict[str, Any],
        api_key: str | None = None,
        clock: Callable[[], int] | None = None,
        **settings: Any,
    ) -> None:
        """``clock``: block time in ms for the embedded engine (a ``VirtualClock``), else the wall clock."""
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.genesis = genesis
        self.chain_id: str = genesis["chain_id"]
        self.api_key = api_key
        self.settings = NodeSettings(self.data_dir, **{"block_interval_ms": 5, **settings})
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve_loop, name="live-node-loop", daemon=True)
        self.node: Node
        self.api: ApiServer
        self._http: httpx.Client | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def _serve_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def start(self) -> LiveNode:
        init_data_dir(self.data_dir, self.genesis)
        self._thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            raise
        return self

    async def _start(self) -> None:
        self.node = await Node.open(self.settings)
        if self.clock is not None:
            assert isinstance(self.node.engine, EmbeddedEngine), "a virtual clock drives the embedded engine"
            self.node.engine.clock_ms = self.clock
        await self.node.start()
        self.api = await start_api(self.node, port=0, api_key=self.api_key)

    async def _stop(self) -> None:
        await self.api.stop()
        await self.node.stop()

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)

    def __enter__(self) -> LiveNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- running code on the node's loop --------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coroutine`` on the node's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Call ``function(*args)`` on the node's loop thread (to read in-memory node state)."""

        async def call() -> T:
            return function(*args)

        return self.run(call())

    # -- conveniences ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def http(self) -> httpx.Client:
        """A synchronous HTTP client for this node (closed with the node)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=30)
        return self._http

    def state_root(self) -> str:
        return self.call(lambda: self.node.header.state_root.hex())

    def height(self) -> int:
        return self.call(lambda: self.node.height)

    def wait_for_height(self, height: int, timeout: float = 30) -> None:
        self.run(self.node.wait_for_height(height, timeout), timeout + 5)

    def sequence(self, did: str) -> int:
        return self.call(self.node.sequence, did)

    def sign(
        self,
        key: SigningKey,
        messages: list[dict[str, Any]],
        *,
        fee: int = 1,
        sequence: int | None = None,
        chain_id: str | None = None,
        cosigners: tuple[SigningKey, ...] = (),
    ) -> SignedTx:
        """A transaction from ``key`` signed for this chain with the next sequence (unless given)."""
        body = TxBody(
            self.chain_id if chain_id is None else chain_id,
            key.did,
            self.sequence(key.did) if sequence is None else sequence,
            fee,
            0,
            tuple(messages),
        )
        return sign_tx(body, key, cosigners)

    def transfer(self, key: SigningKey, to: str, amount: int, asset: str = "aut", **kwargs: Any) -> SignedTx:
        return self.sign(key, [bank_messages.send(to, asset, amount)], **kwargs)

    def submit(self, tx: SignedTx | bytes, wait: bool = True) -> httpx.Response:
        raw = tx.raw if isinstance(tx, SignedTx) else tx
        return self.http.post(
            "/api/v1/tx",
            content=raw,
            params={"wait": str(wait).lower()},
            headers={"Content-Type": "application/cbor"},
        )
