"""A machine against a real node over HTTP: it decides, pre-checks, submits; its owner's guardrails
refuse a payment before it is signed (explained in words); its owner pauses it on the ledger and it
stops acting; resumed, it acts again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from autarky.agent import ActionRefused, Machine, MachinePaused
from autarky.agent.http_ledger import HttpLedger
from autarky.modules.bank import messages as bank
from autarky.modules.identity import messages as identity
from autarky.web.client import AutarkyClient
from autarky.web.testing import LiveNode, TestKeys

GUARD = {
    "window_blocks": 1000,
    "limits": {"aut": {"per_tx": 500, "per_window": None, "cosign_above": None}},
    "allowlist": None,
}


class Threshold:
    """A tiny decision policy: pay the bill if it is under a limit."""

    name = "threshold/1"
    model_hash = None

    def decide(self, inputs: Any) -> dict[str, int]:
        return {"pay": int(inputs["bill"] <= inputs["limit"]), "amount": inputs["bill"]}


async def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    for _ in range(int(seconds * 50)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def test_machine_over_http(start_node: Callable[..., LiveNode], test_keys: TestKeys) -> None:
    live = start_node()
    alice, battery, bob = test_keys.alice, test_keys.battery, test_keys.bob

    async def scenario() -> None:
        async with AutarkyClient(live.url) as client:
            owner = await client.submit_messages(alice, [bank.set_guardrails(battery.did, GUARD)])
            assert owner.ok, owner
            ledger = await HttpLedger.connect(client)
            machine = Machine(battery, ledger)
            ticks: list[int] = []

            @machine.on_interval(period_ms=50)
            def tick(m: Machine) -> None:
                ticks.append(m.now_ms())

            await machine.start()
            await ledger.following()
            try:
                # decide and submit: the record names the committed transaction
                decision = machine.decide(Threshold(), {"bill": 120, "limit": 500})
                receipt = await machine.submit(bank.send(bob.did, "aut", 120), decision=decision)
                assert receipt.ok, receipt
                assert machine.decisions is not None and machine.decisions.next_seq == 1
                assert machine.decisions.head != bytes(32)

                # refused by the guardrails before signing: nothing reaches the node
                sequence = (await client.account(battery.did)).sequence
                try:
                    await machine.submit(bank.send(bob.did, "aut", 900))
                    raise AssertionError("the payment should have been refused")
                except ActionRefused as refusal:
                    assert refusal.code == "bank.per_tx_cap"
                    assert "exceeds the per-transaction cap of 500 aut set by the owner's guardrails" in (
                        refusal.explanation
                    )
                assert (await client.account(battery.did)).sequence == sequence == machine.sequence
                assert any("refused by the pre-check" in line for _, line in machine.log)

                # the owner pauses it on the ledger: it sees the event and stops acting
                paused = await client.submit_messages(
                    alice, [identity.pause(battery.did, "maintenance visit")]
                )
                assert paused.ok, paused
                await wait_for(lambda: machine.paused)
                assert machine.paused_reason == "maintenance visit"
                account = await client.account(battery.did)
                assert account.status == "paused" and account.pause is not None
                assert account.pause["reason"] == "maintenance visit"
                count = len(ticks)
                await asyncio.sleep(0.3)
                assert len(ticks) == count  # no handler runs while paused
                try:
                    await machine.submit(bank.send(bob.did, "aut", 10))
                    raise AssertionError("a paused machine must not act")
                except MachinePaused as refusal:
                    assert refusal.code == "core.account_paused"
                # the node's pre-check says the same to anyone who asks
                body_check = await ledger.check(
                    _body(ledger.chain_id, battery.did, machine.sequence, bob.did), battery.public_key.raw
                )
                assert body_check.code == "core.account_paused" and "maintenance visit" in body_check.detail

                resumed = await client.submit_messages(alice, [identity.resume(battery.did)])
                assert resumed.ok, resumed
                await wait_for(lambda: not machine.paused)
                await wait_for(lambda: len(ticks) > count)
                receipt = await machine.submit(bank.send(bob.did, "aut", 10))
                assert receipt.ok, receipt
            finally:
                await machine.stop()
                await ledger.aclose()

    asyncio.run(scenario())


def _body(chain_id: str, sender: str, sequence: int, to: str) -> Any:
    from autarky.ledger.tx import TxBody

    return TxBody(chain_id, sender, sequence, 1, 0, (bank.send(to, "aut", 10),))


def test_check_route_answers_codes(live_node: LiveNode, test_keys: TestKeys) -> None:
    from autarky.ledger.tx import TxBody

    carol, bob = test_keys.carol, test_keys.bob

    async def scenario() -> None:
        async with AutarkyClient(live_node.url) as client:
            chain_id = await client.chain_id()
            sequence = (await client.account(carol.did)).sequence
            ok = await client.check_tx(
                TxBody(chain_id, carol.did, sequence, 1, 0, (bank.send(bob.did, "aut", 5),)),
                carol.public_key.raw,
            )
            assert (
                ok["code"] == "ok"
                and ok["ok"] is True
                and [e["type"] for e in ok["events"]] == ["bank.fee", "bank.transfer"]
            )
            poor = await client.check_tx(
                TxBody(chain_id, carol.did, sequence, 1, 0, (bank.send(bob.did, "aut", 10**9),)),
                carol.public_key.raw,
            )
            assert poor["code"] == "bank.insufficient_funds"
            stranger = await client.check_tx(
                TxBody(chain_id, carol.did, sequence, 1, 0, (bank.send(bob.did, "aut", 5),)),
                bob.public_key.raw,
            )
            assert stranger["code"] == "core.unknown_signer"
            malformed = await client.check_tx(b"\x01\x02", carol.public_key.raw)
            assert malformed["code"] == "core.malformed"
            assert (await client.account(carol.did)).sequence == sequence  # nothing was written

    asyncio.run(scenario())
