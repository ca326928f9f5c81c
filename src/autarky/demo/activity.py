"""What the demo machines did, live: the feed the terminal view, the ``--json`` summary and the
dashboard's ``/agents`` page read (all in the ``autarky up`` process).

Per machine: transactions committed and failed on the ledger, actions refused before signing (the
agent's pre-check, with the code and the explanation in words), the latest forecast, its orders
and its latest decision records (policy, model hash, output, transaction). Plain data, no I/O.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from autarky.provenance import to_jsonable

KEEP = 8


@dataclass
class MachineActivity:
    name: str
    did: str
    kind: str
    role: str
    committed: int = 0
    failed: int = 0
    refused: int = 0
    decisions: int = 0
    last: str = ""
    forecast: dict[str, Any] | None = None
    orders: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP))
    records: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP))
    refusals: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP))
    status: str = "starting"
    anchored: int = 0
    """How many of the machine's decision records are anchored on chain (records 0..anchored-1)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "did": self.did,
            "kind": self.kind,
            "role": self.role,
            "status": self.status,
            "committed": self.committed,
            "failed": self.failed,
            "refused_before_signing": self.refused,
            "decisions_recorded": self.decisions,
            "anchored_records": self.anchored,
            "last": self.last,
            "forecast": self.forecast,
            "orders": list(self.orders)[::-1],
            "decisions": list(self.records)[::-1],
            "refusals": list(self.refusals)[::-1],
        }


class Activity:
    """The fleet's live activity (see the module docstring). ``store`` and ``models_dir``: where
    the machines' decision records and model files are (the dashboard's explanations read them)."""

    def __init__(self, store: Any = None, models_dir: Any = None) -> None:
        self.store = store
        self.models_dir = models_dir
        self.machines: dict[str, MachineActivity] = {}
        self.committed = 0
        self.failed = 0
        self.refused = 0
        self.decisions = 0
        self.anchored = 0
        self.failure_codes: Counter[str] = Counter()
        self.refusal_codes: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=40)
        self.started = time.monotonic()
        self.started_ms = time.time_ns() // 1_000_000
        self.site: dict[str, Any] = {}

    def add_machine(self, name: str, did: str, kind: str, role: str) -> MachineActivity:
        machine = self.machines.get(name)
        if machine is None:
            machine = self.machines[name] = MachineActivity(name, did, kind, role)
        return machine

    def _event(self, name: str, text: str, outcome: str, **extra: Any) -> None:
        self.recent.append(
            {
                "at_s": round(time.monotonic() - self.started, 1),
                "time_ms": time.time_ns() // 1_000_000,
                "machine": name,
                "text": text,
                "outcome": outcome,
                **extra,
            }
        )

    # -- what happened ------------------------------------------------------------------------

    def committed_tx(self, name: str, what: str, tx_hash: str) -> None:
        machine = self.machines[name]
        machine.committed += 1
        self.committed += 1
        machine.last = what
        self._event(name, what, "ok", tx=tx_hash)

    def failed_tx(self, name: str, what: str, code: str, detail: str, tx_hash: str | None) -> None:
        machine = self.machines[name]
        machine.failed += 1
        self.failed += 1
        self.failure_codes[code] += 1
        machine.last = f"{what}: failed, {code}"
        self._event(
            name, f"{what}: failed on the ledger ({code})", "failed", code=code, detail=detail, tx=tx_hash
        )

    def refused_action(self, name: str, what: str, code: str, explanation: str) -> None:
        machine = self.machines[name]
        machine.refused += 1
        self.refused += 1
        self.refusal_codes[code] += 1
        machine.last = f"{what}: refused before signing, {code}"
        refusal = {
            "what": what,
            "code": code,
            "explanation": explanation,
            "time_ms": time.time_ns() // 1_000_000,
        }
        machine.refusals.append(refusal)
        self._event(
            name, f"{what}: refused before signing ({code})", "refused", code=code, explanation=explanation
        )

    def decided(self, name: str, record: dict[str, Any]) -> None:
        machine = self.machines[name]
        machine.decisions += 1
        self.decisions += 1
        machine.records.append(to_jsonable(record))

    def forecast(self, name: str, forecast: dict[str, Any]) -> None:
        self.machines[name].forecast = forecast

    def order(self, name: str, order: dict[str, Any]) -> None:
        self.machines[name].orders.append(order)

    def anchored_batch(self, name: str, count: int) -> None:
        self.anchored += count
        self._event(name, f"anchors {count} decision records on chain", "ok")

    # -- reads --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole feed as JSON data (what ``/agents/feed`` serves)."""
        return {
            "running": True,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "site": dict(self.site),
            "totals": {
                "transactions_committed": self.committed,
                "transactions_failed": self.failed,
                "refused_before_signing": self.refused,
                "decisions_recorded": self.decisions,
                "decisions_anchored": self.anchored,
            },
            "refusals_by_code": dict(self.refusal_codes.most_common()),
            "failures_by_code": dict(self.failure_codes.most_common()),
            "machines": [machine.to_json() for machine in self.machines.values()],
            "recent": list(self.recent)[::-1],
        }
