"""What a scenario is: a genesis for N machines, agents (``autarky.agent``) on a virtual clock, metrics.

A scenario is one file in this package defining a subclass of :class:`Scenario` decorated with
:func:`scenario`. Its hooks, in the order the runner (:func:`autarky.scenarios.runner.run`) calls them:

* ``build_genesis(genesis)``: accounts, owners, balances and module sections (no transactions);
* ``setup(ctx)``: create the machines (``ctx.machine(actor)``, an :class:`autarky.agent.Machine`) and
  attach their handlers and skills (``@m.on_interval``, ``@m.on_event``, ``@m.on_message``,
  ``@m.on_start``, ``m.include(skill)``); set-up transactions go in ``on_start`` handlers;
* the runner then runs every machine on the virtual-time loop over the in-process ledger (one block
  each time every machine waits, plus one at every multiple of ``block_every_ms``), anchors every
  machine's pending decision records at the end and audits the ledger;
* ``finish(ctx)``: the scenario's own metrics; ``sections(metrics, series)``: its report sections.

See docs/simulation.md, "Adding a scenario".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from autarky.agent import InProcessBus, InProcessLedger, Machine
from autarky.agent.machine import Decision
from autarky.modules.harness import Chain
from autarky.provenance import DecisionStore
from autarky.scenarios.genesis import Actor, GenesisBuilder
from autarky.scenarios.metrics import Recorder
from autarky.scenarios.report import Section

HOUR_MS = 3_600_000
DAY_START_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: every run's simulated day starts here (time of day matters to the world)."""


@dataclass(frozen=True)
class SimConfig:
    machines: int = 100
    hours: int = 24
    seed: int = 1
    out: Path | None = None
    """The report folder (None: no files are written)."""
    start_ms: int = DAY_START_MS
    params: tuple[tuple[str, str], ...] = ()
    """Scenario parameters ``(name, value)`` (``autarky sim run --param name=value``); a scenario
    lists those it takes in ``Scenario.params`` and refuses others."""


