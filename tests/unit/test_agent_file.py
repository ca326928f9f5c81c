"""Agent files and machine definitions (``autarky.agent.definition``), and the machine's clean stop.

An agent file defines ``machine = Machine.define(name)`` and its handlers; ``load_agent_file``
finds it, or says in one line why it cannot: no file, a file that fails to import (with its line),
no machine, several without a name, a name that is not a machine. ``stop(anchor=True, grace_s=…)``
lets running handlers finish, runs no new ones and anchors every pending decision record. The
example agent file (``examples/energy_buyer.py``) runs in process on a virtual clock too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from autarky.agent import (
    AgentFileFailed,
    AgentFileNotFound,
    InProcessLedger,
    Machine,
    MachineDefinition,
    NoMachineDefined,
    Skill,
    load_agent_file,
    run_fleet,
    run_virtual,
)
from autarky.agent.definition import split_spec
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank.keeper import balance
from autarky.modules.harness import Chain
from autarky.provenance import DecisionStore

T = TypeVar("T")
START_MS = 1_767_225_600_000
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "energy_buyer.py"
OWNER, BATTERY, GRID = (
    SigningKey.from_seed(sha256(f"agent-file/{n}".encode())) for n in ("owner", "battery", "grid")
)

DEFINES_ONE = """
from autarky.agent import Machine

buyer = Machine.define("buyer", anchor_every=3)
also_buyer = buyer


@buyer.on_interval(period_ms=1_000)
async def tick(m):
    pass
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- loading ---------------------------------------------------------------------------------------


def test_a_file_with_one_definition_under_any_name(tmp_path: Path) -> None:
    path = write(tmp_path, "buyer.py", DEFINES_ONE)
    definition = load_agent_file(path)
    assert isinstance(definition, MachineDefinition) and definition.name == "buyer"
    assert definition.options == {"anchor_every": 3}
    assert definition.handler_counts() == {"interval": 1, "message": 0, "event": 0, "start": 0}
    assert load_agent_file(f"{path}:also_buyer") is not definition  # imported afresh, same shape
    assert load_agent_file(str(path)).name == "buyer"


def test_machine_is_the_default_among_several_and_a_name_picks_one(tmp_path: Path) -> None:
    text = (
        "from autarky.agent import Machine\n"
        "charger = Machine.define('charger')\n"
        "machine = Machine.define('main')\n"
        "meter = Machine.define('meter')\n"
    )
    path = write(tmp_path, "site.py", text)
    assert load_agent_file(path).name == "main"
    assert load_agent_file(f"{path}:meter").name == "meter"
    no_default = write(tmp_path, "two.py", text.replace("machine =", "_hidden ="))
    with pytest.raises(
        NoMachineDefined, match=r"defines 2 machines \(charger, meter\): name one, e\.g\. .*two\.py:charger"
    ):
        load_agent_file(no_default)


