"""The MQTT adapter: devices that speak MQTT publish signed readings and receive signed commands.

Three parts:

* **The mapping** (pure): :class:`TopicMap` turns MQTT topics into NATS subjects and back::

      MQTT   autarky/<site>/<device>/<kind>        autarky/plant.north/pump-7/readings
      NATS   autarky.m2m.<site>.<device>.<kind>    autarky.m2m.plant%2Enorth.pump-7.readings

  ``kind`` is ``readings`` or ``replies`` (device → broker → bridge → NATS) or ``commands``
  (NATS → bridge → broker → device). Site and device names are written as they are on MQTT (where
  a level may hold ``.``) and escaped on NATS by :func:`escape_token` (where ``.`` separates tokens
  and ``*``, ``>`` are wildcards): ``[A-Za-z0-9_:@~-]`` stay, every other UTF-8 byte becomes ``%XX``.
  Names with ``/``, ``+``, ``#`` or control characters are refused (:class:`TopicError`), and so
  are wildcards, empty levels and non-canonical escapes in topics and subjects, so the mapping is a
  bijection between the topics and the subjects it accepts.
* **The bridge**: :class:`MqttBridge` holds one connection to an MQTT broker and one to NATS and
  forwards envelopes both ways, byte for byte. It never signs anything and never trusts the broker:
  it may :func:`~autarky.messaging.envelope.peek` to drop what is too large or not an envelope at
  all (counted in :class:`BridgeStats` and logged), and, given a directory, verify signatures to drop
  forgeries early, but the receiver always verifies again (``open_envelope``), so a payload altered
  in the broker is refused there with ``msg.bad_signature``. A NATS request (``nc.request``) to a
  device's ``commands`` subject gets the device's signed reply (the MQTT ``replies`` message whose
  ``correlation`` is the command's nonce) on its reply inbox, as well as on the ``replies`` subject.
* **The device helper**: :class:`MqttDevice` publishes signed readings, receives commands, verifies
  each with ``open_envelope`` against its :class:`~autarky.messaging.directory.Directory` (offline)
  and its own replay guard, and answers with signed replies; or hands each command to a
  :class:`~autarky.messaging.commands.CommandHandler` (grants too) and publishes its signed result
  (:meth:`MqttDevice.serve_commands`).

Delivery. Commands, readings and replies travel at QoS 1 (at least once). Both the bridge and the
device use persistent MQTT sessions (``clean_session=False`` with a fixed client id), so while either
is disconnected the broker keeps its subscriptions and queues QoS 1 messages for it (mosquitto: up to
``max_queued_messages``, 1000 by default, in memory unless the broker has ``persistence true``). The
bridge reconnects to the broker by itself (backoff up to ``reconnect_max_s``) and to NATS through
nats-py; commands that arrive from NATS while the broker is away wait in a bounded outbox and are
sent on reconnect unless they have expired by then. A message whose PUBACK was lost is sent again, so
a receiver may see it twice: its replay guard refuses the copy (``msg.replay``). Core NATS is at most
once: a reading published to NATS while no subscriber listens is gone; use JetStream on the NATS side
when readings must be kept. The bridge acknowledges an MQTT message when it has read it, so a bridge
killed between the PUBACK and the NATS publish loses that one message.

Failures: :class:`TopicError` (a ``ValueError``) for a name, topic or subject the mapping refuses;
:class:`MqttAdapterError` for operational faults (broker or NATS unreachable, a device used before
``connect``); :class:`~autarky.messaging.errors.MessageError` (``msg.*``) for a refused envelope.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any

import aiomqtt
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg as NatsMsg

from autarky.crypto.keys import SigningKey
from autarky.messaging.commands import CommandHandler
from autarky.messaging.directory import Directory
from autarky.messaging.envelope import DEFAULT_TTL_MS, MAX_ENVELOPE_BYTES, Message, open_envelope, peek, seal
from autarky.messaging.errors import MessageError
from autarky.messaging.replay import ReplayGuard
from autarky.messaging.transport import wall_clock_ms  # ms since the Unix epoch, as the Agent reads it

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Topics and subjects (pure)

MQTT_ROOT = "autarky"
NATS_ROOT = "autarky.m2m"
MAX_NAME_BYTES = 128

# Characters a NATS token carries as they are; every other byte of a name's UTF-8 is written %XX.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:@~")
_ESCAPED_TOKEN = re.compile(r"(?:[A-Za-z0-9_:@~-]|%[0-9A-F]{2})+")
_NATS_TOKEN = re.compile(r"[^\s.*>]+")


class TopicError(ValueError):
    """A topic, subject or name that the mapping refuses (wildcards, empty levels, wrong shape)."""


class Kind(StrEnum):
    """The last level of a topic: what flows on it, and which way the bridge forwards it."""

    READINGS = "readings"  # device → broker → bridge → NATS
    REPLIES = "replies"  # device → broker → bridge → NATS (and the inbox of a NATS request)
    COMMANDS = "commands"  # NATS → bridge → broker → device


UPSTREAM_KINDS = (Kind.READINGS, Kind.REPLIES)
DOWNSTREAM_KINDS = (Kind.COMMANDS,)


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it can be a site or device name, else raise :class:`TopicError`.

    A name is 1 to :data:`MAX_NAME_BYTES` bytes of UTF-8 with no ``/`` (the MQTT level separator),
    no ``+`` or ``#`` (MQTT wildcards) and no control characters. ``.``, ``*``, ``>``, spaces and any
    other character are allowed: :func:`escape_token` makes them safe for NATS.
    """
    if type(name) is not str:
        raise TopicError(f"a {what} is a string, not {type(name).__name__}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise TopicError(f"{what} {name!r} is not valid Unicode (a lone surrogate)") from None
    if size == 0:
        raise TopicError(f"a {what} cannot be empty")
    if size > MAX_NAME_BYTES:
        raise TopicError(f"{what} {name[:40]!r}… is {size} bytes of UTF-8; at most {MAX_NAME_BYTES}")
    for char in ("/", "+", "#"):
        if char in name:
            raise TopicError(f"{what} {name!r} contains {char!r}, which MQTT reserves")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise TopicError(f"{what} {name!r} contains a control character")
    return name


def escape_token(name: str) -> str:
    """A name as one NATS subject token: ``[A-Za-z0-9_:@~-]`` as is, every other UTF-8 byte as ``%XX``.

    ``plant.north`` → ``plant%2Enorth``; ``Halle Süd`` → ``Halle%20S%C3%BCd``. The result never holds
    ``.``, ``*``, ``>`` or whitespace, and :func:`unescape_token` gives the name back.
    """
    check_name(name)
    return "".join(char if char in _PLAIN else _percent(char) for char in name)


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def unescape_token(token: str) -> str:
    """The name a NATS token written by :func:`escape_token` stands for; raises :class:`TopicError`.

    Only the canonical escape is accepted (upper-case hex, no escaped plain character), so each name
    has exactly one token and each token at most one name.
    """
    if type(token) is not str or _ESCAPED_TOKEN.fullmatch(token) is None:
        raise TopicError(f"NATS token {str(token)[:80]!r} is not an escaped name ([A-Za-z0-9_:@~-] and %XX)")
    raw = bytearray()
    index = 0
    while index < len(token):
        if token[index] == "%":
            raw.append(int(token[index + 1 : index + 3], 16))
            index += 3
        else:
            raw += token[index].encode("ascii")
            index += 1
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TopicError(f"NATS token {token[:80]!r} does not escape valid UTF-8") from None
    check_name(name)
    if escape_token(name) != token:
        raise TopicError(f"NATS token {token[:80]!r} is not in canonical form (write {escape_token(name)!r})")
    return name


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes: a device at a site, and the kind of traffic."""

    site: str
    device: str
    kind: Kind

    def __post_init__(self) -> None:
        check_name(self.site, "site")
        check_name(self.device, "device")
        if not isinstance(self.kind, Kind):
            raise TopicError(f"kind {self.kind!r} is not one of {', '.join(kind.value for kind in Kind)}")


@dataclass(frozen=True, slots=True)
class TopicMap:
    """The documented mapping between MQTT topics and NATS subjects::

        MQTT   <mqtt_root>/<site>/<device>/<kind>         autarky/plant.north/pump-7/readings
        NATS   <nats_root>.<site>.<device>.<kind>         autarky.m2m.plant%2Enorth.pump-7.readings

    Site and device are written as they are on MQTT and escaped with :func:`escape_token` on NATS.
    ``kind`` is one of :class:`Kind`. Both roots are fixed text without wildcards.
    """

    mqtt_root: str = MQTT_ROOT
    nats_root: str = NATS_ROOT

    def __post_init__(self) -> None:
        levels = self.mqtt_root.split("/") if type(self.mqtt_root) is str else [""]
        for level in levels:
            check_name(level, "MQTT root level")
        if self.mqtt_root.startswith("$"):
            raise TopicError(f"MQTT root {self.mqtt_root!r} starts with '$', which brokers reserve")
        tokens = self.nats_root.split(".") if type(self.nats_root) is str else [""]
        for token in tokens:
            if _NATS_TOKEN.fullmatch(token) is None:
                raise TopicError(
                    f"NATS root {self.nats_root!r} has an empty token or one with whitespace, '*' or '>'"
                )

    # -- names → topics and subjects

    def mqtt_topic(self, route: Route) -> str:
        return f"{self.mqtt_root}/{route.site}/{route.device}/{route.kind.value}"

    def nats_subject(self, route: Route) -> str:
        return f"{self.nats_root}.{escape_token(route.site)}.{escape_token(route.device)}.{route.kind.value}"

    def mqtt_filter(self, kind: Kind, site: str | None = None) -> str:
        """The MQTT subscription for one kind: ``autarky/+/+/readings`` (every site) or one site's."""
        return f"{self.mqtt_root}/{'+' if site is None else check_name(site, 'site')}/+/{Kind(kind).value}"

    def nats_filter(self, kind: Kind, site: str | None = None) -> str:
        """The NATS subscription for one kind: ``autarky.m2m.*.*.commands`` (every site) or one site's."""
        return f"{self.nats_root}.{'*' if site is None else escape_token(site)}.*.{Kind(kind).value}"

    # -- topics and subjects → names

    def parse_mqtt_topic(self, topic: str) -> Route:
        """The route of an MQTT topic name; raises :class:`TopicError` for any other topic."""
        if type(topic) is not str:
            raise TopicError(f"an MQTT topic is a string, not {type(topic).__name__}")
        prefix = self.mqtt_root + "/"
        if not topic.startswith(prefix):
            raise TopicError(f"MQTT topic {topic[:120]!r} is not under {prefix!r}")
        levels = topic[len(prefix) :].split("/")
        if len(levels) != 3:
            raise TopicError(f"MQTT topic {topic[:120]!r} is not {prefix}<site>/<device>/<kind>")
        site, device, kind = levels
        return Route(check_name(site, "site"), check_name(device, "device"), _kind(kind, topic))

    def parse_nats_subject(self, subject: str) -> Route:
        """The route of a NATS subject; raises :class:`TopicError` for any other subject."""
        if type(subject) is not str:
            raise TopicError(f"a NATS subject is a string, not {type(subject).__name__}")
        prefix = self.nats_root + "."
        if not subject.startswith(prefix):
            raise TopicError(f"NATS subject {subject[:120]!r} is not under {prefix!r}")
        tokens = subject[len(prefix) :].split(".")
        if len(tokens) != 3:
            raise TopicError(f"NATS subject {subject[:120]!r} is not {prefix}<site>.<device>.<kind>")
        site, device, kind = tokens
        return Route(unescape_token(site), unescape_token(device), _kind(kind, subject))

    def mqtt_to_nats(self, topic: str) -> str:
        return self.nats_subject(self.parse_mqtt_topic(topic))

    def nats_to_mqtt(self, subject: str) -> str:
        return self.mqtt_topic(self.parse_nats_subject(subject))


def _kind(text: str, where: str) -> Kind:
    try:
        return Kind(text)
    except ValueError:
        known = ", ".join(kind.value for kind in Kind)
        raise TopicError(f"{where[:120]!r} ends in {text[:40]!r}, not one of {known}") from None


# --------------------------------------------------------------------------------------------------
# Operational errors, addresses, clock


class MqttAdapterError(Exception):
    """An operational fault: the broker or NATS is unreachable, or a device is used unconnected."""


def parse_host_port(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``"127.0.0.1:1883"`` → ``("127.0.0.1", 1883)``; ``"broker"`` → ``("broker", default_port)``.

    ``[::1]:1883`` for an IPv6 address. Raises ``ValueError`` with what is wrong.
    """
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r} is not host:port")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"{text!r} has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port is a number from 1 to 65535")
    return host, int(port_text)


def _payload_bytes(payload: Any) -> bytes | None:
    return (
        payload if isinstance(payload, bytes) else bytes(payload) if isinstance(payload, bytearray) else None
    )


# --------------------------------------------------------------------------------------------------
# The bridge


@dataclass
class BridgeStats:
    """What the bridge did since it started. ``dropped`` counts by reason: a ``msg.*`` code
    (``msg.too_large``, ``msg.malformed``, and with a directory any code ``open_envelope`` gives), or
    ``mqtt.bad_topic``, ``mqtt.not_bytes``, ``nats.bad_subject`` (outside the mapping),
    ``outbox.full``, ``outbox.expired`` (commands that could not reach the broker in time),
    ``nats.publish_failed``; ``requests.full`` counts requests whose reply goes to the ``replies``
    subject only, because too many requests were waiting for theirs."""

    to_nats: int = 0  # readings and replies forwarded from MQTT to NATS
    to_mqtt: int = 0  # commands forwarded from NATS to MQTT (acknowledged by the broker)
    replies_to_requests: int = 0  # replies also sent to the inbox of a NATS request
    mqtt_connections: int = 0  # successful connections to the broker (1 + reconnects)
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "to_nats": self.to_nats,
            "to_mqtt": self.to_mqtt,
            "replies_to_requests": self.replies_to_requests,
            "mqtt_connections": self.mqtt_connections,
            "dropped": dict(sorted(self.dropped.items())),
        }


def _log_unexpected_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("mqtt bridge: the MQTT loop stopped: %r", task.exception())


@dataclass(frozen=True, slots=True)
class _PendingRequest:
    inbox: str
    expires_ms: int


class MqttBridge:
    """Forwards signed envelopes between an MQTT broker and NATS, unchanged (see the module docstring).

    ::

        async with MqttBridge(mqtt_host="127.0.0.1", mqtt_port=1883, nats_servers=["nats://127.0.0.1:4222"]):
            ...  # readings and replies flow to NATS, commands to the broker, until the block ends

    ``sites`` limits the bridge to those sites (default: every site). ``directory`` turns on
    verification at the bridge: envelopes that do not open (bad signature, unknown or revoked key,
    expired, replayed) are dropped and counted by code; receivers verify again either way.
    ``max_payload_bytes`` (at most :data:`~autarky.messaging.envelope.MAX_ENVELOPE_BYTES`) is the
    largest payload forwarded. ``client_id`` names the bridge's persistent MQTT session: run one
    bridge per client id (a second connection with the same id pushes the first off the broker).
    ``outbox_limit`` bounds both queues: commands waiting for the broker (beyond it: ``outbox.full``)
    and messages read from the broker waiting to be forwarded (beyond it the MQTT client discards them
    and logs it). ``max_pending_requests`` bounds the NATS requests waiting for a device's reply.
    ``clock`` (ms since the epoch) is read for expiry checks only.
    """

    def __init__(
        self,
        *,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        nats_servers: Sequence[str] = ("nats://127.0.0.1:4222",),
        topics: TopicMap | None = None,
        sites: Iterable[str] = (),
        directory: Directory | None = None,
        max_payload_bytes: int = MAX_ENVELOPE_BYTES,
        client_id: str = "autarky-bridge",
        clean_session: bool = False,
        qos: int = 1,
        outbox_limit: int = 10_000,
        max_pending_requests: int = 10_000,
        connect_timeout_s: float = 10,
        reconnect_max_s: float = 10,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if not 1 <= max_payload_bytes <= MAX_ENVELOPE_BYTES:
            raise ValueError(f"max_payload_bytes is from 1 to {MAX_ENVELOPE_BYTES}")
        if qos not in (0, 1, 2):
            raise ValueError("qos is 0, 1 or 2")
        if not nats_servers:
            raise ValueError("nats_servers lists at least one NATS server URL")
        if not client_id:
            raise ValueError("client_id names the bridge's MQTT session; it cannot be empty")
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.nats_servers = list(nats_servers)
        self.topics = topics or TopicMap()
        self.sites = tuple(check_name(site, "site") for site in sites)
        self.directory = directory
        self.max_payload_bytes = max_payload_bytes
        self.client_id = client_id
        self.clean_session = clean_session
        self.qos = qos
        self.outbox_limit = outbox_limit
        self.max_pending_requests = max_pending_requests
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_max_s = reconnect_max_s
        self.clock = clock
        self.stats = BridgeStats()
        # Verification at the bridge keeps its own nonces: a receiver's guard is never shared.
        self._replay = ReplayGuard() if directory is not None else None
        self._nats: NatsClient | None = None
        self._mqtt_task: asyncio.Task[None] | None = None
        self._mqtt_up = asyncio.Event()
        self._mqtt_error: BaseException | None = None
        self._outbox: collections.deque[tuple[str, bytes, int]] = collections.deque()
        self._outbox_ready = asyncio.Event()
        self._pending: collections.OrderedDict[tuple[str, str, bytes], _PendingRequest] = (
            collections.OrderedDict()
        )
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def mqtt_connected(self) -> bool:
        return self._mqtt_up.is_set()

    @property
    def nats_connected(self) -> bool:
        return self._nats is not None and self._nats.is_connected

    async def start(self) -> None:
        """Connect to NATS and the broker and subscribe both ways; raises :class:`MqttAdapterError`.

        Returns once both subscriptions are in place, so nothing published after it is missed.
        """
        self._stopping = False
        nc = NatsClient()
        try:
            # With unlimited reconnects nats-py would retry the first connection for ever too: the
            # first connection has a deadline, later ones do not.
            options: dict[str, Any] = {
                "servers": self.nats_servers,
                "name": f"autarky-mqtt-bridge-{self.client_id}",
                "connect_timeout": self.connect_timeout_s,
                "max_reconnect_attempts": -1,
                "reconnect_time_wait": 0.5,
                "error_cb": self._nats_error,
                "disconnected_cb": self._nats_disconnected,
                "reconnected_cb": self._nats_reconnected,
            }
            await asyncio.wait_for(nc.connect(**options), timeout=self.connect_timeout_s)
        except Exception as exc:
            self._stopping = True
            with contextlib.suppress(Exception):
                await nc.close()
            reason = str(exc) or type(exc).__name__
            raise MqttAdapterError(
                f"cannot connect to NATS at {', '.join(self.nats_servers)}: {reason}"
            ) from exc
        self._nats = nc
        try:
            for site in self.sites or (None,):
                await self._nats.subscribe(self.topics.nats_filter(Kind.COMMANDS, site), cb=self._from_nats)
            await self._nats.flush(timeout=max(1, round(self.connect_timeout_s)))
            self._mqtt_task = asyncio.create_task(self._mqtt_loop(), name="autarky-mqtt-bridge")
            self._mqtt_task.add_done_callback(_log_unexpected_end)
            up = asyncio.create_task(self._mqtt_up.wait())
            await asyncio.wait(
                {up, self._mqtt_task}, timeout=self.connect_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await up
            if not self._mqtt_up.is_set():
                why = self._mqtt_error or "no answer"
                raise MqttAdapterError(
                    f"cannot connect to the MQTT broker at {self.mqtt_host}:{self.mqtt_port}: {why}"
                )
        except BaseException:
            await self.stop()
            raise
        log.info(
            "mqtt bridge up: %s:%s <-> %s (sites: %s)",
            self.mqtt_host,
            self.mqtt_port,
            ", ".join(self.nats_servers),
            ", ".join(self.sites) or "all",
        )

    async def stop(self) -> None:
        """Disconnect from both sides. Idempotent. Commands still in the outbox are dropped."""
        self._stopping = True
        task, self._mqtt_task = self._mqtt_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        nc, self._nats = self._nats, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.drain()
            with contextlib.suppress(Exception):
                await nc.close()
        self._mqtt_up.clear()

    async def run_forever(self) -> None:
        """Start, then run until cancelled; stops on the way out."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> MqttBridge:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the MQTT side --------------------------------------------------------------------------------

    async def _mqtt_loop(self) -> None:
        """Stay connected to the broker: subscribe, forward what arrives, drain the outbox; reconnect."""
        delay_s = 0.1
        while not self._stopping:
            try:
                async with aiomqtt.Client(
                    self.mqtt_host,
                    self.mqtt_port,
                    identifier=self.client_id,
                    clean_session=self.clean_session,
                    timeout=self.connect_timeout_s,
                    keepalive=30,
                    max_queued_incoming_messages=self.outbox_limit,
                    logger=log,
                ) as client:
                    for kind in UPSTREAM_KINDS:
                        for site in self.sites or (None,):
                            await client.subscribe(self.topics.mqtt_filter(kind, site), qos=self.qos)
                    self.stats.mqtt_connections += 1
                    self._mqtt_up.set()
                    delay_s = 0.1
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._drain_outbox(client))
                        group.create_task(self._read_mqtt(client))
            except* aiomqtt.MqttError as group_error:
                self._mqtt_error = group_error.exceptions[0]
            except* OSError as group_error:
                self._mqtt_error = group_error.exceptions[0]
            if self._stopping:
                break
            if self._mqtt_up.is_set():
                log.warning("mqtt bridge: lost the broker (%s); reconnecting", self._mqtt_error)
            self._mqtt_up.clear()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self.reconnect_max_s)

    async def _read_mqtt(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self._from_mqtt(message.topic.value, message.payload)

    async def _from_mqtt(self, topic: str, payload: Any) -> None:
        """A reading or reply from a device: check the topic and the payload's shape, publish to NATS."""
        try:
            route = self.topics.parse_mqtt_topic(topic)
        except TopicError as exc:
            self._drop("mqtt.bad_topic", exc)
            return
        if route.kind not in UPSTREAM_KINDS:
            self._drop("mqtt.bad_topic", f"{topic!r} does not flow towards NATS")
            return
        data = _payload_bytes(payload)
        if data is None:
            self._drop("mqtt.not_bytes", f"payload on {topic!r} is {type(payload).__name__}")
            return
        message = self._admit(data, topic)
        if message is None or self._nats is None:
            return
        subject = self.topics.nats_subject(route)
        try:
            await self._nats.publish(subject, data)
            if route.kind is Kind.REPLIES and message.correlation is not None:
                pending = self._pending.pop((route.site, route.device, message.correlation), None)
                if pending is not None and pending.expires_ms > self.clock():
                    await self._nats.publish(pending.inbox, data)
                    self.stats.replies_to_requests += 1
        except Exception as exc:
            self._drop("nats.publish_failed", exc)
            return
        self.stats.to_nats += 1

    async def _drain_outbox(self, client: aiomqtt.Client) -> None:
        """Publish queued commands to the broker in order; each leaves the outbox once acknowledged."""
        while True:
            await self._outbox_ready.wait()
            while self._outbox:
                topic, data, expires_ms = self._outbox[0]
                if expires_ms <= self.clock():
                    self._outbox.popleft()
                    self._drop("outbox.expired", f"command for {topic!r} expired before the broker took it")
                    continue
                await client.publish(topic, data, qos=self.qos, retain=False)
                self._outbox.popleft()
                self.stats.to_mqtt += 1
            self._outbox_ready.clear()

    # -- the NATS side --------------------------------------------------------------------------------

    async def _from_nats(self, msg: NatsMsg) -> None:
        """A command for a device: check the subject and the payload's shape, queue it for the broker."""
        try:
            route = self.topics.parse_nats_subject(msg.subject)
        except TopicError as exc:
            self._drop("nats.bad_subject", exc)
            return
        if route.kind not in DOWNSTREAM_KINDS:
            self._drop("nats.bad_subject", f"{msg.subject!r} does not flow towards MQTT")
            return
        message = self._admit(msg.data, msg.subject)
        if message is None:
            return
        if len(self._outbox) >= self.outbox_limit:
            self._drop("outbox.full", f"{len(self._outbox)} commands wait for the broker")
            return
        if msg.reply:
            self._remember_request(route, message, msg.reply)
        self._outbox.append((self.topics.mqtt_topic(route), msg.data, message.expires_ms))
        self._outbox_ready.set()

    def _remember_request(self, route: Route, message: Message, inbox: str) -> None:
        now_ms = self.clock()
        if len(self._pending) >= self.max_pending_requests:
            for key in [key for key, pending in self._pending.items() if pending.expires_ms <= now_ms]:
                del self._pending[key]
        if len(self._pending) >= self.max_pending_requests:
            self._drop(
                "requests.full", "too many requests wait for replies; this one's reply goes to replies only"
            )
            return
        self._pending[(route.site, route.device, message.nonce)] = _PendingRequest(inbox, message.expires_ms)

    # -- checks and accounting ------------------------------------------------------------------------

    def _admit(self, data: bytes, where: str) -> Message | None:
        """The envelope's decoded shape (verified, when the bridge has a directory), or None: dropped."""
        if len(data) > self.max_payload_bytes:
            self._drop("msg.too_large", f"{len(data)} bytes on {where!r} (limit {self.max_payload_bytes})")
            return None
        try:
            if self.directory is None:
                return peek(data)
            return open_envelope(data, self.directory, now_ms=self.clock(), replay=self._replay)
        except MessageError as exc:
            self._drop(exc.code, f"on {where!r}: {exc.detail}")
            return None

    def _drop(self, reason: str, detail: object) -> None:
        self.stats.dropped[reason] += 1
        count = self.stats.dropped[reason]
        # Log the 1st, 2nd, 4th, 8th… drop of each reason: a flood of junk cannot flood the log.
        if count & (count - 1) == 0:
            log.warning("mqtt bridge dropped a message (%s, %d so far): %s", reason, count, detail)

    async def _nats_error(self, exc: Exception) -> None:
        log.debug("mqtt bridge, nats: %s", exc)

    async def _nats_disconnected(self) -> None:
        if not self._stopping:
            log.warning("mqtt bridge: disconnected from NATS; reconnecting")

    async def _nats_reconnected(self) -> None:
        log.info("mqtt bridge: reconnected to NATS")


# --------------------------------------------------------------------------------------------------
# The device side


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message that arrived on a device's command topic: opened (``message``) or refused (``error``)."""

    topic: str
    payload: bytes
    message: Message | None
    error: MessageError | None

    @property
    def accepted(self) -> bool:
        return self.message is not None


_RECIPIENT_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._/#-]{0,255}")  # envelope.py's recipient rule


class MqttDevice:
    """A device (or its gateway) on MQTT: signed readings out, verified commands in, signed replies out.

    ::

        async with MqttDevice(key, site="plant.north", device="pump-7", directory=directory,
                              port=1883) as pump:
            await pump.publish_reading({"flow_l_min": 42})
            async for command in pump.commands():          # verified, addressed to pump.did, fresh
                await pump.reply(command, {"ok": True})

    To check grants as well, run ``await pump.serve_commands(CommandHandler(key, directory, actions))``:
    the handler decides each command and its signed result goes back on the ``replies`` topic.

    ``did`` is the account the device signs for (default: the key's own did:key). Commands are opened
    with ``open_envelope(..., recipient=did)`` against ``directory`` and ``replay`` (a fresh
    :class:`ReplayGuard` by default); refusals are counted in ``refused`` by code and logged.
    A reading is addressed to ``reading_recipient``, by default its MQTT topic, so a reading copied to
    another device's topic is refused there as ``msg.wrong_recipient``; names outside
    ``[A-Za-z0-9:._-]`` need an explicit ``reading_recipient``.

    The MQTT session is persistent (``client_id`` defaults to ``autarky-<site>-<device>``): commands
    sent while the device is offline wait at the broker and arrive after :meth:`connect`; those that
    expired meanwhile are refused as ``msg.expired``. When the connection drops, :meth:`receive` raises
    :class:`MqttAdapterError`; connect again to go on.
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        site: str,
        device: str,
        directory: Directory,
        host: str = "127.0.0.1",
        port: int = 1883,
        did: str | None = None,
        topics: TopicMap | None = None,
        replay: ReplayGuard | None = None,
        reading_recipient: str | None = None,
        client_id: str | None = None,
        clean_session: bool = False,
        qos: int = 1,
        timeout_s: float = 10,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.key = key
        self.did = did or key.did
        self.topics = topics or TopicMap()
        self.readings = Route(site, device, Kind.READINGS)
        self.command_topic = self.topics.mqtt_topic(Route(site, device, Kind.COMMANDS))
        self.reply_topic = self.topics.mqtt_topic(Route(site, device, Kind.REPLIES))
        self.reading_topic = self.topics.mqtt_topic(self.readings)
        self.reading_recipient = reading_recipient or self.reading_topic
        if _RECIPIENT_TEXT.fullmatch(self.reading_recipient) is None:
            raise TopicError(
                f"{self.reading_recipient!r} cannot be an envelope recipient (1-256 characters of "
                f"A-Z a-z 0-9 : . _ / # -); pass reading_recipient="
            )
        self.directory = directory
        self.replay = replay if replay is not None else ReplayGuard()
        self.host = host
        self.port = port
        self.client_id = client_id or f"autarky-{site}-{device}"
        self.clean_session = clean_session
        self.qos = qos
        self.timeout_s = timeout_s
        self.clock = clock
        self.refused: collections.Counter[str] = collections.Counter()
        self._client: aiomqtt.Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # -- connection -----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect to the broker and subscribe to the command topic; raises :class:`MqttAdapterError`."""
        await self.close()
        stack = contextlib.AsyncExitStack()
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            clean_session=self.clean_session,
            timeout=self.timeout_s,
            logger=log,
        )
        try:
            await stack.enter_async_context(client)
            await client.subscribe(self.command_topic, qos=self.qos)
        except (aiomqtt.MqttError, OSError) as exc:
            await stack.aclose()
            raise MqttAdapterError(
                f"cannot connect to the MQTT broker at {self.host}:{self.port}: {exc}"
            ) from exc
        self._client, self._stack = client, stack

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await stack.aclose()

    async def __aenter__(self) -> MqttDevice:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            raise MqttAdapterError("the device is not connected; call connect() first")
        return self._client

    # -- out ------------------------------------------------------------------------------------------

    async def publish_reading(
        self, body: Any, *, msg_type: str = "m2m/reading", ttl_ms: int = DEFAULT_TTL_MS
    ) -> bytes:
        """Seal ``body`` as a reading and publish it (QoS 1); returns the envelope bytes sent."""
        data = seal(
            self.key, self.did, self.reading_recipient, msg_type, body, now_ms=self.clock(), ttl_ms=ttl_ms
        )
        await self._publish(self.reading_topic, data)
        return data

    async def reply(
        self, command: Message, body: Any, *, msg_type: str = "m2m/reply", ttl_ms: int = DEFAULT_TTL_MS
    ) -> bytes:
        """Seal a reply to ``command`` (to its sender, correlated by its nonce) and publish it."""
        data = seal(
            self.key,
            self.did,
            command.sender,
            msg_type,
            body,
            now_ms=self.clock(),
            ttl_ms=ttl_ms,
            correlation=command.nonce,
        )
        await self._publish(self.reply_topic, data)
        return data

    async def _publish(self, topic: str, data: bytes) -> None:
        client = self._connected()
        try:
            await client.publish(topic, data, qos=self.qos, retain=False)
        except aiomqtt.MqttError as exc:
            raise MqttAdapterError(f"publishing to {topic!r} failed: {exc}") from exc

    # -- in -------------------------------------------------------------------------------------------

    async def receive(self, timeout_s: float | None = None) -> Delivery:
        """The next message on the command topic, opened or refused. Raises ``TimeoutError`` after
        ``timeout_s`` (None: wait for ever) and :class:`MqttAdapterError` when the connection drops."""
        topic, data = await self._next(timeout_s)
        return self.open(topic, data)

    def open(self, topic: str, payload: Any) -> Delivery:
        """Verify one command as :meth:`receive` does (for messages from another MQTT client)."""
        data = _payload_bytes(payload) or b""
        try:
            opened = open_envelope(
                data, self.directory, now_ms=self.clock(), replay=self.replay, recipient=self.did
            )
        except MessageError as exc:
            self.refused[exc.code] += 1
            count = self.refused[exc.code]
            level = logging.WARNING if count & (count - 1) == 0 else logging.DEBUG  # 1st, 2nd, 4th…
            log.log(level, "device %s refused a message on %r (%d so far): %s", self.did, topic, count, exc)
            return Delivery(topic, data, None, exc)
        return Delivery(topic, data, opened, None)

    async def commands(self) -> AsyncIterator[Message]:
        """Verified commands, one by one, for ever (refused ones are counted in ``refused``)."""
        while True:
            delivery = await self.receive()
            if delivery.message is not None:
                yield delivery.message

    async def serve_commands(self, handler: CommandHandler, *, count: int | None = None) -> None:
        """Let ``handler`` decide every command (envelope, grant, action) and publish its signed result.

        Each command's raw bytes go to :meth:`CommandHandler.handle`, which verifies them itself (with
        its own replay guard), checks the grant, runs the action and logs the decision; its signed
        ``m2m/command_result`` (accepted or refused) goes to the ``replies`` topic, so a NATS
        ``request`` through the bridge gets it. Runs until cancelled, or for ``count`` commands.
        """
        if handler.did != self.did:
            raise ValueError(f"the handler decides for {handler.did}, this device is {self.did}")
        served = 0
        while count is None or served < count:
            _, data = await self._next(None)
            decision, reply = handler.handle(data, self.clock())
            if not decision.accepted and decision.code is not None:
                self.refused[decision.code] += 1
            if reply is not None:
                await self._publish(self.reply_topic, reply)
            served += 1

    async def _next(self, timeout_s: float | None) -> tuple[str, bytes]:
        client = self._connected()
        try:
            async with asyncio.timeout(timeout_s):
                message = await anext(aiter(client.messages))
        except aiomqtt.MqttError as exc:
            raise MqttAdapterError(f"lost the MQTT broker at {self.host}:{self.port}: {exc}") from exc
        return message.topic.value, _payload_bytes(message.payload) or b""


__all__ = [
    "DOWNSTREAM_KINDS",
    "MAX_NAME_BYTES",
    "MQTT_ROOT",
    "NATS_ROOT",
    "UPSTREAM_KINDS",
    "BridgeStats",
    "Delivery",
    "Kind",
    "MqttAdapterError",
    "MqttBridge",
    "MqttDevice",
    "Route",
    "TopicError",
    "TopicMap",
    "check_name",
    "escape_token",
    "parse_host_port",
    "unescape_token",
    "wall_clock_ms",
]
