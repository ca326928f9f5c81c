"""One machine in this process, on a node over HTTP, until it is stopped (``autarky agent run``).

::

    definition = load_agent_file("battery.py")                 # autarky.agent.definition
    async with AutarkyClient(url) as client:
        summary = await run_on_node(definition, key, client, stop=stop_event, duration_s=60)

:func:`run_on_node` connects an :class:`~autarky.agent.http_ledger.HttpLedger`, builds the machine,
starts it and waits for the node's event stream; it runs until ``stop`` is set (a signal) or
``duration_s`` has passed; then it stops the machine, giving the handlers in flight ``grace_s`` to
finish and anchoring every pending decision record, closes the event stream and returns a
:class:`RunSummary`. Several processes doing this against one node are many machines, one per
process; the node orders what they submit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.provenance import DecisionStore
from autarky.web.client import AutarkyClient

from .definition import MachineDefinition
from .http_ledger import HttpLedger

logger = logging.getLogger("autarky.agent")

FOLLOWING_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunSummary:
    """What one run of a machine did (``autarky agent run --json`` prints it)."""

    name: str
    """The running machine's name (``autarky agent run``: the identity's)."""
    definition: str
    """The name its definition gave (``Machine.define(name)``)."""
    did: str
    chain_id: str
    seconds: float
    stopped_by: str
    """``duration``, or ``stop`` (the command says which signal)."""
    submitted: int
    """Transactions signed and submitted (decision anchors included)."""
    committed: int
    """Of those, committed with code ``ok``."""
    failed: dict[str, int]
    """Committed with a failure code, by code."""
    refused: dict[str, int]
    """Refused by the pre-check, by code: never signed, never submitted."""
    decisions: int
    """Decision records appended in this run."""
    anchored: int
    """Decision records anchored on chain in this run."""
    pending: int
    """Decision records not anchored after the stop (they stay in the store)."""
    handler_failures: int
    paused: bool

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def run_on_node(
    definition: MachineDefinition,
    key: SigningKey,
    client: AutarkyClient,
    *,
    stop: asyncio.Event,
    duration_s: float | None = None,
    name: str | None = None,
    did: str | None = None,
    decisions: DecisionStore | None = None,
    settings: Mapping[str, str] | None = None,
    grace_s: float = 5.0,
) -> RunSummary:
    """Run ``definition`` as the machine ``did`` (default: the key's) on the node behind ``client``,
    called ``name`` (default: the definition's name)."""
    ledger = await HttpLedger.connect(client)
    named = {} if name is None else {"name": name}
    machine = definition.build(key, ledger, did=did, decisions=decisions, settings=settings, **named)
    machine.log_commits = True
    recorded_before = 0 if decisions is None else decisions.count(machine.did)
    anchored_before = 0 if decisions is None else decisions.anchored_count(machine.did)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stopped_by = "stop"
    try:
        await machine.start()
        try:
            await asyncio.wait_for(ledger.following(), FOLLOWING_TIMEOUT_S)
        except TimeoutError:
            machine.note(
                f"the node's event stream did not open in {FOLLOWING_TIMEOUT_S:.0f} s; "
                "event handlers see events once it does",
                logging.WARNING,
            )
        try:
            await asyncio.wait_for(stop.wait(), duration_s)
        except TimeoutError:
            stopped_by = "duration"
        after = f" after {duration_s:g} s" if stopped_by == "duration" else ""
        machine.note(f"stopping{after}: actions in flight finish, pending decisions are anchored")
    finally:
        await machine.stop(anchor=True, grace_s=grace_s)
        await ledger.aclose()
    chain = machine.decisions
    assert chain is not None, "a started machine has its decision chain"
    return RunSummary(
        name=machine.name,
        definition=definition.name,
        did=machine.did,
        chain_id=ledger.chain_id,
        seconds=round(loop.time() - started, 3),
        stopped_by=stopped_by,
        submitted=machine.submitted,
        committed=machine.committed,
        failed=dict(sorted(machine.failed_by_code.items())),
        refused=dict(sorted(machine.refused_by_code.items())),
        decisions=chain.next_seq - recorded_before,
        anchored=chain.anchored - anchored_before,
        pending=chain.pending_count,
        handler_failures=len(machine.errors),
        paused=machine.paused,
    )
