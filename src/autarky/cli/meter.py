"""``autarky meter …``: registered meters, signed readings, usage per interval, tariffs, deposits, bills.

Write commands sign a transaction and wait for its block; read commands ask the node's API
(``/api/v1/metering/…``). Quantities are integers in the meter's unit (e.g. Wh); amounts are
integer base units of the tariff's asset.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autarky.cli import output
from autarky.cli.context import current, run
from autarky.cli.errors import UsageProblem
from autarky.cli.escrow import parse_duration_ms
from autarky.cli.keyring import Secrets
from autarky.cli.options import FeeOpt, JsonOpt, KeyFileOpt, PasswordFileOpt, parse_hex32
from autarky.cli.remote import connect, send_tx, tx_summary
from autarky.crypto.keys import SigningKey
from autarky.modules.metering import messages as metering

app = typer.Typer(
    help="Metering: register meters, send signed readings, usage per interval, tariffs, deposits, bills.",
    no_args_is_help=True,
)

MeterArg = Annotated[str, typer.Argument(help="The meter: a local name or a did:key.", metavar="METER")]
AccountArg = Annotated[str, typer.Argument(help="An account: a local name or a did:key.", metavar="ACCOUNT")]
DirectionOpt = Annotated[
    str, typer.Option("--direction", help="export (delivered to the grid) or import (taken).")
]


def _secrets(password_file: Path | None, key_file: Path | None) -> Secrets:
    return Secrets(password_file=password_file, key_file=key_file)


def _direction(direction: str) -> str:
    if direction not in metering.DIRECTIONS:
        raise UsageProblem(f"--direction is 'export' or 'import', not {direction!r}")
    return direction


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- register and deregister ------------------------------------------------------------------------


@app.command("register")
def register(
    meter: MeterArg,
    signer: Annotated[
        str,
        typer.Option(
            "--signer", help="Local name of the subject's controller: its owner, or itself (signs)."
        ),
    ],
    direction: DirectionOpt,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Whose energy the meter measures (default: --signer).")
    ] = None,
    unit: Annotated[str, typer.Option("--unit", help="What the meter counts: wh, kwh, l ...")] = "wh",
    infra: Annotated[
        str | None,
        typer.Option("--infra", help="The infrastructure (charger, link) that bills the subject through it."),
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register METER for a subject; the meter then signs its own readings.

    When METER is a local name, its key co-signs (the meter's consent); a did:key meter must be a
    machine the signer owns.

    Example:  autarky meter register inverter-meter --signer home --direction export --unit wh
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    secrets = _secrets(password_file, key_file)
    identity, key = ring.unlock(signer, secrets)
    subject_did = identity.account if subject is None else ring.resolve(subject)
    meter_did = ring.resolve(meter)
    infra_did = None if infra is None else ring.resolve(infra)
    cosigners: list[SigningKey] = []
    if not meter.startswith("did:") and meter_did != identity.account:
        cosigners.append(ring.unlock(meter, secrets)[1])
    message = metering.register(meter_did, subject_did, _direction(direction), unit, infra_did)
    result = run(send_tx(identity.account, key, [message], fee=fee, cosigners=cosigners))
    document = {
        "meter": meter_did,
        "subject": subject_did,
        "direction": direction,
        "unit": unit,
        "infra": infra_did,
        **result,
    }
    where = "" if infra is None else f" at {infra}"
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]registered[/] {meter} ({direction}, {unit}) for {subject or signer}{where}\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("deregister")
def deregister(
    meter: MeterArg,
    signer: Annotated[
        str,
        typer.Option(
            "--signer", help="Local name of the subject's controller, the meter, or the meter's owner."
        ),
    ],
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove METER's registration (its usage records and last reading stay).

    Example:  autarky meter deregister socket-3 --signer charger
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    identity, key = ring.unlock(signer, _secrets(password_file, key_file))
    meter_did = ring.resolve(meter)
    result = run(send_tx(identity.account, key, [metering.deregister(meter_did)], fee=fee))
    output.emit(
        {"meter": meter_did, **result},
        lambda: output.stdout.print(f"[bold green]deregistered[/] {meter}\n  {tx_summary(result)}"),
    )


# -- readings ---------------------------------------------------------------------------------------


def _batch(path: Path) -> list[tuple[int, int]]:
    """``[{"value": int, "time_ms": int}, ...]`` from a JSON file (``-`` is stdin)."""
    try:
        text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text(encoding="utf-8")
        items = json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"cannot read readings from {path}: {exc}") from None
    if type(items) is not list or not all(
        type(item) is dict and type(item.get("value")) is int and type(item.get("time_ms")) is int
        for item in items
    ):
        raise UsageProblem('a batch file is a JSON list of {"value": int, "time_ms": int}, oldest first')
    return [(item["value"], item["time_ms"]) for item in items]


@app.command("read")
def read(
    meter: Annotated[str, typer.Argument(help="Local name of the meter (it signs).", metavar="METER")],
    value: Annotated[
        int | None, typer.Argument(help="The meter's cumulative value (e.g. Wh since it was built).")
    ] = None,
    time_ms: Annotated[
        int | None, typer.Option("--time-ms", help="When the reading was taken (default: now).")
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch", help='A JSON file of readings [{"value", "time_ms"}, ...] oldest first; - for stdin.'
        ),
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Send a signed reading (or a batch: all of it is accepted or none).

    Refused readings exit 1 with their code: metering.value_backwards, metering.duplicate_reading
    (the same time again, or earlier), metering.future_reading, metering.unknown_meter.

    Example:   autarky meter read inverter-meter 10400
               autarky meter read inverter-meter --batch readings.json
    """
    output.set_json_mode(json_out)
    if (value is None) == (batch is None):
        raise UsageProblem("give either VALUE or --batch FILE")
    if batch is not None and time_ms is not None:
        raise UsageProblem("--time-ms goes with VALUE; a batch file carries its own times")
    readings = (
        _batch(batch) if batch is not None else [(value or 0, _now_ms() if time_ms is None else time_ms)]
    )
    if not readings:
        raise UsageProblem("the batch holds no reading")
    identity, key = current().keyring.unlock(meter, _secrets(password_file, key_file))
    result = run(send_tx(identity.account, key, [metering.read(readings)], fee=fee))
    events = (result.get("receipt") or {}).get("events") or []
    read_event: dict[str, Any] = next((e["attributes"] for e in events if e["type"] == "metering.read"), {})
    bill_event = next((e["attributes"] for e in events if e["type"] == "metering.bill"), None)
    document = {
        "meter": identity.account,
        "readings": [{"value": v, "time_ms": t} for v, t in readings],
        "energy": read_event.get("energy"),
        "subject": read_event.get("subject"),
        "bill": bill_event,
        **result,
    }

    def human() -> None:
        last_value, _ = readings[-1]
        line = f"[bold green]read[/] {meter}: {len(readings)} reading(s), value {last_value:,}"
        line += f", +{read_event.get('energy', 0):,} counted"
        if bill_event is not None:
            line += f"; billed {bill_event['amount']:,} {bill_event['asset']}, paid {bill_event['paid']:,}"
        output.stdout.print(f"{line}\n  {tx_summary(result)}")

    output.emit(document, human)


