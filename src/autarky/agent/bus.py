"""Message buses: signed envelopes between machines, in process (here) or over NATS (``nats_bus``).

Every message travels as an ``autarky.messaging.envelope`` (COSE_Sign1 under the ``MESSAGE``
domain) whose type is the model's ``schema`` and whose body is the model's fields. The receiver
opens it with every check of ``open_envelope``: recipient, time window, the sender's key against
the ledger (an active key of the sender's DID: a revoked or paused account's messages are
refused), the key's scope, the signature, and a replay guard per receiving machine. A refused
message is dropped, logged on the receiver and counted in ``bus.refused``.

Nonces: random, or with ``seed`` given derived from ``(seed, sender, counter)`` so a simulation's
envelopes are the same bytes on every run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from autarky.crypto.hashing import sha256
from autarky.ledger.errors import TxError
from autarky.messaging.directory import KeyInfo, split_kid
from autarky.messaging.envelope import open_envelope, seal
from autarky.messaging.errors import MessageError
from autarky.messaging.replay import ReplayGuard

if TYPE_CHECKING:
    from autarky.agent.ledger import InProcessLedger
    from autarky.agent.machine import Machine

logger = logging.getLogger("autarky.agent")


class ChainDirectory:
    """A messaging :class:`~autarky.messaging.directory.Directory` read from an in-process chain."""

    def __init__(self, ledger: InProcessLedger) -> None:
        self._ledger = ledger

    def key(self, kid: str, now_ms: int) -> KeyInfo:
        account, public_key = split_kid(kid)
        chain = self._ledger.chain
        try:
            scope = chain.app.authenticator.authenticate(chain.state, account, public_key)
        except TxError:
            return KeyInfo(kid, account, public_key, False)
        return KeyInfo(kid, account, public_key, True, scope.actions)

    def authorize(self, grantee: str, grant_id: str, action: str, resource: str, now_ms: int) -> Any:
        raise NotImplementedError("grants are not used by the in-process bus")


class NonceSource:
    """Random nonces, or deterministic ones from a seed."""

    def __init__(self, seed: int | bytes | None) -> None:
        self._seed = None if seed is None else (seed if isinstance(seed, bytes) else str(seed).encode())
        self._counters: dict[str, int] = {}

    def next(self, sender: str) -> bytes | None:
        if self._seed is None:
            return None
        count = self._counters.get(sender, 0)
        self._counters[sender] = count + 1
        return sha256(self._seed + b"\x00" + sender.encode() + b"\x00" + count.to_bytes(8, "big"))[:16]


class InProcessBus:
    """Delivers envelopes between machines of one process (see the module docstring)."""

    def __init__(
        self, ledger: InProcessLedger, *, ttl_ms: int = 30_000, seed: int | bytes | None = None
    ) -> None:
        self.directory = ChainDirectory(ledger)
        self.ttl_ms = ttl_ms
        self._nonces = NonceSource(seed)
        self._machines: dict[str, Machine] = {}
        self._replay: dict[str, ReplayGuard] = {}
        self.delivered = 0
        self.refused = 0

    def register(self, machine: Machine) -> None:
        self._machines[machine.did] = machine
        self._replay.setdefault(machine.did, ReplayGuard())

    def unregister(self, machine: Machine) -> None:
        if self._machines.get(machine.did) is machine:
            del self._machines[machine.did]

    async def send(self, machine: Machine, recipient: str, schema: str, body: Any) -> None:
        data = seal(
            machine.key,
            machine.did,
            recipient,
            schema,
            body,
            now_ms=machine.now_ms(),
            ttl_ms=self.ttl_ms,
            nonce=self._nonces.next(machine.did),
        )
        asyncio.get_running_loop().create_task(self.receive(recipient, data))

    async def receive(self, recipient: str, data: bytes) -> None:
        """Open ``data`` for ``recipient`` (every envelope check) and run its handler."""
        machine = self._machines.get(recipient)
        if machine is None:
            self.refused += 1
            return
        try:
            message = open_envelope(
                data,
                self.directory,
                now_ms=machine.now_ms(),
                replay=self._replay[recipient],
                recipient=recipient,
            )
        except MessageError as exc:
            self.refused += 1
            machine.note(f"refused a message: {exc.code}: {exc.detail}", logging.WARNING)
            return
        self.delivered += 1
        await machine.deliver(message.sender, message.type, message.body)
