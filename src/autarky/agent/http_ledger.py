"""``HttpLedger``: the :class:`~autarky.agent.ledger.LedgerPort` of a real node, over its HTTP API.

::

    async with AutarkyClient(url) as client:
        ledger = await HttpLedger.connect(client)
        machine = Machine(key, ledger)
        await machine.start()                     # also starts following the node's event stream

* ``check`` is ``POST /api/v1/tx/check`` (the node runs ``ledger.executor.check_tx``);
* ``submit`` is ``POST /api/v1/tx?wait=true`` in a task; the future resolves to the committed
  receipt (a transaction the node refuses at admission resolves to a receipt with that code);
* events come from ``GET /api/v1/events`` (Server-Sent Events): each committed transaction's
  receipt events, dispatched like the in-process ledger's (attribute values as the API gives
  them: bytes as hex). The stream is re-opened if it drops;
* reads use the account, oracle and market routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from autarky.encoding import canonical_decode
from autarky.ledger.block import Event, Receipt
from autarky.ledger.tx import SignedTx, TxBody
from autarky.web.client import AutarkyClient, ClientError, NotFound

from .ledger import AccountView, EventCallback, LedgerEvent, _Subscriptions

logger = logging.getLogger("autarky.agent")


class HttpLedger:
    def __init__(self, client: AutarkyClient, chain_id: str, *, reconnect_s: float = 1.0) -> None:
        self.client = client
        self.chain_id = chain_id
        self.reconnect_s = reconnect_s
        self._subscriptions = _Subscriptions()
        self._events_task: asyncio.Task[None] | None = None
        self._following = asyncio.Event()
        self._fee: tuple[str, int] | None = None

    @classmethod
    async def connect(cls, client: AutarkyClient) -> HttpLedger:
        return cls(client, await client.chain_id())

    # -- events -------------------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start following the node's event stream (once)."""
        if self._events_task is None:
            loop = loop or asyncio.get_running_loop()
            self._events_task = loop.create_task(self._follow())

    async def following(self) -> None:
        """Wait until the event stream is open (events from then on are seen)."""
        self.attach()
        await self._following.wait()

    async def aclose(self) -> None:
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
            self._events_task = None

    async def _follow(self) -> None:
        while True:
            try:
                async for message in self.client.events():
                    kind = message.get("type")
                    if kind == "hello":
                        self._following.set()
                    elif kind == "tx":
                        self._dispatch_tx(message)
            except ClientError as exc:
                logger.warning("event stream of %s dropped: %s", self.client, exc)
            self._following.clear()
            await asyncio.sleep(self.reconnect_s)

    def _dispatch_tx(self, message: dict[str, Any]) -> None:
        tx_hash = bytes.fromhex(message["tx_hash"]) if message.get("tx_hash") else None
        height = int(message.get("height") or 0)
        for event in message.get("events", ()):
            if self._subscriptions.wants(event["type"]):
                self._subscriptions.dispatch(
                    LedgerEvent(event["type"], dict(event["attributes"]), height, 0, tx_hash)
                )

    def subscribe(
        self, event_type: str, callback: EventCallback, match: tuple[str, Any] | None = None
    ) -> Callable[[], None]:
        return self._subscriptions.add(event_type, callback, match)

    # -- transactions -------------------------------------------------------------------------------

    async def check(
        self,
        body: TxBody,
        public_key: bytes,
        cosigners: Sequence[bytes] = (),
        body_bytes: bytes | None = None,
    ) -> Receipt:
        answer = await self.client.check_tx(
            body.encode() if body_bytes is None else body_bytes, public_key, cosigners
        )
        return Receipt(
            b"", 0, str(answer["code"]), _events(answer.get("events", ())), body.sender, answer["detail"]
        )

    def submit(self, tx: SignedTx) -> asyncio.Future[Receipt]:
        return asyncio.ensure_future(self._submit(tx))

    async def _submit(self, tx: SignedTx) -> Receipt:
        try:
            submission = await self.client.submit(tx, wait=True)
        except ClientError as exc:
            return Receipt(tx.hash, 0, exc.code, (), tx.body.sender, str(exc))
        receipt = submission.receipt
        if receipt is None:  # admitted but not committed in time
            return Receipt(
                tx.hash, 0, submission.code or "node.timeout", (), tx.body.sender, submission.detail
            )
        return Receipt(
            tx.hash,
            int(receipt.get("index", 0)),
            str(receipt["code"]),
            _events(receipt.get("events", ())),
            tx.body.sender,
            str(receipt.get("detail", "")),
        )

    # -- reads --------------------------------------------------------------------------------------

    async def sequence(self, did: str) -> int:
        return (await self.client.account(did)).sequence

    async def account(self, did: str) -> AccountView:
        account = await self.client.account(did)
        identity = account.identity
        return AccountView(
            did=did,
            status=account.status,
            owner=None if identity is None else identity.get("owner"),
            balances=dict(account.balances),
            guardrails=account.guardrails,
            frozen=account.frozen,
            paused_reason=None if account.pause is None else str(account.pause.get("reason", "")),
            sequence=account.sequence,
        )

    async def balance(self, did: str, asset: str) -> int:
        return int((await self.client.balances(did)).get(asset, 0))

    async def fee(self) -> tuple[str, int]:
        if self._fee is None:
            proof = await self.client.proof("bank/params")
            params: dict[str, Any] = {"fee_asset": "aut", "min_fee": 0}
            if proof.value is not None:
                params = canonical_decode(proof.value)
            self._fee = (str(params["fee_asset"]), int(params["min_fee"]))
        return self._fee

    async def oracle_latest(self, feed: str) -> dict[str, Any] | None:
        try:
            latest = (await self.client.oracle_feed(feed)).get("latest")
        except NotFound:
            return None
        return None if latest is None else dict(latest)

    async def market_clearing(self, zone: str, interval: int) -> dict[str, Any] | None:
        answer = await self.client.market_prices(zone, interval, interval, limit=1)
        records: list[dict[str, Any]] = answer.get("clearings", answer.get("prices", []))
        for record in records:
            if int(record.get("interval", -1)) == interval:
                return dict(record)
        return None


def _events(items: Any) -> tuple[Event, ...]:
    return tuple(Event(item["type"], tuple(sorted(item["attributes"].items()))) for item in items)
