"""A device that obeys only signed, fresh, granted commands, decided offline and logged.

:class:`CommandHandler` takes the raw bytes of a command envelope and the time, and decides. It
accepts a command only when every check passes, in this order of precedence
(``errors.COMMAND_CODES_IN_PRECEDENCE``):

1. the envelope (``open_envelope`` against the device's :class:`Directory` and :class:`ReplayGuard`,
   addressed to the device): ``msg.too_large`` … ``msg.overloaded``;
2. ``msg.bad_command``: the message type is not ``m2m/command``, or the body is not exactly
   ``{"action": str, "resource": str, "grant": str, "args": any}``;
3. ``msg.unknown_action``: the device has no callback for ``action``;
4. the grant, from ``Directory.authorize(sender, grant, action, resource, now_ms)``:
   ``msg.unknown_grant``, ``msg.grant_chain_invalid``, ``msg.no_grant`` (given to someone else, or not
   covering ``action`` on ``resource``), ``msg.grant_revoked``, ``msg.grant_expired``,
   ``msg.grant_exhausted``;
5. ``msg.untrusted_grant``: the grant's root grantor is not one of the device's ``authorities`` (by
   default the device itself; usually also its owner);
6. ``msg.action_failed``: the callback raised, or returned a value that is not canonical CBOR data
   (or is over ``MAX_RESULT_BYTES``).

Then the callback runs with a :class:`Command`, and its return value goes back in the reply. Every
decision, accepted or refused, is appended to the decision log as a :class:`Decision` (time, sender,
key id, nonce, whether the signature verified, action, resource, grant used and its root grantor,
code) and answered with a signed
``m2m/command_result`` envelope to the sender, correlated to the command's nonce::

    {"accepted": bool, "code": str | None, "detail": str, "grant": str | None, "result": any}

A message too broken to name its sender (``msg.too_large``, most ``msg.malformed``) gets no reply,
but is logged. Nothing here reads a clock or does network I/O: the transport passes ``now_ms`` and
sends the reply (``Agent.serve_commands``), and a test can call :meth:`CommandHandler.handle` directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.messaging import errors
from autarky.messaging.directory import Directory, GrantDecision
from autarky.messaging.envelope import DEFAULT_TTL_MS, Message, open_envelope, peek, seal
from autarky.messaging.errors import MessageError
from autarky.messaging.replay import ReplayGuard

COMMAND_TYPE = "m2m/command"
RESULT_TYPE = "m2m/command_result"
_COMMAND_FIELDS = frozenset({"action", "resource", "grant", "args"})
MAX_NAME_CHARS = 128
MAX_RESULT_BYTES = 32 * 1024  # leaves room in the reply envelope for the rest


@dataclass(frozen=True, slots=True)
class Command:
    """A command that passed every check, as the device's callback receives it."""

    message: Message
    action: str
    resource: str
    grant: GrantDecision
    args: Any


ActionCallback = Callable[[Command], Any]


def command_body(action: str, resource: str, grant: str, args: Any = None) -> dict[str, Any]:
    """The body of an ``m2m/command`` envelope (seal it with ``msg_type=COMMAND_TYPE``)."""
    return {"action": action, "resource": resource, "grant": grant, "args": args}