def test_split_spec() -> None:
    assert split_spec("a/b.py:meter") == (Path("a/b.py"), "meter")
    assert split_spec("a/b.py") == (Path("a/b.py"), None)
    assert split_spec("C:/agents/b.py") == (Path("C:/agents/b.py"), None)  # not an identifier after ':'


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("x = 1\n", NoMachineDefined, r"defines no machine: add machine = Machine\.define\(\"NAME\"\)"),
        (
            "from autarky.agent import Skill\nskill = Skill('metering')\n",
            NoMachineDefined,
            r"defines no machine \(a Skill is not one: include it with machine\.include\(skill\)\)",
        ),
        ("def broken(:\n    pass\n", AgentFileFailed, r"agent\.py:1: syntax error"),
        (
            "import os\n\nraise RuntimeError('no sensor attached')\n",
            AgentFileFailed,
            r"agent\.py:3: importing it raised RuntimeError: no sensor attached",
        ),
        (
            "import no_such_module_here\n",
            AgentFileFailed,
            r"agent\.py:1: importing it raised ModuleNotFoundError",
        ),
        ("import sys\nsys.exit(3)\n", AgentFileFailed, r"agent\.py:2: importing it raised SystemExit: 3"),
    ],
    ids=["nothing", "a-skill", "syntax", "raises", "missing-import", "exits"],
)
def test_a_file_that_cannot_be_run(tmp_path: Path, text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as raised:
        load_agent_file(write(tmp_path, "agent.py", text))
    assert "\n" not in str(raised.value)  # one line


def test_missing_files_and_names(tmp_path: Path) -> None:
    with pytest.raises(AgentFileNotFound, match=r"no agent file at .*nowhere\.py"):
        load_agent_file(tmp_path / "nowhere.py")
    with pytest.raises(AgentFileNotFound, match="is not a file"):
        load_agent_file(tmp_path)
    path = write(tmp_path, "buyer.py", DEFINES_ONE + "\nrate = 5\n")
    with pytest.raises(NoMachineDefined, match="defines nothing called 'seller'"):
        load_agent_file(f"{path}:seller")
    with pytest.raises(NoMachineDefined, match=r"buyer\.py:rate is a int, not a machine"):
        load_agent_file(f"{path}:rate")
    assert AgentFileNotFound.code == "agent.file_not_found" and NoMachineDefined.code == "agent.no_machine"


def test_a_file_imports_its_neighbours(tmp_path: Path) -> None:
    write(tmp_path, "prices_for_agent_test.py", "PRICE = 250\n")
    path = write(
        tmp_path,
        "agent.py",
        "from prices_for_agent_test import PRICE\nfrom autarky.agent import Machine\n"
        "machine = Machine.define(f'buyer-{PRICE}')\n",
    )
    assert load_agent_file(path).name == "buyer-250"


# -- definitions -----------------------------------------------------------------------------------


def test_define_takes_only_machine_options() -> None:
    with pytest.raises(TypeError, match="not clock"):
        Machine.define("x", clock=None)


def chain(guard_per_tx: int | None = None) -> Chain:
    genesis = {
        "chain_id": "agent-file",
        "genesis_time_ms": START_MS,
        "app_state": {
            "identity": {"accounts": [{"did": BATTERY.did, "owner": OWNER.did, "kind": "battery"}]},
            "bank": {
                "params": {"fee_asset": "aut", "min_fee": 1},
                "balances": [
                    {"account": BATTERY.did, "asset": "aut", "amount": 100_000},
                    {"account": OWNER.did, "asset": "aut", "amount": 100_000},
                ],
            },
        },
    }
    c = Chain.from_genesis(genesis)
    if guard_per_tx is not None:
        guard = {
            "window_blocks": 1000,
            "limits": {"aut": {"per_tx": guard_per_tx, "per_window": None, "cosign_above": None}},
            "allowlist": None,
        }
        message = {"type": "bank/set_guardrails", "machine": BATTERY.did, "guardrails": guard}
        body = TxBody("agent-file", OWNER.did, 0, 1, 0, (message,))
        assert c.execute([sign_tx(body, OWNER)], START_MS)[0].ok
    return c


def test_one_definition_builds_machines_with_its_handlers_and_options() -> None:
    definition = Machine.define("meter", anchor_every=7)
    seen: list[str] = []

    @definition.on_start
    def hello(m: Machine) -> None:
        seen.append(f"{m.name} {m.settings.get('site')}")

    skill = Skill("extra")
    skill.on_start(lambda m: seen.append("skill"))
    definition.include(skill)
    ledger = InProcessLedger(chain())
    machine = definition.build(BATTERY, ledger, settings={"site": "north"}, anchor_every=9)
    assert machine.anchor_every == 9 and machine.name == "meter" and machine.did == BATTERY.did
    assert dict(machine.settings) == {"site": "north"}
    with pytest.raises(TypeError):
        machine.settings["site"] = "south"  # type: ignore[index]
    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 1)
    assert seen == ["meter north", "skill"]
    assert definition.starts and not definition.intervals  # the definition itself is unchanged


# -- the example, in process ----------------------------------------------------------------------


