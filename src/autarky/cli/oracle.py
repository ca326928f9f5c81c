"""``autarky oracle …``: data feeds with registered reporters, rounds final at the median.

Write commands sign a transaction and wait for its block; read commands ask the node's API
(``/api/v1/oracle/feeds…``). Values on the ledger are integers scaled by the feed's decimals:
``report`` and ``fund`` take human values (``0.2150``) and scale them exactly (no rounding: more
digits than the feed's decimals is a usage error), or raw integers with ``--raw``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import OperationFailed, UsageProblem
from autarky.cli.escrow import parse_duration_ms
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, JsonOpt, KeyFileOpt, PasswordFileOpt
from autarky.cli.remote import connect, send_as, send_tx, tx_summary
from autarky.modules.oracle import messages as oracle

app = typer.Typer(
    help="Oracle feeds: create, report, read the latest value and the rounds, fund reporter rewards.",
    no_args_is_help=True,
)

FeedArg = Annotated[str, typer.Argument(help="The feed name, e.g. grid-price/zone-a.", metavar="FEED")]
ReporterOpt = Annotated[
    list[str], typer.Option("--reporter", help="A reporter (local name or did:key); repeat for each.")
]
QuorumOpt = Annotated[int, typer.Option("--quorum", min=1, help="Reports needed to finalize a round.")]

_DECIMAL = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def scale(text: str, decimals: int) -> int:
    """``"0.2150"`` with 4 decimals is 2150; ``"21.5"`` with 2 is 2150. Exact, or a usage error."""
    match = _DECIMAL.fullmatch(text.strip())
    if match is None:
        raise UsageProblem(f"{text!r} is not a number such as 21.5 or -3")
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    if len(fraction) > decimals:
        raise UsageProblem(f"{text!r} has more than the feed's {decimals} decimals")
    value = int(whole + fraction.ljust(decimals, "0"))
    return -value if sign else value


def _iso(time_ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=time_ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(age_ms: int) -> str:
    seconds = age_ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


async def _feed(feed: str) -> dict[str, Any]:
    async with connect() as client:
        return await client.oracle_feed(feed)


# -- create and set-reporters ------------------------------------------------------------------------


@app.command("create")
def create(
    feed: FeedArg,
    owner: Annotated[str, typer.Option("--owner", help="Local name of the feed's owner (signs).")],
    reporters: ReporterOpt,
    quorum: QuorumOpt,
    heartbeat: Annotated[
        str, typer.Option("--heartbeat", help="How long a final value stays fresh (90s, 15m, 1h, 1d).")
    ],
    round_time: Annotated[
        str | None,
        typer.Option("--round", help="How long a round may stay open (default: the heartbeat)."),
    ] = None,
    decimals: Annotated[int, typer.Option("--decimals", min=0, max=18, help="Decimals of the values.")] = 0,
    description: Annotated[str, typer.Option("--description", help="What the feed measures, its unit.")] = "",
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create FEED, owned by --owner, with its reporters and quorum.

    Example:  autarky oracle create grid-price/zone-a --owner owner --reporter meter-1 --reporter meter-2
              --reporter meter-3 --quorum 2 --heartbeat 15m --decimals 4 --description "aut/kWh"
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    dids = [ring.resolve(name) for name in reporters]
    heartbeat_ms = parse_duration_ms(heartbeat)
    round_ms = None if round_time is None else parse_duration_ms(round_time)
    identity, key = ring.unlock(owner, Secrets(password_file=password_file, key_file=key_file))
    message = oracle.create_feed(
        feed, dids, quorum, heartbeat_ms, decimals=decimals, description=description, round_ms=round_ms
    )
    result = run(send_tx(identity.account, key, [message], fee=fee))
    document = {
        "feed": feed,
        "owner": identity.account,
        "reporters": sorted(dids),
        "quorum": quorum,
        "heartbeat_ms": heartbeat_ms,
        "round_ms": heartbeat_ms if round_ms is None else round_ms,
        "decimals": decimals,
        **result,
    }
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]created[/] feed {feed}: {quorum} of {len(dids)} reporters, "
            f"heartbeat {heartbeat}\n  {tx_summary(result)}"
        ),
    )


@app.command("set-reporters")
def set_reporters(
    feed: FeedArg,
    owner: Annotated[str, typer.Option("--owner", help="Local name of the feed's owner (signs).")],
    reporters: ReporterOpt,
    quorum: QuorumOpt,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace FEED's reporters and quorum. An open round is abandoned; the next report opens the next.

    Example:  autarky oracle set-reporters grid-price/zone-a --owner owner --reporter meter-1 --quorum 1
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    dids = [ring.resolve(name) for name in reporters]
    result = send_as(owner, oracle.set_reporters(feed, dids, quorum), fee, password_file, key_file)
    output.emit(
        {"feed": feed, "reporters": sorted(dids), "quorum": quorum, **result},
        lambda: output.stdout.print(
            f"[bold green]reporters set[/] for {feed}: {quorum} of {len(dids)}\n  {tx_summary(result)}"
        ),
    )


# -- report ------------------------------------------------------------------------------------------


@app.command("report")
def report(
    feed: FeedArg,
    value: Annotated[str, typer.Argument(help="The value, e.g. 0.2150 (scaled by the feed's decimals).")],
    reporter: Annotated[str, typer.Option("--reporter", help="Local name of the reporter (signs).")],
    round_number: Annotated[
        int | None, typer.Option("--round", min=1, help="The round (default: the feed's current round).")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="VALUE is the integer as stored, not scaled.")] = False,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Report VALUE for FEED's current round, signed by --reporter.

    Refusals exit 1 with their code: oracle.round_closed (the round was decided; report the next),
    oracle.round_stale (the round timed out; report the next from the next block),
    oracle.already_reported, oracle.not_reporter.

    Example:  autarky oracle report grid-price/zone-a 0.2150 --reporter meter-1
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    if raw:
        try:
            stored = int(value)
        except ValueError:
            raise UsageProblem(f"{value!r} is not an integer (--raw)") from None
        if round_number is None:
            round_number = int(run(_feed(feed))["round"])
    else:
        described = run(_feed(feed))
        stored = scale(value, int(described["decimals"]))
        if round_number is None:
            round_number = int(described["round"])
    identity, key = ring.unlock(reporter, Secrets(password_file=password_file, key_file=key_file))
    result = run(send_tx(identity.account, key, [oracle.report(feed, round_number, stored)], fee=fee))
    output.emit(
        {"feed": feed, "round": round_number, "value": stored, "reporter": identity.account, **result},
        lambda: output.stdout.print(
            f"[bold green]reported[/] {value} for {feed}, round {round_number}\n  {tx_summary(result)}"
        ),
    )


# -- reads -------------------------------------------------------------------------------------------


@app.command("latest")
def latest(
    feed: FeedArg,
    require_fresh: Annotated[
        bool, typer.Option("--require-fresh", help="Exit 1 (oracle.not_fresh) unless the value is fresh.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """The latest final value of FEED: value, round, when it became final, whether it is fresh.

    Example:  autarky oracle latest grid-price/zone-a --json
    """
    output.set_json_mode(json_out)
    document = run(_feed(feed))
    final = document["latest"]
    if require_fresh and not document["fresh"]:
        reason = "has no final value" if final is None else f"is {_age(final['age_ms'])} old"
        raise OperationFailed(
            f"{feed} {reason}; its heartbeat is {document['heartbeat_ms']} ms", code="oracle.not_fresh"
        )

    def human() -> None:
        if final is None:
            output.stdout.print(f"{feed}: no final value yet (current round {document['round']})")
            return
        freshness = "[green]fresh[/]" if document["fresh"] else "[red]stale[/]"
        output.stdout.print(
            f"{feed} = [bold]{final['display']}[/]  round {final['round']}, final {_iso(final['time_ms'])} "
            f"({_age(final['age_ms'])} ago), {freshness}"
        )

    output.emit(document, human)


@app.command("rounds")
def rounds(
    feed: FeedArg,
    first: Annotated[int | None, typer.Option("--from", min=1, help="First round.")] = None,
    last: Annotated[
        int | None, typer.Option("--to", min=1, help="Last round (default: the current).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The rounds of FEED still in state (at most 100 at once), oldest first.

    Example:  autarky oracle rounds grid-price/zone-a --from 1 --to 20
    """
    output.set_json_mode(json_out)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.oracle_rounds(feed, first, last)

    document = run(fetch())

    def human() -> None:
        table = Table(
            "round", "status", "value", "reports", "opened", "closed", title=feed, title_justify="left"
        )
        for record in document["rounds"]:
            closed = "-" if record["closed_ms"] is None else _iso(record["closed_ms"])
            table.add_row(
                str(record["round"]),
                record["status"] + (" (stale)" if record["stale"] else ""),
                record["display"] or "-",
                f"{len(record['reports'])}/{record['quorum']}",
                _iso(record["opened_ms"]),
                closed,
            )
        output.stdout.print(table)

    output.emit(document, human)


