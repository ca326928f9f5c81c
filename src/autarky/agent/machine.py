"""A machine: an identity on the ledger that runs handlers and acts through a ledger port.

::

    machine = Machine(key, ledger)                # key: SigningKey (or Machine.from_keystore)

    @machine.on_interval(period_ms=15 * 60_000)
    async def trade(m: Machine) -> None:
        decision = m.decide(policy, {"soc_wh": 5_000, "price": 2150})
        await m.submit({"type": "market/order", ...}, decision=decision)

    await machine.start()

Every transaction goes through :meth:`Machine.submit`: it builds the body with the machine's own
sequence counter, asks the ledger for a **pre-check** (the receipt it would get, see
``autarky.ledger.executor.check_tx``), and only if that is ``ok`` signs and submits it; otherwise
it raises :class:`~autarky.agent.errors.ActionRefused` with the refusal explained in words, and
logs it. Nothing refused is ever signed.

**Kill-switch.** The machine watches its own account: when its owner pauses it on the ledger
(``identity/pause``) it stops acting, that is no handler runs and ``submit`` raises
:class:`~autarky.agent.errors.MachinePaused`, until the owner resumes it; ``machine.paused`` tells,
and the log says why.

**Decisions.** ``decide(policy, inputs)`` runs a decision policy and returns a :class:`Decision`;
``submit(..., decision=d)`` appends a decision record (``autarky.provenance.DecisionChain``) that
names the transaction hash, and every ``anchor_every`` records or ``anchor_interval_ms`` the
machine anchors its pending records on chain (``provenance/anchor_decisions``).

**Defined apart from its key.** ``Machine.define("battery")`` returns a
:class:`~autarky.agent.definition.MachineDefinition`: the same decorators, no key and no ledger
yet; ``definition.build(key, ledger)`` makes the machine. That is what an agent file run by
``autarky agent run FILE.py`` holds.

**Stopping.** ``await machine.stop()`` cancels its handlers at once (a simulation's end);
``await machine.stop(anchor=True, grace_s=5)`` lets the handlers that are running finish first
and anchors every pending decision record (a process shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import encode_trusted
from autarky.ledger.block import Receipt
from autarky.ledger.tx import WIRE_VERSION, SignedTx, TxBody
from autarky.provenance import DecisionChain, DecisionStore, inputs_digest

from .clock import Clock, clock_for_running_loop
from .errors import ActionRefused, MachinePaused, NotStarted, explain, paused_reason
from .ledger import AccountView, LedgerEvent, LedgerPort
from .skill import Skill, body_to_model, schema_of
from .storage import MemoryStorage, Storage

if TYPE_CHECKING:
    from .definition import MachineDefinition

logger = logging.getLogger("autarky.agent")

HOUR_MS = 3_600_000


class DecisionPolicy(Protocol):
    """What ``Machine.decide`` needs of a policy (``autarky.models.DecisionPolicy``)."""

    name: str
    model_hash: bytes | None

    def decide(self, inputs: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's output and what its decision record needs."""

    policy: str
    model: bytes | None
    inputs: Mapping[str, Any]
    inputs_digest: bytes
    output: Any


class Bus(Protocol):
    """``InProcessBus`` (``agent/bus.py``) or ``NatsBus`` (``agent/nats_bus.py``); ``register`` and
    ``unregister`` may be coroutines."""

    def register(self, machine: Machine) -> Any: ...

    def unregister(self, machine: Machine) -> Any: ...

    async def send(self, machine: Machine, recipient: str, schema: str, body: Any) -> None: ...


