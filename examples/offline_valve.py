"""A valve that obeys only granted commands, checked offline (issue 4, SPEC C1/C3/C4).

Run it:  python examples/offline_valve.py

1. A node starts (embedded engine, HTTP API on 127.0.0.1, in a temporary folder).
2. An owner registers a pump controller, a valve, a second controller and a helper, and grants
   the controller ``actuate:valve-7`` (delegable once). It also gives grants that will not hold:
   one that expires in two seconds, one it revokes; it revokes the second controller altogether.
   The controller delegates ``actuate:valve-7/flow`` to the helper; the ledger refuses a
   delegation wider than the controller's own grant.
3. The valve fetches proofs of what it needs (the accounts and grant chains) from the node's API,
   checks them against the node's key alone (``autarky.verify``), and keeps the checked directory.
4. The node stops. From here on the valve is offline: it decides every command from its own cache.
5. The valve accepts the granted command and refuses: an unsigned one, one signed by a revoked key,
   one under an expired grant, one under a revoked grant, a replay, and a command from the delegate
   asking for more than its delegator gave it.

The last line printed is one JSON object: ``accepted``, ``refused`` and each refusal's code.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_decode, canonical_encode
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.messaging.commands import COMMAND_TYPE, Command, CommandHandler, command_body
from autarky.messaging.envelope import seal, untagged
from autarky.modules import build_app
from autarky.modules.identity import messages as identity
from autarky.modules.policy import messages as policy
from autarky.modules.policy.keeper import new_grant_id
from autarky.node.genesis import dev_genesis
from autarky.node.node import Node, NodeSettings, init_data_dir
from autarky.verify import TrustAnchor
from autarky.verify.directory import ProofCheckedDirectory, account_keys, grant_keys
from autarky.web.client import AutarkyClient
from autarky.web.server import start_api

CHAIN_ID = "valve-demo"


class Actor:
    """A key that signs transactions with consecutive sequences."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = SigningKey.generate()
        self.did = self.key.did
        self.sequence = 0

    def tx(self, *messages: dict[str, Any], cosigners: tuple[SigningKey, ...] = ()) -> SignedTx:
        body = TxBody(CHAIN_ID, self.did, self.sequence, 1, 0, messages)
        self.sequence += 1
        return sign_tx(body, self.key, cosigners)


def say(text: str) -> None:
    print(text, flush=True)


async def commission(
    data_dir: Path, people: dict[str, Actor]
) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    """Steps 1-3: run a node, set everything up on the ledger, fetch and check the valve's directory."""
    owner, controller, valve = people["owner"], people["controller"], people["valve"]
    controller2, helper = people["controller2"], people["helper"]
    now_ms = time.time_ns() // 1_000_000
    genesis = dev_genesis(
        CHAIN_ID,
        time_ms=now_ms,
        allocations=[(owner.did, "aut", 1_000_000), (controller.did, "aut", 1_000)],
    )
    init_data_dir(data_dir, genesis)
    node = await Node.open(NodeSettings(data_dir, block_interval_ms=20, verify_processes=0))
    await node.start()
    api = await start_api(node)
    say(f"node started: chain {CHAIN_ID}, API at {api.url}, node key {node.node_key.did[:24]}…")
    grants: dict[str, str] = {}
    try:
        async with AutarkyClient(api.url) as client:

            async def submit(tx: SignedTx, what: str, expect_ok: bool = True) -> str | None:
                answer = await client.submit(tx, wait=True)
                code = None if answer.receipt is None else answer.receipt.get("code")
                ok = code == "ok"
                assert ok == expect_ok, f"{what}: {code}"
                say(f"  ledger: {what} -> {code} (block {answer.height})")
                return code

            # The owner registers itself and its machines (each machine's key co-signs).
            await submit(owner.tx(identity.register(owner.did, "operator")), "owner registers")
            for machine, kind in (
                (controller, "pump-controller"),
                (valve, "valve"),
                (controller2, "pump-controller"),
            ):
                await submit(
                    owner.tx(identity.register(machine.did, kind), cosigners=(machine.key,)),
                    f"register {machine.name}",
                )
            await submit(
                owner.tx(identity.register(helper.did, "maintenance-robot"), cosigners=(helper.key,)),
                "register helper",
            )

            # Grants from the owner (the valve's authority).
            expires_soon = time.time_ns() // 1_000_000 + 2_000
            plans = {
                "main": policy.grant(controller.did, "actuate", "valve-7", max_uses=100, delegable=1),
                "short": policy.grant(controller.did, "actuate", "valve-7", expires_ms=expires_soon),
                "revoked": policy.grant(controller.did, "actuate", "valve-7"),
                "controller2": policy.grant(controller2.did, "actuate", "valve-7"),
            }
            for name, message in plans.items():
                tx = owner.tx(message)
                await submit(tx, f"owner grants {name}: actuate:valve-7 to {message['grantee'][:20]}…")
                grants[name] = new_grant_id(tx.hash, 0).hex()
            await submit(
                owner.tx(policy.revoke(bytes.fromhex(grants["revoked"]))), "owner revokes grant 'revoked'"
            )
            await submit(owner.tx(identity.revoke(controller2.did)), "owner revokes controller2's identity")

            # Delegation: narrower is fine; wider is refused by the ledger itself.
            tx = controller.tx(
                policy.delegate(bytes.fromhex(grants["main"]), helper.did, "valve-7/flow", max_uses=10)
            )
            await submit(tx, "controller delegates actuate:valve-7/flow to helper")
            grants["helper"] = new_grant_id(tx.hash, 0).hex()
            wider = controller.tx(
                policy.delegate(bytes.fromhex(grants["main"]), helper.did, "valve", max_uses=10)
            )
            refused_wider = await submit(
                wider, "controller tries to delegate actuate:valve (wider)", expect_ok=False
            )

            # The valve fetches and checks what it needs to decide offline.
            status = await client.status()
            anchor = TrustAnchor.of_node(CHAIN_ID, status["node_key"])
            keys: list[str] = []
            for actor in people.values():
                keys += account_keys(actor.did)
            for grant_id in grants.values():
                keys += grant_keys(bytes.fromhex(grant_id))
            directory = ProofCheckedDirectory(anchor, build_app().authenticator, max_age_ms=3_600_000)
            height = directory.add(await client.proof_bundle(keys))
            for grant_id in grants.values():  # parents of delegations, if any are not there yet
                while missing := directory.missing_grants(bytes.fromhex(grant_id)):
                    directory.add(await client.proof_bundle(grant_keys(missing[0])))
            say(f"valve: checked {len(keys)} proofs against block {height}'s signed header; directory cached")
            cache = directory.export()
            return cache, grants, {"anchor": anchor.to_json(), "wider_delegation": refused_wider}
    finally:
        await api.stop()
        await node.stop()
        say("node stopped: the valve is on its own now")


