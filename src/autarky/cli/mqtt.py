"""``autarky mqtt …``: the MQTT adapter from the command line.

``mqtt bridge`` runs an :class:`~autarky.messaging.mqtt.MqttBridge` between an MQTT broker and NATS
until Ctrl-C or SIGTERM, printing what it forwarded and dropped; ``mqtt map`` shows where a topic or
subject goes. The mapping and the delivery rules are in ``docs/mqtt.md`` and the docstring of
:mod:`autarky.messaging.mqtt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import run
from autarky.cli.errors import OperationFailed, UsageProblem
from autarky.messaging.directory import StaticDirectory
from autarky.messaging.mqtt import (
    MQTT_ROOT,
    NATS_ROOT,
    MqttAdapterError,
    MqttBridge,
    TopicError,
    TopicMap,
    parse_host_port,
)

app = typer.Typer(
    help="The MQTT adapter: bridge an MQTT broker and NATS (signed envelopes, forwarded unchanged).",
    no_args_is_help=True,
)

MqttRootOpt = Annotated[str, typer.Option("--mqtt-root", help="First topic level(s) of every MQTT topic.")]
NatsRootOpt = Annotated[str, typer.Option("--nats-root", help="First token(s) of every NATS subject.")]


def _topics(mqtt_root: str, nats_root: str) -> TopicMap:
    try:
        return TopicMap(mqtt_root=mqtt_root, nats_root=nats_root)
    except TopicError as exc:
        raise UsageProblem(str(exc), code="cli.mqtt_topic") from exc


def _directory(path: Path) -> StaticDirectory:
    """DID documents from a JSON file: one document, or a list of them."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"--verify-with {path}: cannot read JSON ({exc})") from exc
    documents = document if isinstance(document, list) else [document]
    directory = StaticDirectory()
    for index, entry in enumerate(documents):
        if not isinstance(entry, Mapping):
            raise UsageProblem(f"--verify-with {path}: entry {index} is not a DID document (a JSON object)")
        try:
            directory.add_document(entry)
        except ValueError as exc:
            raise UsageProblem(f"--verify-with {path}: entry {index}: {exc}") from exc
    return directory


