"""``NatsBus``: machines' signed envelopes over NATS (``autarky.messaging.transport.Agent``).

Each registered machine gets its own transport ``Agent`` (its key, its DID, the bus's directory,
a replay guard, the machine's clock) connected to the servers, subscribed to its direct-message
inbox ``autarky.m2m.<did token>.msg``. ``send`` seals with the sender's agent and publishes to the
recipient's inbox; the recipient's agent opens the envelope with every check
(``messaging.envelope.open_envelope``) before the machine's handler sees it, and counts refusals
by code in ``bus.refused()``.

``directory``: any messaging ``Directory``, e.g. :class:`~autarky.agent.bus.ChainDirectory` over an
in-process ledger, or ``autarky.verify.directory.ProofCheckedDirectory`` fed from a node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autarky.messaging.directory import Directory
from autarky.messaging.envelope import Message
from autarky.messaging.transport import Agent, subject_for

if TYPE_CHECKING:
    from autarky.agent.machine import Machine

INBOX_KIND = "msg"


class NatsBus:
    def __init__(self, servers: str | Sequence[str], directory: Directory, *, ttl_ms: int = 30_000) -> None:
        self.servers = servers
        self.directory = directory
        self.ttl_ms = ttl_ms
        self._agents: dict[Machine, Agent] = {}  # by machine: two machines may claim one DID
        self.delivered = 0

    async def register(self, machine: Machine, *, subscribe: bool = True) -> None:
        """Connect an agent for ``machine``; with ``subscribe``, deliver its inbox to its handlers."""
        agent = Agent(machine.key, self.directory, did=machine.did, clock=machine.now_ms, name=machine.name)
        await agent.connect(self.servers)
        self._agents[machine] = agent
        if not subscribe:
            return

        async def deliver(message: Message) -> None:
            self.delivered += 1
            await machine.deliver(message.sender, message.type, message.body)

        await agent.subscribe(agent.inbox(INBOX_KIND), deliver)
        await agent.flush()

    async def unregister(self, machine: Machine) -> None:
        agent = self._agents.pop(machine, None)
        if agent is not None:
            await agent.close()

    async def send(self, machine: Machine, recipient: str, schema: str, body: Any) -> None:
        agent = self._agents.get(machine)
        if agent is None:  # a machine with no message handlers still sends: connect it on first use
            await self.register(machine, subscribe=False)
            agent = self._agents[machine]
        envelope = agent.seal(recipient, schema, body, ttl_ms=self.ttl_ms)
        await agent.publish(subject_for(recipient, INBOX_KIND), envelope)
        await agent.flush()

    def refused(self) -> Counter[str]:
        """Messages refused by the receiving machines, by ``msg.*`` code."""
        total: Counter[str] = Counter()
        for agent in self._agents.values():
            total.update(agent.refused)
        return total

    async def close(self) -> None:
        for machine in list(self._agents):
            await self._agents.pop(machine).close()
