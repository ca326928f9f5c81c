"""Ledger ports: how a machine talks to a chain, in process or over a node's HTTP API.

:class:`LedgerPort` is what a :class:`~autarky.agent.machine.Machine` needs of a ledger. Two
implementations: :class:`InProcessLedger` here (an ``autarky.modules.harness.Chain`` in the same
process: simulations and tests) and ``autarky.agent.http_ledger.HttpLedger`` (a real node).

The in-process ledger is the simulation path, so it is built for thousands of machines:

* ``submit`` only appends to a list and returns a future;
* on a :class:`~autarky.agent.clock.VirtualEventLoop` it produces a block when every task waits (an
  idle hook), with every transaction pending at that virtual time, in submission order; so a
  thousand machines woken by the same fifteen-minute timer land in one block. On a normal loop a
  block is produced one tick after the first submission;
* ``check`` runs :func:`autarky.ledger.executor.execute_tx` with an accepting verifier on a child of
  one *pending* overlay per block, and keeps the writes of a transaction that passes, so the check
  of a machine's second transaction in a block sees its first one (its sequence and spending), and
  the verdict is the one the block will give (same state, order, height and time), except for ids
  modules derive from the transaction hash (placeholder signatures give another hash);
* ``check_signed`` does the same for a transaction already signed (a machine signs first here,
  since nothing leaves the process, and throws the signature away if the check refuses) and
  remembers its receipt and writes: when the block then holds exactly the checked transactions in
  the checked order at the checked height and time, the executor takes those instead of running
  the modules again, after verifying each signature (``executed`` in
  :func:`autarky.ledger.executor.apply_block`). Every transaction is still executed once, on the
  state it lands on; a simulation no longer executes it twice;
* reads go through the module keepers on the committed state; events of committed blocks are
  dispatched to subscribers by event type, optionally filtered by one attribute (an index, not a
  scan: a thousand machines each watching their own ``identity.paused`` cost one dict lookup).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autarky.ledger.block import Event, Receipt
from autarky.ledger.executor import (
    ACCEPTING_VERIFIER,
    Executed,
    SignatureVerifier,
    execute_tx,
    sequence_of,
    unsigned_tx,
)
from autarky.ledger.router import BlockEnv
from autarky.ledger.state import Overlay, get_obj
from autarky.ledger.tx import SignedTx, TxBody
from autarky.modules.harness import Chain

from .clock import VirtualEventLoop


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """An event of a committed block: a transaction's (``tx_hash`` set) or the block end's."""

    type: str
    attributes: dict[str, Any]
    height: int
    time_ms: int
    tx_hash: bytes | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)


@dataclass(frozen=True, slots=True)
class AccountView:
    """What a machine needs to know about an account, from either port.

    ``status``: ``unregistered`` | ``active`` | ``paused`` | ``revoked``.
    """

    did: str
    status: str
    owner: str | None
    balances: dict[str, int]
    guardrails: dict[str, Any] | None
    frozen: bool
    paused_reason: str | None = None
    sequence: int = 0

    @property
    def paused(self) -> bool:
        return self.status == "paused"


EventCallback = Callable[[LedgerEvent], None]


class LedgerPort(Protocol):
    """What a machine needs of a ledger (see the module docstring)."""

    chain_id: str

    def submit(self, tx: SignedTx) -> asyncio.Future[Receipt]:
        """Hand ``tx`` over; the future resolves to its receipt once it is in a committed block."""
        ...

    async def check(
        self,
        body: TxBody,
        public_key: bytes,
        cosigners: Sequence[bytes] = (),
        body_bytes: bytes | None = None,
    ) -> Receipt:
        """The receipt ``body`` would get if signed by ``public_key`` (nothing is signed or written).

        ``body_bytes``: ``body.encode()`` when the caller has it (saves encoding it twice)."""
        ...

    async def sequence(self, did: str) -> int: ...

    async def account(self, did: str) -> AccountView: ...

    async def balance(self, did: str, asset: str) -> int: ...

    async def fee(self) -> tuple[str, int]:
        """(fee asset, minimum fee)."""
        ...

    async def oracle_latest(self, feed: str) -> dict[str, Any] | None: ...

    async def market_clearing(self, zone: str, interval: int) -> dict[str, Any] | None: ...

    def subscribe(
        self, event_type: str, callback: EventCallback, match: tuple[str, Any] | None = None
    ) -> Callable[[], None]:
        """Call ``callback`` for each committed event of this type (whose attribute ``match[0]``
        equals ``match[1]``, if given). Returns a function that unsubscribes."""
        ...


@dataclass
class _Subscriptions:
    """Callbacks by event type, and by (event type, attribute, value) for filtered ones."""

    by_type: dict[str, list[EventCallback]] = field(default_factory=dict)
    by_match: dict[tuple[str, str, Any], list[EventCallback]] = field(default_factory=dict)
    match_attrs: dict[str, list[str]] = field(default_factory=dict)

    def add(
        self, event_type: str, callback: EventCallback, match: tuple[str, Any] | None
    ) -> Callable[[], None]:
        if match is None:
            callbacks = self.by_type.setdefault(event_type, [])
        else:
            attrs = self.match_attrs.setdefault(event_type, [])
            if match[0] not in attrs:
                attrs.append(match[0])
            callbacks = self.by_match.setdefault((event_type, match[0], match[1]), [])
        callbacks.append(callback)
        return lambda: callbacks.remove(callback) if callback in callbacks else None

    def dispatch(self, event: LedgerEvent) -> None:
        for callback in self.by_type.get(event.type, ()):
            callback(event)
        for attr in self.match_attrs.get(event.type, ()):
            for callback in self.by_match.get((event.type, attr, event.attributes.get(attr)), ()):
                callback(event)

    def wants(self, event_type: str) -> bool:
        return event_type in self.by_type or event_type in self.match_attrs


def account_view(state: Any, did: str) -> AccountView:
    """An :class:`AccountView` read from chain state through the module keepers."""
    from autarky.modules.bank import keeper as bank
    from autarky.modules.identity import keeper as identity

    record = identity.read_raw_account(state, did)
    paused_reason = None
    if record is None:
        status, owner = "unregistered", None
    else:
        status, owner = str(record["status"]), record["owner"]
        if status == "paused":
            pause = get_obj(state, "identity/pause/" + did)
            paused_reason = None if pause is None else str(pause["reason"])
    return AccountView(
        did=did,
        status=status,
        owner=owner,
        balances=bank.balances(state, did),
        guardrails=bank.guardrails(state, did),
        frozen=bank.is_frozen(state, did),
        paused_reason=paused_reason,
        sequence=sequence_of(state, did),
    )


class InProcessLedger:
    """A :class:`LedgerPort` over an in-memory :class:`~autarky.modules.harness.Chain`.

    ``heartbeat_ms``: also produce a block (possibly empty) whenever this much virtual time has
    passed since the last one, so ``end_block`` work (market clearing, settlement, oracle deadlines)
    happens when no machine sends anything. None: blocks only when transactions are pending.
    ``max_block_txs`` caps a block; the rest waits for the next one (at the same virtual time).
    ``on_block(ledger, receipts, end_events)`` is called after each block (metrics, progress).
    ``verifier``: the executor's signature verifier (default: libsodium on every signature); one
    with a ``prefetch(txs)`` method (``autarky.node.admission.PrefetchVerifier``) is handed each
    transaction as it is submitted, so worker processes verify while the machines go on.
    """

    def __init__(
        self,
        chain: Chain,
        *,
        heartbeat_ms: int | None = None,
        max_block_txs: int | None = None,
        on_block: Callable[[InProcessLedger, tuple[Receipt, ...], tuple[Event, ...]], None] | None = None,
        verifier: SignatureVerifier | None = None,
    ) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self.heartbeat_ms = heartbeat_ms
        self.max_block_txs = max_block_txs
        self.on_block = on_block
        self.verifier = verifier
        self._prefetch = getattr(verifier, "prefetch", None)
        self._pending: list[tuple[SignedTx, asyncio.Future[Receipt]]] = []
        self._check_state = Overlay(chain.state)
        self._check_index = 0
        self._executed: list[Executed] = []
        """Receipts and writes of the transactions checked by :meth:`check_signed` since the last
        block, in check order (each also committed into ``_check_state``)."""
        self._executed_at: tuple[int, int] | None = None
        """(height, time) the checks in ``_executed`` ran at; the block must be at the same."""
        self._subscriptions = _Subscriptions()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._virtual = False
        self._scheduled = False
        self._heartbeat: asyncio.Task[None] | None = None
        self.blocks_produced = 0
        self.txs_committed = 0

    # -- wiring to the event loop -------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to ``loop`` (the running one by default); on a virtual loop, install the idle hook."""
        loop = loop or asyncio.get_running_loop()
        if self._loop is loop:
            return
        assert self._loop is None, "an InProcessLedger serves one event loop"
        self._loop = loop
        if isinstance(loop, VirtualEventLoop):
            self._virtual = True
            loop.add_idle_hook(self._on_idle)
        if self.heartbeat_ms is not None:
            self._heartbeat = loop.create_task(self._beat(self.heartbeat_ms))

    def detach(self) -> None:
        if self._loop is not None and self._virtual:
            assert isinstance(self._loop, VirtualEventLoop)
            self._loop.remove_idle_hook(self._on_idle)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self._loop = None
        self._virtual = False

    def _now_ms(self) -> int:
        loop = self._loop
        if isinstance(loop, VirtualEventLoop):
            return loop.now_ms()
        return self.chain.tip_time_ms + self.chain.block_ms

    async def _beat(self, period_ms: int) -> None:
        while True:
            await asyncio.sleep(period_ms / 1000)
            if self._virtual:
                if self._now_ms() - self.chain.tip_time_ms >= period_ms:
                    self._produce_block()
            else:
                self._produce_block()

    # -- LedgerPort ---------------------------------------------------------------------------------

    def submit(self, tx: SignedTx) -> asyncio.Future[Receipt]:
        if self._loop is None:
            self.attach()
        assert self._loop is not None
        future: asyncio.Future[Receipt] = self._loop.create_future()
        self._pending.append((tx, future))
        if self._prefetch is not None:
            self._prefetch((tx,))
        if not self._virtual and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._produce_block)
        return future

    async def check(
        self,
        body: TxBody,
        public_key: bytes,
        cosigners: Sequence[bytes] = (),
        body_bytes: bytes | None = None,
    ) -> Receipt:
        return self.check_now(body, public_key, cosigners, body_bytes)

    def check_now(
        self,
        body: TxBody,
        public_key: bytes,
        cosigners: Sequence[bytes] = (),
        body_bytes: bytes | None = None,
    ) -> Receipt:
        """:meth:`check` without a coroutine (see the module docstring for what it sees)."""
        return self._check(unsigned_tx(body, public_key, cosigners, body_bytes), remember=False)

    def check_signed(self, tx: SignedTx) -> Receipt:
        """:meth:`check_now` of a signed transaction (its signatures are not looked at here: the
        block verifies them), remembered so the block can take its result instead of executing
        it again. Submit it next, or throw it away if the receipt is not ok."""
        return self._check(tx, remember=True)

    def _check(self, tx: SignedTx, *, remember: bool) -> Receipt:
        """Execute ``tx`` on a child of the pending overlay, kept there if it passes; with
        ``remember``, also its receipt and writes for the block (only while every check since
        the last block was remembered, so the list stays the block's first transactions)."""
        env = self._next_env()
        if self._executed_at != (env.height, env.time_ms):
            # Time moved on (or the block's height did) since the checks remembered so far: their
            # results are not the block's. Keep the pending state, forget the results.
            self._executed = []
            self._executed_at = (env.height, env.time_ms)
        child = self._check_state.child()
        receipt = execute_tx(child, env, tx, self._check_index, self.chain.app, ACCEPTING_VERIFIER)
        if receipt.ok:
            if remember and len(self._executed) == self._check_index:
                self._executed.append(Executed(receipt, tuple(child.changes())))
            child.commit()
            self._check_index += 1
        return receipt

    async def sequence(self, did: str) -> int:
        return sequence_of(self.chain.state, did)

    async def account(self, did: str) -> AccountView:
        return account_view(self.chain.state, did)

    async def balance(self, did: str, asset: str) -> int:
        from autarky.modules.bank import keeper as bank

        return bank.balance(self.chain.state, did, asset)

    async def fee(self) -> tuple[str, int]:
        from autarky.modules.bank import keeper as bank

        params = bank.params(self.chain.state)
        return str(params["fee_asset"]), int(params["min_fee"])

    async def oracle_latest(self, feed: str) -> dict[str, Any] | None:
        from autarky.modules.oracle import keeper as oracle

        value = oracle.read_latest(self.chain.state, feed)
        return None if value is None else value.to_cbor()

    async def market_clearing(self, zone: str, interval: int) -> dict[str, Any] | None:
        from autarky.modules.market import keeper as market

        record = market.clearing(self.chain.state, zone, interval)
        return None if record is None else record.to_cbor()

    def subscribe(
        self, event_type: str, callback: EventCallback, match: tuple[str, Any] | None = None
    ) -> Callable[[], None]:
        return self._subscriptions.add(event_type, callback, match)

    # -- blocks -------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _next_env(self) -> BlockEnv:
        # Through the chain: with deferred roots (Chain.defer_roots) the last header is not sealed
        # yet, and execution never reads prev_hash.
        return self.chain.next_env(max(self._now_ms(), self.chain.tip_time_ms))

    def produce_block(self) -> None:
        """Execute a block now with whatever is pending, possibly nothing (a simulation's scheduled
        blocks, so end_block work such as market clearing runs when no machine sends anything)."""
        self._produce_block()

    def _on_idle(self) -> bool:
        if not self._pending:
            return False
        self._produce_block()
        return True

    def _produce_block(self) -> None:
        """Execute one block with the pending transactions, resolve their futures, dispatch events."""
        self._scheduled = False
        if self.max_block_txs is not None and len(self._pending) > self.max_block_txs:
            batch, self._pending = self._pending[: self.max_block_txs], self._pending[self.max_block_txs :]
        else:
            batch, self._pending = self._pending, []
        env = self._next_env()
        chain = self.chain
        executed = self._executed if self._executed_at == (env.height, env.time_ms) else ()
        result = chain.execute_block([tx for tx, _ in batch], env.time_ms, self.verifier, executed)
        self._check_state = Overlay(chain.state)
        self._check_index = 0
        self._executed = []
        self._executed_at = None
        self.blocks_produced += 1
        self.txs_committed += len(batch)
        for (_, future), receipt in zip(batch, result.receipts, strict=True):
            if not future.done():
                future.set_result(receipt)
        self._dispatch(result.receipts, result.end_events, env)
        if self.on_block is not None:
            self.on_block(self, result.receipts, result.end_events)
        if self._pending and not self._virtual and self._loop is not None and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._produce_block)

    def _dispatch(self, receipts: Sequence[Receipt], end_events: Sequence[Event], env: BlockEnv) -> None:
        subscriptions = self._subscriptions
        if not subscriptions.by_type and not subscriptions.match_attrs:
            return
        for receipt in receipts:
            for event in receipt.events:
                if subscriptions.wants(event.type):
                    subscriptions.dispatch(
                        LedgerEvent(
                            event.type, dict(event.attributes), env.height, env.time_ms, receipt.tx_hash
                        )
                    )
        for event in end_events:
            if subscriptions.wants(event.type):
                subscriptions.dispatch(
                    LedgerEvent(event.type, dict(event.attributes), env.height, env.time_ms)
                )