@app.command("feeds")
def feeds(
    prefix: Annotated[str, typer.Option("--prefix", help="Only feeds whose name starts with this.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """List feeds with their latest value and whether it is fresh.

    Example:  autarky oracle feeds --prefix weather/
    """
    output.set_json_mode(json_out)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.oracle_feeds(prefix=prefix, limit=500)

    document = run(fetch())

    def human() -> None:
        table = Table("feed", "latest", "round", "fresh", "quorum", "description", title_justify="left")
        for item in document["feeds"]:
            final = item["latest"]
            table.add_row(
                item["feed"],
                "-" if final is None else final["display"],
                "-" if final is None else str(final["round"]),
                "yes" if item["fresh"] else "no",
                f"{item['quorum']}/{len(item['reporters'])}",
                item["description"],
            )
        output.stdout.print(table)

    output.emit(document, human)


# -- reward budgets ----------------------------------------------------------------------------------


@app.command("fund")
def fund(
    feed: FeedArg,
    sender: Annotated[str, typer.Option("--from", help="Local name of the payer (signs).")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Budget in integer base units.")],
    reward: Annotated[int, typer.Option("--reward", min=1, help="Paid to each reporter per final round.")],
    asset: Annotated[str, typer.Option("--asset", help="Asset name.")] = "aut",
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="What remains comes back to you after this long.")
    ] = "7d",
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lock a reward budget for FEED in escrow: each reporter of every final round earns --reward.

    Example:  autarky oracle fund weather/temp-c/farm-1 --from farm --amount 5000 --reward 2 --expires-in 30d
    """
    output.set_json_mode(json_out)
    expires_ms = int(time.time() * 1000) + parse_duration_ms(expires_in)
    message = oracle.fund(feed, asset, amount, reward, expires_ms)
    result = send_as(sender, message, fee, password_file, key_file)
    output.emit(
        {
            "feed": feed,
            "asset": asset,
            "amount": amount,
            "reward": reward,
            "expires_ms": expires_ms,
            **result,
        },
        lambda: output.stdout.print(
            f"[bold green]funded[/] {feed}: {output.fmt_amount(amount)} {asset}, {reward} per report\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("defund")
def defund(
    feed: FeedArg,
    sender: Annotated[str, typer.Option("--from", help="Local name of the budget's payer (signs).")],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Take back what remains of FEED's reward budget.

    Example:  autarky oracle defund weather/temp-c/farm-1 --from farm
    """
    output.set_json_mode(json_out)
    result = send_as(sender, oracle.defund(feed), fee, password_file, key_file)
    output.emit(
        {"feed": feed, **result},
        lambda: output.stdout.print(f"[bold green]withdrawn[/] the budget of {feed}\n  {tx_summary(result)}"),
    )
