"""An energy buyer: one machine in its own process, on a node (``autarky agent run``).

Run it (a node running, the identity ``battery`` in the keys folder, GRID the payee's DID)::

    autarky agent run examples/energy_buyer.py --from battery --set pay_to=$GRID --duration 60s

Every second it reads its meter, decides what the energy it drew costs (a small policy: each
decision is recorded and anchored on chain) and pays ``pay_to`` for it (default: its owner). Its
owner's guardrails may cap a payment: then the node's pre-check refuses the payment of a surge,
the machine never signs it, logs why, records the decision without a transaction and keeps count
of what it left unpaid. It also logs every payment it receives.

Settings (``--set KEY=VALUE``): ``pay_to`` (a DID), ``price_per_kwh`` (in aut, default 250).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autarky.agent import ActionRefused, LedgerEvent, Machine

machine = Machine.define("energy-buyer", anchor_every=4)

DRAWN_WH = (300, 450, 2_400, 350)  # the meter's readings, over and over: the third is a surge


class PayPerKwh:
    """The decision policy: what the energy drawn costs at the price per kWh (integers only)."""

    name = "pay-per-kwh/1"
    model_hash = None  # a trained model would name its registered file here (autarky.models)

    def decide(self, inputs: Mapping[str, Any]) -> dict[str, int]:
        return {"amount": inputs["wh"] * inputs["price_per_kwh"] // 1000}


@machine.on_start
async def read_account(m: Machine) -> None:
    account = await m.account()
    pay_to = m.settings.get("pay_to") or account.owner
    m.storage.set("pay_to", pay_to)
    m.note(f"balance {account.balances.get('aut', 0)} aut; paying {pay_to or 'nobody (no pay_to, no owner)'}")


@machine.on_interval(period_ms=1_000)
async def pay_for_energy(m: Machine) -> None:
    pay_to = m.storage.get("pay_to")
    if pay_to is None:
        return
    reading = m.storage.get("readings", 0)
    m.storage.set("readings", reading + 1)
    inputs = {
        "wh": DRAWN_WH[reading % len(DRAWN_WH)],
        "price_per_kwh": int(m.settings.get("price_per_kwh", "250")),
    }
    decision = m.decide(PayPerKwh(), inputs)
    amount = decision.output["amount"]
    try:
        await m.submit(
            {"type": "bank/send", "to": pay_to, "asset": "aut", "amount": amount}, decision=decision
        )
    except ActionRefused as refusal:  # never signed: the machine logged why and recorded the decision
        unpaid = m.storage.get("unpaid_aut", 0) + amount
        m.storage.set("unpaid_aut", unpaid)
        m.note(f"{amount} aut left unpaid ({refusal.code}); {unpaid} aut unpaid so far")


@machine.on_event("bank.transfer")
def payment_received(m: Machine, event: LedgerEvent) -> None:
    if event.get("to") == m.did:
        m.note(f"received {event.get('amount')} {event.get('asset')} from {event.get('from')}")
