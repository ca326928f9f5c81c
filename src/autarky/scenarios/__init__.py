"""Scenarios: whole machine economies on the real ledger and a virtual clock (``autarky sim run``).

Each scenario is one module of this package (``microgrid.py``, ...) that registers a
:class:`~autarky.scenarios.base.Scenario` subclass; :func:`available` finds them by importing every
module that is not part of the framework.
"""

from __future__ import annotations

import importlib
import pkgutil

from autarky.scenarios.base import Scenario, SimConfig, registry, scenario

FRAMEWORK = frozenset(
    {"base", "genesis", "metrics", "models", "progress", "report", "runner", "runtime", "svg"}
)


def available() -> dict[str, type[Scenario]]:
    """Every scenario in the package, by name."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in FRAMEWORK and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(registry().items()))


def get(name: str) -> type[Scenario]:
    """The scenario called ``name``; KeyError listing the known ones if there is none."""
    scenarios = available()
    if name not in scenarios:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(scenarios) or 'none'})")
    return scenarios[name]


__all__ = ["FRAMEWORK", "Scenario", "SimConfig", "available", "get", "scenario"]
