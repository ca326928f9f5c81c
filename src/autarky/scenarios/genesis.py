"""Genesis for N machines: accounts, owners, balances and module sections, built in one pass.

Accounts and balances go straight into genesis (no funding transactions). What the modules only
accept as transactions (meter registrations, guardrails, oracle feeds) a scenario submits in its
set-up blocks, batched 32 messages to a transaction.
"""

from __future__ import annotations

from typing import Any

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.scenarios.runtime import Actor

ASSET = "aut"


def derive_key(scenario: str, seed: int, name: str) -> SigningKey:
    """A deterministic key for ``name`` in a scenario run (same seed, same keys)."""
    return SigningKey.from_seed(sha256(f"autarky/scenario/{scenario}/{seed}/{name}".encode()))


class GenesisBuilder:
    """Collects actors and their starting balances; :meth:`build` writes the genesis document."""

    def __init__(self, scenario: str, seed: int, chain_id: str, genesis_time_ms: int) -> None:
        self.scenario = scenario
        self.seed = seed
        self.chain_id = chain_id
        self.genesis_time_ms = genesis_time_ms
        self.actors: list[Actor] = []
        self._balances: dict[str, int] = {}
        self.sections: dict[str, Any] = {}

    def actor(self, name: str, kind: str, *, owner: Actor | None = None, balance: int = 0) -> Actor:
        actor = Actor(name, kind, derive_key(self.scenario, self.seed, name), owner.did if owner else None)
        self.actors.append(actor)
        if balance:
            self._balances[actor.did] = balance
        return actor

    def build(self) -> dict[str, Any]:
        accounts = []
        for actor in self.actors:
            entry: dict[str, Any] = {"did": actor.did, "kind": actor.kind}
            if actor.owner is not None:
                entry["owner"] = actor.owner
            accounts.append(entry)
        balances = [
            {"account": did, "asset": ASSET, "amount": amount} for did, amount in self._balances.items()
        ]
        app_state: dict[str, Any] = {
            "identity": {"accounts": accounts},
            "bank": {"params": {"fee_asset": ASSET, "min_fee": 0}, "balances": balances},
        }
        app_state.update(self.sections)
        return {"chain_id": self.chain_id, "genesis_time_ms": self.genesis_time_ms, "app_state": app_state}


def batched(messages: list[dict[str, Any]], size: int = 32) -> list[list[dict[str, Any]]]:
    """Messages in transactions of at most ``size``."""
    return [messages[i : i + size] for i in range(0, len(messages), size)]
