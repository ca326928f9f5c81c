"""The agent runtime: machines that decide, act on a ledger and message each other (SPEC C14).

Public names (import from ``autarky.agent``):

- :class:`Machine` ``(key, ledger, *, did=None, name=None, clock=None, bus=None, storage=None,
  decisions=None, fee=None, anchor_every=256, anchor_interval_ms=3_600_000, log_size=200,
  settings=None)``: an identity with
  handlers. Decorators ``@machine.on_interval(period_ms, offset_ms=0)``,
  ``@machine.on_message(Model)``, ``@machine.on_event("market.cleared")``, ``@machine.on_start``;
  ``machine.include(skill)``. Handlers get the machine first: ``(m)``, ``(m, sender, message)``,
  ``(m, event)``. Actions: ``await m.submit(*messages, decision=None, memo="", cosigners=(),
  fee=None) -> Receipt`` (pre-checks, signs, submits, waits), ``await m.send(did, model)``,
  ``m.decide(policy, inputs) -> Decision``, ``await m.anchor()``. Reads: ``await m.account()``,
  ``await m.balance(asset)``, ``m.ledger.*``. State: ``m.paused``, ``m.paused_reason``, ``m.log``,
  ``m.refusals``, ``m.failures``, ``m.submitted``, ``m.committed``, ``m.refused_by_code``,
  ``m.failed_by_code``, ``m.decisions`` (a ``DecisionChain``), ``m.storage``, ``m.settings``.
  Lifecycle: ``await m.start()``, ``await m.stop(anchor=False, grace_s=0.0)``.
- :class:`Skill` ``(name)``: a group of handlers with the same decorators.
- :class:`MachineDefinition`: ``Machine.define(name, **options)``, a machine's handlers without its
  key and ledger, ``definition.build(key, ledger, **kwargs) -> Machine``; :func:`load_agent_file`
  ``("battery.py[:NAME]")`` imports an agent file and returns its definition (``autarky agent
  run``); ``run_on_node`` in ``autarky.agent.process`` runs one on a node until stopped.
- :class:`Decision`: ``policy, model, inputs, inputs_digest, output``.
- Errors: :class:`AgentError`, :class:`ActionRefused` ``(code, detail, explanation)``,
  :class:`MachinePaused`, :class:`NotStarted`, :class:`AgentFileError` (``AgentFileNotFound``,
  ``AgentFileFailed``, ``NoMachineDefined``); :func:`explain` ``(code, detail, messages) -> str``.
- Clocks: :class:`RealClock`, :class:`VirtualClock`, :class:`VirtualEventLoop` ``(start_ms)`` (time
  jumps to the next timer when every task waits; idle hooks run first), :func:`run_virtual`
  ``(main, *, start_ms=0)``, :class:`Deadlock`.
- Ledger ports: :class:`LedgerPort` (protocol), :class:`InProcessLedger` ``(chain, *,
  heartbeat_ms=None, max_block_txs=None, on_block=None, verifier=None)`` over
  ``autarky.modules.harness.Chain``; ``HttpLedger`` ``(client)`` in ``autarky.agent.http_ledger``
  for a real node; :class:`AccountView`, :class:`LedgerEvent`.
- Message buses: :class:`InProcessBus` ``(ledger)``; ``NatsBus`` in ``autarky.agent.nats_bus``.
- Storage: :class:`MemoryStorage`, :class:`SqliteStorage` ``(directory, name)``.
- Runtime: :class:`Fleet` ``(machines)`` with ``await fleet.run_until(ms)`` / ``run_for(ms)``, and
  :func:`run_fleet` ``(machines, ledger, *, start_ms, until_ms)`` from synchronous code.

A complete example::

    chain = Chain.from_genesis(genesis)
    ledger = InProcessLedger(chain)
    meter = Machine(key, ledger)

    @meter.on_interval(period_ms=15 * 60_000)
    async def pay(m: Machine) -> None:
        try:
            await m.submit({"type": "bank/send", "to": grid, "asset": "aut", "amount": 10})
        except ActionRefused as refusal:
            print(refusal.explanation)          # never submitted

    run_fleet([meter], ledger, start_ms=0, until_ms=24 * 3_600_000)

See ``docs/agents.md``.
"""

from autarky.agent.bus import InProcessBus
from autarky.agent.clock import Deadlock, RealClock, VirtualClock, VirtualEventLoop, run_virtual
from autarky.agent.definition import MachineDefinition, load_agent_file
from autarky.agent.errors import (
    ActionRefused,
    AgentError,
    AgentFileError,
    AgentFileFailed,
    AgentFileNotFound,
    MachinePaused,
    NoMachineDefined,
    NotStarted,
    explain,
)
from autarky.agent.ledger import AccountView, InProcessLedger, LedgerEvent, LedgerPort
from autarky.agent.machine import Decision, Machine
from autarky.agent.runtime import Fleet, run_fleet
from autarky.agent.skill import Skill
from autarky.agent.storage import MemoryStorage, SqliteStorage

__all__ = [
    "AccountView",
    "ActionRefused",
    "AgentError",
    "AgentFileError",
    "AgentFileFailed",
    "AgentFileNotFound",
    "Deadlock",
    "Decision",
    "Fleet",
    "InProcessBus",
    "InProcessLedger",
    "LedgerEvent",
    "LedgerPort",
    "Machine",
    "MachineDefinition",
    "MachinePaused",
    "MemoryStorage",
    "NoMachineDefined",
    "NotStarted",
    "RealClock",
    "Skill",
    "SqliteStorage",
    "VirtualClock",
    "VirtualEventLoop",
    "explain",
    "load_agent_file",
    "run_fleet",
    "run_virtual",
]
