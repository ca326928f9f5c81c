"""``autarky lease …``: offer capacity by the period, reserve a slot, confirm, end, claim a breach.

Write commands sign one transaction and wait for its block; ``offer`` and ``reserve`` print the new
id, which the client computes from the transaction hash (``lease/offer-id``, ``lease/lease-id``).
Read commands ask the node's API (``/api/v1/lease/…``). Times are block times in ms since the Unix
epoch; ``--start`` also takes ``now``, ``+90s``/``+5m``/``+2h``/``+1d`` (from now, by this machine's
clock) or an ISO 8601 date-time. Periods are given as durations (``60s``, ``15m``, ``1h``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.options import (
    FeeOpt,
    FromOpt,
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    iso,
    parse_duration_ms,
    parse_hex32,
    parse_time_ms,
)
from autarky.cli.remote import connect, send_as, tx_summary
from autarky.crypto.hashing import sha256
from autarky.modules.lease import keeper as lease_keeper
from autarky.modules.lease import messages as lease

app = typer.Typer(
    help="Leases: offer compute, storage, a charger or a tool by the period; reserve, confirm, end, "
    "claim a missed service level.",
    no_args_is_help=True,
)

LeaseArg = Annotated[str, typer.Argument(help="The lease id (64 hex characters).", metavar="LEASE")]
OfferArg = Annotated[str, typer.Argument(help="The offer id (64 hex characters).", metavar="OFFER")]
PrintIdOpt = Annotated[bool, typer.Option("--print-id", help="Print only the new id (for scripts).")]


def duration(ms: int) -> str:
    """``90s``, ``15m``, ``2h``, ``1d`` (the largest whole unit), else ``1500ms``."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def evidence_hash(text: str | None, file: Path | None, digest: str | None) -> bytes:
    """The 32-byte evidence hash from exactly one of: a text, a file (SHA-256 of its bytes), a hex hash."""
    given = [value for value in (text, file, digest) if value is not None]
    if len(given) != 1:
        raise UsageProblem("give exactly one of --evidence TEXT, --evidence-file PATH, --evidence-hash HEX")
    if text is not None:
        return sha256(text.encode("utf-8"))
    if file is not None:
        try:
            return sha256(file.read_bytes())
        except OSError as exc:
            raise UsageProblem(f"cannot read {file}: {exc.strerror}") from None
    assert digest is not None
    return parse_hex32(digest, "an evidence hash")


def _parse_sla(items: list[str]) -> dict[str, int]:
    level: dict[str, int] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not value.strip().isdigit():
            raise UsageProblem(f"--sla {item!r} is not METRIC=INTEGER (e.g. uptime_bps=9900)")
        level[name.strip()] = int(value)
    return level


# -- offers ------------------------------------------------------------------------------------------