def test_the_example_agent_file_runs_in_process() -> None:
    """``examples/energy_buyer.py``: payments of 75, 112, 600, 87 aut; the cap of 500 refuses the
    600 before signing; every decision recorded; the pending ones anchored at the stop."""
    definition = load_agent_file(EXAMPLE)
    c = chain(guard_per_tx=500)
    ledger = InProcessLedger(c)
    store = DecisionStore.memory()
    machine = definition.build(BATTERY, ledger, decisions=store, settings={"pay_to": GRID.did})

    async def main() -> None:
        ledger.attach()
        try:
            await machine.start()
            await asyncio.sleep(7.5)  # virtual seconds
            await machine.stop(anchor=True, grace_s=5)
        finally:
            ledger.detach()

    run_virtual(main, start_ms=START_MS)
    # Readings at 0, 1, ... 7 s: 75, 112, (600), 87, 75, 112, (600), 87 aut.
    assert balance(c.state, GRID.did, "aut") == 2 * (75 + 112 + 87)
    assert machine.refused_by_code == {"bank.per_tx_cap": 2} and machine.storage.get("unpaid_aut") == 1200
    assert machine.submitted == machine.committed == 6 + 2  # six payments, two anchors of four
    assert store.count(BATTERY.did) == store.anchored_count(BATTERY.did) == 8
    assert any("600 aut left unpaid (bank.per_tx_cap)" in line for _, line in machine.log)


# -- a clean stop ----------------------------------------------------------------------------------


def run_on(ledger: InProcessLedger, main: Callable[[], Awaitable[T]]) -> T:
    async def attached() -> T:
        ledger.attach()
        try:
            return await main()
        finally:
            ledger.detach()

    return run_virtual(attached, start_ms=START_MS)


@pytest.mark.parametrize("grace_s", [0.0, 10.0])
def test_stop_gives_running_handlers_their_grace_then_runs_no_more(grace_s: float) -> None:
    ledger = InProcessLedger(chain())
    machine = Machine(BATTERY, ledger)
    finished: list[int] = []
    started: list[int] = []

    @machine.on_interval(period_ms=1_000)
    async def slow(m: Machine) -> None:
        started.append(m.now_ms())
        await asyncio.sleep(3)  # reading a slow sensor
        await m.submit({"type": "bank/send", "to": GRID.did, "asset": "aut", "amount": 1})
        finished.append(m.now_ms())

    async def main() -> Any:
        await machine.start()
        await asyncio.sleep(1.5)  # the first run is in its sleep
        await machine.stop(anchor=True, grace_s=grace_s)
        await asyncio.sleep(5)  # nothing starts after the stop
        return None

    run_on(ledger, main)
    assert len(started) == 1
    assert len(finished) == (1 if grace_s else 0)
    assert machine.committed == (1 if grace_s else 0) and not machine.started


def test_stop_anchors_every_pending_record_and_skips_when_paused() -> None:
    ledger = InProcessLedger(chain())
    machine = Machine(BATTERY, ledger, anchor_every=1_000)

    class Fixed:
        name = "fixed/1"
        model_hash = None

        def decide(self, inputs: Any) -> dict[str, int]:
            return {"amount": 1}

    @machine.on_interval(period_ms=1_000)
    async def pay(m: Machine) -> None:
        await m.submit(
            {"type": "bank/send", "to": GRID.did, "asset": "aut", "amount": 1}, decision=m.decide(Fixed(), {})
        )

    async def main() -> Any:
        await machine.start()
        await asyncio.sleep(5.5)
        await machine.stop(anchor=True)
        return None

    run_on(ledger, main)
    assert machine.decisions is not None
    assert machine.decisions.next_seq == 6 and machine.decisions.pending_count == 0
    head = ledger.chain.app.module("provenance").decision_head(ledger.chain.state, BATTERY.did)  # type: ignore[attr-defined]
    assert head["count"] == 6

    paused = Machine(BATTERY, ledger)

    async def paused_stop() -> Any:
        await paused.start()
        assert paused.decisions is not None
        paused.decisions.append(time_ms=START_MS, policy="p/1", output=1, inputs={})
        paused._set_paused(True, "inspection")  # as the identity.paused event does
        await paused.stop(anchor=True)
        return None

    run_on(InProcessLedger(ledger.chain), paused_stop)
    assert paused.decisions is not None and paused.decisions.pending_count == 1
    assert paused.refusals == 0 and any("stay pending" in line for _, line in paused.log)