# -- reads: meters and usage --------------------------------------------------------------------------


@app.command("meters")
def meters(subject: AccountArg, json_out: JsonOpt = False) -> None:
    """List the meters registered to an account, with their last readings.

    Example:  autarky meter meters home
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(subject)

    async def fetch() -> list[dict[str, Any]]:
        async with connect() as client:
            return await client.metering_meters(did)

    found = run(fetch())

    def human() -> None:
        if not found:
            output.stdout.print(f"{subject}: no meter registered")
            return
        table = Table(
            "meter", "direction", "unit", "infra", "readings", "counted", "last value", "last time_ms"
        )
        for entry in found:
            last = entry["last_reading"] or {}
            table.add_row(
                output.short(entry["meter"]),
                entry["direction"],
                entry["unit"],
                output.short(entry["infra"]),
                str(entry["readings"]),
                f"{entry['counted']:,}",
                "-" if not last else f"{last['value']:,}",
                "-" if not last else str(last["time_ms"]),
            )
        output.stdout.print(table)

    output.emit({"subject": did, "meters": found}, human)


@app.command("usage")
def usage(
    account: AccountArg,
    direction: DirectionOpt = "export",
    first: Annotated[
        int | None, typer.Option("--from", min=0, help="First interval (default: 95 before --to).")
    ] = None,
    last: Annotated[
        int | None, typer.Option("--to", min=0, help="Last interval (default: the current one).")
    ] = None,
    all_intervals: Annotated[bool, typer.Option("--all", help="Also list intervals with no energy.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Energy of ACCOUNT per interval, and whether its readings are complete (final).

    Example:  autarky meter usage home --direction export --json
    """
    output.set_json_mode(json_out)
    did = current().keyring.resolve(account)
    _direction(direction)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.metering_usage(did, direction, first, last)

    document = run(fetch())

    def human() -> None:
        unit = document["unit"] or "units"
        shown = [i for i in document["intervals"] if all_intervals or i["energy"]]
        table = Table(
            "interval",
            "start_ms",
            f"energy ({unit})",
            "complete",
            title=f"{account} {direction}: {document['total']:,} {unit} in intervals "
            f"{document['from']}..{document['to']}",
            title_justify="left",
        )
        for entry in shown:
            table.add_row(
                str(entry["interval"]),
                str(entry["start_ms"]),
                f"{entry['energy']:,}",
                "yes" if entry["complete"] else "no",
            )
        output.stdout.print(table)

    output.emit(document, human)