@app.command("offer")
def offer(
    sender: FromOpt,
    kind: Annotated[str, typer.Option("--kind", help="What it is: compute, storage, charger, tool, …")],
    resource: Annotated[
        str, typer.Option("--resource", help="Your name for the thing (charger-3, gpu/a100-0).")
    ],
    price: Annotated[int, typer.Option("--price", min=1, help="Price per period in base units.")],
    period: Annotated[str, typer.Option("--period", help="Length of one period (60s, 15m, 1h).")],
    max_periods: Annotated[int, typer.Option("--max-periods", min=1, help="Most periods in one lease.")],
    min_periods: Annotated[
        int, typer.Option("--min-periods", min=1, help="Fewest periods in one lease.")
    ] = 1,
    asset: Annotated[str, typer.Option("--asset", help="Asset the price is in.")] = "aut",
    sla: Annotated[
        list[str] | None, typer.Option("--sla", help="A service-level promise METRIC=INTEGER; repeatable.")
    ] = None,
    monitor: Annotated[
        str | None, typer.Option("--monitor", help="Who judges breach claims (a name or did:key).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    print_id: PrintIdOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Offer a resource by the period; prints the offer id.

    Example:  autarky lease offer --from station --kind charger --resource charger-3 --price 10
              --period 1m --max-periods 120 --sla uptime_bps=9900 --monitor sla-monitor
    """
    output.set_json_mode(json_out)
    monitor_did = None if monitor is None else current().keyring.resolve(monitor)
    period_ms = parse_duration_ms(period, "--period")
    message = lease.offer(
        kind, resource, price, asset, period_ms, min_periods, max_periods, _parse_sla(sla or []), monitor_did
    )
    result = send_as(sender, message, fee, password_file, key_file)
    offer_id = lease_keeper.new_offer_id(bytes.fromhex(result["tx_hash"]), 0).hex()
    if print_id and not json_out:
        output.stdout.print(offer_id)
        return
    document = {"offer": offer_id, "resource": resource, "price_per_period": price, "period_ms": period_ms}
    output.emit(
        {**document, **result},
        lambda: output.stdout.print(
            f"[bold green]offered[/] {resource} at {price} {asset} per {period}: offer {offer_id}\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("withdraw")
def withdraw(
    sender: FromOpt,
    offer_id: OfferArg,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw an offer: no new reservations; running leases go on.

    Example:  autarky lease withdraw --from station 5be1…04
    """
    output.set_json_mode(json_out)
    result = send_as(
        sender, lease.withdraw_offer(parse_hex32(offer_id, "an offer id")), fee, password_file, key_file
    )
    output.emit(
        {"offer": offer_id, **result},
        lambda: output.stdout.print(f"[bold green]withdrawn[/] offer {offer_id}\n  {tx_summary(result)}"),
    )


@app.command("offers")
def offers(
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider (name or did:key).")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this resource kind.")] = None,
    include_withdrawn: Annotated[bool, typer.Option("--all", help="Include withdrawn offers.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List offers, newest first, with the slots already booked on each resource.

    Example:  autarky lease offers --kind charger
    """
    output.set_json_mode(json_out)
    provider_did = None if provider is None else current().keyring.resolve(provider)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.lease_offers(provider_did, kind, include_withdrawn)

    document = run(fetch())

    def human() -> None:
        if not document["offers"]:
            output.stdout.print("no offers")
            return
        table = Table(
            "offer", "provider", "kind", "resource", "price / period", "periods", "service level", "booked"
        )
        for item in document["offers"]:
            booked = ", ".join(f"{iso(slot['start_ms'])}+{_span(slot)}" for slot in item["reservations"])
            level = " ".join(f"{name}={value}" for name, value in item["service_level"].items())
            withdrawn = " (withdrawn)" if item["withdrawn"] is not None else ""
            price = f"{output.fmt_amount(item['price_per_period'])} {item['asset']}"
            table.add_row(
                item["id"][:16] + "…" + withdrawn,
                output.short(item["provider"]),
                item["resource_kind"],
                item["resource"],
                f"{price} / {duration(item['period_ms'])}",
                f"{item['min_periods']}..{item['max_periods']}",
                level or "-",
                booked or "-",
            )
        output.stdout.print(table)

    output.emit(document, human)


def _span(slot: dict[str, Any]) -> str:
    return duration(slot["end_ms"] - slot["start_ms"])


# -- the renter's side ---------------------------------------------------------------------------------


@app.command("reserve")
def reserve(
    sender: FromOpt,
    offer_id: OfferArg,
    periods: Annotated[int, typer.Option("--periods", min=1, help="How many periods to book.")],
    start: Annotated[
        str, typer.Option("--start", help="When it starts: now, +5m, epoch ms or ISO 8601.")
    ] = "+1m",
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    print_id: PrintIdOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Book periods of an offer; the whole price goes into escrow; prints the lease id.

    The provider must confirm the start, or you are refunded in full.

    Example:  autarky lease reserve --from robot 5be1…04 --start +2m --periods 30
    """
    output.set_json_mode(json_out)
    start_ms = parse_time_ms(start, "--start")
    result = send_as(
        sender,
        lease.reserve(parse_hex32(offer_id, "an offer id"), start_ms, periods),
        fee,
        password_file,
        key_file,
    )
    lease_id = lease_keeper.new_lease_id(bytes.fromhex(result["tx_hash"]), 0).hex()
    if print_id and not json_out:
        output.stdout.print(lease_id)
        return
    output.emit(
        {"lease": lease_id, "offer": offer_id, "start_ms": start_ms, "periods": periods, **result},
        lambda: output.stdout.print(
            f"[bold green]reserved[/] {periods} periods from {iso(start_ms)}: lease {lease_id}\n"
            f"  {tx_summary(result)}"
        ),
    )


def _simple(verb: str, build: Any) -> Any:
    def command(
        sender: FromOpt,
        lease_id: LeaseArg,
        fee: FeeOpt = 1,
        password_file: PasswordFileOpt = None,
        key_file: KeyFileOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        output.set_json_mode(json_out)
        result = send_as(sender, build(parse_hex32(lease_id, "a lease id")), fee, password_file, key_file)
        output.emit(
            {"lease": lease_id, **result},
            lambda: output.stdout.print(f"[bold green]{verb}[/] lease {lease_id}\n  {tx_summary(result)}"),
        )

    return command


confirm = app.command(
    "confirm",
    help="The provider confirms the start of a reserved lease (before start + the grace time).\n\n"
    "Example:  autarky lease confirm --from station 9c0f…e1",
)(_simple("confirmed", lease.confirm_start))
end = app.command(
    "end",
    help="The renter ends a lease early: every period that has not started is refunded at once; the "
    "period in progress is owed. Before confirmation everything is refunded.\n\n"
    "Example:  autarky lease end --from robot 9c0f…e1",
)(_simple("ended", lease.end))
ack_breach = app.command(
    "ack-breach",
    help="The provider concedes the open breach claim: the claimed periods are refunded.\n\n"
    "Example:  autarky lease ack-breach --from station 9c0f…e1",
)(_simple("conceded the claim on", lease.ack_breach))


@app.command("report-breach")
def report_breach(
    sender: FromOpt,
    lease_id: LeaseArg,
    first: Annotated[int, typer.Option("--first", min=0, help="The first period that missed (0-based).")],
    metric: Annotated[str, typer.Option("--metric", help="The service-level metric that was missed.")],
    periods: Annotated[int, typer.Option("--periods", min=1, help="How many periods from --first.")] = 1,
    evidence: Annotated[
        str | None, typer.Option("--evidence", help="Evidence text (its SHA-256 is sent).")
    ] = None,
    evidence_file: Annotated[
        Path | None, typer.Option("--evidence-file", help="Evidence file (its SHA-256 is sent).")
    ] = None,
    evidence_hash_hex: Annotated[
        str | None, typer.Option("--evidence-hash", help="The evidence hash itself (64 hex characters).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The renter claims that periods missed the service level.

    Payment for them stops until the provider concedes (ack-breach) or the monitor judges (judge);
    unresolved, the claim lapses and they are paid.

    Example:  autarky lease report-breach --from robot 9c0f…e1 --first 3 --metric uptime_bps
              --evidence-file monitor-report.json
    """
    output.set_json_mode(json_out)
    digest = evidence_hash(evidence, evidence_file, evidence_hash_hex)
    message = lease.report_breach(parse_hex32(lease_id, "a lease id"), first, periods, metric, digest)
    result = send_as(sender, message, fee, password_file, key_file)
    output.emit(
        {"lease": lease_id, "first_period": first, "periods": periods, "evidence": digest.hex(), **result},
        lambda: output.stdout.print(
            f"[bold yellow]claimed[/] periods {first}..{first + periods - 1} of lease {lease_id}\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("judge")
def judge(
    sender: FromOpt,
    lease_id: LeaseArg,
    upheld: Annotated[
        bool, typer.Option("--upheld/--rejected", help="Uphold the claim (refund) or reject it (pay).")
    ],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The offer's monitor judges the open breach claim.

    Example:  autarky lease judge --from sla-monitor 9c0f…e1 --upheld
    """
    output.set_json_mode(json_out)
    result = send_as(
        sender, lease.judge_breach(parse_hex32(lease_id, "a lease id"), upheld), fee, password_file, key_file
    )
    verdict = "upheld" if upheld else "rejected"
    output.emit(
        {"lease": lease_id, "upheld": upheld, **result},
        lambda: output.stdout.print(
            f"[bold green]{verdict}[/] the claim on lease {lease_id}\n  {tx_summary(result)}"
        ),
    )


# -- reading leases -----------------------------------------------------------------------------------


@app.command("list")
def list_leases(
    who: Annotated[
        str, typer.Argument(help="A local name or a did:key (renter or provider).", metavar="NAME|DID")
    ],
    status: Annotated[
        str | None, typer.Option("--status", help="Only reserved, active or closed leases.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the leases an account rents or provides, newest first.

    Example:  autarky lease list robot --status active
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(who)
    if status not in (None, "reserved", "active", "closed"):
        raise UsageProblem("--status is reserved, active or closed")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.leases(did, status)

    document = run(fetch())

    def human() -> None:
        if not document["leases"]:
            output.stdout.print(f"{who}: no leases")
            return
        table = Table(
            "lease", "role", "resource", "start", "periods", "status", "paid", "refunded", "in escrow"
        )
        for item in document["leases"]:
            table.add_row(
                item["id"][:16] + "…",
                item["role"],
                item["resource"],
                iso(item["start_ms"]),
                f"{item['settled']}/{item['periods']} settled",
                item["status"] if item["outcome"] is None else f"closed: {item['outcome']}",
                output.fmt_amount(item["paid"]),
                output.fmt_amount(item["refunded"]),
                output.fmt_amount(item["remaining"]),
            )
        output.stdout.print(table)

    output.emit(document, human)


@app.command("show")
def show(lease_id: LeaseArg, json_out: JsonOpt = False) -> None:
    """Show one lease: its terms, schedule, money and any open breach claim.

    Example:  autarky lease show 9c0f…e1 --json
    """
    output.set_json_mode(json_out)
    raw = parse_hex32(lease_id, "a lease id")

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.lease(raw)

    item = run(fetch())

    def human() -> None:
        out = output.stdout
        state = item["status"] if item["outcome"] is None else f"closed ({item['outcome']})"
        out.print(f"[bold]lease {item['id']}[/]  {state}")
        out.print(f"  resource   {item['resource_kind']} {item['resource']} of {item['provider']}")
        out.print(f"  renter     {item['renter']}")
        out.print(
            f"  schedule   {item['periods']} x {duration(item['period_ms'])} from {iso(item['start_ms'])}"
            f" (booked {item['booked']}), settled {item['settled']}"
        )
        out.print(
            f"  money      {item['price_per_period']} {item['asset']}/period: paid {item['paid']},"
            f" refunded {item['refunded']}, in escrow {item['remaining']}"
        )
        if item["claim"] is not None:
            claim = item["claim"]
            out.print(
                f"  claim      periods {claim['first']}..{claim['first'] + claim['periods'] - 1} "
                f"({claim['metric']}), open until {iso(claim['deadline_ms'])}"
            )

    output.emit(item, human)
