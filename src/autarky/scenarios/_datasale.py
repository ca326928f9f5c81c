"""Selling a data stream to machines through the ``data`` module (shared by the farm and delivery
scenarios; a private helper, not a scenario).

The seller offers a stream by the period (``data/offer``); a buyer pays into escrow (``data/buy``) and
gets a ``read:data/<offer>`` grant; the seller seals the period's stream key to the buyer
(``autarky.messaging.keydelivery.seal_key``) and sends it, with the period's encrypted content,
over the bus; the buyer opens it with every check of ``keydelivery.open_key`` (the seller's key,
its live grant from the ledger), acknowledges on the ledger (``data/ack_delivery`` with the key's
hash, which releases the escrow to the seller) and decrypts the content. Stream keys are derived
from the run's seed (so what goes on the ledger, the key hash, is the same on every run); the
sealed box and content nonces are random, but they never reach the ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from autarky.agent import ActionRefused, LedgerEvent, Machine
from autarky.crypto.did import public_key_from_did
from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode
from autarky.messaging import keydelivery
from autarky.messaging.directory import StaticDirectory
from autarky.messaging.errors import MessageError
from autarky.modules.data import messages as data
from autarky.modules.policy import keeper as policy_keeper
from autarky.scenarios.base import HOUR_MS, ScenarioContext
from autarky.scenarios.genesis import ASSET


@dataclass(frozen=True)
class DataKey:
    """A key delivery (the signed, sealed ``m2m/data_key`` envelope) and the period's encrypted content."""

    schema: ClassVar[str] = "autarky.sim-data-key/1"
    envelope: bytes
    content: bytes


def stream_key(seed: int, seller: str, period: int) -> bytes:
    return sha256(canonical_encode(["autarky/sim/stream-key", seed, seller, period]))


class DataSeller:
    """A machine selling a stream by the period; delivers keys every minute to the new buyers."""

    def __init__(
        self,
        ctx: ScenarioContext,
        machine: Machine,
        *,
        name: str,
        description: str,
        price: int,
        content: Callable[[int], bytes],
        period_ms: int = HOUR_MS,
    ) -> None:
        self.ctx = ctx
        self.machine = machine
        self.period_ms = period_ms
        self.content = content
        self.offer_id: bytes | None = None
        self.delivered = 0
        self._queue: list[dict[str, Any]] = []
        self._sealed: dict[int, tuple[bytes, bytes]] = {}
        ctx.ledger.subscribe(
            "data.bought", lambda e: self._queue.append(e.attributes), ("seller", machine.did)
        )
        offer = data.offer(
            kind="stream",
            name=name,
            description=description,
            price=price,
            asset=ASSET,
            per="period",
            period_ms=period_ms,
            licence="CC-BY-4.0",
        )

        @machine.on_start
        async def publish(m: Machine) -> None:
            receipt = await m.submit(offer)
            for event in receipt.events:
                if event.type == "data.offered":
                    self.offer_id = dict(event.attributes)["offer"]  # type: ignore[assignment]

        @machine.on_interval(period_ms=60_000, offset_ms=30_000)
        async def deliver(m: Machine) -> None:
            sales, self._queue = self._queue, []
            for sale in sales:
                await self._deliver(m, sale)

    def _period(self, period: int) -> tuple[bytes, bytes]:
        """(stream key, encrypted content) of a period, encrypted once for all its buyers."""
        if period not in self._sealed:
            key = stream_key(self.ctx.config.seed, self.machine.did, period)
            plain = self.content(period * self.period_ms)
            self._sealed = {period: (key, keydelivery.encrypt_content(key, plain))}
        return self._sealed[period]

    async def _deliver(self, m: Machine, sale: dict[str, Any]) -> None:
        now = m.now_ms()
        key, content = self._period(now // self.period_ms)
        envelope = keydelivery.seal_key(
            m.key,
            seller=m.did,
            buyer=sale["buyer"],
            offer=sale["offer"],
            purchase=sale["purchase"],
            grant=sale["grant"],
            data_key=key,
            now_ms=now,
        )
        await m.send(sale["buyer"], DataKey(envelope, content))
        self.delivered += 1


class DataBuyer:
    """A machine's purchases: ``await buyer.buy(offer)``; when the key arrives it is checked, the
    delivery acknowledged on the ledger and ``on_data(machine, content)`` called with the plaintext."""

    def __init__(
        self,
        ctx: ScenarioContext,
        machine: Machine,
        on_data: Callable[[Machine, bytes], Awaitable[None]],
    ) -> None:
        self.ctx = ctx
        self.open: dict[bytes, tuple[bytes, str, bytes]] = {}  # purchase -> (offer, seller, grant)
        self.refused = 0

        @machine.on_message(DataKey)
        async def received(m: Machine, sender: str, message: DataKey) -> None:
            await self._received(m, sender, message, on_data)

    async def buy(self, m: Machine, offer: bytes, periods: int = 1, decision: Any = None) -> bool:
        try:
            receipt = await m.submit(data.buy(offer, periods=periods), decision=decision)
        except ActionRefused:
            return False
        for event in receipt.events:
            if event.type == "data.bought":
                a: dict[str, Any] = dict(event.attributes)
                self.open[a["purchase"]] = (a["offer"], str(a["seller"]), a["grant"])
        return receipt.ok

    async def _received(
        self, m: Machine, sender: str, message: DataKey, on_data: Callable[[Machine, bytes], Awaitable[None]]
    ) -> None:
        chain = self.ctx.chain
        for purchase, (offer, seller, grant) in list(self.open.items()):
            if seller != sender:
                continue
            record = policy_keeper.read_grant(chain.state, grant)
            directory = StaticDirectory(grants=[record] if record is not None else [])
            directory.add_key(seller, public_key_from_did(seller))
            try:
                delivered = keydelivery.open_key(
                    message.envelope,
                    m.key,
                    directory,
                    buyer=m.did,
                    offer=offer,
                    seller=seller,
                    now_ms=m.now_ms(),
                )
            except MessageError:
                self.refused += 1
                continue
            if delivered.purchase != purchase:
                continue
            del self.open[purchase]
            try:
                await m.submit(data.ack_delivery(purchase, delivered.key_hash))
            except ActionRefused:
                return
            await on_data(m, keydelivery.decrypt_content(delivered.key, message.content))
            return


def count_sales(ctx: ScenarioContext) -> dict[str, int]:
    """Counters of the data market, kept up to date from the ledger's events."""
    counts = {"bought": 0, "delivered": 0, "refunded": 0, "paid_to_sellers": 0}

    def on(kind: str) -> Callable[[LedgerEvent], None]:
        def count(event: LedgerEvent) -> None:
            counts[kind] += 1
            if kind == "delivered":
                counts["paid_to_sellers"] += int(event.get("amount", 0))

        return count

    for kind in ("bought", "delivered", "refunded"):
        ctx.ledger.subscribe(f"data.{kind}", on(kind))
    return counts
