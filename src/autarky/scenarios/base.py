"""What a scenario is: a genesis for N machines, their behaviour on a virtual clock, its metrics.

A scenario is one file in this package defining a subclass of :class:`Scenario` decorated with
:func:`scenario`; the runner (:func:`autarky.scenarios.runner.run`) does the rest (chain, clock,
progress, checks, report). See docs/simulation.md, "Adding a scenario".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from autarky.modules.harness import Chain
from autarky.scenarios.genesis import GenesisBuilder
from autarky.scenarios.metrics import Recorder
from autarky.scenarios.report import Section
from autarky.scenarios.runtime import Sim

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


class Scenario:
    """Subclass, set ``name`` and ``summary``, implement the three hooks."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    tail_ms: ClassVar[int] = 2 * HOUR_MS
    """How long the run goes on after ``hours`` so every open market book and job can close."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config

    @property
    def start_ms(self) -> int:
        return self.config.start_ms

    @property
    def end_ms(self) -> int:
        return self.config.start_ms + self.config.hours * HOUR_MS

    def build_genesis(self, genesis: GenesisBuilder) -> None:
        """Add the actors (machines, owners, providers), their balances and the module sections."""
        raise NotImplementedError

    def start(self, sim: Sim, recorder: Recorder) -> None:
        """Schedule the set-up transactions and every machine's timers and event handlers."""
        raise NotImplementedError

    def finish(self, sim: Sim, recorder: Recorder, chain: Chain) -> dict[str, Any]:
        """After the run: the scenario's own metrics (JSON-ready)."""
        return {}

    def sections(self, metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
        """The scenario's own report sections (shown after the summary, before the standard ones)."""
        return []


_REGISTRY: dict[str, type[Scenario]] = {}


def scenario(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: make a scenario available to ``autarky sim run NAME``."""
    assert cls.name and cls.name not in _REGISTRY, f"scenario name {cls.name!r} empty or taken"
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Scenario]]:
    return _REGISTRY