@app.command("bridge")
def bridge(
    mqtt: Annotated[
        str, typer.Option("--mqtt", help="The MQTT broker, host:port (port 1883 when left out).")
    ] = "127.0.0.1:1883",
    nats_urls: Annotated[
        list[str] | None,
        typer.Option("--nats", help="A NATS server URL; repeat for several. Default nats://127.0.0.1:4222."),
    ] = None,
    sites: Annotated[
        list[str] | None,
        typer.Option("--site", help="Bridge only this site (repeat for several). Default: every site."),
    ] = None,
    mqtt_root: MqttRootOpt = MQTT_ROOT,
    nats_root: NatsRootOpt = NATS_ROOT,
    client_id: Annotated[
        str,
        typer.Option(
            "--client-id", help="The bridge's MQTT client id (its persistent session at the broker)."
        ),
    ] = "autarky-bridge",
    verify_with: Annotated[
        Path | None,
        typer.Option(
            "--verify-with",
            help=(
                "A JSON file of DID documents: verify every envelope at the bridge too and drop those that "
                "do not open. Receivers verify again either way."
            ),
            show_default=False,
        ),
    ] = None,
    stats_every: Annotated[
        float, typer.Option("--stats-every", min=0.0, help="Seconds between stats lines on stderr (0: none).")
    ] = 60.0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (addresses and counts) when it stops.")
    ] = False,
) -> None:
    """Forward signed envelopes between an MQTT broker and NATS until Ctrl-C, then print what happened.

    Readings and replies go from MQTT autarky/<site>/<device>/readings|replies to NATS
    autarky.m2m.<site>.<device>.readings|replies; commands from NATS autarky.m2m.<site>.<device>.commands
    to MQTT autarky/<site>/<device>/commands (QoS 1, persistent session). Payloads are forwarded
    byte for byte; too large or malformed ones are dropped and counted.

    Example:  autarky mqtt bridge --mqtt 127.0.0.1:1883 --nats nats://127.0.0.1:4222
    Example:  autarky mqtt bridge --site plant.north --verify-with directory.json --json
    """
    output.set_json_mode(json_out)
    try:
        host, port = parse_host_port(mqtt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mqtt") from exc
    servers = nats_urls or ["nats://127.0.0.1:4222"]
    for url in servers:
        if not url.startswith(("nats://", "tls://")):
            raise typer.BadParameter(f"{url!r} is not a nats:// or tls:// URL", param_hint="--nats")
    topics = _topics(mqtt_root, nats_root)
    directory = None if verify_with is None else _directory(verify_with)
    try:
        the_bridge = MqttBridge(
            mqtt_host=host,
            mqtt_port=port,
            nats_servers=servers,
            topics=topics,
            sites=sites or (),
            directory=directory,
            client_id=client_id,
        )
    except (TopicError, ValueError) as exc:
        raise UsageProblem(str(exc)) from exc
    stats = run(_run_bridge(the_bridge, stats_every))
    document = {
        "mqtt": f"{host}:{port}",
        "nats": servers,
        "sites": list(the_bridge.sites),
        "verify": directory is not None,
        "stats": stats,
    }
    output.emit(document, lambda: output.note(f"mqtt bridge stopped: {json.dumps(stats, sort_keys=True)}"))


async def _run_bridge(the_bridge: MqttBridge, stats_every_s: float) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        starting = asyncio.create_task(the_bridge.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await the_bridge.stop()
            return the_bridge.stats.as_dict()
        stopping.cancel()
        try:
            starting.result()
        except MqttAdapterError as exc:
            raise OperationFailed(str(exc), code="cli.mqtt_unreachable") from exc
        topics = the_bridge.topics
        output.note(
            f"mqtt bridge running: MQTT {the_bridge.mqtt_host}:{the_bridge.mqtt_port} "
            f"({topics.mqtt_root}/<site>/<device>/<kind>) <-> NATS {', '.join(the_bridge.nats_servers)} "
            f"({topics.nats_root}.<site>.<device>.<kind>); Ctrl-C to stop"
        )
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=stats_every_s or None)
                if not stop.is_set():
                    output.note(f"mqtt bridge: {json.dumps(the_bridge.stats.as_dict(), sort_keys=True)}")
        finally:
            await the_bridge.stop()
        return the_bridge.stats.as_dict()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@app.command("map")
def map_topic(
    name: Annotated[str, typer.Argument(help="An MQTT topic (with '/') or a NATS subject (with '.').")],
    mqtt_root: MqttRootOpt = MQTT_ROOT,
    nats_root: NatsRootOpt = NATS_ROOT,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the other side of a topic or subject, and the site, device and kind it names.

    Example:  autarky mqtt map autarky/plant.north/pump-7/readings
    Example:  autarky mqtt map autarky.m2m.plant%2Enorth.pump-7.commands
    """
    output.set_json_mode(json_out)
    topics = _topics(mqtt_root, nats_root)
    try:
        # An escaped NATS subject never holds '/'; every MQTT topic does.
        route = topics.parse_mqtt_topic(name) if "/" in name else topics.parse_nats_subject(name)
    except TopicError as exc:
        raise UsageProblem(str(exc), code="cli.mqtt_topic") from exc
    document = {
        "mqtt": topics.mqtt_topic(route),
        "nats": topics.nats_subject(route),
        "site": route.site,
        "device": route.device,
        "kind": route.kind.value,
    }

    def human() -> None:
        output.stdout.print(f"MQTT {document['mqtt']}", markup=False)
        output.stdout.print(f"NATS {document['nats']}", markup=False)

    output.emit(document, human)
