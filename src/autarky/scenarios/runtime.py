"""The simulation runtime: a virtual clock, timers, and one block per moment something is due.

Machines (:class:`Actor`) register timers and event handlers on a :class:`Sim`; a timer's callback
builds messages and calls :meth:`Sim.submit`, which signs them at once (the runtime tracks every
sender's sequence) and queues the transaction for the block at the current virtual time. When every
timer due at a moment has run, the runtime executes **one block** at that moment with everything
queued (real executor and modules: :class:`autarky.modules.harness.Chain`), hands each receipt to
its callback and each event of the block to the handlers subscribed to its type. Then virtual time
jumps to the next timer. Nothing here reads the wall clock or a global random state, so a run is a
function of its seed.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Event, Receipt
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.provenance import DecisionChain, DecisionStore

Message = dict[str, Any]
ReceiptHandler = Callable[[Receipt], None]
EventHandler = Callable[[Event, int], None]
MAX_MESSAGES = 32


@dataclass(frozen=True, slots=True)
class Decision:
    """What a model decided, as a decision record needs it (see :mod:`autarky.provenance`)."""

    policy: str
    inputs: Mapping[str, Any]
    output: Any
    model: bytes | None = None
    allowed_by: Mapping[str, str] = field(default_factory=lambda: {"kind": "guardrail", "ref": "bank/guard"})


@dataclass(eq=False)
class Actor:
    """A machine (or a person's agent) in a scenario: a key, a kind, an owner, its own state."""

    name: str
    kind: str
    key: SigningKey
    owner: str | None = None
    decisions: DecisionChain | None = None
    refusals: Counter[str] = field(default_factory=Counter)

    @property
    def did(self) -> str:
        return self.key.did


@dataclass(slots=True)
class _Pending:
    raw: bytes
    actor: Actor
    messages: tuple[Message, ...]
    on_receipt: ReceiptHandler | None


class Sim:
    """Virtual time, timers, signing and block production over an in-memory chain."""

    def __init__(self, chain: Chain, start_ms: int, store: DecisionStore, anchor_every: int = 96) -> None:
        self.chain = chain
        self.now_ms = start_ms
        self.store = store
        self.anchor_every = anchor_every
        self.can_anchor = "provenance/anchor_decisions" in chain.app.routes
        self._timers: list[tuple[int, int, Callable[[], None]]] = []
        self._order = 0
        self._pending: list[_Pending] = []
        self._sequences: dict[str, int] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._block_requested = False
        self.block_listeners: list[Callable[[int, Sequence[Receipt], Sequence[Event]], None]] = []
        self.submitted = 0
        self.committed = 0
        self.refused: Counter[str] = Counter()
        self.decisions_recorded = 0
        self.decisions_by_policy: Counter[str] = Counter()
        self.anchored_records = 0
        self.anchor_txs = 0
        self.actors: list[Actor] = []

    # -- time ---------------------------------------------------------------------------------------

    def at(self, time_ms: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` at virtual time ``time_ms`` (not before now)."""
        assert time_ms >= self.now_ms, f"timer in the past: {time_ms} < {self.now_ms}"
        self._order += 1
        heapq.heappush(self._timers, (time_ms, self._order, callback))

    def every(self, period_ms: int, callback: Callable[[], None], first_ms: int, until_ms: int) -> None:
        """Run ``callback`` at ``first_ms``, then every ``period_ms`` while before ``until_ms``."""

        def tick() -> None:
            callback()
            if self.now_ms + period_ms < until_ms:
                self.at(self.now_ms + period_ms, tick)

        if first_ms < until_ms:
            self.at(first_ms, tick)

    def block_at(self, time_ms: int) -> None:
        """Produce a block at ``time_ms`` even if nothing is submitted then (clearing, settlement)."""
        self.at(time_ms, self._request_block)

    def _request_block(self) -> None:
        self._block_requested = True

    def on_event(self, event_type: str, handler: EventHandler) -> None:
        """Call ``handler(event, block_time_ms)`` for every event of that type in committed blocks."""
        self._handlers.setdefault(event_type, []).append(handler)

    # -- actions ------------------------------------------------------------------------------------

    def sequence(self, actor: Actor) -> int:
        return self._sequences.get(actor.did, 0)

    def submit(
        self,
        actor: Actor,
        *messages: Message,
        decision: Decision | None = None,
        on_receipt: ReceiptHandler | None = None,
    ) -> bytes:
        """Sign ``messages`` (1 to 32) as ``actor`` for the block at the current time; the tx hash.

        With a ``decision``, the actor's decision chain records it with this transaction's hash."""
        assert 1 <= len(messages) <= MAX_MESSAGES, len(messages)
        sequence = self._sequences.get(actor.did, 0)
        self._sequences[actor.did] = sequence + 1
        tx = sign_tx(TxBody(self.chain.chain_id, actor.did, sequence, 0, 0, tuple(messages)), actor.key)
        self._pending.append(_Pending(tx.raw, actor, tuple(messages), on_receipt))
        self.submitted += 1
        if decision is not None:
            self.record(actor, decision, tx.hash)
        return tx.hash

    def record(self, actor: Actor, decision: Decision, tx_hash: bytes | None) -> None:
        """Append a decision record to the actor's chain; anchor a batch every ``anchor_every``."""
        if actor.decisions is None:
            actor.decisions = DecisionChain(actor.did, store=self.store)
        actor.decisions.append(
            time_ms=self.now_ms,
            policy=decision.policy,
            output=decision.output,
            inputs=decision.inputs,
            model=decision.model,
            allowed_by=decision.allowed_by,
            tx=tx_hash,
        )
        self.decisions_recorded += 1
        self.decisions_by_policy[decision.policy] += 1
        if actor.decisions.pending_count >= self.anchor_every:
            self.anchor(actor)

    def anchor(self, actor: Actor) -> None:
        """Submit the actor's unanchored decision records as one ``provenance/anchor_decisions``."""
        chain = actor.decisions
        if chain is None or not self.can_anchor:
            return
        batch = chain.pending_batch()
        if batch is None:
            return
        message = {
            "type": "provenance/anchor_decisions",
            "machine": actor.did,
            "first_seq": batch.first_seq,
            "count": len(batch.records),
            "head": batch.head,
            "root": batch.root,
        }

        def anchored(receipt: Receipt, first: int = batch.first_seq, count: int = len(batch.records)) -> None:
            if receipt.ok:
                chain.mark_anchored(first, count)
                self.anchored_records += count

        self.submit(actor, message, on_receipt=anchored)
        self.anchor_txs += 1

    def anchor_all(self) -> None:
        for actor in self._actors_with_decisions():
            self.anchor(actor)

    def _actors_with_decisions(self) -> list[Actor]:
        return [a for a in self.actors if a.decisions is not None and a.decisions.pending_count]

    # -- the loop -----------------------------------------------------------------------------------

    def run_until(self, end_ms: int, on_block: Callable[[int], None] | None = None) -> None:
        """Run timers and produce blocks up to and including ``end_ms``."""
        while self._timers and self._timers[0][0] <= end_ms:
            moment = self._timers[0][0]
            self.now_ms = moment
            while self._timers and self._timers[0][0] == moment:
                _, _, callback = heapq.heappop(self._timers)
                callback()
            if self._pending or self._block_requested:
                self.produce_block()
                if on_block is not None:
                    on_block(moment)
        self.now_ms = max(self.now_ms, end_ms)

    def produce_block(self) -> None:
        pending, self._pending = self._pending, []
        self._block_requested = False
        chain = self.chain
        result = _execute(chain, [p.raw for p in pending], self.now_ms)
        receipts = result.receipts
        events: list[Event] = []
        for item, receipt in zip(pending, receipts, strict=True):
            if receipt.ok:
                self.committed += 1
                events.extend(receipt.events)
            else:
                self.refused[receipt.code] += 1
                item.actor.refusals[receipt.code] += 1
            if item.on_receipt is not None:
                item.on_receipt(receipt)
        events.extend(result.end_events)
        for listener in self.block_listeners:
            listener(self.now_ms, receipts, events)
        handlers = self._handlers
        for event in events:
            for handler in handlers.get(event.type, ()):
                handler(event, self.now_ms)


def _execute(chain: Chain, txs: list[bytes], time_ms: int) -> Any:
    from autarky.ledger.executor import execute_block

    result = execute_block(chain.state, chain.tree, chain.next_env(time_ms), txs, chain.app)
    chain.commit(result, tuple(txs))
    return result


def attrs(event: Event) -> dict[str, Any]:
    """An event's attributes as a dict."""
    return dict(event.attributes)
