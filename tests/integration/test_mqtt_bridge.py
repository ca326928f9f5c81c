"""The MQTT adapter against a real broker (Debian's mosquitto) and a real nats-server, on 127.0.0.1.

Each test starts its own mosquitto (ephemeral port, a config in its temporary directory) and its own
nats-server (``LocalCluster`` with one server), runs a :class:`MqttBridge` between them and drives an
:class:`MqttDevice` on the MQTT side and plain nats-py clients on the NATS side. Every process a test
starts is stopped in a ``finally`` (and checked to be gone), whether the test passed or not.

What must hold: envelopes cross the bridge byte for byte in both directions and verify at the far
end; the broker is not trusted (bytes altered in it are refused by the receiver as
``msg.bad_signature``); junk is dropped and counted, never forwarded; commands wait at the broker for
a device that is offline, and the bridge comes back by itself after a broker restart.

mosquitto is required, not optional: ``./dev test`` installs it (``apt-get install mosquitto``).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import nats
import pytest
from nats.aio.client import Client as NatsClient

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.engines.nats_server import LocalCluster, free_port, track_process, untrack_process
from autarky.messaging.commands import COMMAND_TYPE, RESULT_TYPE, Command, CommandHandler, command_body
from autarky.messaging.directory import StaticDirectory, StaticGrant
from autarky.messaging.envelope import MAX_ENVELOPE_BYTES, Message, open_envelope, seal
from autarky.messaging.errors import MessageError
from autarky.messaging.mqtt import (
    Kind,
    MqttAdapterError,
    MqttBridge,
    MqttDevice,
    Route,
    TopicMap,
    wall_clock_ms,
)
from autarky.messaging.replay import ReplayGuard
from autarky.messaging.transport import Agent

TOPICS = TopicMap()
SITE = "plant.north"  # a '.' in the MQTT level: escaped on NATS
DEVICE = "pump-7"
READINGS = Route(SITE, DEVICE, Kind.READINGS)
COMMANDS = Route(SITE, DEVICE, Kind.COMMANDS)
REPLIES = Route(SITE, DEVICE, Kind.REPLIES)
WAIT_S = 10.0
INSTALL_HINT = (
    "mosquitto (the MQTT broker this test runs) is not installed: run `./dev test`, which installs it, "
    "or `sudo apt-get install mosquitto`"
)


def _key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky-test-key/mqtt/" + name.encode()))


OPERATOR = _key("operator")  # sends commands and reads readings on NATS
PUMP = _key("pump")  # the MQTT device
STRANGER = _key("stranger")  # a key no directory knows


def _directory() -> StaticDirectory:
    directory = StaticDirectory()
    directory.add_key(OPERATOR.did, OPERATOR.public_key.raw)
    directory.add_key(PUMP.did, PUMP.public_key.raw)
    return directory


# --------------------------------------------------------------------------------------------------
# A real mosquitto on 127.0.0.1


def _mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


class Mosquitto:
    """One mosquitto process: ``listener <port> 127.0.0.1``, anonymous clients, its log in ``directory``."""

    def __init__(self, directory: Path, *, persistence: bool = False) -> None:
        self.binary = _mosquitto_binary()
        self.directory = directory
        self.port = free_port()
        self.config_path = directory / "mosquitto.conf"
        self.log_path = directory / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Run as whoever runs the test (as root, mosquitto would otherwise switch to the user
            # 'mosquitto', who cannot write to this directory).
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            f"persistence {'true' if persistence else 'false'}",
        ]
        if persistence:
            lines.append(f"persistence_location {directory}/")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        track_process(self.process)
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto does not listen on {self.port}:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistent sessions), SIGKILL after 10 s; waits until gone."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        untrack_process(process)
        assert process.poll() is not None

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "<no log>"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "mosquitto", persistence=True)
    mosquitto.start()
    process = mosquitto.process
    try:
        yield mosquitto
    finally:
        mosquitto.stop()
        assert process is not None and process.poll() is not None, "mosquitto still running"


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    cluster = LocalCluster.create(tmp_path / "nats", 1)
    try:
        asyncio.run(cluster.start())
        yield cluster.urls[0]
    finally:
        cluster.stop()
        assert not any(server.running for server in cluster.servers), "nats-server still running"


# --------------------------------------------------------------------------------------------------
# Helpers


def _bridge(broker: Mosquitto, nats_url: str, **options: Any) -> MqttBridge:
    return MqttBridge(mqtt_port=broker.port, nats_servers=[nats_url], connect_timeout_s=WAIT_S, **options)


def _pump(broker: Mosquitto, **options: Any) -> MqttDevice:
    return MqttDevice(PUMP, site=SITE, device=DEVICE, directory=_directory(), port=broker.port, **options)


async def _publish_raw(broker: Mosquitto, topic: str, payload: bytes) -> None:
    """Publish bytes straight to the broker, as anyone on the network could."""
    async with aiomqtt.Client("127.0.0.1", broker.port, timeout=WAIT_S) as client:
        await client.publish(topic, payload, qos=1)


def _command(body: object, *, key: SigningKey = OPERATOR, ttl_ms: int = 30_000) -> bytes:
    return seal(key, key.did, PUMP.did, "m2m/command", body, now_ms=wall_clock_ms(), ttl_ms=ttl_ms)


def _open_on_nats(data: bytes, subject: str, *, recipient: str | None) -> Message:
    """What a NATS-side receiver does: verify against its own directory and replay guard."""
    return open_envelope(
        data, _directory(), now_ms=wall_clock_ms(), replay=ReplayGuard(), recipient=recipient
    )


async def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


@contextlib.asynccontextmanager
async def _nats(url: str) -> AsyncIterator[NatsClient]:
    client: NatsClient = await nats.connect(url, connect_timeout=WAIT_S)
    try:
        yield client
    finally:
        await client.close()


# --------------------------------------------------------------------------------------------------
# Readings: device → broker → bridge → NATS


def test_a_signed_reading_arrives_on_nats_unchanged_and_verifies(broker: Mosquitto, nats_url: str) -> None:
    async def scenario() -> None:
        subject = TOPICS.nats_subject(READINGS)
        assert subject == "autarky.m2m.plant%2Enorth.pump-7.readings"
        async with _nats(nats_url) as nc, _bridge(broker, nats_url) as bridge, _pump(broker) as pump:
            sub = await nc.subscribe(TOPICS.nats_filter(Kind.READINGS))
            sent = await pump.publish_reading({"flow_l_min": 42, "seq": 1})
            received = await sub.next_msg(timeout=WAIT_S)

            assert received.subject == subject
            assert received.data == sent  # the envelope crosses byte for byte: nothing re-signed
            message = _open_on_nats(received.data, subject, recipient=TOPICS.nats_to_mqtt(subject))
            assert message.sender == PUMP.did
            assert message.type == "m2m/reading"
            assert message.body == {"flow_l_min": 42, "seq": 1}
            assert message.recipient == "autarky/plant.north/pump-7/readings"
            assert bridge.stats.to_nats == 1
            assert not bridge.stats.dropped

    _run(scenario)


def test_a_reading_copied_to_another_devices_topic_is_refused_there(broker: Mosquitto, nats_url: str) -> None:
    """The broker (or anyone on it) can move bytes between topics; the recipient field gives it away."""

    async def scenario() -> None:
        other = Route(SITE, "pump-8", Kind.READINGS)
        async with _nats(nats_url) as nc, _bridge(broker, nats_url), _pump(broker) as pump:
            sub = await nc.subscribe(TOPICS.nats_subject(other))
            sent = await pump.publish_reading({"flow_l_min": 42}, msg_type="m2m/reading")
            await _publish_raw(broker, TOPICS.mqtt_topic(other), sent)
            received = await sub.next_msg(timeout=WAIT_S)
            assert received.data == sent
            with pytest.raises(MessageError) as refused:
                _open_on_nats(
                    received.data, received.subject, recipient=TOPICS.nats_to_mqtt(received.subject)
                )
            assert refused.value.code == "msg.wrong_recipient"

    _run(scenario)


# --------------------------------------------------------------------------------------------------
# Commands: NATS → bridge → broker → device, and the signed reply back


def test_a_signed_command_reaches_the_device_verified_and_its_signed_reply_answers_the_request(
    broker: Mosquitto, nats_url: str
) -> None:
    async def scenario() -> None:
        async with _nats(nats_url) as nc, _bridge(broker, nats_url) as bridge, _pump(broker) as pump:
            replies = await nc.subscribe(TOPICS.nats_subject(REPLIES))
            command = _command({"action": "set_speed", "rpm": 1200})

            async def device() -> bytes:
                delivery = await pump.receive(timeout_s=WAIT_S)
                assert delivery.accepted, delivery.error
                assert delivery.payload == command  # byte for byte
                assert delivery.topic == "autarky/plant.north/pump-7/commands"
                assert delivery.message is not None
                assert delivery.message.sender == OPERATOR.did
                assert delivery.message.body == {"action": "set_speed", "rpm": 1200}
                return await pump.reply(delivery.message, {"ok": True, "rpm": 1200})

            device_task = asyncio.create_task(device())
            response = await nc.request(TOPICS.nats_subject(COMMANDS), command, timeout=WAIT_S)
            sent_reply = await device_task

            assert response.data == sent_reply
            reply = open_envelope(
                response.data,
                _directory(),
                now_ms=wall_clock_ms(),
                replay=ReplayGuard(),
                recipient=OPERATOR.did,
            )
            assert reply.sender == PUMP.did
            assert (
                reply.correlation
                == open_envelope(command, _directory(), now_ms=wall_clock_ms(), replay=None).nonce
            )
            assert reply.body == {"ok": True, "rpm": 1200}
            also = await replies.next_msg(timeout=WAIT_S)  # and on the replies subject, for observers
            assert also.data == sent_reply
            await _eventually(lambda: bridge.stats.to_mqtt == 1, "the broker's acknowledgement")
            assert bridge.stats.to_nats == 1
            assert bridge.stats.replies_to_requests == 1

    _run(scenario)


def test_the_device_refuses_commands_it_should_not_obey(broker: Mosquitto, nats_url: str) -> None:
    async def scenario() -> None:
        async with _nats(nats_url) as nc, _bridge(broker, nats_url) as bridge, _pump(broker) as pump:
            subject = TOPICS.nats_subject(COMMANDS)
            genuine = _command({"action": "stop"})
            cases = [
                (_command({"action": "stop"}, key=STRANGER), "msg.unknown_key"),
                (
                    seal(OPERATOR, OPERATOR.did, OPERATOR.did, "m2m/command", {}, now_ms=wall_clock_ms()),
                    "msg.wrong_recipient",
                ),
                (genuine, None),
                (genuine, "msg.replay"),  # the same envelope again: a replay, whoever sends it
            ]
            for data, _ in cases:
                await nc.publish(subject, data)
            for data, code in cases:
                delivery = await pump.receive(timeout_s=WAIT_S)
                assert delivery.payload == data
                assert (delivery.error.code if delivery.error else None) == code
            assert pump.refused == {"msg.unknown_key": 1, "msg.wrong_recipient": 1, "msg.replay": 1}

            # An expired command: the bridge does not even pass it on (its outbox drops what has
            # expired), and a copy published straight to the broker is refused by the device.
            expired = seal(
                OPERATOR, OPERATOR.did, PUMP.did, "m2m/command", {}, now_ms=wall_clock_ms() - 60_000
            )
            await nc.publish(subject, expired)
            await _eventually(lambda: bridge.stats.dropped == {"outbox.expired": 1}, "the bridge to drop it")
            await _publish_raw(broker, TOPICS.mqtt_topic(COMMANDS), expired)
            delivery = await pump.receive(timeout_s=WAIT_S)
            assert delivery.payload == expired
            assert delivery.error is not None and delivery.error.code == "msg.expired"
            await _eventually(lambda: bridge.stats.to_mqtt == 4, "the broker's acknowledgements")

    _run(scenario)


def test_an_agent_on_nats_commands_an_mqtt_device_under_a_grant(broker: Mosquitto, nats_url: str) -> None:
    """The whole path with the messaging layer's own parts: an ``Agent`` asks on NATS, the device's
    ``CommandHandler`` decides behind the broker (envelope, grant, action) and its signed result comes
    back through the bridge to ``Agent.request``, which checks it answers this very command."""

    async def scenario() -> None:
        directory = _directory()
        directory.add_grant(StaticGrant("g-1", PUMP.did, OPERATOR.did, "actuate", "pump-7"))
        speeds: list[int] = []

        def actuate(command: Command) -> str:
            speeds.append(command.args["rpm"])
            return "done"

        handler = CommandHandler(PUMP, directory, {"actuate": actuate})
        agent = Agent(OPERATOR, directory)
        await agent.connect(nats_url)
        try:
            async with _bridge(broker, nats_url) as bridge, _pump(broker) as pump:
                serving = asyncio.create_task(pump.serve_commands(handler, count=2))
                subject = TOPICS.nats_subject(COMMANDS)
                granted = agent.seal(
                    PUMP.did, COMMAND_TYPE, command_body("actuate", "pump-7", "g-1", {"rpm": 900})
                )
                result = await agent.request(subject, granted, timeout=WAIT_S)
                assert result.sender == PUMP.did and result.type == RESULT_TYPE
                assert result.body["accepted"] is True and result.body["result"] == "done"
                assert result.body["grant"] == "g-1"
                ungranted = agent.seal(
                    PUMP.did, COMMAND_TYPE, command_body("actuate", "pump-8", "g-1", {"rpm": 1})
                )
                refusal = await agent.request(subject, ungranted, timeout=WAIT_S)
                assert refusal.body["accepted"] is False and refusal.body["code"] == "msg.no_grant"
                await asyncio.wait_for(serving, WAIT_S)
                assert speeds == [900]
                assert pump.refused == {"msg.no_grant": 1}
                assert bridge.stats.replies_to_requests == 2
        finally:
            await agent.close()

    _run(scenario)


# --------------------------------------------------------------------------------------------------
# The broker is not trusted


def _tampered(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1 and len(old) == len(new)
    return data.replace(old, new)


def test_a_payload_altered_in_the_broker_is_refused_by_the_receiver(broker: Mosquitto, nats_url: str) -> None:
    """Modified bytes published straight to the broker pass the bridge (it only checks the shape) and
    are refused where it matters, at the receiver, in both directions."""

    async def scenario() -> None:
        async with _nats(nats_url) as nc, _bridge(broker, nats_url) as bridge, _pump(broker) as pump:
            # Upstream: a reading whose value was changed in transit.
            sub = await nc.subscribe(TOPICS.nats_subject(READINGS))
            genuine = seal(
                PUMP,
                PUMP.did,
                TOPICS.mqtt_topic(READINGS),
                "m2m/reading",
                {"valve": "open"},
                now_ms=wall_clock_ms(),
            )
            forged = _tampered(genuine, b"open", b"shut")
            await _publish_raw(broker, TOPICS.mqtt_topic(READINGS), forged)
            received = await sub.next_msg(timeout=WAIT_S)
            assert received.data == forged  # the bridge forwarded it unchanged...
            with pytest.raises(MessageError) as refused:  # ...and the receiver refuses it
                _open_on_nats(received.data, received.subject, recipient=TOPICS.mqtt_topic(READINGS))
            assert refused.value.code == "msg.bad_signature"

            # Downstream: a command whose argument was changed, published straight to the broker.
            command = _command({"action": "open", "valve": 7})
            forged_command = _tampered(command, b"open", b"shut")
            await _publish_raw(broker, TOPICS.mqtt_topic(COMMANDS), forged_command)
            delivery = await pump.receive(timeout_s=WAIT_S)
            assert delivery.payload == forged_command
            assert delivery.error is not None and delivery.error.code == "msg.bad_signature"
            assert delivery.message is None

            # The genuine command still gets through afterwards, by the bridge.
            await nc.publish(TOPICS.nats_subject(COMMANDS), command)
            delivery = await pump.receive(timeout_s=WAIT_S)
            assert delivery.accepted and delivery.message is not None
            assert delivery.message.body == {"action": "open", "valve": 7}
            assert pump.refused == {"msg.bad_signature": 1}
            await _eventually(lambda: bridge.stats.to_mqtt == 1, "the broker's acknowledgement")
            assert bridge.stats.to_nats == 1

    _run(scenario)


def test_a_verifying_bridge_drops_forgeries_itself(broker: Mosquitto, nats_url: str) -> None:
    async def scenario() -> None:
        async with (
            _nats(nats_url) as nc,
            _bridge(broker, nats_url, directory=_directory()) as bridge,
            _pump(broker) as pump,
        ):
            sub = await nc.subscribe(TOPICS.nats_filter(Kind.READINGS))
            genuine = seal(
                PUMP,
                PUMP.did,
                TOPICS.mqtt_topic(READINGS),
                "m2m/reading",
                {"valve": "open"},
                now_ms=wall_clock_ms(),
            )
            await _publish_raw(broker, TOPICS.mqtt_topic(READINGS), _tampered(genuine, b"open", b"shut"))
            stranger = seal(
                STRANGER, STRANGER.did, TOPICS.mqtt_topic(READINGS), "m2m/reading", {}, now_ms=wall_clock_ms()
            )
            await _publish_raw(broker, TOPICS.mqtt_topic(READINGS), stranger)
            sent = await pump.publish_reading({"valve": "open"})
            received = await sub.next_msg(timeout=WAIT_S)  # only the genuine reading arrives
            assert received.data == sent
            await _eventually(lambda: sum(bridge.stats.dropped.values()) == 2, "two drops")
            assert bridge.stats.dropped == {"msg.bad_signature": 1, "msg.unknown_key": 1}
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.3)

    _run(scenario)


# --------------------------------------------------------------------------------------------------
# Junk is dropped and counted, never forwarded


def test_malformed_and_oversize_payloads_are_dropped_and_counted(broker: Mosquitto, nats_url: str) -> None:
    async def scenario() -> None:
        async with _nats(nats_url) as nc, _bridge(broker, nats_url) as bridge, _pump(broker) as pump:
            readings = await nc.subscribe(TOPICS.nats_filter(Kind.READINGS))
            topic = TOPICS.mqtt_topic(READINGS)
            # MQTT → NATS: not an envelope, empty, too large, a COSE_Sign1 of another shape.
            for junk in (
                b"not an envelope",
                b"",
                b"\x00" * (MAX_ENVELOPE_BYTES + 1),
                b"\xd2\x84\x40\xa0\x40\x40",
            ):
                await _publish_raw(broker, topic, junk)
            sent = await pump.publish_reading({"ok": True})  # the bridge is still alive, in order
            received = await readings.next_msg(timeout=WAIT_S)
            assert received.data == sent
            assert bridge.stats.dropped == {"msg.malformed": 3, "msg.too_large": 1}

            # NATS → MQTT: junk payloads, and a subject whose escape is not canonical.
            commands = TOPICS.nats_subject(COMMANDS)
            await nc.publish(commands, b"\xff" * 10)
            await nc.publish(commands, b"\x00" * (MAX_ENVELOPE_BYTES + 1))
            await nc.publish("autarky.m2m.plant%2enorth.pump-7.commands", _command({"action": "stop"}))
            command = _command({"action": "stop"})
            await nc.publish(commands, command)
            delivery = await pump.receive(timeout_s=WAIT_S)  # only the genuine command reaches the device
            assert delivery.payload == command and delivery.accepted
            await _eventually(lambda: sum(bridge.stats.dropped.values()) == 7, "seven drops")
            assert bridge.stats.dropped == {"msg.malformed": 4, "msg.too_large": 2, "nats.bad_subject": 1}
            await _eventually(lambda: bridge.stats.to_mqtt == 1, "the broker's acknowledgement")
            assert bridge.stats.to_nats == 1
            assert pump.refused == {}
            with pytest.raises(TimeoutError):
                await pump.receive(timeout_s=0.3)
            with pytest.raises(nats.errors.TimeoutError):
                await readings.next_msg(timeout=0.1)
            assert bridge.stats.as_dict()["dropped"] == {
                "msg.malformed": 4,
                "msg.too_large": 2,
                "nats.bad_subject": 1,
            }

    _run(scenario)


# --------------------------------------------------------------------------------------------------
# Offline devices, broker restarts, a missing broker


def test_a_command_waits_at_the_broker_for_an_offline_device(broker: Mosquitto, nats_url: str) -> None:
    async def scenario() -> None:
        async with _nats(nats_url) as nc, _bridge(broker, nats_url) as bridge:
            async with _pump(broker):
                pass  # the persistent session (and its subscription) now exists at the broker
            command = _command({"action": "stop"})
            await nc.publish(TOPICS.nats_subject(COMMANDS), command)
            await _eventually(lambda: bridge.stats.to_mqtt == 1, "the broker to take the command")
            async with _pump(broker) as pump:  # back online: the queued command arrives, verified
                delivery = await pump.receive(timeout_s=WAIT_S)
                assert delivery.payload == command and delivery.accepted

    _run(scenario)


def test_the_bridge_comes_back_after_a_broker_restart(broker: Mosquitto, nats_url: str) -> None:
    """Commands from NATS wait in the bridge's outbox while the broker is down; the device's persistent
    session survives the restart (mosquitto saves it), so the command is delivered whatever reconnects
    first; readings flow again once the bridge is back."""

    async def scenario() -> None:
        async with _nats(nats_url) as nc, _bridge(broker, nats_url, reconnect_max_s=0.5) as bridge:
            async with _pump(broker):
                pass
            assert bridge.stats.mqtt_connections == 1
            await asyncio.to_thread(broker.stop)
            await _eventually(lambda: not bridge.mqtt_connected, "the bridge to notice")
            command = _command({"action": "stop"})
            await nc.publish(TOPICS.nats_subject(COMMANDS), command)
            await nc.flush()
            await asyncio.sleep(0.2)
            assert bridge.stats.to_mqtt == 0  # it waits in the outbox
            await asyncio.to_thread(broker.start)
            await _eventually(lambda: bridge.stats.to_mqtt == 1, "the outbox to drain after the restart")
            assert bridge.stats.mqtt_connections == 2
            sub = await nc.subscribe(TOPICS.nats_subject(READINGS))
            async with _pump(broker) as pump:
                delivery = await pump.receive(timeout_s=WAIT_S)
                assert delivery.payload == command and delivery.accepted
                sent = await pump.publish_reading({"after": "restart"})
                assert (await sub.next_msg(timeout=WAIT_S)).data == sent

    _run(scenario)


def test_a_bridge_without_a_broker_fails_to_start_and_says_where(tmp_path: Path, nats_url: str) -> None:
    async def scenario() -> None:
        port = free_port()  # nothing listens there
        bridge = MqttBridge(mqtt_port=port, nats_servers=[nats_url], connect_timeout_s=1)
        with pytest.raises(MqttAdapterError, match=f"MQTT broker at 127.0.0.1:{port}"):
            await bridge.start()
        assert not bridge.nats_connected and not bridge.mqtt_connected
        device = MqttDevice(PUMP, site=SITE, device=DEVICE, directory=_directory(), port=port, timeout_s=1)
        with pytest.raises(MqttAdapterError, match=f"127.0.0.1:{port}"):
            await device.connect()
        with pytest.raises(MqttAdapterError, match="not connected"):
            await device.publish_reading({})

    _run(scenario)


def test_a_bridge_without_nats_fails_to_start_and_says_where(broker: Mosquitto) -> None:
    async def scenario() -> None:
        url = f"nats://127.0.0.1:{free_port()}"
        bridge = MqttBridge(mqtt_port=broker.port, nats_servers=[url], connect_timeout_s=1)
        with pytest.raises(MqttAdapterError, match="cannot connect to NATS"):
            await bridge.start()
        assert not bridge.mqtt_connected

    _run(scenario)


def test_a_missing_mosquitto_fails_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install mosquitto"):
        _mosquitto_binary()


# --------------------------------------------------------------------------------------------------
# The command line: `autarky mqtt bridge`


def test_the_bridge_command_runs_until_sigint_and_reports_what_it_forwarded(
    broker: Mosquitto, nats_url: str, tmp_path: Path
) -> None:
    stderr_path = tmp_path / "bridge.stderr"
    argv = ["mqtt", "bridge", "--mqtt", f"127.0.0.1:{broker.port}", "--nats", nats_url, "--json"]
    argv += ["--stats-every", "0", "--client-id", "cli-bridge"]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "autarky.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    track_process(process)
    try:
        deadline = time.monotonic() + 30
        while b"mqtt bridge running" not in stderr_path.read_bytes():
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.05)

        async def scenario() -> bytes:
            async with _nats(nats_url) as nc, _pump(broker) as pump:
                sub = await nc.subscribe(TOPICS.nats_subject(READINGS))
                await _publish_raw(broker, TOPICS.mqtt_topic(READINGS), b"junk")
                sent = await pump.publish_reading({"via": "cli"})
                received = await sub.next_msg(timeout=WAIT_S)
                return bytes(received.data) if received.data == sent else b""

        assert asyncio.run(scenario()) != b""
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
        untrack_process(process)
    assert process.returncode == 0, stderr_path.read_text()
    document = json.loads(stdout)
    assert document["mqtt"] == f"127.0.0.1:{broker.port}"
    assert document["nats"] == [nats_url]
    assert document["stats"]["to_nats"] == 1
    assert document["stats"]["dropped"] == {"msg.malformed": 1}
    assert document["stats"]["mqtt_connections"] == 1


def test_the_bridge_command_fails_with_one_line_when_the_broker_is_missing(nats_url: str) -> None:
    port = free_port()
    argv = ["mqtt", "bridge", "--mqtt", f"127.0.0.1:{port}", "--nats", nats_url, "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "autarky.cli", *argv], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "cli.mqtt_unreachable"
    assert f"MQTT broker at 127.0.0.1:{port}" in done.stderr.decode()
    assert b"Traceback" not in done.stderr


# --------------------------------------------------------------------------------------------------
# docs/mqtt.md: the walkthrough runs as written, against `autarky mqtt bridge`

DOCS = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def _walkthrough() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```python\n", text.index("<!-- The test suite runs this block")) + len("```python\n")
    return text[start : text.index("```\n", start)]


def test_the_walkthrough_in_docs_runs(broker: Mosquitto, nats_url: str, tmp_path: Path) -> None:
    script = tmp_path / "mqtt_walkthrough.py"
    script.write_text(_walkthrough(), encoding="utf-8")
    stderr_path = tmp_path / "bridge.stderr"
    argv = ["mqtt", "bridge", "--mqtt", f"127.0.0.1:{broker.port}", "--nats", nats_url, "--json"]
    with stderr_path.open("wb") as stderr:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "autarky.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    track_process(bridge)
    try:
        deadline = time.monotonic() + 30
        while b"mqtt bridge running" not in stderr_path.read_bytes():
            assert bridge.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.05)
        env = {**os.environ, "MQTT": f"127.0.0.1:{broker.port}", "NATS": nats_url}
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith("operator: verified reading on autarky.m2m.plant%2Enorth.pump-7.readings")
        assert lines[1:4] == [
            "pump: verified command {'rpm': 1200, 'action': 'set_speed'}",  # canonical CBOR key order
            "operator: verified reply {'ok': True, 'rpm': 1200}",
            "pump: refused the altered command: msg.bad_signature",
        ]
        assert json.loads(lines[-1]) == {
            "forged": "msg.bad_signature",
            "reading": {"flow_l_min": 42},
            "reply": {"ok": True, "rpm": 1200},
        }
        bridge.send_signal(signal.SIGINT)
        stdout, _ = bridge.communicate(timeout=30)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
        assert bridge.stdout is not None
        bridge.stdout.close()
        untrack_process(bridge)
    assert bridge.returncode == 0, stderr_path.read_text()
    stats = json.loads(stdout)["stats"]
    # As docs/mqtt.md says: the reading and the reply to NATS, the command to MQTT, one reply to an inbox.
    assert (stats["to_nats"], stats["to_mqtt"], stats["replies_to_requests"]) == (2, 1, 1)
    assert stats["dropped"] == {}