class Machine(Skill):
    """An autonomous machine (see the module docstring)."""

    def __init__(
        self,
        key: SigningKey,
        ledger: LedgerPort,
        *,
        did: str | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        bus: Bus | None = None,
        storage: Storage | None = None,
        decisions: DecisionStore | None = None,
        fee: int | None = None,
        anchor_every: int = 256,
        anchor_interval_ms: int = HOUR_MS,
        log_size: int = 200,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name or (did or key.did)[-8:])
        self.key = key
        self.public_key = key.public_key.raw
        self.did = did or key.did
        self.ledger = ledger
        self.chain_id = ledger.chain_id
        self.clock = clock
        self.bus = bus
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.decision_store = decisions
        self.decisions: DecisionChain | None = None
        self.fee = fee
        self.anchor_every = anchor_every
        self.anchor_interval_ms = anchor_interval_ms
        self.log: deque[tuple[int, str]] = deque(maxlen=log_size)
        self.log_commits = False
        """Also log every committed transaction (``autarky agent run`` shows them as progress)."""
        self.settings: Mapping[str, str] = MappingProxyType(dict(settings or {}))
        """Text settings given by whoever runs the machine (``autarky agent run --set KEY=VALUE``)."""
        self.paused = False
        self.paused_reason: str | None = None
        self.started = False
        self.refusals = 0
        self.failures = 0
        self.errors: list[BaseException] = []
        self.submitted = 0  # transactions signed and handed to the ledger
        self.committed = 0  # of those, committed with code ok
        self.refused_by_code: dict[str, int] = {}  # pre-check refusals (never signed), by code
        self.failed_by_code: dict[str, int] = {}  # committed with a failure code, by code
        self._tag_prefix = domain_tag(Domain.TRANSACTION, self.chain_id)
        self._sequence = 0
        self._signing: asyncio.Lock | None = None
        self._inflight = 0
        self._tasks: dict[asyncio.Task[Any], None] = {}  # an ordered set
        self._busy: dict[asyncio.Task[Any], int] = {}  # tasks running a handler (nesting depth)
        self._stopping = False
        self._unsubscribe: list[Any] = []
        self._last_anchor_ms = 0
        self._anchor_lock: asyncio.Lock | None = None
        """Held while an anchoring is in flight (made on first use, in the running loop)."""
        self._anchor_disabled = False

    @classmethod
    def from_keystore(cls, path: str | Path, ledger: LedgerPort, *, password: str, **kwargs: Any) -> Machine:
        """A machine whose key is read from a keystore file (``autarky.crypto.keystore``)."""
        from autarky.crypto.keystore import load_keystore

        return cls(load_keystore(path, password=password), ledger, **kwargs)

    @staticmethod
    def define(name: str, **options: Any) -> MachineDefinition:
        """A machine's handlers and options without its key and ledger (what an agent file holds)::

            machine = Machine.define("battery", anchor_every=16)

            @machine.on_interval(period_ms=60_000)
            async def pay(m: Machine) -> None: ...

        ``options``: ``fee``, ``anchor_every``, ``anchor_interval_ms``, ``log_size``. See
        :class:`~autarky.agent.definition.MachineDefinition`."""
        from .definition import MachineDefinition

        return MachineDefinition(name, **options)

    # -- lifecycle --------------------------------------------------------------------------------

    def now_ms(self) -> int:
        assert self.clock is not None, "the clock is set when the machine starts"
        return self.clock.now_ms()

    async def start(self) -> None:
        """Read the machine's account, subscribe, run ``on_start`` handlers, start the intervals."""
        if self.started:
            return
        self._stopping = False
        loop = asyncio.get_running_loop()
        if self.clock is None:
            self.clock = clock_for_running_loop()
        ledger = self.ledger
        attach = getattr(ledger, "attach", None)
        if attach is not None:
            attach(loop)
        account = await ledger.account(self.did)
        self._sequence = account.sequence
        self._set_paused(account.status == "paused", account.paused_reason)
        if self.fee is None:
            self.fee = (await ledger.fee())[1]
        if self.decision_store is not None:
            self.decisions = DecisionChain.from_store(self.decision_store, self.did)
        else:
            self.decisions = DecisionChain(self.did)
        self._last_anchor_ms = self.now_ms()
        self._unsubscribe.append(ledger.subscribe("identity.paused", self._on_paused, ("did", self.did)))
        self._unsubscribe.append(ledger.subscribe("identity.resumed", self._on_resumed, ("did", self.did)))
        for handler in self.events:
            self._unsubscribe.append(ledger.subscribe(handler.event_type, self._event_callback(handler)))
        if self.bus is not None and self.messages:
            registered = self.bus.register(self)
            if inspect.isawaitable(registered):  # a network bus connects and subscribes
                await registered
        self.started = True
        for function, is_async in self.starts:
            await self._call(function, is_async)
        for interval in self.intervals:
            self._tasks[loop.create_task(self._interval_loop(interval))] = None

    async def stop(self, *, anchor: bool = False, grace_s: float = 0.0) -> None:
        """Stop: no handler starts from now on; subscriptions end; the machine's tasks are cancelled.

        ``grace_s``: handlers already running get that long to finish first (an action in flight
        gets its receipt and its decision record) before they are cancelled. ``anchor``: then
        anchor every pending decision record on chain (unless the machine is paused; a failure is
        logged, and the records stay pending in the store for the next start)."""
        self._stopping = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self.bus is not None:
            unregistered = self.bus.unregister(self)
            if inspect.isawaitable(unregistered):
                await unregistered
        if grace_s > 0:
            current = asyncio.current_task()  # a handler may stop its own machine: never wait on it
            running = [task for task in self._busy if task is not current and not task.done()]
            if running:
                await asyncio.wait(running, timeout=grace_s)
        tasks, self._tasks = list(self._tasks), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if anchor and self.started:
            await self._anchor_all()
        self.started = False
        self.storage.flush()

    async def _anchor_all(self) -> None:
        """Anchor every pending decision record, a batch at a time (at stop)."""
        chain = self.decisions
        if chain is None or chain.pending_count == 0 or self._anchor_disabled:
            return
        if self.paused:
            self.note(
                f"paused: {chain.pending_count} decision records stay pending (anchored after a resume)"
            )
            return
        try:
            while chain.pending_count:
                receipt = await self.anchor()
                if receipt is None or not receipt.ok:
                    break
        except Exception as exc:  # a node gone away: the records stay in the store, pending
            self.note(f"could not anchor its decision records: {exc!r}", logging.WARNING)
        if chain.pending_count:
            self.note(f"{chain.pending_count} decision records left pending", logging.WARNING)

    def note(self, text: str, level: int = logging.INFO) -> None:
        """A line in the machine's log (``machine.log``) and in the ``autarky.agent`` logger."""
        now = self.clock.now_ms() if self.clock is not None else 0
        self.log.append((now, text))
        if logger.isEnabledFor(level):
            logger.log(level, "%s %s", self.name, text)

    # -- the kill-switch --------------------------------------------------------------------------

    def _set_paused(self, paused: bool, reason: str | None) -> None:
        if paused and not self.paused:
            self.paused, self.paused_reason = True, reason
            self.note(f"paused by its owner on the ledger: {reason or 'no reason given'}; not acting")
        elif not paused and self.paused:
            self.paused, self.paused_reason = False, None
            self.note("resumed by its owner on the ledger; acting again")

    async def _refresh_status(self) -> None:
        try:
            account = await self.ledger.account(self.did)
        except Exception as exc:  # a node that does not answer: stay paused, try again next time
            self.note(f"cannot read its own account: {exc!r}", logging.WARNING)
            return
        self._set_paused(account.status == "paused", account.paused_reason)

    def _on_paused(self, event: LedgerEvent) -> None:
        self._set_paused(True, str(event.get("reason", "")))

    def _on_resumed(self, event: LedgerEvent) -> None:
        self._set_paused(False, None)

    # -- running handlers -------------------------------------------------------------------------

    def _enter_busy(self) -> asyncio.Task[Any]:
        """Mark the current task as running a handler (``stop`` gives it its grace period)."""
        task = asyncio.current_task()
        assert task is not None, "handlers run in tasks"
        self._busy[task] = self._busy.get(task, 0) + 1
        return task

    def _leave_busy(self, task: asyncio.Task[Any]) -> None:
        depth = self._busy.pop(task)
        if depth > 1:  # a handler that delivered a message to a handler of this machine, in process
            self._busy[task] = depth - 1

    async def _call(self, function: Any, is_async: bool, *args: Any) -> None:
        task = self._enter_busy()
        try:
            if is_async:
                await function(self, *args)
            else:
                function(self, *args)
        except ActionRefused:
            pass  # already counted and logged by submit
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a handler's bug must not stop the machine
            self.failures += 1
            self.errors.append(exc)
            self.note(f"handler {getattr(function, '__name__', function)} failed: {exc!r}", logging.WARNING)
        finally:
            self._leave_busy(task)

    async def _interval_loop(self, interval: Any) -> None:
        period, offset = interval.period_ms, interval.offset_ms
        now = self.now_ms()
        due = now + (offset - now) % period
        while True:
            delay = due - self.now_ms()
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            if self._stopping:
                return
            if self.paused:
                # In case the resume event was missed (a dropped event stream): ask the ledger.
                await self._refresh_status()
            if not self.paused:
                await self._call(interval.function, interval.is_async)
            if self._stopping:
                return  # the handler finished within the stop's grace period
            now = self.now_ms()
            due += period
            if due <= now:  # a handler that overran skips the intervals it missed
                due = now + ((offset - now) % period or period)

    def _event_callback(self, handler: Any) -> Any:
        loop = asyncio.get_running_loop()

        def callback(event: LedgerEvent) -> None:
            if self.started and not self.paused and not self._stopping:
                self._spawn(loop, self._call(handler.function, handler.is_async, event))

        return callback

    def _spawn(self, loop: asyncio.AbstractEventLoop, coroutine: Any) -> None:
        task = loop.create_task(coroutine)
        self._tasks[task] = None
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    async def deliver(self, sender: str, schema: str, body: Any) -> None:
        """A verified message arrived (called by the bus): run its handler unless paused."""
        handler = self.messages.get(schema)
        if handler is None or not self.started or self.paused or self._stopping:
            return
        try:
            message = body_to_model(handler.model, body)
        except Exception as exc:
            self.note(f"dropped a {schema} message from {sender}: {exc}", logging.WARNING)
            return
        await self._call(handler.function, handler.is_async, sender, message)

    # -- actions ----------------------------------------------------------------------------------

    async def submit(
        self,
        *messages: Mapping[str, Any],
        decision: Decision | None = None,
        memo: str = "",
        cosigners: Sequence[SigningKey] = (),
        fee: int | None = None,
    ) -> Receipt:
        """Pre-check, sign, submit ``messages`` in one transaction and wait for its receipt.

        Raises :class:`ActionRefused` (with an explanation) when the pre-check refuses, and
        :class:`MachinePaused` while the owner has paused the machine; in both cases nothing is
        submitted (over a node's API nothing is even signed). A committed failure is returned as
        its receipt (``receipt.ok`` False).
        """
        if not self.started:
            raise NotStarted(f"{self.name}: await machine.start() first")
        if self.paused:
            raise self._refuse("core.account_paused", self.paused_reason or "", messages, decision)
        if self._signing is None:
            self._signing = asyncio.Lock()
        # One transaction at a time from building the body (its sequence) to the increment: the
        # pre-check awaits (a node's HTTP API), and a concurrent submit, such as the anchoring that
        # record() starts, must not take the same sequence.
        async with self._signing:
            tx = await self._checked_and_signed(messages, decision, memo, cosigners, fee)
        self._inflight += 1
        self.submitted += 1
        try:
            receipt = await self.ledger.submit(tx)
        finally:
            self._inflight -= 1
        if receipt.ok:
            self.committed += 1
            if self.log_commits:
                kinds = ", ".join(str(message.get("type")) for message in messages)
                self.note(f"transaction {tx.hash.hex()[:16]} committed ({kinds})")
        else:
            self.failures += 1
            self.failed_by_code[receipt.code] = self.failed_by_code.get(receipt.code, 0) + 1
            self.note(
                f"transaction {tx.hash.hex()[:16]} failed on the ledger: {receipt.code} {receipt.detail}"
            )
            if self._inflight == 0:
                self._sequence = await self.ledger.sequence(self.did)
        if decision is not None:
            self.record(decision, tx=tx.hash if receipt.ok else None)
        return receipt

    async def _checked_and_signed(
        self,
        messages: Sequence[Mapping[str, Any]],
        decision: Decision | None,
        memo: str,
        cosigners: Sequence[SigningKey],
        fee: int | None,
    ) -> SignedTx:
        """Build the body at the next sequence, pre-check it, sign it and take the sequence."""
        body = TxBody(
            self.chain_id,
            self.did,
            self._sequence,
            self.fee if fee is None else fee,  # type: ignore[arg-type]
            0,
            tuple(dict(message) for message in messages),
            memo,
        )
        try:
            body_bytes = body.encode()
        except TypeError as exc:  # a float, a set...: outside canonical CBOR
            raise self._refuse(
                "core.invalid_message", f"not canonical CBOR data: {exc}", messages, None
            ) from exc
        check_signed = getattr(self.ledger, "check_signed", None)
        if check_signed is not None:
            # In process (InProcessLedger): sign first and check the signed transaction, so the
            # block can take the check's result instead of executing it again. A refused one is
            # thrown away here and never leaves the machine.
            tx = self._sign(body, body_bytes, cosigners)
            verdict = check_signed(tx)
        else:
            cosigner_keys = [key.public_key.raw for key in cosigners]
            verdict = await self.ledger.check(body, self.public_key, cosigner_keys, body_bytes)
        if not verdict.ok:
            if verdict.code == "core.account_paused":
                self._set_paused(True, paused_reason(verdict.detail))
            raise self._refuse(verdict.code, verdict.detail, messages, decision)
        if check_signed is None:
            tx = self._sign(body, body_bytes, cosigners)
        self._sequence += 1
        return tx

    def _sign(self, body: TxBody, body_bytes: bytes, cosigners: Sequence[SigningKey]) -> SignedTx:
        """As ``ledger.tx.sign_tx``, without its checks and its decoding of the result: the body was
        built here, encoded canonically and pre-checked, so the wire form is built directly (the
        same bytes: ``tests/unit/test_agent_runtime.py`` compares them)."""
        # The signed payload is domain_tag(TRANSACTION, chain) || body, the tag computed once.
        signature = self.key._key.sign(self._tag_prefix + body_bytes).signature
        signatures = [(self.public_key, signature)]
        for cosigner in cosigners:
            signatures.append(
                (cosigner.public_key.raw, cosigner.sign(Domain.TRANSACTION, body_bytes, self.chain_id))
            )
        raw = encode_trusted([WIRE_VERSION, body_bytes, [[key, sig] for key, sig in signatures]])
        return SignedTx(body, body_bytes, tuple(signatures), raw, sha256(raw))

    def _refuse(
        self, code: str, detail: str, messages: Sequence[Mapping[str, Any]], decision: Decision | None
    ) -> ActionRefused:
        explanation = explain(code, detail, messages)
        self.refusals += 1
        self.refused_by_code[code] = self.refused_by_code.get(code, 0) + 1
        self.note(f"refused by the pre-check: {code}: {explanation}", logging.INFO)
        if decision is not None and self.decisions is not None and code != "core.account_paused":
            self.record(decision, tx=None)
        error_type = MachinePaused if code == "core.account_paused" else ActionRefused
        return error_type(code, detail, explanation)

    async def send(self, recipient: str, message: Any) -> None:
        """Send a message model to ``recipient`` over the machine's bus, in a signed envelope."""
        from .skill import model_to_body

        if self.bus is None:
            raise NotStarted(f"{self.name} has no message bus")
        if self.paused:
            raise MachinePaused("core.account_paused", self.paused_reason or "", "the machine is paused")
        await self.bus.send(self, recipient, schema_of(type(message)), model_to_body(message))

    # -- decisions --------------------------------------------------------------------------------

    def decide(self, policy: DecisionPolicy, inputs: Mapping[str, Any]) -> Decision:
        """Run ``policy`` on ``inputs`` (a canonical map: ints, text, bytes, lists, maps)."""
        output = policy.decide(inputs)
        return Decision(policy.name, policy.model_hash, inputs, inputs_digest(inputs), output)

    def record(self, decision: Decision, tx: bytes | None) -> None:
        """Append a decision record (naming ``tx``) and anchor pending records when due."""
        if self.decisions is None:
            raise NotStarted(f"{self.name}: await machine.start() first")
        allowed_by = {"kind": "guardrail", "ref": self.did} if tx is not None else {"kind": "none", "ref": ""}
        self.decisions.append(
            time_ms=self.now_ms(),
            policy=decision.policy,
            output=decision.output,
            inputs=decision.inputs,
            model=decision.model,
            allowed_by=allowed_by,
            tx=tx,
        )
        if self._anchor_due():
            self._spawn(asyncio.get_running_loop(), self._anchor_in_background())

    def _anchor_due(self) -> bool:
        anchoring = self._anchor_lock is not None and self._anchor_lock.locked()
        if anchoring or self._anchor_disabled or self.decisions is None:
            return False
        pending = self.decisions.pending_count
        if pending == 0:
            return False
        return pending >= self.anchor_every or self.now_ms() - self._last_anchor_ms >= self.anchor_interval_ms

    async def _anchor_in_background(self) -> None:
        task = self._enter_busy()  # an anchoring in flight finishes within the stop's grace period
        try:
            await self.anchor()
        except Exception as exc:  # a node that does not answer: anchored with the next batch
            self.note(f"anchoring its decision records failed: {exc!r}", logging.WARNING)
        finally:
            self._leave_busy(task)

    async def anchor(self) -> Receipt | None:
        """Anchor the pending decision records on chain now (one batch); None if nothing is pending.

        One anchoring at a time: a call while another is in flight (the background one, or the
        end of a run anchoring everything) waits for it and then takes the records still pending,
        instead of proposing the same batch twice (the second would be ``provenance.out_of_order``).
        """
        if self.decisions is None:
            return None
        if self._anchor_lock is None:
            self._anchor_lock = asyncio.Lock()
        async with self._anchor_lock:
            return await self._anchor_pending(self.decisions)

    async def _anchor_pending(self, decisions: DecisionChain) -> Receipt | None:
        batch = decisions.pending_batch()
        if batch is None:
            return None
        message = {"type": "provenance/anchor_decisions", **batch.message_fields(self.did)}
        try:
            receipt = await self.submit(message)
        except ActionRefused as refusal:
            if refusal.code == "core.unknown_message":
                self._anchor_disabled = True  # this chain has no provenance module
            return None
        if receipt.ok:
            decisions.mark_anchored(batch.first_seq, len(batch.records))
            self._last_anchor_ms = self.now_ms()
        return receipt

    # -- reads ------------------------------------------------------------------------------------

    async def account(self) -> AccountView:
        return await self.ledger.account(self.did)

    async def balance(self, asset: str = "aut") -> int:
        return await self.ledger.balance(self.did, asset)

    @property
    def sequence(self) -> int:
        """The sequence number the machine's next transaction will carry."""
        return self._sequence