@dataclass(frozen=True, slots=True)
class Decision:
    """One line of the decision log: what was asked, by which key, under which grant, and the answer."""

    accepted: bool
    code: str | None  # None when accepted
    detail: str
    time_ms: int
    verified: bool = False  # the signature checked out: sender and kid are who signed
    sender: str | None = None  # when not verified: who the bytes claim to be from
    kid: str | None = None
    nonce: str | None = None  # hex
    action: str | None = None
    resource: str | None = None
    grant: str | None = None
    root_grantor: str | None = None
    result: Any = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``result`` is left out: it may hold bytes)."""
        return {
            "time_ms": self.time_ms,
            "accepted": self.accepted,
            "code": self.code,
            "verified": self.verified,
            "detail": self.detail,
            "sender": self.sender,
            "kid": self.kid,
            "nonce": self.nonce,
            "action": self.action,
            "resource": self.resource,
            "grant": self.grant,
            "root_grantor": self.root_grantor,
        }


class DecisionLog(Protocol):
    def append(self, decision: Decision) -> None: ...


@dataclass
class MemoryDecisionLog:
    """Decisions kept in a list (tests, demos)."""

    decisions: list[Decision] = field(default_factory=list)

    def append(self, decision: Decision) -> None:
        self.decisions.append(decision)


class JsonLinesDecisionLog:
    """Decisions appended to a file, one JSON object a line, written before the reply is sent.

    ``fsync=True`` makes each line durable before the device acts on the next command.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, decision: Decision) -> None:
        line = json.dumps(decision.to_json(), separators=(",", ":"), sort_keys=True) + "\n"
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            if self.fsync:
                os.fsync(file.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class CommandHandler:
    """Decides commands addressed to the device ``did`` (see the module docstring)."""

    def __init__(
        self,
        key: SigningKey,
        directory: Directory,
        actions: Mapping[str, ActionCallback],
        *,
        did: str | None = None,
        authorities: Iterable[str] | None = None,
        replay: ReplayGuard | None = None,
        log: DecisionLog | None = None,
        reply_ttl_ms: int = DEFAULT_TTL_MS,
    ) -> None:
        self.key = key
        self.did: str = did or key.did
        self.directory = directory
        self.actions = dict(actions)
        self.authorities = frozenset(authorities) if authorities is not None else frozenset({self.did})
        self.replay = replay if replay is not None else ReplayGuard()
        self.log: DecisionLog = log if log is not None else MemoryDecisionLog()
        self.reply_ttl_ms = reply_ttl_ms

    def handle(self, data: bytes, now_ms: int) -> tuple[Decision, bytes | None]:
        """Decide, log, and return the decision with the signed reply (None if no sender to answer)."""
        decision = self.decide(data, now_ms)
        self.log.append(decision)
        return decision, self.reply(decision, data, now_ms)

    def decide(self, data: bytes, now_ms: int) -> Decision:
        """The decision alone (not logged, no reply)."""
        asked: dict[str, Any] = {}
        try:
            message = open_envelope(
                data, self.directory, now_ms=now_ms, replay=self.replay, recipient=self.did
            )
            asked.update(_who(message), verified=True)
            action, resource, grant_id, args = _parse_command(message)
            asked.update(action=action, resource=resource, grant=grant_id)
            callback = self.actions.get(action)
            if callback is None:
                raise errors.UNKNOWN_ACTION(f"this device does {sorted(self.actions)}, not {action!r}")
            grant = self.directory.authorize(message.sender, grant_id, action, resource, now_ms)
            asked.update(grant=grant.grant_id, root_grantor=grant.root_grantor)
            if grant.root_grantor not in self.authorities:
                raise errors.UNTRUSTED_GRANT(f"grant {grant.grant_id} comes from {grant.root_grantor}")
            result = _run(callback, Command(message, action, resource, grant, args))
        except MessageError as exc:
            if "sender" not in asked:
                asked.update(_who_unverified(data))
            return Decision(False, exc.code, exc.detail, now_ms, **asked)
        return Decision(True, None, "accepted", now_ms, result=result, **asked)

    def reply(self, decision: Decision, data: bytes, now_ms: int) -> bytes | None:
        """The signed ``m2m/command_result`` for ``decision``, or None when the sender is unknown."""
        try:
            request = peek(data)
        except MessageError:
            return None
        body = {
            "accepted": decision.accepted,
            "code": decision.code,
            "detail": decision.detail,
            "grant": decision.grant,
            "result": decision.result,
        }
        try:
            return seal(
                self.key,
                self.did,
                request.sender,
                RESULT_TYPE,
                body,
                now_ms=now_ms,
                ttl_ms=self.reply_ttl_ms,
                correlation=request.nonce,
            )
        except MessageError:  # a claimed sender the envelope cannot address; the decision is logged
            return None


def _parse_command(message: Message) -> tuple[str, str, str, Any]:
    if message.type != COMMAND_TYPE:
        raise errors.BAD_COMMAND(f"message type {message.type!r} is not {COMMAND_TYPE!r}")
    body = message.body
    if type(body) is not dict or body.keys() != _COMMAND_FIELDS:
        raise errors.BAD_COMMAND("a command body is exactly {action, resource, grant, args}")
    action, resource, grant = body["action"], body["resource"], body["grant"]
    for name, value in (("action", action), ("resource", resource), ("grant", grant)):
        if type(value) is not str or not 1 <= len(value) <= MAX_NAME_CHARS:
            raise errors.BAD_COMMAND(f"{name} is text of 1 to {MAX_NAME_CHARS} characters")
    return action, resource, grant, body["args"]


def _run(callback: ActionCallback, command: Command) -> Any:
    try:
        result = callback(command)
    except Exception as exc:  # the device's own code: its failure is reported, never propagated
        raise errors.ACTION_FAILED(f"{type(exc).__name__}: {exc}"[:300]) from exc
    try:
        encoded = canonical_encode(result)
    except TypeError as exc:
        raise errors.ACTION_FAILED(f"the action returned a value outside canonical CBOR: {exc}") from exc
    if len(encoded) > MAX_RESULT_BYTES:
        raise errors.ACTION_FAILED(f"the action's result is over {MAX_RESULT_BYTES} bytes")
    return result


def _who(message: Message) -> dict[str, Any]:
    return {"sender": message.sender, "kid": message.kid, "nonce": message.nonce.hex()}


def _who_unverified(data: bytes) -> dict[str, Any]:
    """Who the bytes claim to be from, for the log (not verified; None when unreadable)."""
    try:
        return _who(peek(data))
    except MessageError:
        return {}


__all__ = [
    "COMMAND_TYPE",
    "RESULT_TYPE",
    "ActionCallback",
    "Command",
    "CommandHandler",
    "Decision",
    "DecisionLog",
    "JsonLinesDecisionLog",
    "MemoryDecisionLog",
    "command_body",
]