class Scenario:
    """Subclass, set ``name`` and ``summary``, implement the hooks (see the module docstring)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    tail_ms: ClassVar[int] = 2 * HOUR_MS
    """How long the run goes on after ``hours`` so every open market book and job can close."""
    block_every_ms: ClassVar[int | None] = 900_000
    """A block (possibly empty) at every multiple of this, so end_block work (market clearing and
    settlement, job and oracle deadlines) runs when no machine sends anything. None: none."""
    setup_ms: ClassVar[int] = HOUR_MS
    """The machines start this long before ``start_ms`` (genesis is at that time): the set-up hour."""

    day_start_ms: ClassVar[int | None] = None
    """The moment this scenario's day always starts (its season and sun: a summer day for the
    farm), whatever ``SimConfig.start_ms`` says; None: the config's."""

    params: ClassVar[Mapping[str, str]] = {}
    """The parameters this scenario takes (``SimConfig.params``): name -> what it sets."""

    def __init__(self, config: SimConfig) -> None:
        unknown = sorted({name for name, _ in config.params} - set(self.params))
        if unknown:
            takes = ", ".join(sorted(self.params)) or "none"
            raise ValueError(
                f"scenario {self.name} has no parameter {', '.join(unknown)} (it takes: {takes})"
            )
        if self.day_start_ms is not None and config.start_ms != self.day_start_ms:
            config = replace(config, start_ms=self.day_start_ms)
        self.config = config

    def param(self, name: str, default: str) -> str:
        """The value of parameter ``name`` in the config (the last one given), else ``default``."""
        assert name in self.params, name
        return dict(self.config.params).get(name, default)

    @property
    def start_ms(self) -> int:
        return self.config.start_ms

    @property
    def end_ms(self) -> int:
        return self.config.start_ms + self.config.hours * HOUR_MS

    def build_genesis(self, genesis: GenesisBuilder) -> None:
        """Add the actors (machines, owners, providers), their balances and the module sections."""
        raise NotImplementedError

    def setup(self, ctx: ScenarioContext) -> None:
        """Create the machines (``ctx.machine(...)``) and attach their handlers and skills."""
        raise NotImplementedError

    def finish(self, ctx: ScenarioContext) -> dict[str, Any]:
        """After the run: the scenario's own metrics (JSON-ready)."""
        return {}

    def sections(self, metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
        """The scenario's own report sections (shown after the summary, before the standard ones)."""
        return []


class ScenarioMachine(Machine):
    """A :class:`~autarky.agent.Machine` for a genesis actor, counting what the run's metrics need
    (decision records by policy, pre-check refusals by code). It is a plain machine otherwise."""

    def __init__(self, actor: Actor, ledger: InProcessLedger, recorder: Recorder, **options: Any) -> None:
        super().__init__(actor.key, ledger, name=actor.name, **options)
        self.actor = actor
        self.kind = actor.kind
        self.owner = actor.owner
        self._recorder = recorder

    def record(self, decision: Decision, tx: bytes | None) -> None:
        super().record(decision, tx)
        self._recorder.decision(decision.policy, decision.model, tx)

    def _refuse(self, code: str, detail: str, messages: Any, decision: Decision | None) -> Any:
        self._recorder.prechecks_refused[code] += 1
        return super()._refuse(code, detail, messages, decision)


@dataclass
class ScenarioContext:
    """What a scenario's ``setup`` and ``finish`` get (see the module docstring)."""

    config: SimConfig
    chain: Chain
    """``autarky.modules.harness.Chain``: the real executor and modules."""
    ledger: InProcessLedger
    """``autarky.agent.InProcessLedger``: one block each time every machine waits."""
    store: DecisionStore
    """The run's decision records (``decisions.sqlite`` in the report folder, or in memory)."""
    recorder: Recorder
    machines: list[Machine] = field(default_factory=list)
    actors: dict[str, Actor] = field(default_factory=dict)
    """Every genesis actor by name."""
    bus: InProcessBus | None = None
    """Signed envelopes between machines (``await m.send(did, model)``), seeded nonces."""
    anchor_every: int = 96
    """Each machine anchors its pending decision records every this many records ..."""
    anchor_interval_ms: int = 8 * HOUR_MS
    """... or when its last anchor is this old (and once more at the end of the run)."""
    model_dir: Path | None = None
    """Where the run's model files, cards and training records are (``explain`` checks them)."""
    workers: Executor | None = None
    """A worker process for a scenario's own heavy, pure work (the microgrid's battery LPs, half
    of them solved there while the machines' process solves the other half), or None."""

    def machine(self, actor_or_name: Actor | str, **options: Any) -> ScenarioMachine:
        """A machine for a genesis actor (by name or :class:`Actor`): its key, the run's ledger, bus
        and decision store, anchoring on. ``options`` go to :class:`autarky.agent.Machine`."""
        actor = self.actors[actor_or_name] if isinstance(actor_or_name, str) else actor_or_name
        options.setdefault("decisions", self.store)
        options.setdefault("bus", self.bus)
        options.setdefault("anchor_every", self.anchor_every)
        options.setdefault("anchor_interval_ms", self.anchor_interval_ms)
        machine = ScenarioMachine(actor, self.ledger, self.recorder, **options)
        self.machines.append(machine)
        return machine

    def hour(self, time_ms: int) -> float:
        """Hours since the start (for series)."""
        return (time_ms - self.config.start_ms) / HOUR_MS


@dataclass
class Rule:
    """A decision policy from a function, for rules that have no model file (``model_hash`` None):
    ``m.decide(Rule("pv-fault-detector/1", detect), inputs)``."""

    name: str
    function: Callable[[Mapping[str, Any]], Any]
    model_hash: bytes | None = None

    def decide(self, inputs: Mapping[str, Any]) -> Any:
        return self.function(inputs)


_REGISTRY: dict[str, type[Scenario]] = {}


def scenario(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: make a scenario available to ``autarky sim run NAME``."""
    assert cls.name and cls.name not in _REGISTRY, f"scenario name {cls.name!r} empty or taken"
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Scenario]]:
    return _REGISTRY


__all__ = [
    "DAY_START_MS",
    "HOUR_MS",
    "Rule",
    "Scenario",
    "ScenarioContext",
    "ScenarioMachine",
    "SimConfig",
    "registry",
    "scenario",
]
