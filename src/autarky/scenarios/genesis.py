"""Genesis for N machines: accounts, owners, balances and module sections, built in one pass.

Accounts and balances go straight into genesis (no funding transactions). What the modules only
accept as transactions (meter registrations, guardrails, oracle feeds) a scenario submits in its
set-up blocks, batched 32 messages to a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey

ASSET = "aut"


@dataclass(frozen=True, eq=False)
class Actor:
    """An account in genesis: a machine, an owner or a provider (plain data: its key, kind, owner).

    A scenario turns the actors that act into machines with ``ScenarioContext.machine(actor)``."""

    name: str
    kind: str
    key: SigningKey
    owner: str | None = None

    @property
    def did(self) -> str:
        return self.key.did


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
        self.by_name: dict[str, Actor] = {}
        self._balances: dict[str, int] = {}
        self.sections: dict[str, Any] = {}

    def actor(self, name: str, kind: str, *, owner: Actor | None = None, balance: int = 0) -> Actor:
        actor = Actor(name, kind, derive_key(self.scenario, self.seed, name), owner.did if owner else None)
        assert name not in self.by_name, f"two actors called {name!r}"
        self.actors.append(actor)
        self.by_name[name] = actor
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