def offline(
    cache: bytes, grants: dict[str, str], people: dict[str, Actor], anchor: dict[str, Any]
) -> dict[str, Any]:
    """Steps 4-5: the valve decides commands from its cache alone."""
    owner, controller, valve = people["owner"], people["controller"], people["valve"]
    directory = ProofCheckedDirectory.restore(
        cache, TrustAnchor.from_json(anchor), build_app().authenticator, max_age_ms=3_600_000
    )
    moves: list[Any] = []

    def actuate(command: Command) -> dict[str, Any]:  # the valve's motor, here a list of positions
        moves.append(command.args)
        return {"opened_to": command.args}

    # The valve obeys grants whose root grantor is its owner (or itself), and nobody else's.
    handler = CommandHandler(valve.key, directory, {"actuate": actuate}, authorities={owner.did, valve.did})

    def command(actor: Actor, grant: str, resource: str = "valve-7", args: Any = 40) -> bytes:
        now = time.time_ns() // 1_000_000
        body = command_body("actuate", resource, grants[grant], args)
        return seal(actor.key, actor.did, valve.did, COMMAND_TYPE, body, now_ms=now, ttl_ms=10_000)

    granted = command(controller, "main")
    signed = canonical_decode(untagged(granted))
    signed[3] = b""  # the same command with its signature taken off
    cases = [
        ("granted command", granted),
        ("unsigned command", canonical_encode(signed)),
        ("signed by a revoked key", command(people["controller2"], "controller2")),
        ("under an expired grant", command(controller, "short")),
        ("under a revoked grant", command(controller, "revoked")),
        ("replay of the granted command", granted),
        ("delegate asking for more than its delegator gave", command(people["helper"], "helper", "valve-7")),
    ]
    accepted, refusals = 0, []
    for what, envelope in cases:
        decision, reply = handler.handle(envelope, time.time_ns() // 1_000_000)
        if decision.accepted:
            accepted += 1
            grant = (decision.grant or "")[:12]
            say(f"  valve: ACCEPT  {what} (grant {grant}…, signed reply of {len(reply or b'')} bytes)")
        else:
            refusals.append({"case": what, "code": decision.code})
            say(f"  valve: REFUSE  {what}: {decision.code}")
    assert moves == [40], moves
    return {"accepted": accepted, "refused": len(refusals), "refusals": refusals}


def main() -> int:
    people = {name: Actor(name) for name in ("owner", "controller", "valve", "controller2", "helper")}
    with tempfile.TemporaryDirectory(prefix="autarky-valve-") as folder:
        cache, grants, facts = asyncio.run(commission(Path(folder) / "node", people))
        time.sleep(2.1)  # let the short grant expire (the valve judges with its own clock)
        result = offline(cache, grants, people, facts["anchor"])
    result["ledger_refused_wider_delegation"] = facts["wider_delegation"]
    print(json.dumps(result, sort_keys=True))
    return 0 if result["accepted"] == 1 and result["refused"] == 6 else 1


if __name__ == "__main__":
    sys.exit(main())
