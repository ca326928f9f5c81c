"""``autarky agent run FILE.py``: one machine per process, on a node, until stopped.

The file defines the machine (``machine = Machine.define("battery")`` and its handlers, see
``autarky.agent.definition``); the command signs with a local identity's key (``--from``), talks to
the node over HTTP, keeps the decision records in a SQLite store, prints progress on stderr and a
summary at the end (``--json``: one object on stdout). Several processes against one node are many
machines. Failures before the machine starts (no file, no machine in it, unknown identity, wrong
password, no node) exit 2 with one line, and nothing is submitted.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.options import FromOpt, JsonOpt, KeyFileOpt, NodeOpt, PasswordFileOpt, parse_duration_ms

if TYPE_CHECKING:
    from autarky.agent import MachineDefinition
    from autarky.agent.process import RunSummary
    from autarky.crypto.keys import SigningKey

app = typer.Typer(
    help="Machines as agents: run a machine defined in a Python file against a node, one per process.",
    no_args_is_help=True,
)

AGENTS_DIR = Path(".autarky/agents")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@app.command("run")
def run_command(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE.py[:NAME]",
            help="The agent file; :NAME picks one of several machines it defines.",
            show_default=False,
        ),
    ],
    from_name: FromOpt,
    node: NodeOpt = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", help="Stop after this long (90s, 15m, 2h); default: at Ctrl-C or SIGTERM."
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="A setting the handlers read as m.settings[KEY]."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="The decision store (SQLite; default .autarky/agents/NAME.decisions.sqlite).",
            show_default=False,
        ),
    ] = None,
    grace: Annotated[
        str, typer.Option("--grace", help="At the stop, how long actions in flight may take to finish.")
    ] = "5s",
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run the machine an agent file defines, signing as --from, until Ctrl-C, SIGTERM or --duration.

    The file holds machine = Machine.define("buyer") and its handlers, decorated with
    @machine.on_interval(period_ms=...), @machine.on_event("bank.transfer") or @machine.on_start;
    each gets the machine first (m) and reads the --set values from m.settings. See
    docs/agents.md, "One machine per process", and examples/energy_buyer.py.

    Each action is pre-checked by the node and signed only if it would pass; a refusal is logged
    with its reason. At the stop, actions in flight finish (--grace), pending decision records are
    anchored on chain, and a summary is printed: transactions submitted and committed, refusals
    and failures by code, decisions recorded and anchored. Run one process per machine.

    Example:  autarky agent run examples/energy_buyer.py --from battery --set pay_to=$GRID --duration 60s
    """
    output.set_json_mode(json_out)
    duration_s = None if duration is None else parse_duration_ms(duration, "--duration") / 1000
    grace_s = parse_duration_ms(grace, "--grace") / 1000
    values = _settings(settings or [])
    definition = _load(file)
    ctx = current()
    if node is not None:
        ctx.node_url = node  # this command's --node wins over the global one (and its error messages say it)
    from autarky.cli.keyring import Secrets

    identity, key = ctx.keyring.unlock(from_name, Secrets(password_file=password_file, key_file=key_file))
    store_path = store if store is not None else AGENTS_DIR / f"{from_name}.decisions.sqlite"
    summary, stopped_by = run(
        _run(definition, from_name, key, identity.account, store_path, values, duration_s, grace_s)
    )
    document = {
        **summary.to_json(),
        "stopped_by": stopped_by,
        "node": ctx.node_address(),
        "store": str(store_path),
    }
    output.emit(document, lambda: _print_summary(document))


def _settings(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise UsageProblem(f"--set {item!r} is not KEY=VALUE")
        values[name.strip()] = value
    return values


def _load(file: str) -> MachineDefinition:
    from autarky.agent import AgentFileError, load_agent_file

    try:
        return load_agent_file(file)
    except AgentFileError as exc:
        raise UsageProblem(str(exc), code=exc.code) from exc


async def _run(
    definition: MachineDefinition,
    name: str,
    key: SigningKey,
    did: str,
    store_path: Path,
    settings: dict[str, str],
    duration_s: float | None,
    grace_s: float,
) -> tuple[RunSummary, str]:
    from autarky.agent.process import run_on_node
    from autarky.cli.remote import connect
    from autarky.provenance import DecisionStore

    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum.name)
        stop.set()
        for each in SIGNALS:  # a second Ctrl-C stops at once (exit 130), without the clean stop
            loop.remove_signal_handler(each)

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    progress = _ProgressLines()
    try:
        async with connect() as client:
            chain_id = await client.chain_id()  # no node: exit 2 before anything else happens
            address = current().node_address()
            counts = ", ".join(f"{n} {kind}" for kind, n in definition.handler_counts().items() if n)
            until = f"for {duration_s:g} s" if duration_s is not None else "until Ctrl-C or SIGTERM"
            output.note(
                f"{name} ({definition.name}, {did}) on chain {chain_id} at {address}, "
                f"{until}; handlers: {counts or 'none'}"
            )
            if definition.messages:
                output.warn("on_message handlers need a message bus; agent run has none, so they do not run")
            with progress, DecisionStore(store_path) as decisions:
                summary = await run_on_node(
                    definition,
                    key,
                    client,
                    stop=stop,
                    duration_s=duration_s,
                    name=name,
                    did=did,
                    decisions=decisions,
                    settings=settings,
                    grace_s=grace_s,
                )
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
    stopped_by = received[0] if received else summary.stopped_by
    output.note(f"{summary.name} stopped ({stopped_by}) cleanly")
    return summary, stopped_by


class _ProgressLines(logging.Handler):
    """The machine's log lines (``autarky.agent``) on stderr, with the time, while it runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._logger = logging.getLogger("autarky.agent")
        self._saved: tuple[int, bool] = (logging.NOTSET, True)

    def __enter__(self) -> _ProgressLines:
        self._saved = (self._logger.level, self._logger.propagate)
        self._logger.addHandler(self)
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False  # printed here once, not again by the root handler (-v)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]

    def emit(self, record: logging.LogRecord) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.getMessage()}"
        if record.levelno >= logging.WARNING:
            output.warn(line)
        else:
            output.note(line)


def _print_summary(document: dict[str, Any]) -> None:
    def by_code(counts: dict[str, int]) -> str:
        return ", ".join(f"{code} ×{n}" for code, n in counts.items())

    refused = sum(document["refused"].values())
    failed = sum(document["failed"].values())
    lines = [
        f"{document['name']} ({document['definition']}) ran {document['seconds']:.1f} s on chain "
        f"{document['chain_id']}, stopped by {document['stopped_by']}",
        f"  transactions  {document['submitted']} submitted, {document['committed']} committed"
        + (f", {failed} failed ({by_code(document['failed'])})" if failed else ""),
        f"  refused       {refused} by the pre-check, never signed"
        + (f" ({by_code(document['refused'])})" if refused else ""),
        f"  decisions     {document['decisions']} recorded, {document['anchored']} anchored, "
        f"{document['pending']} pending; store {document['store']}",
    ]
    if document["handler_failures"]:
        lines.append(f"  handlers      {document['handler_failures']} failures (see the log above)")
    if document["paused"]:
        lines.append("  paused by its owner on the ledger")
    for line in lines:
        output.stdout.print(line, markup=False, highlight=False)