# -- tariffs, deposits, bills ---------------------------------------------------------------------------


@app.command("tariff")
def tariff(
    infra: Annotated[
        str, typer.Argument(help="The infrastructure: a local name or a did:key.", metavar="INFRA")
    ],
    price: Annotated[
        int | None, typer.Option("--price", min=0, help="Set the price per unit (0: free); omit to show.")
    ] = None,
    asset: Annotated[str, typer.Option("--asset", help="The asset the tariff is paid in.")] = "aut",
    signer: Annotated[
        str | None, typer.Option("--signer", help="Local name of the infrastructure's controller (signs).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the tariff billing at INFRA, or set it with --price (signed by its controller).

    Example:   autarky meter tariff charger
               autarky meter tariff charger --price 3 --asset aut --signer charger
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    infra_did = ring.resolve(infra)
    if price is None:

        async def fetch() -> dict[str, Any] | None:
            async with connect() as client:
                return await client.metering_tariff(infra_did)

        found = run(fetch())

        def human() -> None:
            if found is None:
                output.stdout.print(f"{infra}: no tariff (it does not bill)")
            else:
                price_text = f"{found['price_per_unit']:,} {found['asset']}"
                output.stdout.print(f"{infra}: {price_text} per unit ({found['source']} tariff)")

        output.emit({"infra": infra_did, "tariff": found}, human)
        return
    identity, key = ring.unlock(signer or infra, _secrets(password_file, key_file))
    result = run(send_tx(identity.account, key, [metering.set_tariff(infra_did, asset, price)], fee=fee))
    output.emit(
        {"infra": infra_did, "asset": asset, "price_per_unit": price, **result},
        lambda: output.stdout.print(
            f"[bold green]tariff set[/] {infra}: {price:,} {asset} per unit\n  {tx_summary(result)}"
        ),
    )


@app.command("deposit")
def deposit(
    sender: Annotated[str, typer.Option("--from", help="Local name of the payer (signs).")],
    infra: Annotated[str, typer.Option("--infra", help="The infrastructure it prepays (a name or did:key).")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Amount in integer base units.")],
    asset: Annotated[str, typer.Option("--asset", help="The tariff's asset.")] = "aut",
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="What is left comes back after this long (30m, 2h, 7d).")
    ] = "1d",
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Prepay for use of an infrastructure: an escrow lock its meter's bills are paid from.

    Debt owed to the infrastructure is paid from the new deposit first. Prints the lock id.

    Example:  autarky meter deposit --from car --infra charger --amount 500 --expires-in 1d
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    infra_did = ring.resolve(infra)
    identity, key = ring.unlock(sender, _secrets(password_file, key_file))
    expires_ms = _now_ms() + parse_duration_ms(expires_in)
    result = run(
        send_tx(identity.account, key, [metering.deposit(infra_did, asset, amount, expires_ms)], fee=fee)
    )
    events = (result.get("receipt") or {}).get("events") or []
    lock = next((e["attributes"]["lock"] for e in events if e["type"] == "metering.deposited"), None)
    settled = next((e["attributes"]["amount"] for e in events if e["type"] == "metering.debt_paid"), 0)
    document = {
        "lock": lock,
        "payer": identity.account,
        "infra": infra_did,
        "asset": asset,
        "amount": amount,
        "debt_paid": settled,
        "expires_ms": expires_ms,
        **result,
    }
    paid_line = f"; {settled:,} of it paid debt" if settled else ""
    output.emit(
        document,
        lambda: output.stdout.print(
            f"[bold green]deposited[/] {amount:,} {asset} for {infra}: lock {lock}{paid_line}\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("withdraw")
def withdraw(
    sender: Annotated[str, typer.Option("--from", help="Local name of the payer (signs).")],
    lock: Annotated[str, typer.Option("--lock", help="The deposit's lock id (64 hex characters).")],
    amount: Annotated[
        int | None, typer.Option("--amount", min=1, help="How much (default: all that remains).")
    ] = None,
    fee: FeeOpt = 1,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Take back what a deposit still holds.

    Example:  autarky meter withdraw --from car --lock 5be1…04
    """
    output.set_json_mode(json_out)
    identity, key = current().keyring.unlock(sender, _secrets(password_file, key_file))
    result = run(
        send_tx(
            identity.account,
            key,
            [metering.withdraw(parse_hex32(lock, "a deposit's lock id"), amount)],
            fee=fee,
        )
    )
    events = (result.get("receipt") or {}).get("events") or []
    taken: dict[str, Any] = next((e["attributes"] for e in events if e["type"] == "metering.withdrawn"), {})
    output.emit(
        {"lock": lock, "amount": taken.get("amount"), "remaining": taken.get("remaining"), **result},
        lambda: output.stdout.print(
            f"[bold green]withdrawn[/] {taken.get('amount', 0):,}, {taken.get('remaining', 0):,} left\n"
            f"  {tx_summary(result)}"
        ),
    )


@app.command("bills")
def bills(
    account: AccountArg,
    infra: Annotated[str | None, typer.Option("--infra", help="Only this infrastructure.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Most bills listed.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """What ACCOUNT is billed at infrastructure: totals, debt, recent bills, open deposits.

    Example:  autarky meter bills car
    """
    output.set_json_mode(json_out)
    ring = current().keyring
    did = ring.resolve(account)
    infra_did = None if infra is None else ring.resolve(infra)

    async def fetch() -> dict[str, Any]:
        async with connect() as client:
            return await client.metering_bills(did, infra_did, limit)

    document = run(fetch())

    def human() -> None:
        if not document["statements"] and not document["deposits"]:
            output.stdout.print(f"{account}: no bill and no deposit")
            return
        table = Table("infra", "asset", "quantity", "billed", "paid", "debt", title=f"{account}: statements")
        for entry in document["statements"]:
            table.add_row(
                output.short(entry["infra"]),
                entry["asset"],
                f"{entry['quantity']:,}",
                f"{entry['billed']:,}",
                f"{entry['paid']:,}",
                f"{entry['debt']:,}",
            )
        output.stdout.print(table)
        if document["deposits"]:
            deposits = Table("lock", "infra", "amount", "expires_ms", title="open deposits")
            for entry in document["deposits"]:
                deposits.add_row(
                    entry["lock"],
                    output.short(entry["infra"]),
                    f"{entry['amount']:,} {entry['asset']}",
                    str(entry["expires_ms"]),
                )
            output.stdout.print(deposits)

    output.emit(document, human)
