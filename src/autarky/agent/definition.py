"""A machine defined apart from its key and its ledger, and the agent files that hold one.

An **agent file** is a Python file with a machine definition at module level, decorated like a
:class:`~autarky.agent.machine.Machine` (a Flask app object, a uAgents ``Agent``)::

    from autarky.agent import Machine

    machine = Machine.define("battery", anchor_every=16)

    @machine.on_interval(period_ms=60_000)
    async def pay(m: Machine) -> None:
        await m.submit({"type": "bank/send", "to": m.settings["pay_to"], "asset": "aut", "amount": 10})

``autarky agent run battery.py --from battery`` loads it (:func:`load_agent_file`), builds the
machine with the key of the local identity ``battery`` and a node's ledger
(:meth:`MachineDefinition.build`) and runs it until stopped: one machine per process. The same file
runs in process too: ``machine.build(key, InProcessLedger(chain))``.

Which definition :func:`load_agent_file` takes: the one named after a colon (``battery.py:charger``),
else the one called ``machine``, else the only one the file defines. It raises
:class:`~autarky.agent.errors.AgentFileNotFound`, :class:`~autarky.agent.errors.AgentFileFailed`
(importing the file raised: its line is in the message) or
:class:`~autarky.agent.errors.NoMachineDefined`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from autarky.crypto.keys import SigningKey

from .errors import AgentFileFailed, AgentFileNotFound, NoMachineDefined
from .ledger import LedgerPort
from .machine import Machine
from .skill import Skill

DEFAULT_NAME = "machine"
MODULE_NAME = "__autarky_agent__"
"""The module name an agent file is imported under (its ``if __name__ == "__main__":`` block does not run)."""
OPTIONS = frozenset({"fee", "anchor_every", "anchor_interval_ms", "log_size"})


class MachineDefinition(Skill):
    """Handlers and options of a machine, without its key and ledger (``Machine.define(name)``)."""

    def __init__(self, name: str, **options: Any) -> None:
        unknown = sorted(options.keys() - OPTIONS)
        if unknown:
            raise TypeError(f"Machine.define() takes {', '.join(sorted(OPTIONS))}; not {', '.join(unknown)}")
        super().__init__(name)
        self.options = options

    def build(self, key: SigningKey, ledger: LedgerPort, **overrides: Any) -> Machine:
        """A :class:`Machine` with these handlers, signing with ``key`` on ``ledger``. ``overrides``
        are its other keyword arguments (``did``, ``decisions``, ``settings``, ``clock``, ``bus``...)
        and win over the definition's options."""
        arguments = {"name": self.name, **self.options, **overrides}
        machine = Machine(key, ledger, **arguments)
        machine.include(self)
        return machine

    def handler_counts(self) -> dict[str, int]:
        return {
            "interval": len(self.intervals),
            "message": len(self.messages),
            "event": len(self.events),
            "start": len(self.starts),
        }


def split_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``"battery.py:charger"`` -> (``battery.py``, ``"charger"``); a plain path names no definition."""
    text = str(spec)
    head, colon, tail = text.rpartition(":")
    if colon and head and tail.isidentifier():
        return Path(head), tail
    return Path(text), None


def load_agent_file(spec: str | Path) -> MachineDefinition:
    """Import the agent file ``spec`` (``PATH`` or ``PATH:NAME``) and return its machine definition."""
    path, name = split_spec(spec)
    if not path.exists():
        raise AgentFileNotFound(f"no agent file at {path}")
    if not path.is_file():
        raise AgentFileNotFound(f"{path} is not a file: give the Python file that defines the machine")
    return find_definition(_import(path), path, name)


def _import(path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(MODULE_NAME, str(path))
    spec = importlib.util.spec_from_loader(MODULE_NAME, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses and pydantic look their module up while it runs
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its neighbours import, as under `python FILE.py`
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        raise AgentFileFailed(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except (Exception, SystemExit) as exc:
        line = _line_in(path, exc)
        where = f"{path}:{line}" if line else str(path)
        raise AgentFileFailed(f"{where}: importing it raised {type(exc).__name__}: {exc}") from exc
    return module


def _line_in(path: Path, exc: BaseException) -> int | None:
    """The last line of ``path`` in the traceback of ``exc`` (where the file's own code failed)."""
    target = path.resolve()
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.lineno is not None and Path(frame.filename).resolve() == target
    ]
    return lines[-1] if lines else None


def find_definition(module: ModuleType, path: Path, name: str | None = None) -> MachineDefinition:
    """The machine definition of an imported agent file (see the module docstring for which)."""
    namespace = vars(module)
    if name is not None:
        found = namespace.get(name)
        if found is None:
            raise NoMachineDefined(f"{path} defines nothing called {name!r}")
        if not isinstance(found, MachineDefinition):
            raise NoMachineDefined(
                f"{path}:{name} is a {type(found).__name__}, not a machine: define it with "
                f'{name} = Machine.define("{name}")'
            )
        return found
    if isinstance(namespace.get(DEFAULT_NAME), MachineDefinition):
        return namespace[DEFAULT_NAME]  # type: ignore[no-any-return]
    names: dict[int, str] = {}  # a definition bound to two names counts once
    definitions: list[MachineDefinition] = []
    for variable, value in namespace.items():
        if isinstance(value, MachineDefinition) and not variable.startswith("_") and id(value) not in names:
            names[id(value)] = variable
            definitions.append(value)
    if len(definitions) == 1:
        return definitions[0]
    if definitions:
        listed = ", ".join(names[id(d)] for d in definitions)
        raise NoMachineDefined(
            f"{path} defines {len(definitions)} machines ({listed}): name one, e.g. "
            f"{path}:{names[id(definitions[0])]}"
        )
    hint = ""
    if any(isinstance(value, Skill) for value in namespace.values()):
        hint = " (a Skill is not one: include it with machine.include(skill))"
    raise NoMachineDefined(
        f'{path} defines no machine{hint}: add machine = Machine.define("NAME") and decorate its '
        "handlers with @machine.on_interval(...), @machine.on_event(...), ... (see docs/agents.md)"
    )
